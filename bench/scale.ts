/**
 * The fleet at scale: `sriovd` controllers in their own processes, the fleet
 * simulator (agent/fleet.ts) with N hosts x PFs x VFs reporting to them over
 * HTTP, and then, each printed with its baseline or target and the ratio:
 *   - allocations/s and p50/p99 at 1 and 32 concurrent clients (container
 *     attachments, which the fleet's agents then configure and attach);
 *   - a fresh controller's time to build its index (against a controller on
 *     an empty store, started in the same run);
 *   - controller RSS per VF and per 100k VFs (against the same controller
 *     before any host registered);
 *   - `host list` (first page) and `alloc list --state attached` (every page),
 *     in ms and bytes;
 *   - the RSS of a real `sriovd agent` on one 4 x 256-VF host.
 *
 *   node dist/bench/scale.js [--hosts 1000] [--pfs 4] [--vfs-per-pf 64]
 *     [--store etcd://... | --etcd N] [--controllers N] [--with-sqlite]
 *     [--heartbeat S] [--allocs-1 N] [--allocs-32 N] [--baseline OLD/bin/sriovd.js]
 *
 * The issue's setup in one command (2 controllers on a 3-member etcd that the
 * bench starts on loopback and stops, SQLite beside it on the same inventory):
 *   node dist/bench/scale.js --hosts 1000 --etcd 3 --controllers 2 --with-sqlite
 * With --with-sqlite a SQLite fleet (one controller) runs first and measures
 * what depends on the store: the idle heartbeats' writes, controller RSS per
 * VF, allocations at 1 and 32 clients, the lists and a fresh controller's
 * ready time. The etcd fleet then measures all of that and what does not
 * depend on the store or is etcd's alone (RSS after a fresh controller's first
 * heartbeat round, the agent's RSS, the etcd members' CPU, RSS and writes),
 * and the run ends with the etcd / SQLite ratios. Each stage prints its time
 * and the load average.
 *
 * With --baseline, the fresh controller's memory after the fleet's first
 * heartbeat round and the agent's RSS are measured for that build too, on
 * the same store and fleet, before this build's. A baseline from before
 * HostRecord.inventoryHash cannot stand beside this build there: on SQLite
 * it refuses the newer schema, and on etcd it rewrites the records the
 * fleet resends to it without their hashes, so this build's fresh controller
 * then asks every agent too. Compare such builds by running each one's own
 * bench (the same options, back to back).
 *
 * Without --store the controller keeps SQLite in its data dir. With an etcd
 * URL, --controllers N runs N controllers on it; the fleet and the clients
 * are spread over them.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { sleep } from '../src/host/wait.js';
import { agentMemory } from './agent-rss.js';
import { etcdCounters, since, startBenchEtcd, type EtcdCluster } from './scale-etcd.js';
import { call, cpuMsOf, ok, rssOf, spawnSriovd, SRIOVD, startController, writtenOf, type Call, type Proc } from './scale-procs.js';
import { percentile } from './stats.js';

const MB = 2 ** 20;
const NETWORK = 'scale';

interface Options {
  hosts: number;
  pfs: number;
  vfsPerPf: number;
  store?: string;
  controllers: number;
  heartbeatS: number;
  allocs1: number;
  allocs32: number;
  /** Another build's bin/sriovd.js: its fresh controller and its agent are measured too, in the same run. */
  baseline?: string;
  /** Members of an etcd cluster the bench starts on loopback (and stops), used as --store. */
  etcd?: number;
  /** A SQLite fleet (one controller) first, on the same inventory, for the etcd / SQLite ratios. */
  withSqlite: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      hosts: { type: 'string', default: '1000' },
      pfs: { type: 'string', default: '4' },
      'vfs-per-pf': { type: 'string', default: '64' },
      store: { type: 'string' },
      controllers: { type: 'string', default: '1' },
      heartbeat: { type: 'string', default: '30' },
      'allocs-1': { type: 'string', default: '300' },
      'allocs-32': { type: 'string', default: '3000' },
      baseline: { type: 'string' },
      etcd: { type: 'string' },
      'with-sqlite': { type: 'boolean', default: false },
    },
  });
  const o = {
    hosts: Number(values.hosts), pfs: Number(values.pfs), vfsPerPf: Number(values['vfs-per-pf']), store: values.store,
    controllers: Number(values.controllers), heartbeatS: Number(values.heartbeat), allocs1: Number(values['allocs-1']), allocs32: Number(values['allocs-32']), baseline: values.baseline,
    etcd: values.etcd === undefined ? undefined : Number(values.etcd), withSqlite: values['with-sqlite']!,
  };
  if (o.etcd !== undefined && (o.store || !Number.isInteger(o.etcd) || o.etcd < 1)) throw new Error('--etcd N: a number of members (1 or 3), and no --store beside it');
  if (o.withSqlite && !o.store?.startsWith('etcd://') && o.etcd === undefined) throw new Error('--with-sqlite runs SQLite beside etcd: give --etcd N or --store etcd://...');
  if (o.controllers > 1 && !o.store?.startsWith('etcd://') && o.etcd === undefined) throw new Error('--controllers above 1 needs --store etcd://... (a SQLite file has one controller)');
  return o;
}

