/**
 * How long a 64-VF switchdev node policy takes to apply on a simulated
 * ConnectX-6 Dx host (mlx5 profile: 4 PFs × 16 VFs, firmware NUM_OF_VFS 16),
 * from an inventory to the last VF rate read back: VFs created and bound,
 * unbound, the eswitch set to switchdev, rebound, rates on the devlink leaves.
 * Baseline, in the same process: the same policy in legacy mode (VFs
 * created and bound, rates with ip link).
 */
import { performance } from 'node:perf_hooks';
import { SriovHost } from '../src/host/configurator.js';
import { applyPlan } from '../src/policy/apply.js';
import { planPolicies } from '../src/policy/plan.js';
import { parsePolicyDocument } from '../src/policy/schema.js';
import { SimHost } from '../src/sim/sim-host.js';
import { MemorySimState } from '../src/sim/state.js';
import { median } from './stats.js';

const PFS = 4;
const VFS_PER_PF = 16;
const RUNS = 7;

const policy = (mode: 'switchdev' | 'legacy') => `policies:
  - name: cx6
    selector: { drivers: [mlx5_core] }
    numVfs: ${VFS_PER_PF}
    eswitchMode: ${mode}
    vfs:
      0-${VFS_PER_PF - 1}: { minTxRateMbps: 1000, maxTxRateMbps: 10000 }
`;

/** A fresh host, the policy planned against its inventory and applied; returns the time and checks the result. */
async function applyOnce(mode: 'switchdev' | 'legacy'): Promise<number> {
  const sim = new SimHost(new MemorySimState({ profile: 'mlx5', pfs: PFS, hostname: 'bench-sim' }));
  const host = new SriovHost(sim.ports);
  const policies = parsePolicyDocument(policy(mode));
  const t0 = performance.now();
  await applyPlan(host, planPolicies(await host.inventory(), policies));
  const ms = performance.now() - t0;
  const inventory = await host.inventory();
  const vfs = inventory.pfs.reduce((n, pf) => n + pf.vfs.filter((vf) => vf.driver === 'mlx5_core').length, 0);
  if (vfs !== PFS * VFS_PER_PF || inventory.pfs.some((pf) => pf.eswitchMode !== mode)) throw new Error(`${mode}: the policy did not converge`);
  if (mode === 'switchdev') {
    const leaves = (await Promise.all(inventory.pfs.map((pf) => sim.ports.devlink.rates(pf.pciAddress)))).flat();
    if (leaves.filter((l) => l.txMaxMbps === 10000 && l.txShareMbps === 1000).length !== PFS * VFS_PER_PF) throw new Error('switchdev: rates not on the leaves');
  }
  return ms;
}

export async function benchSwitchdevPolicy(): Promise<void> {
  const switchdev: number[] = [];
  const legacy: number[] = [];
  await applyOnce('switchdev'); // warm-up (JIT, module loads)
  await applyOnce('legacy');
  // Interleaved, so that a busy machine weighs on both alike.
  for (let i = 0; i < RUNS; i++) {
    switchdev.push(await applyOnce('switchdev'));
    legacy.push(await applyOnce('legacy'));
  }
  const s = median(switchdev);
  const l = median(legacy);
  console.log(
    `switchdev policy ${PFS}x${VFS_PER_PF} VFs (mlx5 sim): median ${s.toFixed(1)} ms (${((s * 1000) / (PFS * VFS_PER_PF)).toFixed(0)} µs/VF); ` +
      `baseline legacy policy ${l.toFixed(1)} ms; ratio ${(s / l).toFixed(2)}`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) await benchSwitchdevPolicy();
