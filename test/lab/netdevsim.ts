/**
 * netdevsim in the lab guest: the kernel's devlink/switchdev test driver,
 * built out of tree by test/lab/netdevsim.sh into $LAB_CACHE/netdevsim.
 * It has eswitch modes, VF representor ports and the whole devlink rate API,
 * which the lab's igb lacks. Its device is /sys/bus/netdevsim/devices/netdevsim<N>.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../../src/host/wait.js';
import { insmodLab, LAB_CACHE } from './lab-modules.js';

export const NSIM_KO = join(LAB_CACHE, 'netdevsim', 'netdevsim.ko');
const BUS = '/sys/bus/netdevsim';
const DEBUGFS = '/sys/kernel/debug';

const loaded = (mod: string) => readFileSync('/proc/modules', 'utf8').split('\n').some((l) => l.startsWith(`${mod} `));

/**
 * Loads netdevsim: psample (its one dependency) from the lab kernel's tree,
 * then the built module, with the lab's busybox insmod (the guest's
 * /lib/modules is this machine's, so modprobe finds neither).
 */
export function loadNetdevsim(): void {
  if (loaded('netdevsim')) return;
  if (!existsSync(NSIM_KO)) throw new Error(`no ${NSIM_KO}: build it with test/lab/netdevsim.sh (run.sh does)`);
  insmodLab('psample');
  const r = spawnSync(join(LAB_CACHE, 'bb', 'bin', 'busybox'), ['insmod', NSIM_KO], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`insmod ${NSIM_KO}: ${r.error?.message ?? r.stderr}`);
}

/** debugfs holds netdevsim's knobs (max_vfs); the lab guest does not mount it. */
function mountDebugfs(): void {
  if (readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === DEBUGFS)) return;
  const r = spawnSync('mount', ['-t', 'debugfs', 'debugfs', DEBUGFS], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount debugfs: ${r.error?.message ?? r.stderr}`);
}

export interface NsimDevice {
  /** `netdevsim<id>`, the inventory's name for it. */
  device: string;
  id: number;
  /** The port's netdev (`eth<N>`: the guest has no udev to rename it). */
  netdev: string;
  /** /sys/kernel/debug/netdevsim/netdevsim<id> */
  debugDir: string;
}

/** The device's netdevs (`<dev>/net/`). */
export const nsimNetdevs = (device: string): string[] => {
  const dir = join(BUS, 'devices', device, 'net');
  return existsSync(dir) ? readdirSync(dir) : [];
};

/**
 * `echo "<id> 1" > /sys/bus/netdevsim/new_device`: a device with one port,
 * ready once its port's netdev shows. With `maxVfs`, writes debugfs max_vfs
 * (netdevsim's sriov_totalvfs, 4 by default; EBUSY while it has VFs).
 */
export async function newNsimDevice(id = 10, opts: { maxVfs?: number } = {}): Promise<NsimDevice> {
  loadNetdevsim();
  mountDebugfs();
  const device = `netdevsim${id}`;
  writeFileSync(join(BUS, 'new_device'), `${id} 1`);
  // The port's netdev is registered after the write returns (a probe on the bus).
  const netdev = await waitFor(`${device}'s port netdev`, 20_000, async () => nsimNetdevs(device)[0]);
  const debugDir = join(DEBUGFS, 'netdevsim', device);
  if (opts.maxVfs !== undefined) writeFileSync(join(debugDir, 'max_vfs'), `${opts.maxVfs}`);
  return { device, id, netdev, debugDir };
}

/** `echo <id> > /sys/bus/netdevsim/del_device` (its VFs, ports and rate objects go with it). */
export function delNsimDevice(dev: NsimDevice | number): void {
  const id = typeof dev === 'number' ? dev : dev.id;
  if (existsSync(join(BUS, 'devices', `netdevsim${id}`))) writeFileSync(join(BUS, 'del_device'), `${id}`);
}
