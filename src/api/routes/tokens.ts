/** API tokens (admin). The secret is returned once, on creation. */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import { answerFromMemory, pagedSchema } from '../paging.js';
import { errorResponses, noContent, strictObject } from '../schemas.js';

const tags = ['tokens'];

export function tokenRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get(
    '/v1/tokens',
    { schema: pagedSchema(tags, 'List tokens, in id order (admin); secrets are never shown', 'Token') },
    (request, reply) => answerFromMemory(request, reply, 'tokens', () => control.tokens.list(request.actor), (t) => t.id),
  );

  app.post<{ Body: { role: string } }>(
    '/v1/tokens',
    {
      schema: {
        tags,
        summary: 'Create a token (admin)',
        description: 'A tenant token is bound to the tenant as it exists now (404 when it does not); node and agent tokens may name a host that has not reported yet.',
        body: strictObject(
          { role: { type: 'string', minLength: 1, maxLength: 300, description: 'admin, operator, tenant:NAME, node:HOST or agent:HOST (checked by the controller, which names what is wrong)' } },
          ['role'],
        ),
        response: {
          201: {
            description: 'the token; `token` is the secret, shown only now',
            type: 'object',
            properties: { id: { type: 'string' }, role: { type: 'string' }, token: { type: 'string' } },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => reply.code(201).send(await control.tokens.create(request.actor, request.body.role)),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/tokens/:id',
    {
      schema: {
        tags,
        summary: 'Revoke a token (admin)',
        params: strictObject({ id: { type: 'string', pattern: '^[A-Za-z0-9-]{1,64}$', description: "a token id: 1-64 letters, digits and '-'" } }, ['id']),
        response: { 204: noContent('revoked'), ...errorResponses },
      },
    },
    async (request, reply) => {
      await control.tokens.delete(request.actor, request.params.id);
      return reply.code(204).send();
    },
  );
}
