/** Health, the OpenAPI document, and who the caller is. */
import type { FastifyInstance } from 'fastify';
import { errorResponses } from '../schemas.js';

export interface InfoOptions {
  version: string;
  controllerHost: string;
  hostBackend?: string;
  demo?: boolean;
}

export function infoRoutes(app: FastifyInstance, opts: InfoOptions): void {
  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: {
        tags: ['info'],
        summary: 'Liveness',
        security: [],
        response: { 200: { description: 'the daemon is serving', type: 'object', properties: { ok: { type: 'boolean' } } } },
      },
    },
    async () => ({ ok: true }),
  );

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());

  app.get(
    '/v1/info',
    {
      config: { agent: true },
      schema: {
        tags: ['info'],
        summary: 'Daemon version, controller host and the caller’s role',
        response: {
          200: {
            description: 'about this controller',
            type: 'object',
            properties: {
              version: { type: 'string' },
              controllerHost: { type: 'string' },
              role: { type: 'string' },
              hostBackend: { type: 'string', description: 'what drives the controller host: linux, simulated (...), or none (--no-agent)' },
              demo: { type: 'boolean', description: 'the daemon runs the first-run demo on a simulated host' },
            },
          },
          401: errorResponses[401],
        },
      },
    },
    async (request) => ({
      version: opts.version,
      controllerHost: opts.controllerHost,
      role: request.actor.role,
      hostBackend: opts.hostBackend ?? 'none',
      demo: opts.demo ?? false,
    }),
  );
}
