/** Hosts as their agents report them, and their node policies. */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import { hostSummaries, type HostSummaryFilter } from '../../controller/host-summaries.js';
import { describeStep } from '../../host/eswitch.js';
import { isEmpty, renderPlan, type PfPlan } from '../../policy/plan.js';
import { pageRequest, PAGE_QUERY, sendPage } from '../paging.js';
import { errorResponses, HOST_NAME, HOST_STATE, listOf, NAME, PCI_ADDRESS, PF_REF, ref, strictObject } from '../schemas.js';

const tags = ['hosts'];
const LIST = 'hosts';
const nameParams = strictObject({ name: HOST_NAME }, ['name']);
const pfParams = strictObject({ name: HOST_NAME, pf: PF_REF }, ['name', 'pf']);

export function hostRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get(
    '/v1/hosts',
    {
      schema: {
        tags,
        summary: 'List host summaries, a page at a time, in name order (admin, operator)',
        description:
          'Per host: PFs, VF counts, committed bandwidth against capacity, heartbeat age, drained PFs; no inventory (that is `GET /v1/hosts/:name`). ' +
          'Paged: `limit` (1-1000, default 500) and the `cursor` of the previous page’s `Link: <...>; rel="next"`.',
        querystring: strictObject({ ...PAGE_QUERY, state: HOST_STATE, physnet: { ...NAME, description: 'hosts with a PF on this physnet' } }),
        response: { 200: listOf('HostSummary', 'host summaries'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request, LIST);
      const source = { scheduler: control.ctx.scheduler, lastSeenAt: (name: string) => control.hosts.lastSeenAt(name) };
      const found = hostSummaries(source, request.actor, page.filters as HostSummaryFilter, { after: page.after, limit: page.limit + 1 });
      return sendPage(request, reply, LIST, page, found, (h) => h.name);
    },
  );

  app.get<{ Params: { name: string } }>(
    '/v1/hosts/:name',
    { schema: { tags, summary: 'Get a host (admin, operator)', params: nameParams, response: { 200: ref('HostRecord', 'the host'), ...errorResponses } } },
    (request) => control.hosts.get(request.actor, request.params.name),
  );

  app.get<{ Params: { name: string } }>(
    '/v1/hosts/:name/policy',
    {
      schema: {
        tags,
        summary: 'Get a host’s node policy document (admin, operator)',
        params: nameParams,
        response: {
          200: {
            description: 'the YAML document as stored; null when the host has none',
            type: 'object',
            properties: { host: HOST_NAME, document: { type: ['string', 'null'] } },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => ({ host: request.params.name, document: await control.hosts.getPolicy(request.actor, request.params.name) }),
  );

  app.put<{ Params: { name: string }; Body: { document: string } }>(
    '/v1/hosts/:name/policy',
    {
      schema: {
        tags,
        summary: 'Replace a host’s node policy (admin, operator)',
        description: 'The document is validated in full first; its physnets are created if new, and the host’s PFs relabelled.',
        params: nameParams,
        body: POLICY_BODY,
        response: {
          200: { description: 'stored', type: 'object', properties: { host: HOST_NAME, policies: { type: 'integer', description: 'how many policies the document has' } } },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const policies = await control.hosts.putPolicy(request.actor, request.params.name, request.body.document);
      return { host: request.params.name, policies: policies.length };
    },
  );

  app.post<{ Params: { name: string }; Body: { document: string } }>(
    '/v1/hosts/:name/policy/plan',
    {
      schema: {
        tags,
        summary: 'What a node policy would change on a host, without storing it (admin, operator)',
        description:
          'A dry run of `PUT /v1/hosts/:name/policy` against the host’s last report: per PF, the VF count, MTU, VF settings and driver ' +
          'bindings that would change, and the whole plan as diff lines. What the PUT would refuse is refused the same way; nothing is stored.',
        params: nameParams,
        body: POLICY_BODY,
        response: { 200: PLAN_RESPONSE, ...errorResponses },
      },
    },
    async (request) => planBody(request.params.name, await control.hosts.planPolicy(request.actor, request.params.name, request.body.document)),
  );

  app.post<{ Params: { name: string; pf: string } }>(
    '/v1/hosts/:name/pfs/:pf/drain',
    {
      schema: {
        tags,
        summary: 'Drain a PF: it takes no new allocation until undrained (admin, operator)',
        description:
          'Idempotent. The allocations it has keep their VFs; the answer lists them (what a migration or drain must move). ' +
          'Refusals of new allocations name the PF; the device plugin reports its VFs Unhealthy.',
        params: pfParams,
        response: { 200: ref('PfDrainState', 'the PF, drained, and what still holds its VFs'), ...errorResponses },
      },
    },
    (request) => control.drains.drainPf(request.actor, request.params.name, request.params.pf),
  );

  app.post<{ Params: { name: string; pf: string } }>(
    '/v1/hosts/:name/pfs/:pf/undrain',
    {
      schema: {
        tags,
        summary: 'Undrain a PF: it takes new allocations again (admin, operator)',
        description: 'Idempotent. A drained PF that left the host’s report can be undrained by its PCI address.',
        params: pfParams,
        response: { 200: ref('PfDrainState', 'the PF, undrained, and what holds its VFs'), ...errorResponses },
      },
    },
    (request) => control.drains.undrainPf(request.actor, request.params.name, request.params.pf),
  );

  app.post<{ Params: { name: string } }>(
    '/v1/hosts/:name/reconcile',
    {
      schema: {
        tags,
        summary: 'Ask the host’s agent to reconcile now (admin, operator)',
        description: 'Drift repair, recovery of VFs after a reset, and collection of leftovers happen in that pass.',
        params: nameParams,
        response: { 202: { description: 'requested', type: 'object', properties: { host: HOST_NAME } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      await control.hosts.reconcile(request.actor, request.params.name);
      return reply.code(202).send({ host: request.params.name });
    },
  );
}

const POLICY_BODY = strictObject({ document: { type: 'string', maxLength: 262_144, description: 'node policy YAML: `policies: [{name, selector, numVfs, physnet, ...}]`' } }, ['document']);

const change = (type: unknown) => ({ type: ['object', 'null'], required: ['from', 'to'], properties: { from: type, to: type } });
const PLAN_RESPONSE = {
  description: 'the plan; `changes: false` when the host already matches',
  type: 'object',
  required: ['host', 'changes', 'lines', 'pfs'],
  properties: {
    host: HOST_NAME,
    changes: { type: 'boolean' },
    lines: { type: 'array', items: { type: 'string' }, description: 'the plan as a diff, one line per change (as `sriovctl host apply --dry-run` prints it)' },
    pfs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['pf', 'pciAddress', 'policy', 'numVfs', 'mtu', 'vfChanges', 'binds'],
        properties: {
          pf: { type: 'string' },
          pciAddress: PCI_ADDRESS,
          policy: { type: 'string' },
          numVfs: change({ type: 'integer' }),
          mtu: change({ type: ['integer', 'null'] }),
          eswitchMode: {
            type: ['object', 'null'],
            description: 'the eswitch mode change and the steps it takes on this driver, in order (a VF count change among them)',
            required: ['from', 'to', 'steps'],
            properties: {
              from: { type: 'string', enum: ['legacy', 'switchdev'] },
              to: { type: 'string', enum: ['legacy', 'switchdev'] },
              steps: { type: 'array', items: { type: 'string' } },
            },
          },
          vfChanges: { type: 'array', items: { type: 'object', required: ['vf', 'text'], properties: { vf: { type: 'integer' }, text: { type: 'string' } } } },
          binds: {
            type: 'array',
            items: { type: 'object', required: ['vf', 'from', 'to'], properties: { vf: { type: 'integer' }, from: { type: ['string', 'null'] }, to: { type: ['string', 'null'] } } },
          },
        },
      },
    },
  },
};

function planBody(host: string, plans: PfPlan[]) {
  return {
    host,
    changes: plans.some((p) => !isEmpty(p)),
    lines: renderPlan(plans),
    pfs: plans.map((p) => ({
      pf: p.pf.name,
      pciAddress: p.pf.pciAddress,
      policy: p.policy.name,
      numVfs: p.numVfs ?? null,
      mtu: p.mtu ?? null,
      eswitchMode: p.eswitchMode ? { from: p.eswitchMode.from, to: p.eswitchMode.to, steps: p.eswitchMode.steps.map((s) => describeStep(p.pf, s)) } : null,
      vfChanges: p.vfChanges,
      binds: p.binds,
    })),
  };
}
