/** Draining a PF or a host: every allocation on it moves off by live migration (staff only). */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import type { DrainInput } from '../../controller/drain.js';
import { requireStaff } from '../../domain/actor.js';
import { errorResponses, HOST_NAME, PF_REF, strictObject } from '../schemas.js';

const tags = ['drains'];

const ENDPOINT = { type: 'object', properties: { host: { type: 'string' }, pf: { type: 'string' } } } as const;

const DRAIN_REPORT = {
  type: 'object',
  properties: {
    id: { type: 'string', description: '`<host>` or `<host>/<pf>`' },
    host: { type: 'string' },
    pfs: { type: 'array', items: { type: 'string' }, description: 'the PFs drained (netdev names)' },
    dryRun: { type: 'boolean' },
    state: { type: 'string', enum: ['planned', 'refused', 'running', 'completed', 'failed'] },
    moves: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          allocation: { type: 'string' },
          workload: { type: 'object', properties: { kind: { type: 'string' }, name: { type: 'string' } } },
          from: ENDPOINT,
          to: { ...ENDPOINT, type: ['object', 'null'], description: 'null when nothing fits (then `refusal` says why)' },
          hypervisor: { type: ['string', 'null'] },
          refusal: { type: ['string', 'null'] },
          migration: { type: ['string', 'null'], description: 'the migration moving it, once started' },
        },
      },
    },
    releasing: { type: 'array', items: { type: 'string' }, description: 'allocations already releasing: they free their VFs with no move' },
    progress: {
      type: 'object',
      description: 'by migration id: its state, step and reason',
      additionalProperties: { type: 'object', properties: { state: { type: 'string' }, step: { type: 'string' }, reason: { type: ['string', 'null'] } } },
    },
  },
} as const;

const BODY = strictObject(
  {
    host: HOST_NAME,
    pf: { ...PF_REF, description: 'one PF (netdev name or PCI address); absent drains every PF of the host' },
    dryRun: { type: 'boolean', description: 'plan and check only: nothing changes' },
    hypervisor: { type: 'string', enum: ['libvirt', 'qemu', 'hook'], description: 'how VMs migrate; needed when a VM is on the PFs' },
    migrateUri: { type: 'string', minLength: 1, maxLength: 512, description: 'qemu: the destination QEMU’s -incoming URI (one VM); libvirt: the destination URI' },
  },
  ['host'],
);

export function drainRoutes(app: FastifyInstance, control: ControlPlane): void {

  app.post<{ Body: DrainInput }>(
    '/v1/drains',
    {
      schema: {
        tags,
        summary: 'Drain a PF or a host: move every allocation on it elsewhere, live (admin, operator)',
        description:
          'Plans each move (a container to another PF of its host or of a host on the same kernel; a VM to another host, or another PF of ' +
          'its host when the hypervisor can) and checks it with the migration service first: if one cannot move, nothing changes and the ' +
          'refusal names it. Then the PFs are drained and the migrations start, a few at a time. Re-running it continues it. ' +
          '200 for a dry run, 202 once the first migrations started.',
        body: BODY,
        response: { 200: { description: 'the plan (dry run)', ...DRAIN_REPORT }, 202: { description: 'the drain, running', ...DRAIN_REPORT }, ...errorResponses },
      },
    },
    async (request, reply) => {
      // Before anything else: whether this controller can drain is not for a tenant to learn.
      requireStaff(request.actor, 'drain hosts and PFs');
      const report = await control.drainer.drain(request.actor, request.body);
      return reply.code(report.dryRun ? 200 : 202).send(report);
    },
  );
}