const fmtMB = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
const fmtKB = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

/** The controllers, all on the same store; the first one's data dir holds the admin token. */
async function startControllers(dir: string, o: Options): Promise<Proc[]> {
  const procs: Proc[] = [];
  for (let i = 0; i < o.controllers; i++) procs.push(await startController(join(dir, `c${i}`), controllerArgs(o)));
  return procs;
}

const controllerArgs = (o: Options) => ['--heartbeat-timeout', String(o.heartbeatS * 4), ...(o.store ? ['--store', o.store] : [])];

async function waitFor(what: string, ms: number, probe: () => boolean | Promise<boolean>): Promise<number> {
  const t0 = performance.now();
  while (!(await probe())) {
    if (performance.now() - t0 > ms) throw new Error(`${what}: not within ${ms / 1000} s`);
    await sleep(1000);
  }
  return performance.now() - t0;
}

/** `count` allocations, `concurrency` in flight, spread over the controllers; each a container attachment. */
async function allocate(urls: string[], token: string, nsDir: string, first: number, count: number, concurrency: number) {
  const latencies = new Float64Array(count);
  let next = 0;
  let refused = 0;
  const refusals = new Map<string, number>();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, client) => {
      const url = urls[client % urls.length]!;
      while (next < count) {
        const i = next++;
        const name = `w${first + i}`;
        const started = performance.now();
        const body = { network: NETWORK, workload: { kind: 'container', name }, attach: { kind: 'container', netns: join(nsDir, name), ifname: 'net1' } };
        // A keep-alive socket the server closed as it was reused: sent again, the same attachment is found, not made twice.
        const r = await call(url, token, 'POST', '/v1/allocations', body).catch(() => call(url, token, 'POST', '/v1/allocations', body));
        latencies[i] = performance.now() - started;
        if (r.status >= 300) {
          refused++;
          const error = (r.body as { error?: { code?: string; claim?: string } } | null)?.error;
          const key = `${r.status} ${error?.code ?? ''}${error?.claim ? ` (claim ${error.claim})` : ''}`;
          refusals.set(key, (refusals.get(key) ?? 0) + 1);
        }
      }
    }),
  );
  const elapsed = performance.now() - t0;
  latencies.sort();
  if (refusals.size) console.log(`  refusals: ${[...refusals].map(([k, n]) => `${n} x ${k}`).join('; ')}`);
  return { perSecond: (count / elapsed) * 1000, p50: percentile(latencies, 50), p99: percentile(latencies, 99), refused };
}

/**
 * Every page of a list, following `Link: rel="next"`, and the first page
 * alone. A build without paging or filters refuses the query (400): the
 * plain path is then measured, and said so, as the figure before.
 */
async function pages(url: string, token: string, path: string) {
  let r = await call<unknown[]>(url, token, 'GET', path);
  const unpaged = r.status === 400;
  if (unpaged) r = await call<unknown[]>(url, token, 'GET', path.split('?')[0]!);
  const first = { ms: r.ms, bytes: r.bytes, items: r.body.length };
  let total = { ms: r.ms, bytes: r.bytes, items: r.body.length, pages: 1 };
  while (r.next) {
    r = await call<unknown[]>(url, token, 'GET', r.next);
    total = { ms: total.ms + r.ms, bytes: total.bytes + r.bytes, items: total.items + r.body.length, pages: total.pages + 1 };
  }
  return { unpaged, first, total };
}

