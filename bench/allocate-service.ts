/**
 * Allocations through the whole control-plane path, store on: network
 * lookup, isolation checks, MAC, scheduler, and a SQLite transaction that
 * writes the allocation and its audit event. Same fleet and requests as
 * bench/allocate.ts; that file's scheduler-only numbers are the baseline.
 *
 * Each run also says what the garbage collector did (gc-stats.ts): garbage
 * per allocation, scavenges and their pauses, and how many requests a
 * scavenge paused. At 16 in flight each scavenge pauses 16 requests, so
 * those, not the store, make most of the p99 there.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ControlPlane } from '../src/controller/control-plane.js';
import type { Actor } from '../src/domain/actor.js';
import type { HostRecord, Network } from '../src/domain/types.js';
import { SriovError } from '../src/host/errors.js';
import type { PlacementRequest } from '../src/scheduler/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/store.js';
import { PHYSNETS, makeFleet, makeNetworks, makeRequests } from './allocate.js';
import { gcLine, pausedByScavenge, recordGc, type GcStats } from './gc-stats.js';
import { percentile } from './stats.js';

const ADMIN: Actor = { id: 'bench', role: 'admin' };

async function seed(store: Store, hosts: HostRecord[], networks: Network[]): Promise<void> {
  await store.transaction(async (tx) => {
    for (const p of PHYSNETS) await tx.putPhysnet(p);
    for (const tenant of new Set(networks.map((n) => n.tenant))) await tx.putTenant({ id: `id-${tenant}`, name: tenant, createdAt: new Date().toISOString() });
    for (const n of networks) await tx.putNetwork(n);
    for (const h of hosts) await tx.putHost(h);
  });
}

async function allocate(control: ControlPlane, req: PlacementRequest): Promise<boolean> {
  try {
    await control.allocations.create(ADMIN, { ...req, network: req.network.name });
    return true;
  } catch (e) {
    if (e instanceof SriovError && e.code === 'NO_CAPACITY') return false;
    throw e;
  }
}

interface RunResult {
  perSecond: number;
  p50: number;
  p99: number;
  /** The far tail beside the p99: a trade of many short pauses for a few long ones shows here. */
  p999: number;
  max: number;
  refused: number;
  /** Process CPU (user + system) per allocation: what a loaded, shared machine does not distort. */
  cpuUsPerAllocation: number;
  gc: GcStats;
  /** Requests a scavenge paused, and the p99 of the others: how much of the tail the collections make. */
  paused: number;
  p99Unpaused: number;
}

/** `concurrency` requests in flight at a time; latency is each request's own. */
async function run(control: ControlPlane, requests: PlacementRequest[], concurrency: number): Promise<RunResult> {
  const starts = new Float64Array(requests.length);
  const ends = new Float64Array(requests.length);
  let next = 0;
  let refused = 0;
  const cpu = process.cpuUsage();
  const gc = recordGc();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests.length) {
        const i = next++;
        starts[i] = performance.now();
        if (!(await allocate(control, requests[i]!))) refused++;
        ends[i] = performance.now();
      }
    }),
  );
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const gcStats = await gc();
  const latencies = ends.map((end, i) => end - starts[i]!);
  const unpaused = latencies.filter((_, i) => !pausedByScavenge(gcStats, starts[i]!, ends[i]!));
  latencies.sort();
  unpaused.sort();
  return {
    perSecond: (requests.length / elapsed) * 1000,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    p999: percentile(latencies, 99.9),
    max: latencies[latencies.length - 1]!,
    refused,
    cpuUsPerAllocation: (used.user + used.system) / requests.length,
    gc: gcStats,
    paused: latencies.length - unpaused.length,
    p99Unpaused: percentile(unpaused, 99),
  };
}

async function runOnFreshStore(hosts: HostRecord[], networks: Network[], count: number, concurrency: number): Promise<RunResult> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-store-'));
  const store = await openSqliteStore(dir);
  try {
    await seed(store, hosts, networks);
    const control = await ControlPlane.open(store);
    return await run(control, makeRequests(count, networks), concurrency);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

function line(concurrency: number, r: RunResult, count: number): string {
  return (
    `  ${String(concurrency).padStart(2)} in flight (loadavg ${load()}): ${Math.round(r.perSecond)} allocations/s; p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms, p99.9 ${r.p999.toFixed(3)} ms, max ${r.max.toFixed(3)} ms; ` +
    `${Math.round(r.cpuUsPerAllocation)} us CPU per allocation (${Math.round(1e6 / r.cpuUsPerAllocation)}/s per CPU-second); ${r.refused} refused\n` +
    `      GC: ${gcLine(r.gc, count)}\n` +
    `      ${r.paused} requests (${((100 * r.paused) / count).toFixed(2)}%) paused by a scavenge; p99 of the others ${r.p99Unpaused.toFixed(3)} ms`
  );
}

/**
 * 1 in flight is the baseline; 16 in flight is what group commit is for (the
 * requests queued behind one write share its COMMIT). Both in one run, with
 * the ratio; CPU per allocation beside, as wall-clock rates on a shared
 * machine move with its load.
 */
export async function benchAllocateService(opts: { hosts?: number; requests?: number } = {}): Promise<void> {
  const hosts = makeFleet(opts.hosts ?? 1000);
  const networks = makeNetworks([0, 100, 250, 500, 1000, 2000]);
  const count = opts.requests ?? 20_000;
  console.log(`service path with SQLite store: ${hosts.length} hosts x 4 PFs x 64 VFs, ${count} allocations per run`);
  const one = await runOnFreshStore(hosts, networks, count, 1);
  console.log(line(1, one, count));
  const sixteen = await runOnFreshStore(hosts, networks, count, 16);
  console.log(line(16, sixteen, count));
  console.log(
    `  16 / 1 in flight: ${(sixteen.perSecond / one.perSecond).toFixed(2)}x allocations/s, ` +
      `${(one.cpuUsPerAllocation / sixteen.cpuUsPerAllocation).toFixed(2)}x less CPU per allocation`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) await benchAllocateService();
