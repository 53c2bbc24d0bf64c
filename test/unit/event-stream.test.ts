/**
 * GET /v1/events/stream: the audit log as Server-Sent Events, read the way
 * the console reads it (fetch with the bearer header, a stream reader).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AuditEvent } from '../../src/domain/types.js';
import { STREAM_BATCH, STREAM_TAIL } from '../../src/api/routes/event-stream.js';
import { expectStatus, startApi, type ApiHarness } from '../helpers/api-harness.js';

interface Message {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

/** A reader of one stream: messages are parsed as they arrive. */
async function openStream(h: ApiHarness, token: string, headers: Record<string, string> = {}, query = '') {
  const abort = new AbortController();
  const res = await fetch(`${h.base}/v1/events/stream${query}`, { headers: { authorization: `Bearer ${token}`, ...headers }, signal: abort.signal });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const pending: Message[] = [];
  let ended = false;
  const next = async (): Promise<Message | null> => {
    while (pending.length === 0) {
      const cut = buffer.indexOf('\n\n');
      if (cut >= 0) {
        pending.push(parse(buffer.slice(0, cut)));
        buffer = buffer.slice(cut + 2);
        continue;
      }
      const { value, done } = await reader.read();
      if (done) {
        ended = true;
        return null;
      }
      buffer += value;
    }
    return pending.shift()!;
  };
  /** The next audit events, `n` of them, skipping comments and the retry line. */
  const events = async (n: number): Promise<AuditEvent[]> => {
    const out: AuditEvent[] = [];
    while (out.length < n) {
      const m = await next();
      assert.ok(m, `the stream ended after ${out.length} of ${n} events`);
      if (m.event === 'audit') {
        assert.equal(m.id, String((JSON.parse(m.data!) as AuditEvent).seq));
        out.push(JSON.parse(m.data!) as AuditEvent);
      }
    }
    return out;
  };
  return { res, next, events, ended: () => ended, close: () => abort.abort() };
}

function parse(block: string): Message {
  const m: Message = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) m.comment = line.slice(1).trim();
    const [k, ...rest] = line.split(': ');
    if (k === 'id' || k === 'event' || k === 'data') m[k] = rest.join(': ');
  }
  return m;
}

const ADMIN = { id: 'test', role: 'admin' } as const;

const tenant = (h: ApiHarness, name: string) => expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name }), 201);

describe('API: GET /v1/events/stream', () => {
  let h: ApiHarness;
  before(async () => {
    h = await startApi({ eventStream: { heartbeatMs: 200 } });
    await tenant(h, 'first');
  });
  after(() => h.close());

  it('starts with the log so far while it is short, then pushes each new event as it is recorded', async () => {
    const s = await openStream(h, h.admin);
    assert.equal(s.res.status, 200);
    assert.match(s.res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const logged = (await expectStatus(h.call<AuditEvent[]>(h.admin, 'GET', '/v1/events'), 200)).body;
    const replayed = await s.events(logged.length);
    assert.deepEqual(replayed, logged);
    const old = replayed[replayed.length - 1];
    assert.equal(old!.object, 'tenant/first');
    await tenant(h, 'second');
    const [live] = await s.events(1);
    assert.equal(live!.action, 'tenant.create');
    assert.equal(live!.object, 'tenant/second');
    assert.ok(live!.seq > old!.seq);
    s.close();
  });

  it('resumes after Last-Event-ID (or after=) with no gap and no repeat', async () => {
    const all = (await expectStatus(h.call<AuditEvent[]>(h.admin, 'GET', '/v1/events'), 200)).body;
    const from = all[0]!.seq;
    await tenant(h, 'third');
    const byHeader = await openStream(h, h.admin, { 'last-event-id': String(from) });
    const got = await byHeader.events(all.length);
    assert.deepEqual(got.map((e) => e.seq), [...all.slice(1).map((e) => e.seq), got[got.length - 1]!.seq]);
    assert.equal(got[got.length - 1]!.object, 'tenant/third');
    byHeader.close();
    const byQuery = await openStream(h, h.admin, {}, `?after=${all[all.length - 1]!.seq}`);
    assert.equal((await byQuery.events(1))[0]!.object, 'tenant/third');
    byQuery.close();
  });

  it('reads a long log a batch at a time, in order', async () => {
    for (let i = 0; i < STREAM_BATCH + 20; i++) await tenant(h, `bulk-${i}`);
    const s = await openStream(h, h.admin, {}, '?after=0&object=tenant/bulk-0');
    assert.equal((await s.events(1))[0]!.object, 'tenant/bulk-0');
    s.close();
    const every = await openStream(h, h.admin, {}, '?after=0');
    const seqs = (await every.events(STREAM_BATCH + 23)).map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    assert.equal(new Set(seqs).size, seqs.length);
    every.close();
  });

  it('without a resume point starts at the last STREAM_TAIL events, not the start of a long log', async () => {
    while ((await h.control.lastEventSeq(ADMIN)) <= STREAM_TAIL + 10) await tenant(h, `tail-${await h.control.lastEventSeq(ADMIN)}`);
    const last = await h.control.lastEventSeq(ADMIN);
    const s = await openStream(h, h.admin);
    const got = await s.events(STREAM_TAIL);
    assert.deepEqual(
      got.map((e) => e.seq),
      Array.from({ length: STREAM_TAIL }, (_, i) => last - STREAM_TAIL + 1 + i),
    );
    await tenant(h, 'after-the-tail');
    const [live] = await s.events(1);
    assert.equal(live!.object, 'tenant/after-the-tail');
    s.close();
  });

  it('wakes on an event appended by any write path, not only recorded() (no polling)', async () => {
    // A long heartbeat: the only thing that can wake this stream is the store's news of the append.
    const quiet = await startApi({ eventStream: { heartbeatMs: 600_000 } });
    try {
      const s = await openStream(quiet, quiet.admin, {}, '?object=host/elsewhere');
      await s.next(); // the retry line: the stream is open and caught up
      await quiet.store.tx.appendEvent({ at: new Date().toISOString(), actor: 'controller', action: 'host.unreachable', object: 'host/elsewhere', before: 'ready', after: 'unreachable' });
      const [e] = await s.events(1);
      assert.equal(e!.action, 'host.unreachable');
      s.close();
    } finally {
      await quiet.close();
    }
  });

  it('sends heartbeats while nothing happens', async () => {
    const s = await openStream(h, h.admin, {}, '?object=tenant/nothing');
    let m = await s.next();
    while (m && m.comment !== 'heartbeat') m = await s.next();
    assert.equal(m?.comment, 'heartbeat');
    s.close();
  });

  it('is staff-only, and refuses a Last-Event-ID that is not a seq, before any stream starts', async () => {
    const t = await h.token('tenant:first');
    const refused = await h.call<{ error: { code: string } }>(t, 'GET', '/v1/events/stream');
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'FORBIDDEN');
    const res = await fetch(`${h.base}/v1/events/stream`, { headers: { authorization: `Bearer ${h.admin}`, 'last-event-id': 'x1' } });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { field: string } };
    assert.equal(body.error.field, 'Last-Event-ID');
    assert.equal((await h.call(null, 'GET', '/v1/events/stream')).status, 401);
  });
});

describe('API: the event stream at shutdown', () => {
  it('ends open streams cleanly when the daemon closes', async () => {
    const h = await startApi();
    const s = await openStream(h, h.admin);
    await tenant(h, 'one');
    await s.events(1);
    const closed = h.close();
    let m = await s.next();
    while (m) m = await s.next();
    assert.equal(s.ended(), true);
    await closed;
  });
});