function printList(label: string, { unpaged, first, total }: Awaited<ReturnType<typeof pages>>): void {
  const how = unpaged ? ' (this build refuses limit/filters: the whole unfiltered list)' : '';
  console.log(`  ${label}${how}: first page ${first.items} items, ${first.ms.toFixed(0)} ms, ${fmtKB(first.bytes)} (targets < 100 ms, < 1024 KB: ${(first.ms / 100).toFixed(2)}x, ${(first.bytes / MB).toFixed(2)}x); all ${total.pages} pages ${total.items} items, ${total.ms.toFixed(0)} ms, ${fmtKB(total.bytes)}`);
}

/**
 * `sriovd fleet-sim` in its own process, so that its thousand agents share
 * no event loop with the clients being timed; resolves once every VF has
 * been reported (its progress line comes every 10 s, so the time is to 10 s).
 */
async function provision(urls: string[], token: string, o: Options): Promise<Proc> {
  const want = o.hosts * o.pfs * o.vfsPerPf;
  const fleet = await spawnSriovd(
    ['fleet-sim', '--hosts', String(o.hosts), '--pfs', String(o.pfs), '--vfs-per-pf', String(o.vfsPerPf), '--server', urls.join(','), '--token', token,
      '--prefix', 'scale', '--physnet', 'fleet', '--heartbeat-interval', String(o.heartbeatS), '--resync-interval', '3600', '--stagger-ms', '2'],
    /fleet-sim: \d+ hosts/,
  );
  const progress = () => [...fleet.tail().matchAll(/(\d+) reporting, (\d+) VFs/g)].at(-1);
  const t0 = performance.now();
  await waitFor(`${want} VFs reported`, 30 * 60_000, () => Number(progress()?.[2] ?? 0) >= want);
  console.log(`fleet: ${progress()?.[1]} hosts reporting ${progress()?.[2]} VFs, ${((performance.now() - t0) / 1000).toFixed(0)} s after fleet-sim started`);
  return fleet;
}

type Rate = Awaited<ReturnType<typeof allocate>>;

interface Allocations {
  one: Rate;
  many: Rate;
  /** Allocations made (not refused). */
  made: number;
}

/** CPU ms each process of the bench has used so far: the controllers, the fleet simulator, the clients (this process) and etcd's members. */
interface CpuSample {
  controllers: number[];
  fleet: number;
  clients: number;
  etcd: number;
}

async function cpuSample(pids: { controllers: number[]; fleet: number }, cluster: EtcdCluster | null): Promise<CpuSample> {
  const { user, system } = process.cpuUsage();
  return {
    controllers: await Promise.all(pids.controllers.map((pid) => cpuMsOf(pid))),
    fleet: await cpuMsOf(pids.fleet),
    clients: (user + system) / 1000,
    etcd: cluster ? (await etcdCounters(cluster)).cpuMs : 0,
  };
}

/**
 * Where the CPU of a stage went, per allocation, by process: what bounds the
 * rate on a machine of this many cores once every process is busy.
 */
function printCpu(label: string, a: CpuSample, b: CpuSample, count: number, elapsedMs: number): void {
  const per = (ms: number) => ms / count;
  const controllers = b.controllers.map((ms, i) => per(ms - a.controllers[i]!));
  const parts = { controllers: controllers.reduce((x, y) => x + y, 0), fleet: per(b.fleet - a.fleet), clients: per(b.clients - a.clients), etcd: per(b.etcd - a.etcd) };
  const total = parts.controllers + parts.fleet + parts.clients + parts.etcd;
  const cores = availableParallelism();
  console.log(
    `  ${label}: CPU per allocation ${total.toFixed(2)} ms = controllers ${parts.controllers.toFixed(2)} (${controllers.map((c) => c.toFixed(2)).join(' + ')}), fleet-sim ${parts.fleet.toFixed(2)}, clients ${parts.clients.toFixed(2)}, etcd ${parts.etcd.toFixed(2)}; ` +
      `the machine busy ${((total * count) / elapsedMs / cores * 100).toFixed(0)}% of ${cores} cores; at this cost ${cores} cores allow ${Math.round((cores * 1000) / total)} allocations/s`,
  );
}

