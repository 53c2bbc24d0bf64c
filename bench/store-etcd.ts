/**
 * The etcd store against SQLite, in the same run: transactions shaped like
 * an allocation (insert it with its VF and MAC claims, append its audit
 * event), at 1 and 32 in flight; on etcd also 32 split over two controllers
 * (two clients racing on one keyspace). A real 3-member etcd on loopback
 * (test/support/etcd.ts). `node dist/bench/store-etcd.js [count]`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EtcdStore } from '../src/store/etcd/store.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import type { Store } from '../src/store/store.js';
import { allocation } from '../test/contract/store.contract.js';
import { startEtcd } from '../test/support/etcd.js';
import { percentile } from './stats.js';

let serial = 0;

function allocate(store: Store): Promise<void> {
  const k = serial++;
  const id = `b-${k}`;
  return store.transaction(async (tx) => {
    const mac = `02:00:${[k >> 24, k >> 16, k >> 8, k].map((b) => (b & 255).toString(16).padStart(2, '0')).join(':')}`;
    await tx.insertAllocation(allocation({ id, host: `h-${k >> 8}`, vfIndex: k & 255, mac }));
    await tx.appendEvent({ at: new Date().toISOString(), actor: 'bench', action: 'allocate', object: id, before: null, after: { k } });
  });
}

/** `count` allocations, `concurrency` in flight, spread over `stores` round robin. */
async function run(stores: Store[], count: number, concurrency: number) {
  const latencies = new Float64Array(count);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (next < count) {
        const i = next++;
        const t0 = performance.now();
        await allocate(stores[w % stores.length]!);
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
    const both = await run([one, two], count, 32);
    console.log(`  32 in flight  etcd, 2 controllers ${fmt(both)}`);
  } finally {
    await Promise.all([one.close(), two.close(), sqlite.close()]);
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchStoreEtcd(Number(process.argv[2] ?? 600));
