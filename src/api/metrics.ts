/**
 * Prometheus metrics on a registry of our own (the global one would collect
 * twice when tests build several servers in one process). Each family
 * group is a module of metrics/ registered here, one line each: fleet
 * gauges are computed from the controller's memory at scrape time, so they
 * are never stale and cost nothing between scrapes. Labels are bounded:
 * hosts, PFs, states and reasons, never allocation ids.
 *
 * Who may scrape: with `sriovd --metrics-token-file FILE`, only a caller
 * presenting that file's token (Prometheus' `authorization.credentials_file`)
 * or a staff (admin/operator) token; the metrics name hosts and PFs. Without
 * it, /metrics stays open, as Prometheus expects by default: keep the API on
 * loopback (the default `--listen`) or set the flag.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Histogram, Registry } from 'prom-client';
import type { ControlPlane } from '../controller/control-plane.js';
import { forbidden, isStaff } from '../domain/actor.js';
import { authenticate, bearerSecret } from './auth.js';
import { invalid, SriovError } from '../host/errors.js';
import { agentMetrics } from './metrics/agents.js';
import { allocationMetrics } from './metrics/allocations.js';
import { buildInfo } from './metrics/build-info.js';
import { defaultMetrics } from './metrics/defaults.js';
import type { MetricFamilies, MetricsContext } from './metrics/family.js';
import { fleetMetrics } from './metrics/fleet.js';
import { isolationMetrics } from './metrics/isolation.js';
import { refusalMetrics } from './metrics/refusals.js';
import { trafficMetrics } from './metrics/traffic.js';

/** Every family group of /metrics, in the order they are listed. */
const FAMILIES: readonly MetricFamilies[] = [buildInfo, fleetMetrics, allocationMetrics, agentMetrics, isolationMetrics, refusalMetrics, trafficMetrics, defaultMetrics];

const TOKEN = /^[\x21-\x7e]{16,4096}$/;

/**
 * Reads the scrape token from `file`, refusing a file others may read (or
 * write), and a token that is empty, short or not printable ASCII.
 */
export async function readMetricsToken(file: string): Promise<string> {
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw invalid(`--metrics-token-file ${file}: ${err.code === 'ENOENT' ? 'no such file' : (err.code ?? 'cannot read it')}`, file);
  });
  if (!info.isFile()) throw invalid(`--metrics-token-file ${file} is not a regular file`, file);
  const mode = info.mode & 0o777;
  if (mode & 0o007) {
    throw invalid(`--metrics-token-file ${file} is open to others (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${file}`, file);
  }
  const token = (await readFile(file, 'utf8')).trim();
  if (!TOKEN.test(token)) throw invalid(`--metrics-token-file ${file} must hold one token of 16-4096 printable characters, no spaces`, file);
  return token;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** With a scrape token: that token, or any staff token; otherwise 401/403. */
async function authorizeScrape(control: ControlPlane, scrapeToken: string, request: FastifyRequest): Promise<void> {
  const secret = bearerSecret(request);
  if (secret === undefined) throw new SriovError('UNAUTHENTICATED', '/metrics needs an Authorization: Bearer <token> header (the metrics token or a staff token)');
  // Compare digests so neither the length nor the content leaks through timing.
  if (timingSafeEqual(digest(secret), digest(scrapeToken))) return;
  const actor = await authenticate(control, request);
  if (!isStaff(actor)) throw forbidden(actor, 'read /metrics; use the metrics token or a staff token');
}

/** `scrapeToken`: when set, /metrics needs it or a staff token (see above). `about`: for vfleet_build_info. */
export function registerMetrics(app: FastifyInstance, control: ControlPlane, scrapeToken?: string, about: MetricsContext['about'] = { version: 'unknown', node: 'unknown' }): void {
  const registry = new Registry();
  const duration = new Histogram({
    name: 'vfleet_http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60],
    registers: [registry],
  });
  for (const family of FAMILIES) family({ registry, control, app, about });

  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, not the URL: ids in paths would make a series per allocation.
    const route = request.routeOptions.url ?? 'unmatched';
    duration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    if (scrapeToken !== undefined) await authorizeScrape(control, scrapeToken, request);
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}