async function measureAllocations(urls: string[], token: string, dir: string, o: Options, pids: { controllers: number[]; fleet: number }, cluster: EtcdCluster | null): Promise<Allocations> {
  const nsDir = join(dir, 'ns');
  await mkdir(nsDir, { recursive: true });
  const total = o.allocs1 + o.allocs32;
  // A sim namespace lives as long as its path exists (sim/netns.ts).
  for (let i = 0; i < total; i++) await writeFile(join(nsDir, `w${i}`), '');
  const etcd0 = cluster ? await etcdCounters(cluster) : null;
  const [cpu0, t0] = [await cpuSample(pids, cluster), performance.now()];
  const one = await allocate(urls, token, nsDir, 0, o.allocs1, 1);
  const [cpu1, t1] = [await cpuSample(pids, cluster), performance.now()];
  const many = await allocate(urls, token, nsDir, o.allocs1, o.allocs32, 32);
  const [cpu2, t2] = [await cpuSample(pids, cluster), performance.now()];
  // The agents attach what was allocated after the answer: their work for the last allocations falls after the stage.
  printCpu('1 client', cpu0, cpu1, o.allocs1, t1 - t0);
  printCpu('32 clients', cpu1, cpu2, o.allocs32, t2 - t1);
  const elapsed = t2 - t0;
  if (cluster && etcd0) {
    const d = since(etcd0, await etcdCounters(cluster));
    console.log(`  the ${d.members} etcd members: WAL ${fmtKB(d.walBytes / d.members / total)} and ${(d.puts / d.members / total).toFixed(1)} puts per allocation per member (heartbeats included); members' RSS ${fmtMB(d.rss)} together; ${((d.cpuMs / elapsed) * 100).toFixed(0)}% of a core together`);
    const calls = Object.entries(d.calls).sort(([, a], [, b]) => b - a).map(([k, n]) => `${k} ${(n / total).toFixed(2)}`).join(', ');
    console.log(`  etcd calls per allocation (all members, heartbeats and agents' reports included): ${calls}; ${fmtKB(d.sentBytes / total)} answered per allocation`);
  }
  const line = (n: number, r: Rate) => `${n} clients: ${Math.round(r.perSecond)} allocations/s; p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms; ${r.refused} refused`;
  console.log(`allocations (${storeLabel(o)}, ${urls.length} controller(s)):\n  ${line(1, one)}\n  ${line(32, many)}\n  32 vs 1: ${(many.perSecond / one.perSecond).toFixed(2)}x the rate`);
  return { one, many, made: total - one.refused - many.refused };
}

const storeLabel = (o: Options) => (o.store?.startsWith('etcd://') ? `etcd${o.etcd ? ` (${o.etcd} members)` : ''}` : 'SQLite');

/** Every page of the attached allocations (the list pages: one page is at most 1,000). */
async function countAttached(url: string, token: string): Promise<number> {
  let count = 0;
  for (let path: string | null = '/v1/allocations?state=attached&limit=1000'; path !== null; ) {
    const page: Call<unknown[]> = await call<unknown[]>(url, token, 'GET', path);
    if (page.status >= 300) throw new Error(`GET ${path}: ${page.status} ${JSON.stringify(page.body).slice(0, 500)}`);
    count += page.body.length;
    path = page.next;
  }
  return count;
}

/**
 * The requests a controller answered so far, from its /metrics
 * (vfleet_http_request_duration_seconds_count), keyed `METHOD route status`:
 * for POST /v1/agent/report, 409 is inventoryNeeded (the agent then sends its
 * inventory whole), 503 the upload gate's "later" (api/upload-gate.ts).
 */
