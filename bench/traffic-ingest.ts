/**
 * What traffic telemetry costs the controller: 1,000 hosts (4 PFs × 64 VFs
 * each, every VF moving: the worst case) each sending one liveness report
 * with its counter deltas (2 samples: 5 s sampling, 10 s heartbeat), against
 * the same reports without counters, in the same process:
 * - CPU ms per round (1,000 reports) and per report: JSON.parse of the body,
 *   the schema check of `traffic` (Ajv, as the API compiles it), and
 *   HostService.receive (which feeds the traffic window);
 * - heap growth (JS heap + array buffers): after the first round with counters (the window's series
 *   are made) and per later round (the window reuses its buckets);
 * - the size of one report, JSON bytes: with and without counters, busy and idle.
 *
 * Hosts register with a 1-VF inventory (what traffic costs does not depend on
 * it, and 1,000 full inventories would only slow the setup).
 * Run: node --expose-gc dist/bench/traffic-ingest.js [hosts] [rounds]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { ControlPlane } from '../src/controller/control-plane.js';
import type { AgentReport } from '../src/controller/hosts.js';
import type { Actor } from '../src/domain/actor.js';
import type { CounterDeltas, TrafficDeltas } from '../src/domain/traffic-deltas.js';
import { inventoryHash } from '../src/host/inventory-hash.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { TRAFFIC_DELTAS } from '../src/api/schemas.js';
import { makeHost } from '../test/helpers/inventory.js';

const PFS = 4;
const VFS = 64;
const LOCAL: Actor = { id: 'local', role: 'admin' };

const gc = (globalThis as { gc?: () => void }).gc;
/** The JS heap and typed arrays' backing stores (the window's buckets live there, outside heapUsed). */
const heapMb = () => {
  gc?.();
  const m = process.memoryUsage();
  return (m.heapUsed + m.arrayBuffers) / 2 ** 20;
};

function busyTraffic(now: number, seed: number): TrafficDeltas {
  const samples = [now - 5000, now].map((t, s) => ({
    t,
    dt: 5000,
    pfs: Array.from({ length: PFS }, (_, p) => ({
      pf: `ens${p + 1}f0`,
      d: [12_500_000 + seed + s, 9_000_000 + p, 11_000 + s, 8_000, 1, 0] as CounterDeltas,
      vfs: Array.from({ length: VFS }, (_, v) => [v, 3_100_000 + v * 17 + seed, 2_400_000 + v * 13, 3_100 + v, 2_400 + v, v % 7 === 0 ? 1 : 0, 0]),
    })),
  }));
  return { intervalS: 5, samples };
}

const idleTraffic = (now: number): TrafficDeltas => ({ intervalS: 5, samples: [{ t: now - 5000, dt: 5000 }, { t: now, dt: 5000 }] });

export async function benchTrafficIngest(hosts = 1000, rounds = 5): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-traffic-bench-'));
  const store = await openSqliteStore(dir);
  const control = await ControlPlane.open(store, { heartbeatTimeoutMs: 3_600_000 });
  try {
    const names = Array.from({ length: hosts }, (_, i) => `bench-${String(i).padStart(4, '0')}`);
    const hashes = new Map<string, string>();
    for (const name of names) {
      const inventory = makeHost({ name, pfs: 1, vfs: 1 }).inventory;
      inventory.pfs[0]!.mac = `02:be:${(names.indexOf(name) >> 8).toString(16).padStart(2, '0')}:${(names.indexOf(name) & 255).toString(16).padStart(2, '0')}:00:01`;
      await control.hosts.receive(LOCAL, { inventory });
      hashes.set(name, inventoryHash(inventory));
    }
    const ajv = new Ajv({ allErrors: false, strict: false });
    const checkTraffic = ajv.compile(TRAFFIC_DELTAS);
    const bodies = (withTraffic: boolean, round: number) =>
      names.map((host, i) => {
        const report: AgentReport = { host, inventoryHash: hashes.get(host)!, statuses: [], events: [], results: [] };
        if (withTraffic) report.traffic = busyTraffic(Date.now(), i + round);
        return JSON.stringify(report);
      });
    /** One round: every host's report, parsed, checked and received; CPU ms. */
    const round = async (texts: string[]) => {
      const cpu = process.cpuUsage();
      for (const text of texts) {
        const report = JSON.parse(text) as AgentReport;
        if (report.traffic && !checkTraffic(report.traffic)) throw new Error(ajv.errorsText(checkTraffic.errors));
        await control.hosts.receive(LOCAL, report);
      }
      const used = process.cpuUsage(cpu);
      return (used.user + used.system) / 1000;
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

    await round(bodies(false, 0)); // warm-up
    const heap0 = heapMb();
    const base: number[] = [];
    for (let r = 0; r < rounds; r++) base.push(await round(bodies(false, r)));
    const heapBase = heapMb();
    const first = await round(bodies(true, 0));
    const heap1 = heapMb();
    const withCounters: number[] = [];
    for (let r = 1; r <= rounds; r++) withCounters.push(await round(bodies(true, r)));
    const heapN = heapMb();

    const b = median(base);
    const t = median(withCounters);
    console.log(`traffic ingest: ${hosts} hosts × ${PFS} PFs × ${VFS} VFs, every VF moving, 2 samples per report; median of ${rounds} rounds; load ${(await loadavg())}`);
    console.log(`  without counters (baseline): ${b.toFixed(0)} ms CPU per round, ${((b / hosts) * 1000).toFixed(0)} µs per report`);
    console.log(`  with counters:               ${t.toFixed(0)} ms CPU per round, ${((t / hosts) * 1000).toFixed(0)} µs per report (×${(t / b).toFixed(1)} the baseline; first round ${first.toFixed(0)} ms)`);
    console.log(
      gc
        ? `  heap: baseline rounds ${(heapBase - heap0).toFixed(1)} MB; first round with counters +${(heap1 - heapBase).toFixed(1)} MB (the window's series: ${((heap1 - heapBase) / hosts).toFixed(2)} MB per host), then ${((heapN - heap1) / rounds).toFixed(2)} MB per round`
        : '  heap: run with node --expose-gc for heap growth',
    );
    const now = Date.now();
    const liveness = { host: names[0], inventoryHash: hashes.get(names[0]!)!, statuses: [], events: [], results: [] };
    const size = (r: unknown) => Buffer.byteLength(JSON.stringify(r));
    const plain = size(liveness);
    console.log(`  one report, JSON: without counters ${plain} B; idle host with counters ${size({ ...liveness, traffic: idleTraffic(now) })} B (×${(size({ ...liveness, traffic: idleTraffic(now) }) / plain).toFixed(1)}); busy host (256 VFs moving) ${size({ ...liveness, traffic: busyTraffic(now, 0) })} B (×${(size({ ...liveness, traffic: busyTraffic(now, 0) }) / plain).toFixed(0)})`);
  } finally {
    control.shutdown();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function loadavg(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return (await readFile('/proc/loadavg', 'utf8').catch(() => '?')).split(' ').slice(0, 3).join(' ');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchTrafficIngest(Number(process.argv[2] ?? 1000), Number(process.argv[3] ?? 5));
}
