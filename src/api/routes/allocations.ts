/** Allocations: a workload's claim on one VF, placed by the scheduler. */
import type { FastifyInstance } from 'fastify';
import { parseWaitQuery, type WaitQuery } from '../../controller/allocation-waits.js';
import { listAllocationPage, type AllocationQuery } from '../../controller/allocation-listing.js';
import type { AllocationInput } from '../../controller/allocations.js';
import type { Allocation } from '../../domain/types.js';
import type { VfRepresentor } from '../../host/model.js';
import type { ControlPlane } from '../../controller/control-plane.js';
import { vmConfigOf } from '../../controller/vm-config.js';
import { pageRequest, PAGE_QUERY, sendPage } from '../paging.js';
import { ALLOCATION_STATES, WORKLOAD_NAME, ATTACH_INPUT, errorResponses, HOST_NAME, IFNAME, listOf, MAC, NAME, PCI_ADDRESS, ref, strictObject } from '../schemas.js';

const tags = ['allocations'];
const LIST = 'allocations';
// Printable ASCII only, so a refusal (`allocation X not found`) never echoes a newline or a terminal escape sequence.
const idParams = strictObject(
  { id: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[!-~]+$', description: 'an allocation id or a unique prefix of it, in printable ASCII' } },
  ['id'],
);

const allocationInput = {
  ...strictObject(
    {
      network: NAME,
      workload: strictObject(
        { kind: { type: 'string', enum: ['container', 'vm'] }, name: WORKLOAD_NAME },
        ['kind', 'name'],
      ),
      numaNode: { type: 'integer', minimum: 0, maximum: 63 },
      numaPolicy: { type: 'string', enum: ['required', 'preferred'], description: 'default required' },
      // A name, as the workload's: it is echoed in refusals and listed to staff, so no newline or escape sequence.
      group: { ...WORKLOAD_NAME, type: ['string', 'null'], minLength: 1, maxLength: 253, description: 'redundancy group: its VFs go to different PFs' },
      groupAcrossHosts: { type: 'boolean', description: 'with a group: different hosts, not just PFs' },
      policy: { type: 'string', enum: ['pack', 'spread'] },
      host: { ...HOST_NAME, description: 'pin to this host' },
      mac: { ...MAC, description: 'default: the next MAC from the pool' },
      pciAddress: { ...PCI_ADDRESS, description: 'pin this exact VF (with host), e.g. a device plugin’s deviceID' },
      attach: ATTACH_INPUT,
    },
    ['network', 'workload'],
  ),
  // A policy for no NUMA node would be silently ignored.
  dependencies: { numaPolicy: ['numaNode'] },
};

/** The allocation with its VF's representor, from the host's last inventory as the scheduler keeps it (no store read). */
function withRepresentor(control: ControlPlane, a: Allocation): Allocation & { representor: VfRepresentor | null } {
  const rep = a.host && a.pciAddress ? control.ctx.scheduler.representors.of(a.host, a.pciAddress) : null;
  return { ...a, representor: rep ? { netdev: rep.netdev, devlinkPort: rep.devlinkPort } : null };
}

export function allocationRoutes(app: FastifyInstance, control: ControlPlane): void {
  const shown = (a: Allocation) => withRepresentor(control, a);
  app.get(
    '/v1/allocations',
    {
      schema: {
        tags,
        summary: 'List allocations, a page at a time, in id order (a tenant sees its own)',
        description:
          'Filters combine with AND and run in the store. Paged: `limit` (1-1000, default 500) and the `cursor` of the previous page’s ' +
          '`Link: <...>; rel="next"`, which carries the filters (give it without them).',
        querystring: strictObject({
          ...PAGE_QUERY,
          network: NAME,
          host: HOST_NAME,
          tenant: NAME,
          physnet: NAME,
          state: { type: 'string', enum: ALLOCATION_STATES },
          workload: { type: 'string', maxLength: 253 },
          ifname: IFNAME,
        }),
        response: { 200: listOf('Allocation', 'allocations, every state'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request, LIST);
      const found = await listAllocationPage(control.ctx.reads, request.actor, page.filters as AllocationQuery, { after: page.after, limit: page.limit + 1 });
      return sendPage(request, reply, LIST, page, found.map(shown), (a) => a.id);
    },
  );

  app.post<{ Body: AllocationInput }>(
    '/v1/allocations',
    {
      schema: {
        tags,
        summary: 'Allocate a VF on a network',
        description:
          'Stored as `pending`; the host’s agent configures the VF and reports it `configured`. No VF or bandwidth left: 409 NO_CAPACITY. ' +
          'A container attachment that already exists (same host, workload, ifname, cniNetwork, network and netns) is returned with 200 and nothing new; ' +
          'that interface of the workload held otherwise: 409 CONFLICT naming the allocation.',
        body: allocationInput,
        response: { 200: ref('Allocation', 'the existing identical attachment'), 201: ref('Allocation', 'the allocation, pending'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { allocation, created } = await control.allocations.createOrFind(request.actor, request.body);
      return reply.code(created ? 201 : 200).send(shown(allocation));
    },
  );

  app.get<{ Params: { id: string }; Querystring: WaitQuery }>(
    '/v1/allocations/:id',
    {
      schema: {
        tags,
        summary: 'Get an allocation, or wait for it to leave some states',
        description:
          'With `wait=S` (whole seconds, 1-60) the answer comes as soon as the state is not in `while` (a comma list of states; ' +
          'default: the state it has now), at once if it already is not, or after S seconds with the state it has then.',
        params: idParams,
        // Strings here, checked by parseWaitQuery, which names the field and its limits in one line.
        querystring: strictObject({ wait: { type: 'string', maxLength: 20 }, while: { type: 'string', maxLength: 200 } }),
        response: { 200: ref('Allocation', 'the allocation'), ...errorResponses },
      },
    },
    (request) => {
      const spec = parseWaitQuery(request.query);
      const read = () => control.allocations.get(request.actor, request.params.id, control.ctx.reads);
      return (spec ? control.ctx.waits.waitWhile(read, spec) : read()).then(shown);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/allocations/:id',
    {
      schema: {
        tags,
        summary: 'Release an allocation',
        description: 'Moves it to `releasing`; the agent scrubs the VF and reports `released`. Idempotent.',
        params: idParams,
        response: { 200: ref('Allocation', 'the allocation, releasing'), ...errorResponses },
      },
    },
    (request) => control.allocations.delete(request.actor, request.params.id).then(shown),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/allocations/:id/vm-config',
    {
      schema: {
        tags,
        summary: 'libvirt XML and QEMU arguments for a VM attachment',
        params: idParams,
        response: {
          200: {
            description: 'hostdev interface XML, the virtio standby with --failover, and the QEMU -device arguments',
            type: 'object',
            properties: { libvirtXml: { type: 'string' }, standbyXml: { type: ['string', 'null'] }, qemuArgs: { type: 'array', items: { type: 'string' } } },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => vmConfigOf(await control.allocations.get(request.actor, request.params.id, control.ctx.reads)),
  );
}