async function requestCounts(url: string, token: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^vfleet_http_request_duration_seconds_count\{([^}]*)\} (\d+)/gm)) {
    const label = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(m[1]!)?.[1] ?? '?';
    const key = `${label('method')} ${label('route')} ${label('status')}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(m[2]));
  }
  return counts;
}

/** requestCounts summed over the controllers. */
async function allRequestCounts(urls: string[], token: string): Promise<Map<string, number>> {
  const sum = new Map<string, number>();
  for (const url of urls) for (const [key, n] of await requestCounts(url, token)) sum.set(key, (sum.get(key) ?? 0) + n);
  return sum;
}

/** The agent reports answered, by status. */
function reportAnswers(counts: Map<string, number>): Map<string, number> {
  const answers = new Map<string, number>();
  for (const [key, n] of counts) {
    const [method, route, status] = key.split(' ') as [string, string, string];
    if (method === 'POST' && route === '/v1/agent/report') answers.set(status, (answers.get(status) ?? 0) + n);
  }
  return answers;
}

/** The requests between two counts, per allocation made, by route (every status). */
function printRequestsPer(before: Map<string, number>, after: Map<string, number>, made: number): void {
  const byRoute = new Map<string, number>();
  for (const [key, n] of after) {
    const route = key.split(' ').slice(0, 2).join(' ');
    byRoute.set(route, (byRoute.get(route) ?? 0) + n - (before.get(key) ?? 0));
  }
  const lines = [...byRoute].filter(([, n]) => n > 0).sort(([, a], [, b]) => b - a);
  const total = lines.reduce((sum, [, n]) => sum + n, 0);
  console.log(`  HTTP requests the controllers answered per allocation, until every one was attached: ${(total / made).toFixed(2)} (${lines.map(([route, n]) => `${route} ${(n / made).toFixed(2)}`).join(', ')})`);
}

/**
 * A fresh controller of `bin` on the store the first one left, on its port, so
 * that the fleet reports to it: ready time, then RSS after the fleet's first
 * heartbeat round, and how many agents it asked for their inventory in that
 * round. Records stored with their inventory hash (HostRecord.inventoryHash)
 * are taken by it on the agents' liveness reports; a build that keeps the
 * hashes in memory only asks every agent, and the fleet resends. Stops it,
 * unless it is this build's, which the bench goes on with.
 */
async function freshController(dir: string, o: Options, port: string, vfs: number, empty: { rss: number; readyMs: number }, bin: string, token: string, started: (c: Proc) => void): Promise<{ rss: number; peak: number }> {
  const fresh = await startController(join(dir, 'c0'), [...controllerArgs(o), '--listen', `127.0.0.1:${port}`], bin);
  started(fresh);
  const which = bin === SRIOVD ? 'this build' : 'baseline build';
  const freshRss = (await rssOf(fresh.proc.pid!)).rss;
  console.log(`fresh controller (${which}) ready in ${fresh.readyMs.toFixed(0)} ms with ${vfs} VFs, ${empty.readyMs.toFixed(0)} ms on an empty store (${(fresh.readyMs / empty.readyMs).toFixed(2)}x); target < 5000 ms: ${(fresh.readyMs / 5000).toFixed(2)}x; its RSS ${fmtMB(freshRss)} at once (empty store: ${fmtMB(empty.rss)})`);
  await sleep(o.heartbeatS * 1000 * 1.5);
  const after = await rssOf(fresh.proc.pid!);
  const answers = reportAnswers(await requestCounts(fresh.url, token));
  console.log(`  after a heartbeat round from the fleet: RSS ${fmtMB(after.rss)} (peak ${fmtMB(after.peak)}): ${((after.rss - empty.rss) / vfs).toFixed(0)} B per VF over the empty store's; target <= 300 MB at 256k VFs`);
  console.log(`  its agent reports: ${answers.get('409') ?? 0} of ${o.hosts} hosts asked for their inventory (409 inventoryNeeded, each then sent whole), ${answers.get('503') ?? 0} inventories put off by the upload gate (503), ${answers.get('200') ?? 0} reports taken (200)`);
  if (bin !== SRIOVD) await fresh.stop();
  return after;
}

/** Runs `fn` as a named stage, then prints its time and the load average (the machine may be shared). */
async function stage<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const out = await fn();
  console.log(`  [stage ${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s; loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')}]`);
  return out;
}

/** What the idle fleet's heartbeats wrote over a window, in bytes per second and per host per heartbeat interval. */
interface IdleWrites {
  /** SQLite: the bytes the controller sent to disk; etcd: the WAL bytes one member wrote. */
  bytesPerS: number;
  perHostPerInterval: number;
}

/**
 * The idle fleet's heartbeats for `windowS`: on SQLite what the controller
 * sent to disk (its data dir is on one: WAL and checkpoints; an idle host's
 * heartbeat is written once a minute), on etcd what each member wrote to its WAL, the
 * puts it applied and the bytes the controllers sent it (every liveness report
 * bumps the host's alive/ key).
 */
