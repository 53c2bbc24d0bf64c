/**
 * A fresh controller's start as it builds its index from a store of N hosts
 * x 4 PFs x 64 VFs (and some allocations holding VFs, as the scale bench
 * leaves): the time, its CPU, RSS before, when ready and after a GC, and the
 * peak, in a process of its own per build, this build's and (with --baseline
 * OLD_CHECKOUT, which has dist/ built) a baseline build's on the same store.
 * `--store etcd` (or `both`) seeds an etcd started here (`--members 1|3`)
 * through the etcd store and opens the controller as `sriovd` does on it
 * (openStore: the watch; ControlPlane.open: cluster sync, read mirror,
 * scheduler index, MAC pool), beside SQLite on the same inventory.
 *
 *   node dist/bench/controller-open.js [--hosts 1000] [--allocations 4000] [--store sqlite|etcd|both]
 *     [--members 1] [--baseline /path/to/old/checkout] [--cpu-prof DIR]
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/store.js';
import type { HostRecord } from '../src/domain/types.js';
import { makeAllocation, makeHost, makeNetwork } from '../test/helpers/inventory.js';
import { startEtcd, type EtcdCluster } from '../test/support/etcd.js';

interface Opened {
  openMs: number;
  cpuMs: number;
  rssBefore: number;
  rssReady: number;
  rssGc: number;
  heapGc: number;
  heapTotal: number;
  external: number;
  peak: number;
}

const THIS_BUILD = fileURLToPath(new URL('../..', import.meta.url));

/** Run in the child: open the store as `sriovd` does at start (openStore, ControlPlane.open), then report memory. */
const CHILD = `
const [root, dir, url] = process.argv.slice(1);
const { openStore } = await import(root + '/dist/src/store/open.js');
const { ControlPlane } = await import(root + '/dist/src/controller/control-plane.js');
const { readFileSync } = await import('node:fs');
const rssBefore = process.memoryUsage().rss;
const t0 = performance.now();
const c0 = process.cpuUsage();
const store = await openStore({ url: url === '-' ? undefined : url, dataDir: dir });
await ControlPlane.open(store, { resume: false });
const openMs = performance.now() - t0;
const c = process.cpuUsage(c0);
const rssReady = process.memoryUsage().rss;
// Let the start's deferred work (the read mirror deflating its records) finish before the GC.
await new Promise((r) => setTimeout(r, 1500));
globalThis.gc?.();
globalThis.gc?.();
const { rss: rssGc, heapUsed: heapGc, heapTotal, external } = process.memoryUsage();
const peak = Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
process.stdout.write(JSON.stringify({ openMs, cpuMs: (c.user + c.system) / 1000, rssBefore, rssReady, rssGc, heapGc, heapTotal, external, peak }));
process.exit(0);
`;

const PFS = 4;
const VFS = 64;
const network = makeNetwork({ name: 'scale-net', tenant: 'scale', physnet: 'datacentre', vlan: 100 });

/** Allocation i holds VF i / hosts of PF (i % 4) on host i % hosts: spread over the fleet, one per VF. */
function allocationOf(i: number, host: HostRecord, hosts: number) {
  const pf = host.inventory.pfs[i % PFS]!;
  const vf = Math.floor(i / hosts) % VFS;
  const mac = `02:5e:${[(i >> 16) & 255, (i >> 8) & 255, i & 255, 1].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  const placement = { host: host.name, pf: pf.name, pfPciAddress: pf.pciAddress, vfIndex: vf, pciAddress: pf.vfs[vf]!.pciAddress, numaNode: pf.numaNode };
  return makeAllocation(placement as never, network, { kind: 'container', name: `w${i}` }, { id: `bench-${String(i).padStart(7, '0')}`, mac, state: 'attached' });
}

/** The same hosts and allocations in any store, many transactions in flight (etcd commits them in groups). */
async function fill(store: Store, hosts: number, allocations: number): Promise<void> {
  const records = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => makeHost({ name: `scale-${from + k}`, pfs: PFS, vfs: VFS, driver: 'ice', linkSpeedMbps: 100_000 }));
  await store.transaction(async (tx) => {
    await tx.putTenant({ id: 't-scale', name: 'scale', createdAt: network.createdAt });
    await tx.putPhysnet({ name: 'datacentre', accountingOnly: false, tenantVlans: {} } as never);
    await tx.putNetwork(network);
  });
  const STEP = 64;
  for (let i = 0; i < hosts; i += STEP) await Promise.all(records(i, Math.min(hosts, i + STEP)).map((h) => store.transaction((tx) => tx.putHost(h))));
  const one = makeHost({ name: 'x', pfs: PFS, vfs: VFS, driver: 'ice', linkSpeedMbps: 100_000 });
  for (let i = 0; i < allocations; i += STEP) {
    const batch = Array.from({ length: Math.min(STEP, allocations - i) }, (_, k) => allocationOf(i + k, { ...one, name: `scale-${(i + k) % hosts}` }, hosts));
    await Promise.all(batch.map((a) => store.transaction((tx) => tx.insertAllocation(a))));
  }
}

function open(root: string, dir: string, url: string, cpuProf?: string): Opened {
  const flags = ['--expose-gc', ...(cpuProf ? ['--cpu-prof', '--cpu-prof-dir', cpuProf] : [])];
  const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', CHILD, root, dir, url], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`controller open (${root}) failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Opened;
}

