/**
 * What an idle host's heartbeats write, per host per hour, before (the whole
 * inventory with every report, as agents did) and after (the inventory hash
 * alone: touchHost) on a simulated 4 × 64-VF E810 host, through the
 * controller's report path in process:
 *
 * - SQLite: the WAL bytes each report appends (frames × (page + 24 bytes),
 *   with every liveness report written, and with the default (an idle host's
 *   heartbeat written once a minute: HostServiceOptions.heartbeatWriteMs);
 *   read by a second connection that checkpoints after each report);
 *   synchronous = NORMAL, so the WAL is what reaches the disk per commit;
 * - the store's logical writes (keys + JSON values as src/store/etcd/keys.ts
 *   lays them out: what an etcd Txn carries, and etcd's WAL and MVCC keep);
 * - with etcd installed, etcd's own WAL bytes (etcd_disk_wal_write_bytes_total)
 *   for the same puts (hosts/<name> whole before, alive/<name> after).
 *
 * And a fleet of idle hosts on one SQLite controller, reporting every 30 s
 * (bench/scale.ts's interval) with the default heartbeatWriteMs (60 s): each
 * due liveness write its own commit (heartbeatFlushMs 0, as before
 * heartbeat-batch.ts), then batched (the default: one transaction every 5 s).
 * Counted at the disk as SQLite writes it: every commit's WAL frames
 * (page + 24 bytes each) plus the checkpoint's copy of each page into the
 * database file (page bytes per frame, an upper bound), per host per
 * interval; and /proc/self/io write_bytes over the same run (page cache
 * pages dirtied: a page rewritten while still dirty counts once, so it
 * reads lower than the WAL + checkpoint count on a fast fake clock).
 *
 * Run: node dist/bench/heartbeat.js [reports] [fleet hosts] (defaults 60, 300).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { Etcd3 } from 'etcd3';
import { Reporter } from '../src/agent/reporter.js';
import { ControlPlane } from '../src/controller/control-plane.js';
import type { AgentReport } from '../src/controller/hosts.js';
import type { Actor } from '../src/domain/actor.js';
import type { HostRecord } from '../src/domain/types.js';
import { SriovHost } from '../src/host/configurator.js';
import { inventoryHash } from '../src/host/inventory-hash.js';
import type { HostInventory } from '../src/host/model.js';
import { createSimPorts } from '../src/sim/sim-host.js';
import { initSimHost } from '../src/sim/state.js';
import { keys } from '../src/store/etcd/keys.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { watchWrites } from '../test/helpers/store-writes.js';
import { ETCD, startEtcd } from '../test/support/etcd.js';

const HOST = 'bench-host';
const AGENT: Actor = { id: 'local', role: `agent:${HOST}` };
/** sriovd's default --heartbeat-interval. */
const INTERVAL_S = 10;
const PER_HOUR = 3600 / INTERVAL_S;
const K = keys();

type Mode = 'before' | 'after';

/** Date.now as a clock that `advance` moves: reports INTERVAL_S apart without waiting for them (restored by `restore`). */
function fakeClock(): { advance(ms: number): void; restore(): void } {
  const real = Date.now;
  let now = real();
  Date.now = () => now;
  return { advance: (ms) => void (now += ms), restore: () => void (Date.now = real) };
}

interface Measured {
  walBytes: number;
  logicalBytes: number;
  ms: number;
}

/** A simulated host of 4 E810 PFs with 64 VFs each, as its agent reads it. */
async function hostInventory(dir: string): Promise<HostInventory> {
  const file = join(dir, 'host.json');
  await initSimHost(file, { profile: 'ice', pfs: 4, hostname: HOST });
  const host = new SriovHost(createSimPorts(file));
  for (const pf of (await host.inventory()).pfs) await host.setNumVfs(pf.pciAddress, 64);
  return host.inventory();
}

