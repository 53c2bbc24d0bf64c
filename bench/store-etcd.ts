/**
 * The etcd store against SQLite, in the same run: transactions shaped like
 * an allocation (insert it with its VF and MAC claims, append its audit
 * event), at 1 and 32 in flight. On etcd twice: committing one batch at a
 * time (pipeline depth 1, as before pipelining) and with batches pipelined
 * (the store's default), so each line has its baselines from the same run;
 * then 32 split over two controllers (two clients racing on one keyspace).
 * Each allocation has a guarantee on its host's one PF, so it also reads and
 * writes the PF's committed-guarantee record (`pf-committed/`); the same 32
 * without a guarantee, which have none, are the record's baseline.
 * Each line carries the load average when it ran and the CPU it cost (this
 * process, and the three etcd members) per allocation. A real 3-member etcd
 * on loopback (test/support/etcd.ts). `node dist/bench/store-etcd.js [count]`.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EtcdStore } from '../src/store/etcd/store.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/store.js';
import { allocation, putNetworks } from '../test/contract/store.contract.js';
import { type EtcdCluster, startEtcd } from '../test/support/etcd.js';
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

/**
 * What the store asked of etcd, counted on its client: write Txns, their
 * compares and ops, and read Txns. The audit sequencer's Txns (they delete
 * audit/in/ keys), off the request path, are counted apart: `sequencer`,
 * and their ops in `seqOps`.
 */
interface Ops {
  commits: number;
  compares: number;
  puts: number;
  deletes: number;
  reads: number;
  /** Write Txns (not the sequencer's) whose compares failed: races lost. */
  lost: number;
  sequencer: number;
  seqOps: number;
}

const opsOf = new WeakMap<Store, Ops>();

/** Counts every Txn `store` sends (an EtcdStore's client; SQLite has none). */
function countOps(store: Store): void {
  if (!(store instanceof EtcdStore)) return;
  const ops: Ops = { commits: 0, compares: 0, puts: 0, deletes: 0, reads: 0, lost: 0, sequencer: 0, seqOps: 0 };
  opsOf.set(store, ops);
  const kv = store.client.kv as unknown as { txn(req: { compare?: unknown[]; success?: Array<Record<string, { key?: Buffer }>> }, ...rest: unknown[]): Promise<{ succeeded: boolean }> };
  const txn = kv.txn.bind(kv);
  kv.txn = (req, ...rest) => {
    const sent = txn(req, ...rest);
    const success = req.success ?? [];
    if (success.every((op) => 'request_range' in op)) ops.reads++;
    else if (success.some((op) => op.request_delete_range?.key?.toString().startsWith(store.keys.ranges.auditIn))) {
      ops.sequencer++;
      ops.seqOps += success.length;
    } else {
      ops.commits++;
      ops.compares += req.compare?.length ?? 0;
      for (const op of success) {
        if ('request_put' in op) ops.puts++;
        if ('request_delete_range' in op) ops.deletes++;
      }
      sent.then(
        (res) => {
          if (!res.succeeded) ops.lost++;
        },
        () => {},
      );
    }
    return sent;
  };
}

function totalOps(stores: Store[]): Ops {
  const sum: Ops = { commits: 0, compares: 0, puts: 0, deletes: 0, reads: 0, lost: 0, sequencer: 0, seqOps: 0 };
  for (const s of stores) {
    const o = opsOf.get(s);
    if (o) for (const key of Object.keys(sum) as Array<keyof Ops>) sum[key] += o[key];
  }
  return sum;
}

interface Result {
  /** etcd work per allocation (undefined on SQLite). */
  ops?: Ops;
  perSecond: number;
  p50: number;
  p99: number;
  load: number;
  /** CPU ms per allocation: this process, and the etcd members together. */
  cpuNode: number;
  cpuEtcd: number;
}

