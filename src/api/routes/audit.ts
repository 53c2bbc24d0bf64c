/** The isolation audit and the audit log (admin, operator). */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import { DIGITS, errorResponses, listOf, ref, strictObject } from '../schemas.js';

const tags = ['audit'];
const MAX_EVENTS = 1000;

export function auditRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get(
    '/v1/audit/isolation',
    {
      schema: {
        tags,
        summary: 'Tenant isolation audit of the VF configuration hosts report',
        response: { 200: ref('IsolationReport', 'segments, reachability between tenants, violations'), ...errorResponses },
      },
    },
    (request) => control.auditIsolation(request.actor),
  );

  app.get<{ Querystring: { after?: string; limit?: string; object?: string } }>(
    '/v1/events',
    {
      schema: {
        tags,
        summary: 'The audit log: who did what, with before and after',
        querystring: strictObject({
          after: { ...DIGITS, description: 'only events with a greater seq' },
          limit: { ...DIGITS, description: `at most this many (1-${MAX_EVENTS})` },
          object: { type: 'string', maxLength: 300, description: 'e.g. network/blue' },
        }),
        response: { 200: listOf('AuditEvent', 'events in seq order'), ...errorResponses },
      },
    },
    (request) => {
      const { after, limit, object } = request.query;
      return control.events(request.actor, {
        afterSeq: after === undefined ? undefined : Number(after),
        limit: limit === undefined ? undefined : Math.min(Math.max(Number(limit), 1), MAX_EVENTS),
        object,
      });
    },
  );
}
