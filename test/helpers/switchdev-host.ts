// A simulated mlx5 host whose PFs are in switchdev mode (devlink rate leaves and nodes), and hand-built allocations that want a tenant's group.
import { join } from 'node:path';
import type { DesiredAllocation, DesiredRateGroup } from '../../src/controller/desired-state.js';
import { SriovHost } from '../../src/host/configurator.js';
import { SCRUBBED_VF_CONFIG, type PfInfo } from '../../src/host/model.js';
import type { HostPorts } from '../../src/host/ports.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';

export interface SwitchdevHost {
  file: string;
  ports: HostPorts;
  host: SriovHost;
  pfs: PfInfo[];
}

let seq = 0;
let macs = 0;

/**
 * `pfs` mlx5 PFs with `vfs` VFs each; those not in `legacy` (by index) in
 * switchdev mode, the mlx5 way: create the VFs, unbind them, set the mode.
 * The VFs are left unbound (an allocation binds its own).
 */
export async function switchdevHost(dir: string, opts: { pfs?: number; vfs?: number; legacy?: number[] } = {}): Promise<SwitchdevHost> {
  const file = join(dir, `switchdev-${seq++}.json`);
  await initSimHost(file, { profile: 'mlx5', pfs: opts.pfs ?? 2, hostname: 'sim-a' });
  const ports = createSimPorts(file);
  const host = new SriovHost(ports);
  const names = (await host.inventory()).pfs.map((pf) => pf.name);
  for (const [i, name] of names.entries()) {
    await host.setNumVfs(name, opts.vfs ?? 4);
    if (opts.legacy?.includes(i)) continue;
    for (const vf of (await host.pf(name)).vfs) if (vf.driver) await ports.drivers.unbind(vf.pciAddress);
    await ports.devlink.setEswitchMode((await host.pf(name)).pciAddress, 'switchdev');
  }
  return { file, ports, host, pfs: await Promise.all(names.map((n) => host.pf(n))) };
}

/** A reservation (no attachment) of VF `vf` on `pf`, configured, in tenant acme's group by default. */
export function groupAllocation(id: string, pf: PfInfo, vf: number, over: Partial<DesiredAllocation> = {}): DesiredAllocation {
  return {
    id,
    state: 'configured',
    attachment: null,
    mtu: null,
    routes: [],
    pfPciAddress: pf.pciAddress,
    vfIndex: vf,
    pciAddress: pf.vfs[vf]!.pciAddress,
    deviceType: 'netdevice',
    config: { ...SCRUBBED_VF_CONFIG, mac: `02:5f:00:0d:${((++macs >> 8) & 0xff).toString(16).padStart(2, '0')}:${(macs & 0xff).toString(16).padStart(2, '0')}` },
    migration: null,
    rateGroup: 'vfleet-acme',
    ...over,
  };
}

export function rateGroup(pf: PfInfo, over: Partial<DesiredRateGroup> = {}): DesiredRateGroup {
  return { pfPciAddress: pf.pciAddress, node: 'vfleet-acme', txShareMbps: 2000, txMaxMbps: 10000, ...over };
}
