/** Tenants: created and deleted by admins; a tenant sees only itself. */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import { answerFromMemory, pagedSchema } from '../paging.js';
import { errorResponses, NAME, noContent, ref, strictObject } from '../schemas.js';

const tags = ['tenants'];
const nameParams = strictObject({ name: NAME }, ['name']);

export function tenantRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get(
    '/v1/tenants',
    { schema: pagedSchema(tags, 'List tenants, in name order (a tenant sees itself)', 'Tenant') },
    (request, reply) => answerFromMemory(request, reply, 'tenants', () => control.networks.listTenants(request.actor), (t) => t.name),
  );

  app.post<{ Body: { name: string } }>(
    '/v1/tenants',
    {
      schema: {
        tags,
        summary: 'Create a tenant (admin)',
        body: strictObject({ name: NAME }, ['name']),
        response: { 201: ref('Tenant', 'the new tenant'), ...errorResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await control.networks.createTenant(request.actor, request.body.name)),
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/tenants/:name',
    {
      schema: {
        tags,
        summary: 'Delete a tenant that has no networks (admin)',
        params: nameParams,
        response: { 204: noContent('deleted'), ...errorResponses },
      },
    },
    async (request, reply) => {
      await control.networks.deleteTenant(request.actor, request.params.name);
      return reply.code(204).send();
    },
  );
}
