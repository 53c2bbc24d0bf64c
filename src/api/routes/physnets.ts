/** Physical networks: created by node policies; admins set their flags. */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import type { PhysnetChange } from '../../controller/networks.js';
import { answerFromMemory, pagedSchema } from '../paging.js';
import { errorResponses, NAME, ref, strictObject, TENANT_VLANS } from '../schemas.js';

const tags = ['physnets'];

export function physnetRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get(
    '/v1/physnets',
    { schema: pagedSchema(tags, 'List physical networks, in name order (admin, operator)', 'Physnet') },
    (request, reply) => answerFromMemory(request, reply, 'physnets', () => control.networks.listPhysnets(request.actor), (p) => p.name),
  );

  app.put<{ Params: { name: string }; Body: PhysnetChange }>(
    '/v1/physnets/:name',
    {
      schema: {
        tags,
        summary: 'Create or change a physical network (admin)',
        description: 'Partial: fields left out keep their value. `tenantVlans` replaces the ranges ([] clears them).',
        params: strictObject({ name: NAME }, ['name']),
        body: {
          ...strictObject({
            accountingOnly: { type: 'boolean', description: 'guarantees are only accounted, not enforced by the driver' },
            groupsAccountingOnly: { type: 'boolean', description: 'tenant bandwidth groups are only accounted on PFs without devlink rate nodes (else refused there)' },
            tenantVlans: TENANT_VLANS,
          }),
          minProperties: 1,
          description: 'accountingOnly, groupsAccountingOnly, tenantVlans, or several',
        },
        response: { 200: ref('Physnet', 'the physnet'), ...errorResponses },
      },
    },
    (request) => control.networks.putPhysnet(request.actor, request.params.name, request.body),
  );
}
