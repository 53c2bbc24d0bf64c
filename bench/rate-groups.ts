/**
 * Placing a tenant's bandwidth group on 4 PFs: a simulated mlx5 host with 4
 * PFs in switchdev mode, one allocation per PF in the tenant's group; timed
 * is the agent's reconcile, until every PF has the node `vfleet-<tenant>`
 * with its rates and the VF's leaf parented to it.
 *
 * The baseline, run in the same process on the same host, interleaved with
 * it: the same 4 allocations without a group (so the same VF settings and
 * bindings, no rate tree). The ratio is what the group adds. Between runs,
 * untimed, the allocations are released (which deletes the nodes).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Reconciler } from '../src/agent/reconciler.js';
import type { DesiredAllocation, DesiredRateGroup, DesiredState } from '../src/controller/desired-state.js';
import { readRateTree } from '../src/host/rate-tree.js';
import { desiredState } from '../test/helpers/migration-host.js';
import { groupAllocation, rateGroup, switchdevHost, type SwitchdevHost } from '../test/helpers/switchdev-host.js';
import { median, timeMs } from './stats.js';

const PFS = 4;
const RUNS = 15;
const WARMUP = 2;
/** Passes a placement may take before the bench gives up on it. */
const MAX_PASSES = 5;

const state = (allocations: DesiredAllocation[], groups: DesiredRateGroup[]): DesiredState => desiredState(allocations, { rateGroups: groups });

/** Reconciles (timed) until `done`; returns the time and the passes it took. */
async function place(r: Reconciler, desired: DesiredState, done: () => Promise<boolean>): Promise<{ ms: number; passes: number }> {
  let ms = 0;
  for (let passes = 1; passes <= MAX_PASSES; passes++) {
    let errors: string[] = [];
    ms += await timeMs(async () => ({ errors } = await r.reconcile(desired)));
    if (errors.length) throw new Error(errors.join('; '));
    if (await done()) return { ms, passes };
  }
  throw new Error(`not placed after ${MAX_PASSES} passes`);
}

/** Every PF has the tenant's node and VF 0's leaf under it. */
async function groupsPlaced(sim: SwitchdevHost): Promise<boolean> {
  for (const pf of sim.pfs) {
    const tree = await readRateTree(sim.ports.devlink, pf.pciAddress);
    if (!tree.nodes.has('vfleet-acme') || tree.leaves.get(0)?.parent !== 'vfleet-acme') return false;
  }
  return true;
}

/** One placement, group or not, with a fresh agent, then its release (untimed). */
async function run(sim: SwitchdevHost, withGroup: boolean): Promise<{ ms: number; passes: number }> {
  const r = new Reconciler(sim.host);
  const allocations = sim.pfs.map((pf, i) => groupAllocation(`a${i}`, pf, 0, { state: 'pending', rateGroup: withGroup ? 'vfleet-acme' : null }));
  const groups = withGroup ? sim.pfs.map((pf) => rateGroup(pf)) : [];
  let configured = false;
  const result = await place(r, state(allocations, groups), async () => (withGroup ? groupsPlaced(sim) : configured || (configured = true)));
  const released = await r.reconcile(state(allocations.map((a) => ({ ...a, state: 'releasing' })), groups));
  if (released.errors.length || released.statuses.some((s) => s.state !== 'released')) throw new Error(`release: ${released.errors.join('; ')}`);
  if (withGroup) {
    const left = await Promise.all(sim.pfs.map((pf) => readRateTree(sim.ports.devlink, pf.pciAddress)));
    if (left.some((t) => t.nodes.size)) throw new Error('a node outlived its last VF');
  }
  return result;
}

export async function benchRateGroups(): Promise<void> {
  const dir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'vfleet-bench-rate-groups-'));
  try {
    const sim = await switchdevHost(dir, { pfs: PFS, vfs: 4 });
    const group: number[] = [];
    const base: number[] = [];
    let passes = 0;
    for (let i = 0; i < RUNS + WARMUP; i++) {
      const g = await run(sim, true);
      const b = await run(sim, false);
      if (i < WARMUP) continue;
      group.push(g.ms);
      base.push(b.ms);
      passes = Math.max(passes, g.passes);
    }
    const [gm, bm] = [median(group), median(base)];
    const load = (await readFile('/proc/loadavg', 'utf8').catch(() => '?')).trim();
    console.log(`rate groups: a tenant's group placed on ${PFS} switchdev PFs (mlx5, simulated), one allocation per PF, ${RUNS} runs, loadavg ${load}`);
    console.log(`  with the group: median ${gm.toFixed(1)} ms (${passes} pass${passes > 1 ? 'es' : ''}); baseline, no group: ${bm.toFixed(1)} ms; ratio ${(gm / bm).toFixed(2)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchRateGroups();
