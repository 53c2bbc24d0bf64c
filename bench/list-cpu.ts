/**
 * The controller's CPU for one list page, by stage, at fleet scale: 1,000
 * hosts x 4 PFs x 64 VFs and 3,300 allocations, every one attached with a
 * container attachment (as the scale bench's fleet leaves them), on SQLite
 * and on a real etcd (test/support/etcd.ts). CPU ms from process.cpuUsage
 * over many repetitions, which the machine's other load changes far less
 * than wall-clock time. Per page:
 *   - `GET /v1/allocations?state=attached&limit=500` over HTTP on loopback
 *     from a client in another process (so the CPU is the server's: auth,
 *     route, handler, serialization, socket), then its stages: the store's
 *     read, listAllocationPage (the read and the caller's views), and the
 *     answer's serialization (JSON.stringify: the server's serializer, not
 *     the response schemas, which only document), and what the same page
 *     would cost from the read mirror (not used while the store answers);
 *   - `GET /v1/hosts?limit=500` the same way: hostSummaries, serialization;
 *   - `GET /v1/info`: what any request costs, the client's start included.
 * The HTTP lines say how much of their CPU the kernel's was (loopback TCP:
 * the sender's share includes the receiver's). Many repetitions (--reps
 * 100 or more) keep the client's start out of the per-request figures.
 *
 *   node dist/bench/list-cpu.js [--reps 40] [--etcd 1] [--only sqlite|etcd]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildServer } from '../src/api/server.js';
import { listAllocationPage } from '../src/controller/allocation-listing.js';
import { ControlPlane } from '../src/controller/control-plane.js';
import { hostSummaries } from '../src/controller/host-summaries.js';
import { PackedHosts, readCatalogue, ReadMirror } from '../src/controller/read-mirror.js';
import type { Actor } from '../src/domain/actor.js';
import type { Allocation } from '../src/domain/types.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/store.js';
import { sleep } from '../src/host/wait.js';
import { startEtcd } from '../test/support/etcd.js';
import { seedFleet } from './fleet-store.js';

const ADMIN: Actor = { id: 'bench', role: 'admin' };
const HOSTS = 1000;
const ALLOCATIONS = 3300;
const PAGE = 500;
/** Allocations attached per transaction: well inside one etcd Txn's 128 operations. */
const BATCH = 40;

/** CPU ms (user + system) per call of `fn`, over `reps` calls after 3 unmeasured ones (the JIT's). */
async function cpuMs(reps: number, fn: () => unknown): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const before = process.cpuUsage();
  for (let i = 0; i < reps; i++) await fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / reps;
}

/** Every allocation attached with a container attachment, as a CNI ADD leaves it. */
async function attachAll(control: ControlPlane, store: Store): Promise<void> {
  const ids: string[] = [];
  for (let i = 0; i < ALLOCATIONS; i++) {
    const network = i % 2 ? 'acme-g0' : 'globex-g100';
    ids.push((await control.allocations.create(ADMIN, { network, workload: { kind: 'container', name: `pod-${i}` } })).id);
  }
  const at = new Date().toISOString();
  for (let i = 0; i < ids.length; i += BATCH) {
    await store.transaction(async (tx) => {
      for (const id of ids.slice(i, i + BATCH)) {
        await tx.setAllocationAttachment(id, { kind: 'container', netns: `/var/run/netns/cni-${id}`, ifname: 'net1', hostIfName: null, ips: ['198.18.0.10/24'], cniNetwork: 'sriov-net' });
        await tx.updateAllocationState(id, 'attached', null, at);
      }
    });
  }
}

/**
 * Requests `path` `count` times, one after the other, from a client in a
 * process of its own, so that this process's CPU meanwhile is the server's
 * alone: CPU ms per request, and the answer's bytes.
 */
async function serverCpu(base: string, token: string, path: string, count: number): Promise<{ ms: number; systemMs: number; bytes: number }> {
  const before = process.cpuUsage();
  const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT], { env: { ...process.env, BASE: base, TOKEN: token, URL_PATH: path, COUNT: String(count) }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  const used = process.cpuUsage(before);
  if (code !== 0) throw new Error(`client for ${path} exited ${code}`);
  return { ms: (used.user + used.system) / 1000 / count, systemMs: used.system / 1000 / count, bytes: Number(out) };
}

