/**
 * Prometheus metrics on a registry of our own (the global one would collect
 * twice when tests build several servers in one process). Fleet gauges are
 * read from the store at scrape time, so they are never stale and cost
 * nothing between scrapes.
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
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ControlPlane } from '../controller/control-plane.js';
import { forbidden, isStaff } from '../domain/actor.js';
import { authenticate, bearerSecret } from './auth.js';
import { registerTrafficMetrics } from './metrics-traffic.js';
import { invalid, SriovError } from '../host/errors.js';
import { HOLDING_STATES, type Allocation, type AllocationState, type HostRecord, type HostState } from '../domain/types.js';

const HOST_STATES: HostState[] = ['ready', 'unreachable'];
const ALLOCATION_STATES: AllocationState[] = ['pending', 'configured', 'attached', 'releasing', 'released', 'failed'];

interface FleetGauges {
  hosts: Gauge<'state'>;
  vfs: Gauge<'host' | 'pf' | 'state'>;
  allocations: Gauge<'state'>;
  committed: Gauge<'host' | 'pf'>;
  linkSpeed: Gauge<'host' | 'pf'>;
}

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

/** `scrapeToken`: when set, /metrics needs it or a staff token (see above). */
export function registerMetrics(app: FastifyInstance, control: ControlPlane, scrapeToken?: string): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: 'vfleet_http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60],
    registers: [registry],
  });
  const gauges = fleetGauges(registry);
  registerTrafficMetrics(registry, control);

  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, not the URL: ids in paths would make a series per allocation.
    const route = request.routeOptions.url ?? 'unmatched';
    duration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    if (scrapeToken !== undefined) await authorizeScrape(control, scrapeToken, request);
    await refreshFleet(control, gauges);
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}

function fleetGauges(registry: Registry): FleetGauges {
  const registers = [registry];
  return {
    hosts: new Gauge({ name: 'vfleet_hosts', help: 'Hosts by state', labelNames: ['state'] as const, registers }),
    vfs: new Gauge({ name: 'vfleet_vfs', help: 'VFs in host inventories, free or held by an allocation', labelNames: ['host', 'pf', 'state'] as const, registers }),
    allocations: new Gauge({ name: 'vfleet_allocations', help: 'Allocations by state', labelNames: ['state'] as const, registers }),
    committed: new Gauge({ name: 'vfleet_pf_min_tx_committed_mbps', help: 'Bandwidth guarantees committed on a PF, Mbps', labelNames: ['host', 'pf'] as const, registers }),
    linkSpeed: new Gauge({ name: 'vfleet_pf_link_speed_mbps', help: 'PF link speed as last reported, Mbps', labelNames: ['host', 'pf'] as const, registers }),
  };
}

async function refreshFleet(control: ControlPlane, g: FleetGauges): Promise<void> {
  const tx = control.ctx.store.tx;
  const [hosts, allocations] = await Promise.all([tx.listHosts(), tx.listAllocations()]);
  // Reset so hosts and PFs that went away stop being reported.
  for (const gauge of Object.values(g)) gauge.reset();
  for (const state of HOST_STATES) g.hosts.set({ state }, hosts.filter((h) => h.state === state).length);
  for (const state of ALLOCATION_STATES) g.allocations.set({ state }, allocations.filter((a) => a.state === state).length);
  const byPf = holdingByPf(allocations);
  for (const host of hosts) setPfGauges(g, host, byPf);
}

/** `host|pfPciAddress` → the allocations holding a VF there. */
function holdingByPf(allocations: Allocation[]): Map<string, Allocation[]> {
  const byPf = new Map<string, Allocation[]>();
  for (const a of allocations.filter((x) => HOLDING_STATES.includes(x.state))) {
    const key = `${a.host}|${a.pfPciAddress}`;
    const list = byPf.get(key);
    if (list) list.push(a);
    else byPf.set(key, [a]);
  }
  return byPf;
}

function setPfGauges(g: FleetGauges, host: HostRecord, byPf: Map<string, Allocation[]>): void {
  for (const pf of host.inventory.pfs) {
    const labels = { host: host.name, pf: pf.name };
    const onPf = byPf.get(`${host.name}|${pf.pciAddress}`) ?? [];
    const inventoried = new Set(pf.vfs.map((vf) => vf.index));
    const allocated = onPf.filter((a) => inventoried.has(a.vfIndex)).length;
    g.vfs.set({ ...labels, state: 'allocated' }, allocated);
    g.vfs.set({ ...labels, state: 'free' }, inventoried.size - allocated);
    g.committed.set(labels, onPf.reduce((sum, a) => sum + a.minTxRateMbps, 0));
    if (pf.linkSpeedMbps !== null) g.linkSpeed.set(labels, pf.linkSpeedMbps);
  }
}
