/** Tenants: created and deleted by admins; a tenant sees only itself. */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import type { Tenant } from '../../domain/types.js';
import { pageInMemory, PAGED, pageRequest, PAGE_QUERY, sendPage } from '../paging.js';
import { errorResponses, listOf, NAME, noContent, ref, strictObject } from '../schemas.js';

const tags = ['tenants'];
const LIST = 'tenants';
const nameParams = strictObject({ name: NAME }, ['name']);

export function tenantRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get(
    '/v1/tenants',
    {
      schema: {
        tags,
        summary: 'List tenants, in name order (a tenant sees itself)',
        description: PAGED,
        querystring: strictObject({ ...PAGE_QUERY }),
        response: { 200: listOf('Tenant', 'tenants'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request, LIST);
      const byName = (t: Tenant) => t.name;
      return sendPage(request, reply, LIST, page, pageInMemory(await control.networks.listTenants(request.actor), byName, page), byName);
    },
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
