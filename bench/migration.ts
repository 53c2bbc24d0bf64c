/**
 * The control plane's own time per migration step, on simulated hosts with
 * the SQLite store: the bench plays the agents (it reports the states they
 * would report, through `hosts.report`), so what is timed is the controller's
 * work alone: plan and reserve (`start`), then the handling of the report
 * that ends `prepare` (destination configured), `switch` (destination
 * attached: the source is marked releasing) and `release` (source released:
 * both freed, the migration completed).
 *
 * The baseline, run in the same process on the same fleet: the same steps of
 * a plain allocation's life (create; configured; attached; release and
 * released). The ratio is what a migration adds to each.
 *
 * Containers moving between the PFs of one host: no hypervisor task in the
 * way, so every step is the controller's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ControlPlane } from '../src/controller/control-plane.js';
import type { AllocationStatus } from '../src/controller/desired-state.js';
import type { Migrations } from '../src/controller/migration-request.js';
import type { Actor } from '../src/domain/actor.js';
import type { Allocation, HostRecord, Migration, MigrationStep } from '../src/domain/types.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { makeHost } from '../test/helpers/inventory.js';
import { median, percentile } from './stats.js';

const ADMIN: Actor = { id: 'bench', role: 'admin' };
const STEPS = ['reserve', 'prepare', 'switch', 'release'] as const;
type Step = (typeof STEPS)[number];
/** How many turns of the event loop a step may take to show after its report, for a service that finishes it in the background. */
const MAX_TURNS = 10_000;
/** Runs of each series left out of the numbers: the first ones pay for the JIT and SQLite's caches. */
const WARMUP = 8;

interface World {
  control: ControlPlane;
  hosts: HostRecord[];
  close(): Promise<void>;
}

/** A controller over a fresh SQLite store, `hostCount` hosts of 2 PFs × 64 VFs reported by their agents, one network. */
async function world(hostCount: number): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-migration-'));
  const store = await openSqliteStore(dir);
  const control = await ControlPlane.open(store);
  const hosts = Array.from({ length: hostCount }, (_, i) => makeHost({ name: `host-${String(i).padStart(3, '0')}`, pfs: 2, vfs: 64, driver: 'ice', linkSpeedMbps: 100_000 }));
  const policy = 'policies:\n  - name: fabric\n    selector: { pfNames: [ens1f0, ens2f0] }\n    numVfs: 64\n    physnet: fabric\n';
  for (const h of hosts) {
    await control.hosts.report(agentOf(h.name), h.inventory);
    await control.hosts.putPolicy(ADMIN, h.name, policy);
  }
  await control.networks.createTenant(ADMIN, 'acme');
  await control.networks.createNetwork(ADMIN, { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100 });
  const close = async () => {
    control.shutdown();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  };
  return { control, hosts, close };
}

const agentOf = (host: string): Actor => ({ id: `agent-${host}`, role: `agent:${host}` });

/** One agent report of `statuses`, as the host's agent sends it. */
async function report(w: World, host: string, statuses: AllocationStatus[]): Promise<void> {
  await w.control.hosts.report(agentOf(host), w.hosts.find((h) => h.name === host)!.inventory, statuses);
}

/** A container attached on `host`/ens1f0 VF `vf`, through the agent's reports. */
async function attached(w: World, host: string, vf: number): Promise<Allocation> {
  const pciAddress = w.hosts.find((h) => h.name === host)!.inventory.pfs[0]!.vfs[vf]!.pciAddress;
  const a = await w.control.allocations.create(ADMIN, {
    network: 'red',
    workload: { kind: 'container', name: `pod-${vf}` },
    host,
    pciAddress,
    attach: { kind: 'container', netns: `/var/run/netns/pod-${vf}`, ifname: 'net1' },
  });
  await report(w, host, [{ id: a.id, state: 'attached', hostIfName: `vf${vf}` }]);
  return a;
}

/** Until migration `id` is past `step` (or ended), yielding to the event loop between looks. */
async function past(migrations: Migrations, id: string, step: MigrationStep): Promise<Migration> {
  for (let turn = 0; turn < MAX_TURNS; turn++) {
    const m = await migrations.get(ADMIN, id);
    if (m.step !== step || m.state !== 'running') return m;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`migration ${id} did not get past ${step}`);
}

