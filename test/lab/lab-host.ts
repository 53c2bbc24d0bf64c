/**
 * Helpers for tests that run inside the SR-IOV lab guest (test/lab/lab.sh),
 * where the PFs are real emulated 82576 NICs driven by igb.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { SriovHost } from '../../src/host/configurator.js';
import { createLinuxPorts } from '../../src/host/linux/index.js';
import { waitFor } from '../../src/host/wait.js';

export function requireLab(): void {
  if (process.env.LAB_GUEST !== '1') {
    throw new Error('this suite needs the SR-IOV lab guest: run it with `npm run test:lab` (needs root)');
  }
}

/** The igb PFs of the guest, brought up with no VFs; link up so max_tx_rate is accepted. */
export async function labPfs(host = new SriovHost(createLinuxPorts({}))): Promise<string[]> {
  requireLab();
  const inv = await host.inventory();
  const pfs = inv.pfs.filter((p) => p.driver === 'igb').map((p) => p.name);
  if (pfs.length === 0) throw new Error('no igb PF in the lab guest');
  for (const name of pfs) {
    await host.setNumVfs(name, 0);
    await host.ports.links.setUp(name);
    await waitFor(`link up on ${name}`, 20_000, async () => ((await host.ports.sysfs.readNetdev(name))?.speedMbps ? true : undefined));
  }
  return pfs;
}

/** One `vfinfo_list` entry of `ip -j -d link show`, as the kernel reports it (no vfleet code in between). */
export interface RawVf {
  vf: number;
  address: string;
  vlan_list?: Array<{ vlan?: number; qos?: number }>;
  spoofchk?: boolean;
  trust?: boolean;
  rate?: { max_tx?: number };
}

export function rawVfs(pf: string): RawVf[] {
  return JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show', 'dev', pf], { encoding: 'utf8' }))[0].vfinfo_list ?? [];
}

/** true: namespace `ns` pings `ip` and gets replies; false: none (ping's status 1). Anything else (no ping, bad namespace) throws. */
export function ping(ns: string, ip: string): boolean {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'ping', '-c', '2', '-W', '2', '-q', ip], { encoding: 'utf8' });
  if (r.status === 0 || r.status === 1) return r.status === 0;
  throw new Error(`ping from ${ns} to ${ip} could not run (status ${r.status}): ${r.stderr}`);
}
