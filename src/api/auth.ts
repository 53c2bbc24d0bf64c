/**
 * Bearer-token authentication. Every route needs a token unless its config
 * says `public`; agents are kept to the routes marked `agent`, so a leaked
 * agent token cannot even list what exists.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ControlPlane } from '../controller/control-plane.js';
import { agentHostOf, forbidden, type Actor } from '../domain/actor.js';
import { SriovError } from '../host/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller. Set by the auth hook before any handler of a non-public route runs. */
    actor: Actor;
  }
  interface FastifyContextConfig {
    /** Served without a token (health, metrics, OpenAPI document, console). */
    public?: boolean;
    /** Open to `agent:<host>` tokens (which may use nothing else). */
    agent?: boolean;
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

export function registerAuth(app: FastifyInstance, control: ControlPlane): void {
  // Fastify wants a non-reference initial value; the hook replaces it on every authenticated request.
  app.decorateRequest('actor', null as unknown as Actor);
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    // Unknown paths answer 404 to anyone: the route list is public in /openapi.json anyway.
    if (config.public || request.is404) return;
    request.actor = await authenticate(control, request);
    if (agentHostOf(request.actor) !== null && !config.agent) {
      throw forbidden(request.actor, `use ${request.method} ${request.routeOptions.url ?? request.url}; agents only use /v1/agent/*`);
    }
  });
}

async function authenticate(control: ControlPlane, request: FastifyRequest): Promise<Actor> {
  const secret = BEARER.exec(request.headers.authorization ?? '')?.[1];
  if (secret === undefined) throw new SriovError('UNAUTHENTICATED', 'an Authorization: Bearer <token> header is required');
  const actor = await control.tokens.authenticate(secret);
  if (!actor) throw new SriovError('UNAUTHENTICATED', 'the token is not valid');
  return actor;
}
