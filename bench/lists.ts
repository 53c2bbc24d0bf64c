/**
 * Lists at fleet scale, over HTTP on loopback against a SQLite controller:
 * the first page of `GET /v1/hosts` (summaries) and of
 * `GET /v1/allocations?state=attached`, in ms and bytes. The baseline, run in
 * the same process on the same store, is what those routes answered before
 * paging: every host record with its inventory, every allocation.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildServer } from '../src/api/server.js';
import { ControlPlane } from '../src/controller/control-plane.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { allocateHalfAttached, seedFleet } from './fleet-store.js';
import { median } from './stats.js';

const RUNS = 7;

interface Measure {
  ms: number;
  bytes: number;
}

async function measure(fn: () => Promise<string>): Promise<Measure> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    bytes = Buffer.byteLength(await fn());
    times.push(performance.now() - t0);
  }
  return { ms: median(times), bytes };
}

const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
const line = (what: string, m: Measure) => `  ${what}: ${m.ms.toFixed(1)} ms, ${kb(m.bytes)}`;

export async function benchLists(opts: { hosts?: number; allocations?: number } = {}): Promise<void> {
  const hosts = opts.hosts ?? 1000;
  const count = opts.allocations ?? 10_000;
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-lists-'));
  const store = await openSqliteStore(dir);
  try {
    await seedFleet(store, hosts);
    const control = await ControlPlane.open(store);
    await allocateHalfAttached(control, store, count);
    const token = (await readFile(await control.tokens.bootstrapAdmin(dir), 'utf8')).trim();
    const app = await buildServer({ control, controllerHost: 'bench', version: 'bench' });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const get = async (path: string) => {
      const res = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
      if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
      return res.text();
    };
    try {
      console.log(`lists: ${hosts} hosts x 4 PFs x 64 VFs, ${count} allocations (${count / 2} attached), SQLite, HTTP on loopback; median of ${RUNS}`);
      const before = await measure(async () => JSON.stringify(await store.tx.listHosts()));
      const hostPage = await measure(() => get('/v1/hosts'));
      console.log(line('baseline, every host record with its inventory (old GET /v1/hosts, in process, no HTTP)', before));
      console.log(line('GET /v1/hosts, first page (500 summaries)', hostPage));
      console.log(`  ratio: ${(before.bytes / hostPage.bytes).toFixed(0)}x fewer bytes, ${(before.ms / hostPage.ms).toFixed(1)}x faster`);
      const all = await measure(async () => JSON.stringify(await store.tx.listAllocations({})));
      const attached = await measure(() => get('/v1/allocations?state=attached'));
      console.log(line('baseline, every allocation (old GET /v1/allocations, in process, no HTTP)', all));
      console.log(line('GET /v1/allocations?state=attached, first page (500)', attached));
      console.log(`  ratio: ${(all.bytes / attached.bytes).toFixed(1)}x fewer bytes, ${(all.ms / attached.ms).toFixed(1)}x faster`);
    } finally {
      await app.close();
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
