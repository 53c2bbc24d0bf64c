/**
 * The HTTP API of `sriovd` (docs/api.md): Fastify with JSON-schema-checked
 * routes, bearer tokens, an OpenAPI document generated from the route
 * schemas, Prometheus metrics and the web console. Handlers only translate
 * HTTP to ControlPlane calls; every rule lives in the controller.
 */
import swagger from '@fastify/swagger';
import fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { ControlPlane } from '../controller/control-plane.js';
import { registerAuth } from './auth.js';
import { consoleRoutes } from './console.js';
import { clientError, frameworkError, MAX_PARAM_LENGTH, registerErrorHandlers } from './errors.js';
import { registerMetrics } from './metrics.js';
import { RequestLog } from './request-log.js';
import { agentRoutes } from './routes/agent.js';
import { migrationRoutes } from './routes/migrations.js';
import { allocationRoutes } from './routes/allocations.js';
import { auditRoutes } from './routes/audit.js';
import { drainRoutes } from './routes/drains.js';
import { eventStreamRoutes, type EventStreamOptions } from './routes/event-stream.js';
import { hostRoutes } from './routes/hosts.js';
import { infoRoutes } from './routes/info.js';
import { networkRoutes } from './routes/networks.js';
import { overviewRoutes } from './routes/overview.js';
import { physnetRoutes } from './routes/physnets.js';
import { tenantRoutes } from './routes/tenants.js';
import { tokenRoutes } from './routes/tokens.js';
import { trafficRoutes } from './routes/traffic.js';
import { addSchemas } from './schemas.js';
import { registerStaleness } from './staleness.js';
import type { UploadGate } from './upload-gate.js';

export interface ServerOptions {
  control: ControlPlane;
  /** The host the controller runs on, as `GET /v1/info` reports it. */
  controllerHost: string;
  version: string;
  /** The daemon's log: one line per request (see request-log.ts); none without it. */
  logger?: Logger;
  /** What `GET /v1/info` says drives the local host (`linux`, `simulated (...)`, `none (--no-agent)`). */
  hostBackend?: string;
  /** Whether this daemon seeds the first-run demo (simulated host, demo tenant); the console shows a banner. */
  demo?: boolean;
  /** Serve HTTPS (for agents on other hosts) with this certificate and key. */
  https?: { cert: Buffer | string; key: Buffer | string };
  /** When set, /metrics needs this token or a staff token (`--metrics-token-file`). */
  metricsToken?: string;
  /** How many inventory uploads (agent reports above 64 KB) are taken at once; the others are refused 503 with Retry-After. */
  uploads?: UploadGate;
  /** The audit log's live stream: heartbeat and poll periods (tests shorten them). */
  eventStream?: EventStreamOptions;
}

const BODY_LIMIT = 1024 * 1024;
/** How long close() lets requests in flight finish before cutting their connections. */
const CLOSE_GRACE_MS = 2000;

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const app = fastify(fastifyOptions(opts));
  // Response schemas document the API; bodies are what the controller returned, byte for byte,
  // rather than being reshaped (or silently coerced) by a schema-driven serializer.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  addSchemas(app);
  await app.register(swagger, swaggerOptions(opts.version));
  registerErrorHandlers(app);
  registerAuth(app, opts.control);
  registerMetrics(app, opts.control, opts.metricsToken, { version: opts.version, node: opts.controllerHost });
  registerStaleness(app, opts.control.health);
  drainOnClose(app, opts.control);

  infoRoutes(app, opts);
  consoleRoutes(app);
  tenantRoutes(app, opts.control);
  physnetRoutes(app, opts.control);
  networkRoutes(app, opts.control);
  hostRoutes(app, opts.control);
  drainRoutes(app, opts.control);
  allocationRoutes(app, opts.control);
  auditRoutes(app, opts.control);
  eventStreamRoutes(app, opts.control, opts.eventStream);
  tokenRoutes(app, opts.control);
  agentRoutes(app, opts.control, opts.uploads);
  migrationRoutes(app, opts.control);
  trafficRoutes(app, opts.control);
  overviewRoutes(app, opts.control);
  return app;
}

/**
 * Closing waits for every connection to end. Long-polling agents are woken
 * first (or close would wait out their polls); connections still open after
 * a grace period are cut, because Node never counts a connection that has
 * not sent a request yet as idle, and would hold close() for the whole
 * keep-alive timeout on it.
 */
function drainOnClose(app: FastifyInstance, control: ControlPlane): void {
  app.addHook('preClose', async () => {
    control.shutdown();
    setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS).unref();
  });
}

function fastifyOptions(opts: ServerOptions): FastifyHttpOptions<Server> {
  return {
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    // One readable line per request instead of Fastify's two JSON records.
    logController: new RequestLog(),
    bodyLimit: BODY_LIMIT,
    // Strict input: unknown fields and wrongly typed values are refused, not dropped or converted.
    // verbose: refusals quote the schema's words and limits (errors.ts).
    // discriminator: a oneOf on `kind` is judged by the branch `kind` names, so its refusal is about that branch.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allowUnionTypes: true, verbose: true, discriminator: true } },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: frameworkError,
    clientErrorHandler: clientError,
    // Fastify picks the HTTPS server from this at run time; the routes never touch the raw server type.
    ...(opts.https ? ({ https: opts.https } as object) : {}),
  };
}

function swaggerOptions(version: string) {
  return {
    openapi: {
      info: { title: 'vfleet API', version, description: 'SR-IOV VF allocation for telco clouds. Send `Authorization: Bearer <token>`.' },
      components: { securitySchemes: { bearer: { type: 'http' as const, scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    // Name components after the schemas' $id (Network, Allocation, ...) instead of def-0, def-1.
    refResolver: { buildLocalReference: (json: { $id?: unknown }, _base: unknown, _fragment: string, i: number) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  };
}