async function idleWrites(o: Options, controllers: Proc[], cluster: EtcdCluster | null, windowS: number): Promise<IdleWrites> {
  const written = async () => (await Promise.all(controllers.map((c) => writtenOf(c.proc.pid!)))).reduce((a, b) => a + b, 0);
  const [w0, e0] = [await written(), cluster ? await etcdCounters(cluster) : null];
  const t0 = performance.now();
  await sleep(windowS * 1000);
  const s = (performance.now() - t0) / 1000;
  const [w1, e1] = [await written(), cluster ? await etcdCounters(cluster) : null];
  const perHost = (bytesPerS: number) => (bytesPerS * o.heartbeatS) / o.hosts;
  const verdict = (b: number) => `target < 1024 B per host per interval: ${(perHost(b) / 1024).toFixed(2)}x`;
  const controllersPerS = (w1 - w0) / s;
  console.log(`idle heartbeats (${storeLabel(o)}, ${o.hosts} hosts every ${o.heartbeatS} s, ${s.toFixed(0)} s window):`);
  console.log(`  the controller(s) sent ${fmtKB(controllersPerS)}/s to disk (write_bytes: SQLite's WAL and checkpoints, 4 KB pages), ${perHost(controllersPerS).toFixed(0)} B per host per interval${cluster ? '' : `; ${verdict(controllersPerS)}`}`);
  if (!cluster || !e0 || !e1) return { bytesPerS: controllersPerS, perHostPerInterval: perHost(controllersPerS) };
  const d = since(e0, e1);
  const wal = d.walBytes / d.members / s;
  console.log(`  etcd, per member: WAL ${fmtKB(wal)}/s, ${perHost(wal).toFixed(0)} B per host per interval (${verdict(wal)}); ${(d.puts / d.members / s).toFixed(1)} puts/s; bbolt file ${d.dbBytes >= 0 ? '+' : ''}${fmtKB(d.dbBytes / d.members)}`);
  console.log(`  etcd, all ${d.members} members: clients sent them ${fmtKB(d.clientBytes / s)}/s (${(d.clientBytes / s / ((o.hosts / o.heartbeatS) || 1)).toFixed(0)} B per heartbeat); ${((d.cpuMs / 1000 / s) * 100).toFixed(1)}% of a core together; RSS ${fmtMB(d.rss)} together`);
  return { bytesPerS: wal, perHostPerInterval: perHost(wal) };
}

/** What one store's fleet measured, for the ratios at the end. */
interface FleetResult {
  label: string;
  allocations: Allocations;
  idle: IdleWrites;
  perVf: number;
  readyMs: number;
}

/** The URL of an empty keyspace on the same etcd (another prefix), or null for SQLite's empty data dir. */
const emptyStore = (o: Options): string[] => (o.store?.startsWith('etcd://') ? ['--store', `${/^etcd:\/\/[^/]+/.exec(o.store)![0]}/vfleet-empty`] : []);

/** A fresh controller on the store the fleet left (not its port): its time to build the index, then stopped. */
async function freshReady(dir: string, o: Options, vfs: number, emptyReadyMs: number): Promise<number> {
  const fresh = await startController(join(dir, 'c0'), controllerArgs(o));
  await fresh.stop();
  console.log(`fresh controller (${storeLabel(o)}) ready in ${fresh.readyMs.toFixed(0)} ms with ${vfs} VFs, ${emptyReadyMs.toFixed(0)} ms on an empty store (${(fresh.readyMs / emptyReadyMs).toFixed(2)}x); target < 5000 ms: ${(fresh.readyMs / 5000).toFixed(2)}x`);
  return fresh.readyMs;
}

/**
 * One fleet on one store. `full`: everything; otherwise (SQLite beside etcd)
 * what depends on the store, and a fresh controller's ready time without
 * waiting for its heartbeat round, nor the agent (store-independent).
 */
