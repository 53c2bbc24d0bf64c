/**
 * Every failure leaves the API as `{ error: { code, message, ... } }` with the
 * HTTP status docs/api.md gives its code. Only errors we did not expect are
 * logged with their stack, and their message is not passed on: it may carry
 * internals (SQL, paths) that a caller has no business seeing.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SriovError, type ErrorCode } from '../host/errors.js';

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
};

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
  if (err instanceof SriovError) return reply.code(statusOf(err.code)).send({ error: err.toJSON() });
  if (err.validation) {
    return reply.code(400).send({ error: { code: 'INVALID_ARGUMENT', message: validationMessage(err), nothingChanged: true } });
  }
  // Fastify's own client errors (bad JSON, body too large, wrong content type) keep their status.
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    return reply.code(err.statusCode).send({ error: { code: 'INVALID_ARGUMENT', message: err.message, nothingChanged: true } });
  }
  request.log.error({ err }, 'unexpected error');
  return reply.code(500).send({ error: { code: 'INTERNAL', message: 'internal error; see the daemon log' } });
}

/** Ajv's first complaint, naming the field: `body.vlan must be <= 4094`, `body has unknown field "colour"`. */
function validationMessage(err: FastifyError): string {
  const first = err.validation![0]!;
  const where = [err.validationContext ?? 'request', ...first.instancePath.split('/').filter(Boolean)].join('.');
  const params = first.params as { additionalProperty?: string; missingProperty?: string; property?: string };
  if (first.keyword === 'additionalProperties') return `${where} has unknown field "${params.additionalProperty}"`;
  if (first.keyword === 'dependencies') return `${where}.${params.property} needs ${params.missingProperty}; give both or neither`;
  if (first.keyword === 'required') return `${where}.${params.missingProperty} is required`;
  return `${where} ${first.message ?? 'is invalid'}`;
}