/** The bytes of the keys and values a store write puts, as the etcd keyspace lays them out. */
function logicalBytes(method: string, args: unknown[]): number {
  if (method === 'putHost') {
    const h = args[0] as HostRecord;
    return K.host(h.name).length + JSON.stringify(h).length;
  }
  if (method === 'touchHost') {
    const [name, state, at] = args as [string, string, string];
    return K.alive(name).length + JSON.stringify({ state, at }).length;
  }
  return JSON.stringify(args).length;
}

/** `reports` idle heartbeats of one host after its registration, through the controller, on a fresh SQLite store. */
async function measureSqlite(mode: Mode, inventory: HostInventory, reports: number, heartbeatWriteMs?: number): Promise<Measured> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-heartbeat-'));
  const store = await openSqliteStore(dir);
  const wal = new Database(join(dir, 'vfleet.db'));
  try {
    const count = { bytes: 0 };
    const control = await ControlPlane.open(watchWrites(store, (method, args) => void (count.bytes += logicalBytes(method, args))), { heartbeatWriteMs });
    const send = (r: AgentReport) => control.hosts.receive(AGENT, r);
    const reporter = new Reporter(send);
    // Before: every report whole, as agents sent them. After: the agents' reporter (the hash alone while nothing changed).
    const report = mode === 'before' ? () => send({ inventory, inventoryHash: inventoryHash(inventory), statuses: [] }) : () => reporter.report(inventory, []);
    await report(); // registration: not part of the idle rate
    const pageBytes = (wal.pragma('page_size', { simple: true }) as number) + 24;
    // PASSIVE says how many frames the WAL holds; TRUNCATE then empties it (and reports 0), so each report is counted alone.
    const walFrames = () => {
      const frames = (wal.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>)[0]!.log;
      wal.pragma('wal_checkpoint(TRUNCATE)');
      return frames;
    };
    walFrames();
    count.bytes = 0;
    let frames = 0;
    let ms = 0;
    const clock = fakeClock();
    try {
      for (let i = 0; i < reports; i++) {
        clock.advance(INTERVAL_S * 1000);
        const started = performance.now();
        await report();
        // SQLite batches due heartbeats (heartbeat-batch.ts): one host's batch is its one heartbeat.
        await control.hosts.flushHeartbeats();
        ms += performance.now() - started;
        frames += walFrames();
      }
    } finally {
      clock.restore();
    }
    return { walBytes: (frames * pageBytes) / reports, logicalBytes: count.bytes / reports, ms: ms / reports };
  } finally {
    wal.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** etcd's own WAL bytes per heartbeat: the same puts an etcd store makes for each mode (keys.ts), on one real member. */
async function measureEtcd(inventory: HostInventory, reports: number): Promise<Record<Mode, number> | null> {
  if (!existsSync(ETCD) && !existsSync('/usr/bin/etcd')) return null;
  const cluster = await startEtcd(1);
  const client = new Etcd3({ hosts: cluster.endpoints });
  try {
    const walBytes = async () => {
      const text = await (await fetch(`${cluster.endpoints[0]}/metrics`)).text();
      return Number(/^etcd_disk_wal_write_bytes_total (\S+)$/m.exec(text)?.[1] ?? NaN);
    };
    const record = (at: string): HostRecord => ({ name: HOST, state: 'ready', lastHeartbeat: at, inventory, physnets: {}, deviceTypes: {}, drainedPfs: [], updatedAt: at });
    const put = {
      before: (at: string) => client.put(K.host(HOST)).value(JSON.stringify(record(at))),
      after: (at: string) => client.put(K.alive(HOST)).value(JSON.stringify({ state: 'ready', at })),
    };
    const out = { before: 0, after: 0 };
    for (const mode of ['before', 'after'] as const) {
      await put[mode](new Date().toISOString());
      const start = await walBytes();
      for (let i = 0; i < reports; i++) await put[mode](new Date().toISOString());
      out[mode] = ((await walBytes()) - start) / reports;
    }
    return out;
  } finally {
    client.close();
    await cluster.stop();
  }
}

/** bench/scale.ts's heartbeat interval, and its idle window. */
const FLEET_INTERVAL_MS = 30_000;
const FLEET_INTERVALS = 4;
/** The batch's flush interval (HostServiceOptions.heartbeatFlushMs' default), played by the fake clock. */
const FLUSH_MS = 5_000;

/** `inventory` as host `i` reports it: its own hostname and PF MACs (PF identities are per host). */
function fleetInventory(inventory: HostInventory, i: number): HostInventory {
  const copy = structuredClone(inventory);
  copy.hostname = `bench-host-${i}`;
  copy.pfs.forEach((pf, p) => (pf.mac = `b8:ce:f6:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}:0${p}`));
  return copy;
}

function procWriteBytes(): number {
  return Number(/^write_bytes: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? NaN);
}

interface FleetMeasured {
  /** WAL frames + checkpoint pages, bytes per host per interval. */
  diskBytes: number;
  commits: number;
  procBytes: number;
}

/**
 * `hosts` idle hosts' liveness reports over FLEET_INTERVALS intervals, each
 * host at its own offset in the interval; `flushMs` 0: each due write its own
 * commit (as before), else batched and flushed every flushMs of the clock.
 */
async function measureFleet(inventory: HostInventory, hosts: number, flushMs: number): Promise<FleetMeasured> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-heartbeat-fleet-'));
  const store = await openSqliteStore(dir);
  const wal = new Database(join(dir, 'vfleet.db'));
  // TRUNCATE waits for the store's checkpoint thread rather than leave frames to be counted twice.
  wal.pragma('busy_timeout = 5000');
  const clock = fakeClock();
  try {
    // A flush interval the real timer never reaches: the fake clock's slices flush (flushHeartbeats), as the timer would.
    const control = await ControlPlane.open(store, { heartbeatTimeoutMs: 120_000, heartbeatFlushMs: flushMs === 0 ? 0 : 3_600_000 });
    const hashes: string[] = [];
    for (let i = 0; i < hosts; i++) {
      const inv = fleetInventory(inventory, i);
      hashes.push(inventoryHash(inv));
      await control.hosts.receive({ id: 'local', role: `agent:${inv.hostname}` }, { inventory: inv, inventoryHash: hashes[i] });
      // Registered across a minute, so their due writes are spread as a fleet's are, not all in one interval.
      clock.advance(60_000 / hosts);
    }
    const pageBytes = wal.pragma('page_size', { simple: true }) as number;
    let frames = 0;
    let commits = 0;
    const walFrames = () => {
      const log = (wal.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>)[0]!.log;
      // The checkpoint thread may hold the file a moment (after registration's ~20 MB): try again.
      for (let tries = 0; (wal.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>)[0]!.busy; tries++) {
        if (tries > 1000) throw new Error('the WAL could not be emptied: frames would be counted twice');
      }
      if (log > 0) commits++;
      return log;
    };
    // Registration's writes are not part of the idle rate.
    clock.advance(60_000);
    walFrames();
    frames = 0;
    commits = 0;
    const slices = FLEET_INTERVAL_MS / FLUSH_MS;
    const started = procWriteBytes();
    for (let n = 0; n < FLEET_INTERVALS; n++) {
      for (let slice = 0; slice < slices; slice++) {
        for (let i = slice; i < hosts; i += slices) {
          clock.advance(FLUSH_MS / Math.ceil(hosts / slices) / 2);
          await control.hosts.receive({ id: 'local', role: `agent:bench-host-${i}` }, { inventoryHash: hashes[i] });
          if (flushMs === 0) frames += walFrames();
        }
        clock.advance(FLUSH_MS / 2);
        await control.hosts.flushHeartbeats();
        frames += walFrames();
      }
    }
    const perHostInterval = hosts * FLEET_INTERVALS;
    const procBytes = (procWriteBytes() - started) / perHostInterval;
    return { diskBytes: (frames * (pageBytes + 24 + pageBytes)) / perHostInterval, commits, procBytes };
  } finally {
    clock.restore();
    wal.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function benchFleet(inventory: HostInventory, hosts: number): Promise<void> {
  console.log(`heartbeat fleet: ${hosts} idle hosts on one SQLite controller, a report every ${FLEET_INTERVAL_MS / 1000} s, ${FLEET_INTERVALS} intervals, heartbeatWriteMs 60 s (loadavg ${readFileSync('/proc/loadavg', 'utf8').trim()})`);
  const perHost = await measureFleet(inventory, hosts, 0);
  const batched = await measureFleet(inventory, hosts, FLUSH_MS);
  const row = (what: string, m: FleetMeasured) =>
    console.log(`  ${what.padEnd(34)} WAL + checkpoint ${m.diskBytes.toFixed(0).padStart(6)} B per host per interval   commits ${String(m.commits).padStart(5)}   /proc/self/io write_bytes ${m.procBytes.toFixed(0).padStart(6)} B per host per interval`);
  row('each due write its own commit', perHost);
  row(`batched, one commit per ${FLUSH_MS / 1000} s`, batched);
  console.log(`  ratio ${(perHost.diskBytes / batched.diskBytes).toFixed(1)}×; target < 1 KiB per host per interval: ${batched.diskBytes < 1024 ? 'met' : 'NOT met'}`);
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 2 : 0)} KiB`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

function line(what: string, before: number, after: number): void {
  const ratio = after > 0 ? `${(before / after).toFixed(0)}×` : '∞';
  console.log(
    `  ${what.padEnd(22)} per report ${kb(before).padStart(11)} → ${kb(after).padStart(9)}   per host per hour ${mb(before * PER_HOUR).padStart(9)} → ${kb(after * PER_HOUR).padStart(10)}   ` +
      `1,000 hosts ${kb((before * 1000) / INTERVAL_S).padStart(10)}/s → ${kb((after * 1000) / INTERVAL_S).padStart(9)}/s   ratio ${ratio}`,
  );
}

export async function benchHeartbeat(reports = 60, fleetHosts = 300): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-host-'));
  try {
    const inventory = await hostInventory(dir);
    const vfs = inventory.pfs.reduce((n, pf) => n + pf.vfs.length, 0);
    console.log(`heartbeat: idle host of ${inventory.pfs.length} PFs × ${vfs / inventory.pfs.length} VFs (inventory JSON ${kb(JSON.stringify(inventory).length)}), ${reports} reports per mode, every ${INTERVAL_S} s`);
    console.log('  before: the whole inventory with every report; after: the inventory hash alone (touchHost)');
    const before = await measureSqlite('before', inventory, reports);
    // After, as on etcd: every liveness report written (touchHost). After, SQLite's default: written once a minute.
    const every = await measureSqlite('after', inventory, reports, 0);
    const after = await measureSqlite('after', inventory, reports);
    line('store writes (logical)', before.logicalBytes, every.logicalBytes);
    line('SQLite WAL, each touch', before.walBytes, every.walBytes);
    line('SQLite WAL (default)', before.walBytes, after.walBytes);
    const etcd = await measureEtcd(inventory, reports);
    if (etcd) line('etcd WAL (1 member)', etcd.before, etcd.after);
    else console.log('  etcd WAL: not measured (no etcd binary)');
    const ms = (m: Measured) => `${m.ms.toFixed(2)} ms`;
    console.log(`  controller time per report: ${ms(before)} → ${ms(every)} (touch each) / ${ms(after)} (default) (ratio ${(before.ms / after.ms).toFixed(1)}×)`);
    const worst = Math.max(after.walBytes, every.logicalBytes, etcd?.after ?? 0);
    console.log(`  target: idle heartbeat < 1 KiB per host per interval: ${worst < 1024 ? 'met' : 'NOT met'} (${worst.toFixed(0)} bytes at most: SQLite by default, etcd)`);
    if (fleetHosts > 0) await benchFleet(inventory, fleetHosts);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchHeartbeat(Number(process.argv[2] ?? 60), Number(process.argv[3] ?? 300));