async function run(o: Options, dir: string, cluster: EtcdCluster | null, full: boolean): Promise<FleetResult> {
  const vfs = o.hosts * o.pfs * o.vfsPerPf;
  console.log(`\nscale: ${o.hosts} hosts x ${o.pfs} PFs x ${o.vfsPerPf} VFs = ${vfs} VFs; store ${storeLabel(o)}${o.store ? ` ${o.store}` : ''}; ${o.controllers} controller(s); heartbeat ${o.heartbeatS} s`);
  const empty = await startController(join(dir, 'empty'), emptyStore(o));
  const emptyRss = (await rssOf(empty.proc.pid!)).rss;
  await empty.stop();
  let controllers = await startControllers(dir, o);
  const urls = controllers.map((c) => c.url);
  const token = (await readFile(join(dir, 'c0', 'admin.token'), 'utf8')).trim();
  const baseRss = (await rssOf(controllers[0]!.proc.pid!)).rss;
  let fleet: Proc | null = null;
  try {
    fleet = await stage('provision', () => provision(urls, token, o));
    const fleetRss = await rssOf(fleet.proc.pid!);
    console.log(`fleet-sim process: RSS ${fmtMB(fleetRss.rss)} (peak ${fmtMB(fleetRss.peak)}), ${fmtKB(fleetRss.rss / o.hosts)} per simulated host`);
    // A heartbeat round at rest before measuring memory.
    await stage('settle', () => sleep(o.heartbeatS * 1000));
    const loaded = await rssOf(controllers[0]!.proc.pid!);
    const perVf = (loaded.rss - baseRss) / vfs;
    console.log(`controller RSS: ${fmtMB(baseRss)} empty, ${fmtMB(loaded.rss)} with ${vfs} VFs (peak ${fmtMB(loaded.peak)}): ${perVf.toFixed(0)} B per VF, ${fmtMB(perVf * 100_000)} per 100k VFs; target <= 1024 B per VF: ${(perVf / 1024).toFixed(2)}x`);
    for (const c of controllers.slice(1)) console.log(`  controller ${c.url}: RSS ${fmtMB((await rssOf(c.proc.pid!)).rss)}`);
    // Two intervals: on SQLite an idle host's heartbeat reaches the store once a minute.
    const idle = await stage('idle heartbeats', () => idleWrites(o, controllers, cluster, Math.max(60, 2 * o.heartbeatS)));
    await ok(urls[0]!, token, 'POST', '/v1/tenants', { name: NETWORK });
    await ok(urls[0]!, token, 'POST', '/v1/networks', { name: NETWORK, tenant: NETWORK, physnet: 'fleet', vlan: 100 });
    const requestsBefore = await allRequestCounts(urls, token);
    const answersBefore = reportAnswers(requestsBefore);
    const allocations = await stage('allocations', () => measureAllocations(urls, token, dir, o, { controllers: controllers.map((c) => c.proc.pid!), fleet: fleet!.proc.pid! }, cluster));
    const made = allocations.made;
    const attachedMs = await waitFor('allocations attached', 300_000, async () => (await countAttached(urls[0]!, token)) >= made).catch(() => NaN);
    const attached = Number.isNaN(attachedMs) ? `only ${await countAttached(urls[0]!, token)} of ${made} attached 300 s after the last was made` : `${made} attached ${(attachedMs / 1000).toFixed(1)} s after the last was made`;
    console.log(`  by the fleet's agents: ${attached}`);
    // A pass that configures a VF changes the host's inventory, so its report (with the VF's status) carries the inventory whole, through the upload gate.
    const requestsAfter = await allRequestCounts(urls, token);
    const answers = reportAnswers(requestsAfter);
    printRequestsPer(requestsBefore, requestsAfter, made);
    const since = (status: string) => (answers.get(status) ?? 0) - (answersBefore.get(status) ?? 0);
    console.log(`  agent reports meanwhile, all controllers: ${since('200')} taken (200), ${since('503')} put off by the upload gate (503), ${since('409')} asked for the inventory (409)`);
    await stage('lists', async () => {
      for (const [i, url] of urls.entries()) {
        const which = urls.length > 1 ? ` (controller ${i + 1})` : '';
        printList(`alloc list --state attached${which}`, await pages(url, token, '/v1/allocations?state=attached&limit=500'));
        printList(`host list${which}`, await pages(url, token, '/v1/hosts?limit=500'));
      }
    });
    // A fresh controller: the first one stops, another starts on the same store and port, builds its index, and the fleet reports to it.
    const port = new URL(urls[0]!).port;
    await Promise.all(controllers.map((c) => c.stop()));
    controllers = [];
    if (!full) {
      await fleet.stop();
      fleet = null;
      const readyMs = await stage('fresh controller', () => freshReady(dir, o, vfs, empty.readyMs));
      return { label: storeLabel(o), allocations, idle, perVf, readyMs };
    }
    let readyMs = NaN;
    await stage('fresh controller', async () => {
      const before = o.baseline ? await freshController(dir, o, port, vfs, { rss: emptyRss, readyMs: empty.readyMs }, o.baseline, token, (c) => (controllers = [c])) : null;
      const now = await freshController(dir, o, port, vfs, { rss: emptyRss, readyMs: empty.readyMs }, SRIOVD, token, (c) => (controllers = [c]));
      readyMs = controllers[0]!.readyMs;
      if (before) console.log(`  fresh controller after the fleet's first heartbeat round: ${fmtMB(now.rss)}, baseline build ${fmtMB(before.rss)}: ${(now.rss / before.rss).toFixed(2)}x (peak ${(now.peak / before.peak).toFixed(2)}x); target <= 300 MB: ${(now.rss / (300 * MB)).toFixed(2)}x`);
    });
    const fresh = controllers[0]!;
    await stage('agent RSS', () => agentMemory(dir, fresh.url, token, o.baseline));
    return { label: storeLabel(o), allocations, idle, perVf, readyMs };
  } catch (e) {
    // A controller that died says why in its own log.
    for (const c of controllers) if (c.proc.exitCode !== null || c.proc.signalCode !== null) console.error(`controller ${c.url} exited (${c.proc.exitCode ?? c.proc.signalCode}):\n${c.tail()}`);
    if (fleet && (fleet.proc.exitCode !== null || fleet.proc.signalCode !== null)) console.error(`fleet-sim exited (${fleet.proc.exitCode ?? fleet.proc.signalCode}):\n${fleet.tail()}`);
    throw e;
  } finally {
    await fleet?.stop();
    await Promise.all(controllers.map((c) => c.stop()));
  }
}

