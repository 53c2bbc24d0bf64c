/**
 * The audit log, pushed: `GET /v1/events/stream` as Server-Sent Events
 * (staff). It is the events list read forward without end: each event goes
 * out once with its seq as the SSE id, so a client that reconnects with
 * `Last-Event-ID` (or `?after=`) misses none and sees none twice.
 *
 * Events are read from the store a batch at a time and the next batch waits
 * until the socket has taken the last, so a slow reader holds at most one
 * batch beyond the socket's buffer, never the log. A caught-up stream reads
 * again only when the events feed says the log grew: the store's watch
 * (cluster-sync.ts) bumps it for every append, whichever controller or write
 * path made it, so no connection polls the store.
 *
 * Without `Last-Event-ID` or `after`, a stream starts at the log's last
 * STREAM_TAIL events, not its start: a long log is not replayed to every new
 * client, and a page that opens still shows what just happened.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { ControlPlane } from '../../controller/control-plane.js';
import { EVENTS } from '../../controller/context.js';
import type { AuditEvent } from '../../domain/types.js';
import { invalid, SriovError } from '../../host/errors.js';
import { DIGITS, errorResponses, strictObject } from '../schemas.js';

export interface EventStreamOptions {
  /** A comment line this often keeps proxies and the client's idle timers from closing a quiet stream. */
  heartbeatMs?: number;
}

/** Events read and written at a time: the most a slow client has waiting for it. */
export const STREAM_BATCH = 100;
/** How far back a stream with no resume point starts: the last this many events of the log (fewer with `object`). */
export const STREAM_TAIL = 100;
const HEARTBEAT_MS = 15_000;
/** What EventSource-style clients wait before reconnecting. */
const RETRY_MS = 2_000;

interface Query {
  after?: string;
  object?: string;
}

export function eventStreamRoutes(app: FastifyInstance, control: ControlPlane, opts: EventStreamOptions = {}): void {
  const open = new Set<ServerResponse>();
  // Streams never end on their own: close() ends them, or it would wait out the grace period.
  app.addHook('preClose', async () => {
    for (const res of open) res.end();
  });

  app.get<{ Querystring: Query }>(
    '/v1/events/stream',
    {
      schema: {
        tags: ['audit'],
        summary: 'The audit log as Server-Sent Events, live (admin, operator)',
        description:
          'Each event is one SSE message: `id` its seq, `event: audit`, `data` the AuditEvent as JSON. Resume with the `Last-Event-ID` header ' +
          `(or \`after\`): the stream starts after that seq, with no gap. Without either it starts with the last ${STREAM_TAIL} events of the log ` +
          '(those among them about `object`, when given), then goes on live. ' +
          `A \`: heartbeat\` comment line comes every ${HEARTBEAT_MS / 1000} s. The stream ends when the daemon shuts down; ` +
          'an `event: error` message (the error envelope as data) ends it when the store cannot be read. ' +
          'Send the token as `Authorization: Bearer`, as everywhere: browsers read the stream with fetch(), not EventSource.',
        querystring: strictObject({
          after: { ...DIGITS, description: 'start after this seq (Last-Event-ID wins when both are given)' },
          object: { type: 'string', maxLength: 300, description: 'only events about this object, e.g. network/blue' },
        }),
        response: { 200: { description: 'text/event-stream', type: 'string' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const filter = request.query.object;
      // Before the first read: an event appended between that read and the wait still wakes the stream.
      const revision = control.ctx.events.revision(EVENTS);
      // The first reads answer a refusal (403, 503) as an ordinary error, before the stream starts.
      const after = resumeSeq(request) ?? (await tailStart(control, request));
      const first = await control.events(request.actor, { afterSeq: after, limit: STREAM_BATCH, object: filter });
      const res = start(reply);
      open.add(res);
      res.on('close', () => open.delete(res));
      await pump(control, request, res, { first, after, revision, object: filter }, opts).catch((err: unknown) => {
        if (!(err instanceof SriovError)) request.log.error({ err }, 'event stream failed');
        fail(res, err);
      });
      open.delete(res);
      res.end();
    },
  );
}

/** `Last-Event-ID`, else `after`, else undefined (no resume point). */
function resumeSeq(request: FastifyRequest<{ Querystring: Query }>): number | undefined {
  const header = request.headers['last-event-id'];
  const text = (Array.isArray(header) ? header[0] : header) ?? request.query.after;
  if (text === undefined || text === '') return undefined;
  if (!/^[0-9]{1,15}$/.test(text)) throw invalid(`Last-Event-ID must be an event's seq (decimal digits), got ${JSON.stringify(text.slice(0, 40))}`, undefined, 'Last-Event-ID');
  return Number(text);
}

function start(reply: FastifyReply): ServerResponse {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    // nginx and the like would otherwise hold the stream back in their buffers.
    'x-accel-buffering': 'no',
  });
  res.write(`retry: ${RETRY_MS}\n\n`);
  return res;
}

/** The seq a stream with no resume point starts after: STREAM_TAIL events before the log's end. */
async function tailStart(control: ControlPlane, request: FastifyRequest): Promise<number> {
  return Math.max(0, (await control.lastEventSeq(request.actor)) - STREAM_TAIL);
}

/** Where a stream is: its first batch, the seq it was read after, and the events feed's revision before that read. */
interface Position {
  first: AuditEvent[];
  after: number;
  revision: string;
  object: string | undefined;
}

async function pump(control: ControlPlane, request: FastifyRequest, res: ServerResponse, at: Position, opts: EventStreamOptions): Promise<void> {
  const feed = control.ctx.events;
  let { after, revision } = at;
  let batch = at.first;
  let lastBeat = Date.now();
  const heartbeatMs = opts.heartbeatMs ?? HEARTBEAT_MS;
  while (!res.destroyed && !res.writableEnded) {
    for (const e of batch) after = e.seq;
    const taken = batch.length === 0 ? true : res.write(batch.map(message).join(''));
    if (!taken) await drained(res);
    // Caught up, and nothing appended since the read: wait for news of an append, or the next heartbeat.
    while (batch.length < STREAM_BATCH && feed.revision(EVENTS) === revision && !res.destroyed && !res.writableEnded) {
      await untilClosedOr(res, feed.waitForChange(EVENTS, revision, Math.max(0, lastBeat + heartbeatMs - Date.now())));
      if (Date.now() - lastBeat >= heartbeatMs && !res.writableEnded && !res.destroyed) {
        res.write(': heartbeat\n\n');
        lastBeat = Date.now();
      }
    }
    if (res.destroyed || res.writableEnded) return;
    // Taken before the read: an append the read misses still wakes the next wait.
    revision = feed.revision(EVENTS);
    batch = await control.events(request.actor, { afterSeq: after, limit: STREAM_BATCH, object: at.object });
  }
}

function message(e: AuditEvent): string {
  return `id: ${e.seq}\nevent: audit\ndata: ${JSON.stringify(e)}\n\n`;
}

/** Resolves when the socket has taken what it holds, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

function untilClosedOr(res: ServerResponse, wait: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('close', done);
      resolve();
    };
    res.once('close', done);
    void wait.then(done);
  });
}

/** The stream is open, so a failure is told as its last message. */
function fail(res: ServerResponse, err: unknown): void {
  if (res.destroyed || res.writableEnded) return;
  const body = err instanceof SriovError ? err.toJSON() : { code: 'INTERNAL', message: 'internal error; see the daemon log' };
  res.write(`event: error\ndata: ${JSON.stringify({ error: body })}\n\n`);
}
