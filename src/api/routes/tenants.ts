/** Tenants: created and deleted by admins; a tenant sees only itself. */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import { answerFromMemory, pagedSchema } from '../paging.js';
import type { TenantChange } from '../../controller/tenant-groups.js';
import { errorResponses, GROUP_RATE_MBPS, NAME, noContent, ref, strictObject } from '../schemas.js';

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

  app.get<{ Params: { name: string } }>(
    '/v1/tenants/:name',
    {
      schema: {
        tags,
        summary: 'A tenant, with its bandwidth group per PF (a tenant sees itself)',
        params: nameParams,
        response: { 200: ref('TenantView', 'the tenant'), ...errorResponses },
      },
    },
    (request) => control.networks.showTenant(request.actor, request.params.name),
  );

  app.put<{ Params: { name: string }; Body: TenantChange }>(
    '/v1/tenants/:name',
    {
      schema: {
        tags,
        summary: "Set a tenant's bandwidth group (admin)",
        description:
          'The tenant’s aggregate guarantee (`pfMinTxRateMbps`, devlink tx_share) and cap (`pfMaxTxRateMbps`, tx_max) on each PF where it holds VFs. ' +
          'Fields left out keep their value; null or 0 clears one. 400 when min > max or above the fastest link; 409 when it no longer fits a PF where the tenant holds VFs.',
        params: nameParams,
        body: { ...strictObject({ pfMinTxRateMbps: GROUP_RATE_MBPS, pfMaxTxRateMbps: GROUP_RATE_MBPS }), minProperties: 1 },
        response: { 200: ref('Tenant', 'the tenant'), ...errorResponses },
      },
    },
    (request) => control.networks.setTenant(request.actor, request.params.name, request.body),
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
