/**
 * What serving reads from memory during an etcd outage costs while etcd is
 * healthy, and what the read mirror holds:
 * - read latency through the stale-reads wrapper against the store's own
 *   reads, interleaved in one run on a 1-member etcd on loopback (the ratio);
 * - mirror bytes per host (4 PFs × 64 VFs: deflated JSON against the JSON)
 *   and per holding allocation (heap after GC), and the deflate time per host.
 * `node --expose-gc dist/bench/stale-reads.js` (etcd from $ETCD_BIN or PATH).
 */
import { deflateRawSync, constants } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { PackedHosts, ReadMirror } from '../src/controller/read-mirror.js';
import { staleReads } from '../src/controller/stale-reads.js';
import { StoreHealth } from '../src/controller/store-health.js';
import type { Allocation } from '../src/domain/types.js';
import { openStore } from '../src/store/open.js';
import { allocation, putNetworks } from '../test/contract/store.contract.js';
import { startEtcd } from '../test/support/etcd.js';
import { makeFleet } from './allocate.js';
import { percentile } from './stats.js';

const READS = 2_000;
const ALLOCATIONS = 100_000;
const HOSTS = 200;

async function readLatency(): Promise<void> {
  const etcd = await startEtcd(1);
  const store = await openStore({ url: `${etcd.storeUrl}/bench`, dataDir: '/nonexistent' });
  try {
    await putNetworks(store);
    for (let i = 0; i < 50; i++) await store.tx.insertAllocation(allocation({ id: `a-${i}`, vfIndex: i, pciAddress: `0000:3b:02.${i}`, mac: `02:00:00:00:01:${i.toString(16).padStart(2, '0')}` }));
    const health = new StoreHealth({ probe: () => store.tx.listPhysnets(), healthyProbeMs: 0 });
    const reads = staleReads(store.tx, new ReadMirror(() => new Date()), health);
    const direct: number[] = [];
    const wrapped: number[] = [];
    for (let i = 0; i < READS; i++) {
      // Interleaved, so that load on the machine falls on both alike.
      for (const [into, r] of [[direct, store.tx], [wrapped, reads]] as const) {
        const t = performance.now();
        await r.getAllocation(`a-${i % 50}`);
        into.push(performance.now() - t);
      }
    }
    const [d, w] = [direct.sort((a, b) => a - b), wrapped.sort((a, b) => a - b)];
    console.log(`getAllocation on etcd, ${READS} each: store ${ms(d, 0.5)} p50, ${ms(d, 0.99)} p99; through stale reads ${ms(w, 0.5)} p50, ${ms(w, 0.99)} p99; ratio p50 ${(percentile(w, 0.5) / percentile(d, 0.5)).toFixed(3)}`);
    health.stop();
  } finally {
    await store.close();
    await etcd.stop();
  }
}

const ms = (sorted: number[], p: number) => `${percentile(sorted, p).toFixed(3)} ms`;

async function hostBytes(): Promise<void> {
  const hosts = makeFleet(HOSTS);
  let json = 0;
  let packed = 0;
  let [stringifyMs, deflateMs] = [0, 0];
  for (const h of hosts) {
    const t0 = performance.now();
    const text = JSON.stringify(h);
    const t1 = performance.now();
    packed += deflateRawSync(text, { level: constants.Z_BEST_SPEED }).length;
    deflateMs += performance.now() - t1;
    stringifyMs += t1 - t0;
    json += Buffer.byteLength(text);
  }
  console.log(
    `host record (4 × 64 VFs): JSON ${(json / HOSTS / 1024).toFixed(1)} KiB, kept deflated ${(packed / HOSTS / 1024).toFixed(1)} KiB ` +
      `(${(json / packed).toFixed(1)}× smaller, ${(packed / HOSTS / 256).toFixed(0)} B per VF); per record written: JSON ${(stringifyMs / HOSTS).toFixed(2)} ms, deflate ${(deflateMs / HOSTS).toFixed(2)} ms`,
  );
  // The controller's start: each record deflated from its stored text as its page is read (PackedHosts), none kept decoded.
  const texts = hosts.map((h) => JSON.stringify(h));
  const packing = new PackedHosts();
  const t = performance.now();
  hosts.forEach((record, i) => packing.add({ record, json: texts[i] }));
  const mirror = new ReadMirror(() => new Date());
  mirror.load({ hosts: packing, holding: [], catalogue: { tenants: [], physnets: [], networks: [] }, tokens: [] });
  const loadMs = performance.now() - t;
  let kept = 0;
  for (const b of packing.packed.values()) kept += b.buffer.byteLength;
  console.log(`the start's mirror of ${HOSTS} hosts: deflated as read in ${loadMs.toFixed(0)} ms (${(loadMs / HOSTS).toFixed(2)} ms per record); ${(kept / HOSTS / 1024).toFixed(1)} KiB kept per record`);
}

function allocationBytes(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    console.log('allocation bytes: run with --expose-gc');
    return;
  }
  const texts = Array.from({ length: ALLOCATIONS }, (_, i) =>
    JSON.stringify(allocation({ id: crypto.randomUUID(), state: 'attached', vfIndex: i % 64, attachment: { kind: 'container', netns: `/var/run/netns/cni-${i}`, ifname: 'net1' } as never })),
  );
  const mirror = new ReadMirror(() => new Date());
  const parsed = texts.map((t) => JSON.parse(t) as Allocation);
  for (const a of parsed) mirror.putAllocation(a.id, a);
  parsed.length = 0;
  gc();
  const filled = process.memoryUsage().heapUsed;
  // The same objects, let go: what the mirror kept is the difference.
  for (const t of texts) mirror.putAllocation((JSON.parse(t) as Allocation).id, null);
  gc();
  const per = (filled - process.memoryUsage().heapUsed) / ALLOCATIONS;
  console.log(`holding allocation in the mirror: ${per.toFixed(0)} B of heap each (${ALLOCATIONS} kept; JSON ${(Buffer.byteLength(texts[0]!))} B)`);
}

await readLatency();
await hostBytes();
allocationBytes();
console.log(`load: ${(await import('node:fs/promises').then((f) => f.readFile('/proc/loadavg', 'utf8'))).trim()}`);
