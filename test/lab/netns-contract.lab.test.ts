// Lab suite (needs root and the SR-IOV lab): the netns contract against real igbvf VFs, namespaces from `ip netns add`.
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { SriovHost } from '../../src/host/configurator.js';
import { run } from '../../src/host/linux/exec.js';
import { createLinuxPorts } from '../../src/host/linux/index.js';
import { netnsContract } from '../contract/netns-contract.js';
import { labPfs } from './lab-host.js';

const host = new SriovHost(createLinuxPorts({}));
const namespaces: string[] = [];
let pf: string | undefined;

after(async () => {
  // Deleting a namespace returns a VF netdev still inside to the host; then the VFs go.
  for (const name of namespaces) await run('ip', ['netns', 'del', name]);
  if (pf) await host.setNumVfs(pf, 0);
});

async function newNamespace(): Promise<string> {
  const name = `vfleet-lab-${randomBytes(3).toString('hex')}`;
  const res = await run('ip', ['netns', 'add', name]);
  if (res.code !== 0) throw new Error(`ip netns add ${name}: ${res.stderr.trim()}`);
  namespaces.push(name);
  return `/var/run/netns/${name}`;
}

netnsContract('linux (igbvf in the SR-IOV lab)', async () => {
  [pf] = await labPfs(host);
  await host.setNumVfs(pf!, 2, { deviceType: 'netdevice' });
  const [vf0, vf1] = (await host.pf(pf!)).vfs;
  return { ports: host.ports, vfs: [vf0!.pciAddress, vf1!.pciAddress], newNamespace };
});
