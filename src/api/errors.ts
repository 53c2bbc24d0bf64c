/**
 * Every failure leaves the API as `{ error: { code, message, ... } }` with the
 * HTTP status docs/api.md gives its code. Only errors we did not expect are
 * logged with their stack, and their message is not passed on: it may carry
 * internals (SQL, paths) that a caller has no business seeing.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SriovError, type ErrorCode } from '../host/errors.js';
import { formOf } from './schemas.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  UNSUPPORTED: 400,
  OUT_OF_RANGE: 400,
  NOT_SRIOV_PF: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  NO_CAPACITY: 409,
  BUSY: 409,
  TIMEOUT: 504,
  UNAVAILABLE: 503,
};

/** Seconds a client waits before retrying an UNAVAILABLE (the store's own hint in `data.retryAfterS`, else this). */
const RETRY_AFTER_S = 2;

export function statusOf(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | SriovError, request, reply) => sendError(err, request, reply));
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } }),
  );
}

function sendError(err: FastifyError | SriovError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof SriovError) {
    if (err.code === 'UNAVAILABLE') void reply.header('Retry-After', String(err.details.data?.retryAfterS ?? RETRY_AFTER_S));
    return reply.code(statusOf(err.code)).send({ error: err.toJSON() });
  }
  if (err.validation) {
    const field = validationField(err);
    return reply.code(400).send({ error: { code: 'INVALID_ARGUMENT', message: validationMessage(err), ...(field ? { field } : {}), nothingChanged: true } });
  }
  // Fastify's own client errors (bad JSON, body too large, wrong content type) keep their status.
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    return reply.code(err.statusCode).send({ error: { code: 'INVALID_ARGUMENT', message: err.message, nothingChanged: true } });
  }
  request.log.error({ err }, 'unexpected error');
  return reply.code(500).send({ error: { code: 'INTERNAL', message: 'internal error; see the daemon log' } });
}

/** What Ajv reports for one failed keyword (with `verbose`: the schema and the value). */
interface AjvIssue {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  parentSchema?: { description?: string; minimum?: number; maximum?: number; minLength?: number; maxLength?: number; pattern?: string };
  data?: unknown;
}

const CONTEXT: Record<string, string> = { body: 'body', querystring: 'query parameter', params: 'URL parameter', headers: 'header' };

/**
 * Ajv's first complaint as one line a person can act on, naming the field and
 * the limit: `vlan must be 0-4094, got 4095`, `name must be 1-63 lower-case
 * letters, ...`. Never the regular expression behind a pattern.
 */
export function validationMessage(err: Pick<FastifyError, 'validation' | 'validationContext'>): string {
  const issue = err.validation![0]! as AjvIssue;
  const path = issue.instancePath.split('/').filter(Boolean).join('.');
  const context = CONTEXT[err.validationContext ?? ''] ?? 'request';
  const where = path ? (context === 'body' ? path : `${context} ${path}`) : context;
  return `${where} ${complaint(issue)}`;
}

/**
 * The body, query or URL field Ajv's first complaint is about, dotted
 * (`ipam.cidr`, `tenantVlans.0.from`): a missing field is the field itself,
 * an unknown one is named too. Undefined when the complaint is about the
 * whole body (`body must be object`) or a header.
 */
export function validationField(err: Pick<FastifyError, 'validation' | 'validationContext'>): string | undefined {
  if (err.validationContext === 'headers') return undefined;
  const issue = err.validation![0]! as AjvIssue;
  const path = issue.instancePath.split('/').filter(Boolean);
  const named = issue.keyword === 'required' || issue.keyword === 'dependencies' ? issue.params.missingProperty : issue.keyword === 'additionalProperties' ? issue.params.additionalProperty : undefined;
  if (typeof named === 'string') path.push(named);
  return path.length > 0 ? path.join('.') : undefined;
}

function complaint(issue: AjvIssue): string {
  const p = issue.params;
  const schema = issue.parentSchema ?? {};
  const got = issue.data === undefined ? '' : `, got ${shown(issue.data)}`;
  switch (issue.keyword) {
    case 'additionalProperties':
      // The caller's own key: quoted and cut short like any value it sent.
      return `has unknown field ${shown(String(p.additionalProperty))}`;
    case 'required':
      return `needs field "${String(p.missingProperty)}"`;
    case 'dependencies':
      return `field "${String(p.property)}" needs field "${String(p.missingProperty)}"; give both or neither`;
    case 'pattern':
    case 'format':
      return `must be ${formOf(String(p.pattern)) ?? schema.description ?? `a valid ${String(p.format ?? 'value')}`}${got}`;
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map(shown).join(', ')}${got}`;
    case 'const':
      return `must be ${shown(p.allowedValue)}${got}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `must be ${bounds(schema.minimum, schema.maximum)}${got}`;
    case 'minLength':
    case 'maxLength':
      return `must be ${bounds(schema.minLength, schema.maxLength)} characters long`;
    case 'minItems':
    case 'maxItems':
    case 'minProperties':
    case 'maxProperties':
      return `${issue.message ?? 'has the wrong number of entries'}${schema.description ? ` (${schema.description})` : ''}`;
    case 'discriminator':
      return `field "${String(p.tag)}" must be one of ${tagValues(issue.parentSchema, String(p.tag))}${issue.data === undefined ? '' : `, got ${shown((issue.data as Record<string, unknown>)[String(p.tag)])}`}`;
    case 'oneOf':
      return `must match exactly one of its documented forms${schema.description ? ` (${schema.description})` : ''}`;
    default:
      // type, const and the like: Ajv's words are plain (`must be integer`), with no regex in them.
      return issue.message ?? 'is invalid';
  }
}

/** The values a discriminated oneOf's branches give its tag: `"container", "vm"`. */
function tagValues(schema: AjvIssue['parentSchema'], tag: string): string {
  const branches = ((schema as { oneOf?: Array<{ properties?: Record<string, { const?: unknown }> }> } | undefined)?.oneOf ?? []);
  return branches.map((b) => shown(b.properties?.[tag]?.const)).join(', ');
}

function bounds(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `${min}-${max}`;
  return min !== undefined ? `at least ${min}` : `at most ${max}`;
}

/** A value as the caller sent it, cut short: a refusal stays one short line whatever was sent. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/**
 * Errors Fastify raises while routing, before any route runs: a path segment
 * longer than the router accepts (414) and a URL that does not decode (400).
 * Passed to Fastify as `frameworkErrors`, so they leave in the error envelope too.
 */
export function frameworkError(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const [status, message] =
    err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? [414, `a path segment of the URL is longer than ${MAX_PARAM_LENGTH} characters; no id or name is that long`]
      : [err.statusCode ?? 400, 'the URL is not valid: a %-escape in it does not decode'];
  void reply.code(status).send({ error: { code: 'INVALID_ARGUMENT', message, nothingChanged: true } });
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them: headers over
 * Node's 16 KB (431), a request too slow (408), bytes that are not HTTP (400).
 * Passed to Fastify as `clientErrorHandler`, so these too leave in the error
 * envelope, not in Fastify's own `{ error, message, statusCode }`.
 */
export function clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A reset connection has nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) return;
  const [status, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'the request headers are larger than 16 KB; no token or header needs that much']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'the request did not arrive in time; send it again']
        : [400, 'the request is not valid HTTP'];
  const body = JSON.stringify({ error: { code: 'INVALID_ARGUMENT', message, nothingChanged: true } });
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** Fastify's (and find-my-way's) default; longer path segments get frameworkError's 414. */
export const MAX_PARAM_LENGTH = 100;
