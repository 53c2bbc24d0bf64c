/** The fleet at a glance, for the console's first page (admin, operator). */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import { fleetOverview, OVERVIEW_LIST_LIMIT } from '../../controller/overview.js';
import { errorResponses, HOST_NAME, NAME, PCI_ADDRESS } from '../schemas.js';

const COUNT = { type: 'integer', minimum: 0 } as const;
const VFS = {
  type: 'object',
  required: ['total', 'allocated', 'free', 'unschedulable'],
  properties: { total: COUNT, allocated: COUNT, free: COUNT, unschedulable: COUNT },
} as const;

const OVERVIEW = {
  description: 'hosts by state, VFs by use, bandwidth per physnet and the open problems',
  type: 'object',
  required: ['hosts', 'drainedPfs', 'vfs', 'physnets', 'unreachableHosts', 'drained', 'failedAllocations', 'truncated'],
  properties: {
    hosts: { type: 'object', required: ['total', 'ready', 'unreachable', 'withDrainedPfs'], properties: { total: COUNT, ready: COUNT, unreachable: COUNT, withDrainedPfs: COUNT } },
    drainedPfs: COUNT,
    vfs: { ...VFS, required: [...VFS.required, 'failed'], properties: { ...VFS.properties, failed: { ...COUNT, description: 'allocations in state failed' } } },
    physnets: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'hosts', 'pfs', 'vfs', 'committedMbps', 'capacityMbps'],
        properties: { name: NAME, hosts: COUNT, pfs: COUNT, vfs: VFS, committedMbps: COUNT, capacityMbps: COUNT },
      },
    },
    unreachableHosts: {
      type: 'array',
      items: { type: 'object', required: ['name', 'heartbeatAgeMs'], properties: { name: HOST_NAME, heartbeatAgeMs: { type: ['integer', 'null'] } } },
    },
    drained: { type: 'array', items: { type: 'object', required: ['host', 'pf', 'pciAddress'], properties: { host: HOST_NAME, pf: { type: 'string' }, pciAddress: PCI_ADDRESS } } },
    failedAllocations: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'workload', 'network', 'tenant', 'host', 'pf', 'vfIndex', 'reason'],
        properties: {
          id: { type: 'string' },
          workload: { type: 'object', required: ['kind', 'name'], properties: { kind: { type: 'string', enum: ['container', 'vm'] }, name: { type: 'string' } } },
          network: NAME,
          tenant: NAME,
          host: HOST_NAME,
          pf: { type: 'string' },
          vfIndex: COUNT,
          reason: { type: ['string', 'null'] },
        },
      },
    },
    truncated: { type: 'boolean', description: `a list stopped at ${OVERVIEW_LIST_LIMIT}; the counts are exact` },
  },
};

export function overviewRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get(
    '/v1/overview',
    {
      schema: {
        tags: ['hosts'],
        summary: 'The fleet at a glance (admin, operator)',
        description:
          'Hosts by state, VFs free/used/failed, guarantees committed against capacity per physnet, and the open problems (unreachable hosts, ' +
          `drained PFs, failed allocations; at most ${OVERVIEW_LIST_LIMIT} of each). From the controller's memory, never the inventories: ` +
          'drift and isolation findings are `GET /v1/audit/isolation`.',
        response: { 200: OVERVIEW, ...errorResponses },
      },
    },
    (request) => {
      const source = { scheduler: control.ctx.scheduler, lastSeenAt: (name: string) => control.hosts.lastSeenAt(name) };
      return fleetOverview(source, control.ctx.reads, request.actor);
    },
  );
}
