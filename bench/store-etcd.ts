/**
 * The etcd store against SQLite, in the same run: transactions shaped like
 * an allocation (insert it with its VF and MAC claims, append its audit
 * event), at 1 and 32 in flight; on etcd also 32 split over two controllers
 * (two clients racing on one keyspace). Each allocation has a guarantee on
 * its host's one PF, so it also reads and writes the PF's committed-guarantee
 * record (`pf-committed/`); the same 32 without a guarantee, which have none,
 * are the record's baseline. A real 3-member etcd on loopback
 * (test/support/etcd.ts). `node dist/bench/store-etcd.js [count]`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EtcdStore } from '../src/store/etcd/store.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/store.js';
import { allocation } from '../test/contract/store.contract.js';
import { startEtcd } from '../test/support/etcd.js';
import { percentile } from './stats.js';

let serial = 0;

function allocate(store: Store, minTxRateMbps: number): Promise<void> {
  const k = serial++;
  const id = `b-${k}`;
  return store.transaction(async (tx) => {
    const mac = `02:00:${[k >> 24, k >> 16, k >> 8, k].map((b) => (b & 255).toString(16).padStart(2, '0')).join(':')}`;
    await tx.insertAllocation(allocation({ id, host: `h-${k >> 8}`, vfIndex: k & 255, mac, minTxRateMbps }), { capacityMbps: 256 * minTxRateMbps });
    await tx.appendEvent({ at: new Date().toISOString(), actor: 'bench', action: 'allocate', object: id, before: null, after: { k } });
  });
}

/** `count` allocations, `concurrency` in flight, spread over `stores` round robin. */
async function run(stores: Store[], count: number, concurrency: number, minTxRateMbps = 1000) {
  const latencies = new Float64Array(count);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (next < count) {
        const i = next++;
        const t0 = performance.now();
        await allocate(stores[w % stores.length]!, minTxRateMbps);
        latencies[i] = performance.now() - t0;
      }
    }),
  );
  const elapsed = performance.now() - started;
  latencies.sort();
  return { perSecond: (count / elapsed) * 1000, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

const fmt = (r: { perSecond: number; p50: number; p99: number }) => `${r.perSecond.toFixed(0).padStart(6)}/s  p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms`;

export async function benchStoreEtcd(count = 600): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-store-'));
  const cluster = await startEtcd(3);
  const sqlite = await openSqliteStore(dir);
  const open = () => EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/bench/' });
  const [one, two] = [await open(), await open()];
  try {
    console.log(`store: ${count} allocation transactions (insert + audit event) per run; etcd: 3 members on loopback`);
    for (const concurrency of [1, 32]) {
      const base = await run([sqlite], count, concurrency);
      const etcd = await run([one], count, concurrency);
      console.log(`  ${String(concurrency).padStart(2)} in flight  sqlite ${fmt(base)}`);
      console.log(`  ${String(concurrency).padStart(2)} in flight  etcd   ${fmt(etcd)}   (${(etcd.perSecond / base.perSecond).toFixed(2)}× sqlite)`);
    }
    const [sqliteFree, etcdFree] = [await run([sqlite], count, 32, 0), await run([one], count, 32, 0)];
    console.log(`  32 in flight  sqlite, no guarantee (no PF sum) ${fmt(sqliteFree)}`);
    console.log(`  32 in flight  etcd,   no guarantee (no pf-committed record) ${fmt(etcdFree)}`);
    const both = await run([one, two], count, 32);
    const bothFree = await run([one, two], count, 32, 0);
    console.log(`  32 in flight  etcd, 2 controllers ${fmt(both)}`);
    console.log(`  32 in flight  etcd, 2 controllers, no guarantee (no pf-committed record) ${fmt(bothFree)}   (with it: ${(both.perSecond / bothFree.perSecond).toFixed(2)}×)`);
  } finally {
    await Promise.all([one.close(), two.close(), sqlite.close()]);
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchStoreEtcd(Number(process.argv[2] ?? 600));
