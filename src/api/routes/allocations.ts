/** Allocations: a workload's claim on one VF, placed by the scheduler. */
import type { FastifyInstance } from 'fastify';
import type { AllocationInput } from '../../controller/allocations.js';
import type { ControlPlane } from '../../controller/control-plane.js';
import { errorResponses, listOf, MAC, NAME, ref, strictObject } from '../schemas.js';

const tags = ['allocations'];
const idParams = strictObject({ id: { type: 'string', minLength: 1, maxLength: 64 } }, ['id']);

const allocationInput = strictObject(
  {
    network: NAME,
    workload: strictObject(
      { kind: { type: 'string', enum: ['container', 'vm'] }, name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$' } },
      ['kind', 'name'],
    ),
    numaNode: { type: 'integer', minimum: 0, maximum: 63 },
    numaPolicy: { type: 'string', enum: ['required', 'preferred'], description: 'default required' },
    group: { type: ['string', 'null'], minLength: 1, maxLength: 253, description: 'redundancy group: its VFs go to different PFs' },
    groupAcrossHosts: { type: 'boolean', description: 'with a group: different hosts, not just PFs' },
    policy: { type: 'string', enum: ['pack', 'spread'] },
    host: { ...NAME, description: 'pin to this host' },
    mac: { ...MAC, description: 'default: the next MAC from the pool' },
  },
  ['network', 'workload'],
);

export function allocationRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get<{ Querystring: { network?: string; host?: string } }>(
    '/v1/allocations',
    {
      schema: {
        tags,
        summary: 'List allocations (a tenant sees its own)',
        querystring: strictObject({ network: NAME, host: NAME }),
        response: { 200: listOf('Allocation', 'allocations, every state'), ...errorResponses },
      },
    },
    (request) => control.allocations.list(request.actor, request.query),
  );

  app.post<{ Body: AllocationInput }>(
    '/v1/allocations',
    {
      schema: {
        tags,
        summary: 'Allocate a VF on a network',
        description: 'Stored as `pending`; the host’s agent configures the VF and reports it `configured`. No VF or bandwidth left: 409 NO_CAPACITY.',
        body: allocationInput,
        response: { 201: ref('Allocation', 'the allocation, pending'), ...errorResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await control.allocations.create(request.actor, request.body)),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/allocations/:id',
    { schema: { tags, summary: 'Get an allocation', params: idParams, response: { 200: ref('Allocation', 'the allocation'), ...errorResponses } } },
    (request) => control.allocations.get(request.actor, request.params.id),
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
    (request) => control.allocations.delete(request.actor, request.params.id),
  );
}
