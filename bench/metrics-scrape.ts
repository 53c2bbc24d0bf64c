/**
 * One /metrics scrape at fleet scale: 1,000 simulated hosts × 4 PFs × 64 VFs
 * (256 VFs a host) on SQLite, with allocations, and every host's agent
 * counters as their reports would have brought them. Printed: the scrape's
 * time (median, in process through Fastify's inject, no socket) and size,
 * and its series; the first scrape apart, since it runs the isolation audit
 * (the next ones reuse it for a minute), and scrapes after an allocation
 * changed apart, since only those read the allocation counts again. The baseline, in the same process
 * on the same store, is main's /metrics at 712b898 (bench/metrics-baseline.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import fastify from 'fastify';
import { buildServer } from '../src/api/server.js';
import { ControlPlane } from '../src/controller/control-plane.js';
import { RECONCILE_BUCKETS_S, zeroTotals } from '../src/domain/agent-counters.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { makeNetworks } from './allocate.js';
import { allocateHalfAttached, seedFleet } from './fleet-store.js';
import { registerBaselineMetrics } from './metrics-baseline.js';
import { median } from './stats.js';

const RUNS = 5;

interface Scrape {
  ms: number;
  bytes: number;
  series: number;
}

type Inject = (path: string) => Promise<string>;

async function scrapeOnce(inject: Inject): Promise<Scrape> {
  const t0 = performance.now();
  const text = await inject('/metrics');
  const ms = performance.now() - t0;
  return { ms, bytes: Buffer.byteLength(text), series: text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length };
}

async function scrapeMedian(inject: Inject): Promise<Scrape> {
  const runs: Scrape[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await scrapeOnce(inject));
  return { ...runs[runs.length - 1]!, ms: median(runs.map((r) => r.ms)) };
}

/** Every host's agent counters, as a report of each would have brought them. */
function reportCounters(control: ControlPlane): void {
  for (const host of control.ctx.scheduler.hosts()) {
    control.hosts.agentCounters.record(host.name, { run: 'bench', ...zeroTotals(), reconcileBuckets: RECONCILE_BUCKETS_S.map(() => 3), reconcileCount: 3, reconcileSeconds: 0.6, driftRepaired: 1 });
  }
}

const kb = (b: number) => `${(b / 1024).toFixed(0)} KB`;
const line = (what: string, s: Scrape) => `  ${what}: ${s.ms.toFixed(1)} ms, ${kb(s.bytes)}, ${s.series} series`;

export async function benchMetricsScrape(opts: { hosts?: number; allocations?: number } = {}): Promise<void> {
  const hosts = opts.hosts ?? 1000;
  const count = opts.allocations ?? 20_000;
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-metrics-'));
  const store = await openSqliteStore(dir);
  try {
    // One network of each pair with a rate cap, so the committed max-rate series have values.
    await seedFleet(store, hosts, makeNetworks([0, 100]).map((n, i) => ({ ...n, maxTxRateMbps: i % 2 ? 10_000 : 0 })));
    const control = await ControlPlane.open(store);
    await allocateHalfAttached(control, store, count);
    reportCounters(control);
    const app = await buildServer({ control, controllerHost: 'bench', version: 'bench' });
    const baseline = fastify();
    registerBaselineMetrics(baseline, control);
    const injector = (a: typeof app | typeof baseline): Inject => async (url) => (await a.inject({ method: 'GET', url })).body;
    try {
      console.log(`metrics: ${hosts} hosts x 4 PFs x 64 VFs, ${count} allocations (${count / 2} attached), SQLite, in process (inject); median of ${RUNS}`);
      const before = await scrapeMedian(injector(baseline));
      const cold = await scrapeOnce(injector(app));
      const warm = await scrapeMedian(injector(app));
      // An allocation changed before each scrape: the allocation counts are read from the store again.
      const changed = await scrapeMedian(async (url) => {
        control.ctx.feed.bump('host-0000');
        return injector(app)(url);
      });
      console.log(line('baseline, main at 712b898 (store read at every scrape)', before));
      console.log(line('/metrics, first scrape (runs the isolation audit, reads the allocations)', cold));
      console.log(line('/metrics, nothing changed since the last scrape (all from memory)', warm));
      console.log(line('/metrics, an allocation changed before each scrape (allocation counts read again)', changed));
      console.log(
        `  ratio: ${(before.ms / warm.ms).toFixed(1)}x faster than the baseline unchanged, ${(before.ms / changed.ms).toFixed(1)}x after a change, ` +
          `first ${(before.ms / cold.ms).toFixed(2)}x; ${(warm.bytes / before.bytes).toFixed(2)}x its size`,
      );
    } finally {
      await app.close();
      await baseline.close();
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('metrics-scrape.js')) await benchMetricsScrape({ hosts: Number(process.env.HOSTS ?? 1000), allocations: Number(process.env.ALLOCATIONS ?? 20_000) });
