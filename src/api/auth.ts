/**
 * Bearer-token authentication. Every route needs a token unless its config
 * says `public`; agents are kept to the routes marked `agent`, so a leaked
 * agent token cannot even list what exists. Node tokens (`node:<host>`, the
 * CNI and device plugins) are kept to NODE_ROUTES: what attaching and
 * releasing on their host needs, and nothing else.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ControlPlane } from '../controller/control-plane.js';
import { agentHostOf, forbidden, nodeHostOf, type Actor } from '../domain/actor.js';
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

/**
 * The routes a node token may use. An allow list, so a route added later is
 * closed to nodes until someone decides otherwise. Networks are read (the CNI
 * plugin needs a network's settings); allocations are listed, made, read and
 * released on the node's own host (the controller holds a node to it).
 * Tenants, tokens, physnets, hosts, policies and the audit log are not a
 * node's business.
 */
export const NODE_ROUTES: ReadonlySet<string> = new Set([
  'GET /v1/info',
  'GET /v1/networks',
  'GET /v1/networks/:name',
  // The CNI plugin's STATUS: free VFs on its own host (the controller holds it to that host).
  'GET /v1/networks/:name/capacity',
  'GET /v1/allocations',
  'POST /v1/allocations',
  'GET /v1/allocations/:id',
  'DELETE /v1/allocations/:id',
  'GET /v1/allocations/:id/vm-config',
]);

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
    const route = `${request.method} ${request.routeOptions.url ?? ''}`;
    if (nodeHostOf(request.actor) !== null && !NODE_ROUTES.has(route)) {
      throw forbidden(request.actor, `use ${route}; node tokens only read networks and allocate, attach and release on their host`);
    }
  });
}

/** The token an `Authorization: Bearer <token>` header carries, if any. */
export const bearerSecret = (request: FastifyRequest): string | undefined => BEARER.exec(request.headers.authorization ?? '')?.[1];

/** The caller behind the request's bearer token; UNAUTHENTICATED without a valid one. */
export async function authenticate(control: ControlPlane, request: FastifyRequest): Promise<Actor> {
  const secret = bearerSecret(request);
  if (secret === undefined) throw new SriovError('UNAUTHENTICATED', 'an Authorization: Bearer <token> header is required');
  const actor = await control.tokens.authenticate(secret);
  if (!actor) throw new SriovError('UNAUTHENTICATED', 'the token is not valid');
  return actor;
}
