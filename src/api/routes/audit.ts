/** The isolation audit and the audit log (admin, operator). */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import { invalid } from '../../host/errors.js';
import { PAGED, pageRequest, PAGE_QUERY, sendPage } from '../paging.js';
import { DIGITS, errorResponses, listOf, ref, strictObject } from '../schemas.js';

const tags = ['audit'];
const LIST = 'events';

function seqOf(text: string): number {
  if (!/^[0-9]{1,15}$/.test(text)) throw invalid('cursor is not one the events list gave out; start again without cursor', 'cursor');
  return Number(text);
}

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

  app.get(
    '/v1/events',
    {
      schema: {
        tags,
        summary: 'The audit log: who did what, with before and after',
        description: `${PAGED} \`after\` (a seq) starts the first page after that event.`,
        querystring: strictObject({
          ...PAGE_QUERY,
          after: { ...DIGITS, description: 'only events with a greater seq' },
          object: { type: 'string', maxLength: 300, description: 'e.g. network/blue' },
        }),
        response: { 200: listOf('AuditEvent', 'events in seq order'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request, LIST);
      const { after, object } = page.filters;
      // The cursor's key is the last seq given; `after` only starts the first page.
      const from = page.after ?? after;
      const found = await control.events(request.actor, { afterSeq: from === undefined ? undefined : seqOf(from), limit: page.limit + 1, object });
      return sendPage(request, reply, LIST, page, found, (e) => String(e.seq));
    },
  );
}
