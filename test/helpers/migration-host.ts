// A simulated two-PF igb host, a container namespace on it, and hand-built desired allocations for migration tests.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DesiredAllocation, DesiredMigration, DesiredState } from '../../src/controller/desired-state.js';
import { SriovHost } from '../../src/host/configurator.js';
import { SCRUBBED_VF_CONFIG, type PfInfo } from '../../src/host/model.js';
import type { HostPorts, NetnsPort } from '../../src/host/ports.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost, loadSimState } from '../../src/sim/state.js';

export const MAC = '02:5f:00:00:0c:01';
export const IPS = ['198.18.40.10/24'];
export const ROUTES = [{ dst: '198.19.40.0/24', gw: '198.18.40.1' }];

export interface MigrationHost {
  file: string;
  ports: HostPorts;
  host: SriovHost;
  /** The two PFs, each with 2 VFs on igbvf. */
  pfs: [PfInfo, PfInfo];
  netns: string;
}

let seq = 0;

export async function migrationHost(dir: string): Promise<MigrationHost> {
  const n = seq++;
  const file = join(dir, `host-${n}.json`);
  await initSimHost(file, { profile: 'igb', pfs: 2, hostname: 'sim-a' });
  const ports = createSimPorts(file);
  const host = new SriovHost(ports);
  const names = (await host.inventory()).pfs.map((pf) => pf.name);
  for (const name of names) await host.setNumVfs(name, 2, { deviceType: 'netdevice' });
  const netns = join(dir, `ns-${n}`);
  await writeFile(netns, '');
  return { file, ports, host, pfs: [await host.pf(names[0]!), await host.pf(names[1]!)], netns };
}

/** A container allocation of VF `vf` on `pf`, attached (by default) in `netns` as net1. */
export function containerAllocation(id: string, pf: PfInfo, vf: number, netns: string, over: Partial<DesiredAllocation> = {}): DesiredAllocation {
  return {
    id,
    state: 'attached',
    attachment: { kind: 'container', netns, ifname: 'net1', hostIfName: null, ips: [...IPS] },
    mtu: 1400,
    routes: ROUTES.map((r) => ({ ...r })),
    pfPciAddress: pf.pciAddress,
    vfIndex: vf,
    pciAddress: pf.vfs[vf]!.pciAddress,
    deviceType: 'netdevice',
    config: { ...SCRUBBED_VF_CONFIG, mac: MAC, vlan: 100 },
    migration: null,
    rateGroup: null,
    ...over,
  };
}

export function migration(role: DesiredMigration['role'], step: DesiredMigration['step'], peer: string): DesiredMigration {
  return { id: 'mig-1', role, step, peer };
}

export function desiredState(allocations: DesiredAllocation[], over: Partial<DesiredState> = {}): DesiredState {
  return { host: 'sim-a', revision: '1', policies: [], allocations, macPrefix: '02:5f:00', orphanGraceMs: 0, resync: 0, tasks: [], rateGroups: [], ...over };
}

/** The routes the simulated kernel holds for VF `pciAddress` inside its namespace (NetnsLink does not show them). */
export async function simRoutes(file: string, pciAddress: string): Promise<Array<{ dst: string; gw?: string }> | undefined> {
  const state = await loadSimState(file);
  return state.pfs.flatMap((pf) => pf.vfs).find((vf) => vf.pciAddress === pciAddress)?.netns?.routes;
}

const MUTATING = ['moveIn', 'setDown', 'renameIn', 'configure', 'writeSysctl', 'announce'] as const;

/** `ports` whose netns port runs `hook` around each call that changes a namespace or announces (a re-home's steps). */
export function hookedNetns(ports: HostPorts, hook: (method: string, call: () => Promise<unknown>, args: unknown[]) => Promise<unknown>): HostPorts {
  const inner = ports.netns;
  const netns = { ...inner } as Record<string, unknown>;
  for (const m of MUTATING) netns[m] = (...args: unknown[]) => hook(m, () => (inner[m] as (...a: unknown[]) => Promise<unknown>)(...args), args);
  return { ...ports, netns: netns as unknown as NetnsPort };
}