const MB = 2 ** 20;
const line = (o: Opened, vfs: number) =>
  `ready in ${o.openMs.toFixed(0)} ms (CPU ${o.cpuMs.toFixed(0)} ms); RSS ${(o.rssBefore / MB).toFixed(1)} MB before, ${(o.rssReady / MB).toFixed(1)} MB ready, ` +
  `${(o.rssGc / MB).toFixed(1)} MB after a GC (heap ${(o.heapGc / MB).toFixed(1)} MB used of ${(o.heapTotal / MB).toFixed(1)}, external ${(o.external / MB).toFixed(1)} MB; ${((o.rssGc - o.rssBefore) / vfs).toFixed(0)} B per VF over the empty process), peak ${(o.peak / MB).toFixed(1)} MB`;

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000' },
    allocations: { type: 'string', default: '4000' },
    store: { type: 'string', default: 'sqlite' },
    members: { type: 'string', default: '1' },
    baseline: { type: 'string' },
    'cpu-prof': { type: 'string' },
  },
});
const hosts = Number(values.hosts);
const allocations = Number(values.allocations);
const vfs = hosts * PFS * VFS;
const kinds = values.store === 'both' ? ['sqlite', 'etcd'] : [values.store!];
const dir = await mkdtemp(join(tmpdir(), 'vfleet-open-'));
let etcd: EtcdCluster | null = null;
const ready: Record<string, Opened> = {};
try {
  console.log(`controller open: ${hosts} hosts x ${PFS} PFs x ${VFS} VFs = ${vfs} VFs, ${allocations} allocations holding VFs; loadavg ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const kind of kinds) {
    let url = '-';
    let store: Store;
    if (kind === 'etcd') {
      etcd = await startEtcd(Number(values.members));
      url = etcd.storeUrl;
      store = await openStore({ url, dataDir: dir });
    } else store = await openSqliteStore(dir);
    const t0 = performance.now();
    await fill(store, hosts, allocations);
    await store.close();
    console.log(`  ${kind}${kind === 'etcd' ? ` (${values.members} member(s))` : ''}: seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const before = values.baseline ? open(values.baseline, dir, url) : null;
    const now = open(THIS_BUILD, dir, url, values['cpu-prof'] && join(values['cpu-prof'], kind));
    ready[kind] = now;
    console.log(`    this build: ${line(now, vfs)}`);
    if (before) {
      console.log(`    baseline (${values.baseline}): ${line(before, vfs)}`);
      console.log(`    this build / baseline: ${(now.openMs / before.openMs).toFixed(2)}x the time, ${(now.cpuMs / before.cpuMs).toFixed(2)}x the CPU, ${(now.rssReady / before.rssReady).toFixed(2)}x the RSS ready, ${(now.rssGc / before.rssGc).toFixed(2)}x after a GC, ${(now.peak / before.peak).toFixed(2)}x the peak`);
    }
    if (etcd) {
      await etcd.stop();
      etcd = null;
    }
  }
  if (ready.etcd && ready.sqlite) {
    const [e, s] = [ready.etcd, ready.sqlite];
    console.log(`  etcd / SQLite: ${(e.openMs / s.openMs).toFixed(2)}x the time, ${(e.cpuMs / s.cpuMs).toFixed(2)}x the CPU, ${(e.rssReady / s.rssReady).toFixed(2)}x the RSS ready, ${(e.rssGc / s.rssGc).toFixed(2)}x after a GC`);
  }
} finally {
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
}