/** etcd against SQLite, same inventory, same run. */
function printRatios(sqlite: FleetResult, etcd: FleetResult, o: Options): void {
  const [s, e] = [sqlite.allocations, etcd.allocations];
  console.log(`\n${etcd.label}, ${o.controllers} controller(s), against SQLite, 1 controller (same inventory, same run):`);
  const line = (n: number, a: Rate, b: Rate) => `  ${n} clients: ${Math.round(a.perSecond)} vs ${Math.round(b.perSecond)} allocations/s: ${(a.perSecond / b.perSecond).toFixed(2)}x; p50 ${a.p50.toFixed(1)} vs ${b.p50.toFixed(1)} ms, p99 ${a.p99.toFixed(1)} vs ${b.p99.toFixed(1)} ms: ${(a.p99 / b.p99).toFixed(2)}x`;
  console.log(line(1, e.one, s.one));
  console.log(line(32, e.many, s.many));
  console.log(`  etcd at 32 clients against the target (>= 2000/s, p99 < 50 ms): ${(e.many.perSecond / 2000).toFixed(2)}x the rate, ${(e.many.p99 / 50).toFixed(2)}x the p99`);
  console.log(`  fresh controller ready: ${etcd.readyMs.toFixed(0)} vs ${sqlite.readyMs.toFixed(0)} ms: ${(etcd.readyMs / sqlite.readyMs).toFixed(2)}x`);
  console.log(`  controller RSS per VF: ${etcd.perVf.toFixed(0)} vs ${sqlite.perVf.toFixed(0)} B: ${(etcd.perVf / sqlite.perVf).toFixed(2)}x`);
  console.log(`  idle heartbeats per host per interval: ${etcd.idle.perHostPerInterval.toFixed(0)} B (one etcd member's WAL) vs ${sqlite.idle.perHostPerInterval.toFixed(0)} B (the SQLite controller's disk writes)`);
}

async function main(o: Options): Promise<void> {
  const t0 = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-scale-'));
  const cluster = o.etcd ? await startBenchEtcd(o.etcd) : null;
  try {
    const onEtcd: Options = cluster ? { ...o, store: cluster.storeUrl } : o;
    const sqlite = o.withSqlite ? await stage('SQLite fleet', () => run({ ...o, store: undefined, controllers: 1 }, join(dir, 'sqlite'), null, false)) : null;
    const onStore = await stage(`${storeLabel(onEtcd)} fleet`, () => run(onEtcd, join(dir, 'main'), cluster, true));
    if (sqlite) printRatios(sqlite, onStore, onEtcd);
    console.log(`\nscale bench: ${((performance.now() - t0) / 1000).toFixed(0)} s in all; loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main(options());