/** Milliseconds `fn` takes. */
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Each step of `count` container migrations, host-000's ens1f0 → ens2f0, one at a time. */
async function migrationSteps(w: World, count: number): Promise<Record<Step, number[]>> {
  const migrations = w.control.migrations;
  const times: Record<Step, number[]> = { reserve: [], prepare: [], switch: [], release: [] };
  const host = w.hosts[0]!.name;
  for (let i = 0; i < count; i++) {
    const source = await attached(w, host, i);
    let m!: Migration;
    times.reserve.push(await timed(async () => (m = await migrations.start(ADMIN, { allocation: source.id, to: { host, pf: 'ens2f0' } }))));
    const dest = m.to!.allocation;
    times.prepare.push(await timed(async () => (await report(w, host, [{ id: dest, state: 'configured' }]), await past(migrations, m.id, 'prepare'))));
    times.switch.push(await timed(async () => (await report(w, host, [{ id: dest, state: 'attached', hostIfName: `vf${i}` }]), await past(migrations, m.id, 'switch'))));
    times.release.push(await timed(async () => (await report(w, host, [{ id: source.id, state: 'released' }]), await past(migrations, m.id, 'release'))));
    const end = await migrations.get(ADMIN, m.id);
    if (end.state !== 'completed') throw new Error(`migration ${m.id} ended ${end.state}: ${end.reason}`);
  }
  return warm(times);
}

/** The same steps of a plain allocation's life: create, configured, attached, release and released. */
async function allocationSteps(w: World, count: number): Promise<Record<Step, number[]>> {
  const times: Record<Step, number[]> = { reserve: [], prepare: [], switch: [], release: [] };
  const host = w.hosts[0]!;
  for (let i = 0; i < count; i++) {
    const pciAddress = host.inventory.pfs[1]!.vfs[i]!.pciAddress;
    let a!: Allocation;
    const attach = { kind: 'container' as const, netns: `/var/run/netns/base-${i}`, ifname: 'net1' };
    times.reserve.push(await timed(async () => (a = await w.control.allocations.create(ADMIN, { network: 'red', workload: { kind: 'container', name: `base-${i}` }, host: host.name, pciAddress, attach }))));
    times.prepare.push(await timed(() => report(w, host.name, [{ id: a.id, state: 'configured' }])));
    times.switch.push(await timed(() => report(w, host.name, [{ id: a.id, state: 'attached', hostIfName: `vf${i}` }])));
    times.release.push(await timed(async () => (await w.control.allocations.delete(ADMIN, a.id), await report(w, host.name, [{ id: a.id, state: 'released' }]))));
  }
  return warm(times);
}

function warm(times: Record<Step, number[]>): Record<Step, number[]> {
  return Object.fromEntries(STEPS.map((s) => [s, times[s].slice(WARMUP)])) as Record<Step, number[]>;
}

export async function benchMigration(opts: { hosts?: number; migrations?: number } = {}): Promise<void> {
  const hostCount = opts.hosts ?? 50;
  // At most 64 with the warm-up: each moves to its own VF of ens2f0 (the source VFs are freed, the destinations stay).
  const count = Math.min(opts.migrations ?? 48, 64 - WARMUP);
  console.log(`migration steps, controller only (the bench plays the agents): ${hostCount} hosts x 2 PFs x 64 VFs, SQLite store, ${count} container migrations PF to PF`);
  const base = await world(hostCount);
  let baseline: Record<Step, number[]>;
  try {
    baseline = await allocationSteps(base, count + WARMUP);
  } finally {
    await base.close();
  }
  const w = await world(hostCount);
  try {
    const steps = await migrationSteps(w, count + WARMUP);
    for (const step of STEPS) {
      const m = median(steps[step]);
      const b = median(baseline[step]);
      const p99 = percentile([...steps[step]].sort((x, y) => x - y), 99);
      console.log(`  ${step.padEnd(8)} median ${m.toFixed(3)} ms (p99 ${p99.toFixed(3)} ms); plain allocation ${b.toFixed(3)} ms; ratio ${(m / b).toFixed(2)}x`);
    }
    const total = (r: Record<Step, number[]>) => STEPS.reduce((sum, s) => sum + median(r[s]), 0);
    console.log(`  whole migration ${total(steps).toFixed(3)} ms of controller time; a plain allocation's life ${total(baseline).toFixed(3)} ms; ratio ${(total(steps) / total(baseline)).toFixed(2)}x`);
  } finally {
    await w.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchMigration();
