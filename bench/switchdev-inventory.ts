/**
 * The inventory of a big simulated host in switchdev mode (ice: 64 PFs × 256
 * VFs = 16,384 VFs, each with a representor and a rate leaf, and a rate node
 * per PF) against the same host in legacy mode, in the same process: the
 * representor and leaf mapping must stay linear (one port and one rate read
 * per PF, maps by VF). Also a quarter of the host (16 PFs), to show the
 * growth. Run: `node dist/bench/switchdev-inventory.js`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { discoverHost } from '../src/host/discovery.js';
import type { HostPorts } from '../src/host/ports.js';
import { createSimPorts } from '../src/sim/sim-host.js';
import { initSimHost } from '../src/sim/state.js';

const VFS_PER_PF = 256;
const RUNS = 5;

async function host(dir: string, name: string, pfs: number, switchdev: boolean): Promise<HostPorts> {
  const file = join(dir, `${name}.json`);
  await initSimHost(file, { profile: 'ice', pfs });
  const ports = createSimPorts(file);
  for (const pf of await ports.sysfs.listSriovPfs()) {
    // ice changes eswitch mode only without VFs.
    if (switchdev) await ports.devlink.setEswitchMode(pf, 'switchdev');
    await ports.sysfs.writeNumVfs(pf, VFS_PER_PF);
    if (switchdev) {
      await ports.devlink.addRateNode(pf, 'vfleet-acme', { txShareMbps: 1000, txMaxMbps: 10_000 });
      await ports.devlink.setRate(`pci/${pf}/128`, { txShareMbps: 10, parent: 'vfleet-acme' });
    }
  }
  return ports;
}

/** Median ms of `RUNS` whole inventories; checks the VF count (and representors where expected). */
async function time(ports: HostPorts, vfs: number, switchdev: boolean): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const inv = await discoverHost(ports);
    ms.push(performance.now() - t0);
    const all = inv.pfs.flatMap((pf) => pf.vfs);
    if (all.length !== vfs) throw new Error(`expected ${vfs} VFs, got ${all.length}`);
    if (switchdev !== all.every((vf) => vf.representor?.netdev)) throw new Error('representors are not as expected');
  }
  return ms.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
}

export async function benchSwitchdevInventory(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-switchdev-'));
  try {
    const legacy = await time(await host(dir, 'legacy', 64, false), 64 * VFS_PER_PF, false);
    const switchdev = await time(await host(dir, 'switchdev', 64, true), 64 * VFS_PER_PF, true);
    const quarter = await time(await host(dir, 'quarter', 16, true), 16 * VFS_PER_PF, true);
    console.log(`switchdev inventory, ice 64 PFs × ${VFS_PER_PF} VFs (sim, median of ${RUNS}):`);
    console.log(`  legacy (baseline)      ${legacy.toFixed(0)} ms`);
    console.log(`  switchdev              ${switchdev.toFixed(0)} ms  (×${(switchdev / legacy).toFixed(2)} the legacy walk)`);
    console.log(`  switchdev, 16 PFs      ${quarter.toFixed(0)} ms  (64 PFs take ×${(switchdev / quarter).toFixed(2)} of it; 4.00 is linear)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchSwitchdevInventory();