const CLIENT = `
const { BASE, TOKEN, URL_PATH, COUNT } = process.env;
let bytes = 0;
for (let i = 0; i < Number(COUNT); i++) {
  const res = await fetch(BASE + URL_PATH, { headers: { authorization: 'Bearer ' + TOKEN } });
  if (res.status !== 200) throw new Error(URL_PATH + ': HTTP ' + res.status);
  bytes = (await res.arrayBuffer()).byteLength;
}
process.stdout.write(String(bytes));
`;

async function measureStore(kind: string, store: Store, dir: string, reps: number): Promise<void> {
  await seedFleet(store, HOSTS);
  const control = await ControlPlane.open(store);
  await attachAll(control, store);
  const token = (await readFile(await control.tokens.bootstrapAdmin(dir), 'utf8')).trim();
  // Lists must come from the store, not from the memory that stands in while it does not answer (stale-reads.ts).
  while (control.health.unreachableSince !== null || !(await control.tokens.authenticate(token))) await sleep(100);
  const app = await buildServer({ control, controllerHost: 'bench', version: 'bench' });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const http = async (path: string) => {
      const m = await serverCpu(base, token, path, reps);
      return [`GET ${path} (HTTP, ${(m.bytes / 1024).toFixed(0)} KB; ${m.systemMs.toFixed(2)} ms of it in the kernel)`, m.ms] as [string, number];
    };
    const reads = control.ctx.reads;
    const page: Allocation[] = await listAllocationPage(reads, ADMIN, { state: 'attached' }, { limit: PAGE + 1 });
    const mirror = new ReadMirror(() => new Date());
    mirror.load({ hosts: new PackedHosts(), holding: await store.tx.listAllocations({ holding: true }), catalogue: await readCatalogue(store.tx), tokens: [] });
    const source = { scheduler: control.ctx.scheduler, lastSeenAt: (name: string) => control.hosts.lastSeenAt(name) };
    const summaries = hostSummaries(source, ADMIN, {}, { limit: PAGE + 1 });
    const rows: Array<[string, number]> = [
      await http('/v1/info'),
      await http(`/v1/allocations?state=attached&limit=${PAGE}`),
      ['  store read (reads.listAllocations)', await cpuMs(reps, () => reads.listAllocations({ state: 'attached', limit: PAGE + 1 }))],
      ['  listAllocationPage (the read, the caller\'s views)', await cpuMs(reps, () => listAllocationPage(reads, ADMIN, { state: 'attached' }, { limit: PAGE + 1 }))],
      ['  JSON.stringify of the page (the server\'s serializer)', await cpuMs(reps, () => JSON.stringify(page))],
      ['  what-if: the page from the read mirror (memory the watch feeds; used only while the store does not answer)', await cpuMs(reps, () => mirror.listAllocations({ state: 'attached', limit: PAGE + 1 }))],
      await http(`/v1/hosts?limit=${PAGE}`),
      ['  hostSummaries', await cpuMs(reps, () => hostSummaries(source, ADMIN, {}, { limit: PAGE + 1 }))],
      ['  JSON.stringify of the page', await cpuMs(reps, () => JSON.stringify(summaries))],
    ];
    console.log(`${kind}: ${HOSTS} hosts x 4 PFs x 64 VFs, ${ALLOCATIONS} allocations attached; this process's CPU ms per call, mean of ${reps}`);
    for (const [what, ms] of rows) console.log(`  ${what}: ${ms.toFixed(2)} ms`);
  } finally {
    await app.close();
    control.sync.stop();
  }
}

export async function benchListCpu(opts: { reps?: number; etcdMembers?: number; only?: string } = {}): Promise<void> {
  const reps = opts.reps ?? 40;
  if (opts.only !== 'etcd') {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-list-cpu-'));
    const store = await openStore({ dataDir: dir });
    try {
      await measureStore('SQLite', store, dir, reps);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  if (opts.only !== 'sqlite') {
    const cluster = await startEtcd(opts.etcdMembers ?? 1);
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-list-cpu-'));
    try {
      const store = await openStore({ url: cluster.storeUrl, dataDir: dir });
      try {
        await measureStore(`etcd (${cluster.members.length} member(s))`, store, dir, reps);
      } finally {
        await store.close();
      }
    } finally {
      await cluster.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }
}

if (process.argv[1]?.endsWith('list-cpu.js')) {
  const { values } = parseArgs({ options: { reps: { type: 'string' }, etcd: { type: 'string' }, only: { type: 'string' } } });
  await benchListCpu({ reps: values.reps ? Number(values.reps) : undefined, etcdMembers: values.etcd ? Number(values.etcd) : undefined, only: values.only });
  process.exit(0);
}