/** CPU seconds the etcd members used so far (Linux /proc; 0 elsewhere). */
function etcdCpuMs(cluster: EtcdCluster): number {
  let ticks = 0;
  for (const m of cluster.members) {
    try {
      const stat = readFileSync(`/proc/${m.proc?.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // not Linux, or the member is gone: no figure
    }
  }
  return ticks * 10;
}

/** `count` allocations, `concurrency` in flight, spread over `stores` round robin. */
async function run(stores: Store[], count: number, concurrency: number, cluster: EtcdCluster, minTxRateMbps = 1000): Promise<Result> {
  const latencies = new Float64Array(count);
  let next = 0;
  const load = loadavg()[0]!;
  const [cpu0, etcd0, ops0] = [process.cpuUsage(), etcdCpuMs(cluster), totalOps(stores)];
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
  const cpu = process.cpuUsage(cpu0);
  latencies.sort();
  const ops1 = totalOps(stores);
  const perAlloc = Object.fromEntries(Object.keys(ops1).map((key) => [key, (ops1[key as keyof Ops] - ops0[key as keyof Ops]) / count])) as unknown as Ops;
  return {
    ops: stores.some((s) => s instanceof EtcdStore) ? perAlloc : undefined,
    perSecond: (count / elapsed) * 1000,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    load,
    cpuNode: (cpu.user + cpu.system) / 1000 / count,
    cpuEtcd: (etcdCpuMs(cluster) - etcd0) / count,
  };
}

const fmtOps = (o: Ops | undefined) =>
  o === undefined
    ? ''
    : `  etcd/alloc: ${(o.puts + o.deletes).toFixed(2)} writes (${o.puts.toFixed(2)} put, ${o.deletes.toFixed(2)} del), ` +
      `${o.compares.toFixed(2)} compares, ${o.commits.toFixed(3)} commits (${o.lost.toFixed(3)} lost), ${o.reads.toFixed(3)} reads; sequencer ${o.sequencer.toFixed(3)} Txns (${o.seqOps.toFixed(2)} ops)`;

const fmt = (r: Result) =>
  `${r.perSecond.toFixed(0).padStart(6)}/s  p50 ${r.p50.toFixed(1).padStart(5)} ms  p99 ${r.p99.toFixed(1).padStart(6)} ms  ` +
  `cpu/alloc node ${r.cpuNode.toFixed(2)} ms etcd ${r.cpuEtcd.toFixed(2)} ms  load ${r.load.toFixed(2)}${fmtOps(r.ops)}`;

const ratio = (a: Result, b: Result) => `${(a.perSecond / b.perSecond).toFixed(2)}×`;

export async function benchStoreEtcd(count = 600): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-store-'));
  const cluster = await startEtcd(3);
  const sqlite = await openSqliteStore(dir);
  const open = (pipelineDepth?: number) => EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/bench/', pipelineDepth });
  const [serialStore, one, two] = [await open(1), await open(), await open()];
  // The allocations' network (every etcd handle shares the one keyspace).
  await Promise.all([putNetworks(sqlite), putNetworks(one)]);
  [serialStore, one, two].forEach(countOps);
  try {
    // Warm up (JIT, connections) every store first, so the first measured line is not the slowest for it.
    for (const store of [sqlite, serialStore, one, two]) await run([store], 200, 32, cluster);
    console.log(`store: ${count} allocation transactions (insert + audit event) per run; etcd: 3 members on loopback`);
    for (const concurrency of [1, 32]) {
      const base = await run([sqlite], count, concurrency, cluster);
      const depth1 = await run([serialStore], count, concurrency, cluster);
      const etcd = await run([one], count, concurrency, cluster);
      const c = String(concurrency).padStart(2);
      console.log(`  ${c} in flight  sqlite           ${fmt(base)}`);
      console.log(`  ${c} in flight  etcd, depth 1    ${fmt(depth1)}   (${ratio(depth1, base)} sqlite)`);
      console.log(`  ${c} in flight  etcd, pipelined  ${fmt(etcd)}   (${ratio(etcd, base)} sqlite, ${ratio(etcd, depth1)} depth 1)`);
    }
    const [sqliteFree, etcdFree] = [await run([sqlite], count, 32, cluster, 0), await run([one], count, 32, cluster, 0)];
    console.log(`  32 in flight  sqlite, no guarantee (no PF sum)  ${fmt(sqliteFree)}`);
    console.log(`  32 in flight  etcd, pipelined, no guarantee (no pf-committed record)  ${fmt(etcdFree)}`);
    const both = await run([one, two], count, 32, cluster);
    const bothFree = await run([one, two], count, 32, cluster, 0);
    console.log(`  32 in flight  etcd, 2 controllers, pipelined  ${fmt(both)}`);
    console.log(`  32 in flight  etcd, 2 controllers, pipelined, no guarantee  ${fmt(bothFree)}   (with it: ${ratio(both, bothFree)})`);
  } finally {
    await Promise.all([serialStore.close(), one.close(), two.close(), sqlite.close()]);
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchStoreEtcd(Number(process.argv[2] ?? 600));
