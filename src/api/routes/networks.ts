/** Networks: a tenant's VLAN on a physnet, with the VF settings its allocations get. */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import type { NetworkChange, NetworkInput } from '../../controller/networks.js';
import type { Actor } from '../../domain/actor.js';
import type { Network } from '../../domain/types.js';
import { answerFromMemory, pagedSchema, type Filters } from '../paging.js';
import { errorResponses, HOST_NAME, IP_POOL, NAME, noContent, QOS, RATE_MBPS, ref, strictObject, VLAN } from '../schemas.js';

const tags = ['networks'];
const nameParams = strictObject({ name: NAME }, ['name']);

const networkInput = strictObject(
  {
    name: NAME,
    tenant: NAME,
    physnet: NAME,
    vlan: { ...VLAN, description: 'admins and operators only (0, untagged, admins only); left out: the next free VLAN of the physnet’s tenant ranges' },
    qos: QOS,
    vlanProto: { type: 'string', enum: ['802.1Q', '802.1ad'] },
    mtu: { type: ['integer', 'null'], minimum: 68, maximum: 65535 },
    spoofChk: { type: 'boolean', description: 'default true; off is admin-only' },
    trust: { type: 'boolean', description: 'default false; on is admin-only' },
    maxTxRateMbps: RATE_MBPS,
    minTxRateMbps: { ...RATE_MBPS, description: 'bandwidth guarantee per VF, Mbps; counted against PF link speed' },
    deviceType: { type: 'string', enum: ['netdevice', 'vfio-pci'] },
    ipam: { ...IP_POOL, description: 'IPv4 pool for container attachments' },
  },
  ['name', 'tenant', 'physnet'],
);

const { name: _name, tenant: _tenant, ...changeable } = networkInput.properties;
const networkChange = {
  ...strictObject({
    ...changeable,
    vlan: { ...VLAN, description: 'admins and operators only' },
    ipam: { ...IP_POOL, type: ['object', 'null'], description: 'IPv4 pool for container attachments; null removes it' },
  }),
  minProperties: 1,
  description: 'the fields to change (name and tenant never change)',
};

export function networkRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get(
    '/v1/networks',
    { schema: pagedSchema(tags, 'List networks, in name order (a tenant sees its own)', 'Network', { tenant: NAME, physnet: NAME }) },
    (request, reply) => answerFromMemory(request, reply, 'networks', (filters) => networksMatching(control, request.actor, filters), (n) => n.name),
  );

  app.post<{ Body: NetworkInput }>(
    '/v1/networks',
    {
      schema: {
        tags,
        summary: 'Create a network',
        description:
          'One (physnet, VLAN) belongs to one tenant: another tenant’s VLAN is a 409 CONFLICT. Without `vlan` the network gets the lowest VLAN ' +
          'of its physnet’s tenant ranges that no network uses (all in use: 409 NO_CAPACITY; no ranges: 400). Only admins and operators give `vlan` (tenants: 403).',
        body: networkInput,
        response: { 201: ref('Network', 'the new network'), ...errorResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await control.networks.createNetwork(request.actor, request.body)),
  );

  app.get<{ Params: { name: string } }>(
    '/v1/networks/:name',
    { schema: { tags, summary: 'Get a network', params: nameParams, response: { 200: ref('Network', 'the network'), ...errorResponses } } },
    (request) => control.networks.getNetwork(request.actor, request.params.name, control.ctx.reads),
  );

  app.get<{ Params: { name: string }; Querystring: { host: string } }>(
    '/v1/networks/:name/capacity',
    {
      schema: {
        tags,
        summary: 'Free VFs for the network on one host',
        description: 'What the CNI plugin’s STATUS asks: the host’s state and how many of its VFs a new allocation of this network could get. A node token asks for its own host only; staff for any.',
        params: nameParams,
        querystring: strictObject({ host: HOST_NAME }, ['host']),
        response: {
          200: {
            description: 'the host’s state and free VFs for the network',
            type: 'object',
            properties: { network: NAME, host: HOST_NAME, hostState: { type: 'string', enum: ['ready', 'unreachable'] }, freeVfs: { type: 'integer', minimum: 0 } },
          },
          ...errorResponses,
        },
      },
    },
    (request) => control.networks.capacity(request.actor, request.params.name, request.query.host),
  );

  app.put<{ Params: { name: string }; Body: NetworkChange }>(
    '/v1/networks/:name',
    {
      schema: {
        tags,
        summary: 'Change a network',
        description:
          'Partial: fields left out keep their value. Staff and the owning tenant, with the rules of POST (only staff change `vlan`; admin-only settings stay admin-only). ' +
          'While allocations hold the network’s VFs, `physnet`, `vlan`, `vlanProto`, `deviceType`, `minTxRateMbps` and `ipam` cannot change (409 CONFLICT naming them); ' +
          'the other settings reach the VFs in place.',
        params: nameParams,
        body: networkChange,
        response: { 200: ref('Network', 'the network as changed'), ...errorResponses },
      },
    },
    (request) => control.networks.updateNetwork(request.actor, request.params.name, request.body),
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/networks/:name',
    {
      schema: {
        tags,
        summary: 'Delete a network without allocations',
        params: nameParams,
        response: { 204: noContent('deleted'), ...errorResponses },
      },
    },
    async (request, reply) => {
      await control.networks.deleteNetwork(request.actor, request.params.name);
      return reply.code(204).send();
    },
  );
}

async function networksMatching(control: ControlPlane, actor: Actor, { tenant, physnet }: Filters): Promise<Network[]> {
  const all = await control.networks.listNetworks(actor);
  return all.filter((n) => (tenant === undefined || n.tenant === tenant) && (physnet === undefined || n.physnet === physnet));
}
