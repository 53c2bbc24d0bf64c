/**
 * How long a full PCI-side inventory of a big host takes: 4 PFs × 256 VFs in
 * a fixture sysfs tree, read through LinuxSysfs, against a naive synchronous
 * walk of the same files in the same process.
 */
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildSysfsTree } from '../src/fixtures/sysfs-tree.js';
import { LinuxSysfs } from '../src/host/linux/sysfs.js';

const PFS = 4;
const VFS_PER_PF = 256;
const RUNS = 20;

/** listSriovPfs, readPf of each, readVf of every VF, readNetdev of each PF; returns the VF count. */
async function walk(sysfs: LinuxSysfs): Promise<number> {
  const counts = await Promise.all(
    (await sysfs.listSriovPfs()).map(async (address) => {
      const pf = await sysfs.readPf(address);
      await Promise.all([
        ...pf.vfs.map((vf) => sysfs.readVf(vf.pciAddress)),
        ...pf.netdevs.map((n) => sysfs.readNetdev(n)),
      ]);
      return pf.vfs.length;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** The same files, one blocking call at a time: what a straightforward script does. */
function syncWalk(root: string): number {
  const devices = join(root, 'bus/pci/devices');
  // A VF: driver, driver_override, iommu_group, net/ — what LinuxSysfs.readVf reads.
  const readVf = (dir: string) => {
    readFileSync(join(dir, 'driver_override'), 'utf8');
    for (const l of ['driver', 'iommu_group']) if (existsSync(join(dir, l))) readlinkSync(join(dir, l));
    return existsSync(join(dir, 'net')) ? readdirSync(join(dir, 'net')) : [];
  };
  const readDev = (dir: string) => {
    for (const f of ['vendor', 'device', 'numa_node', 'local_cpulist']) readFileSync(join(dir, f), 'utf8');
    return readVf(dir);
  };
  let vfs = 0;
  for (const pf of readdirSync(devices).filter((d) => existsSync(join(devices, d, 'sriov_totalvfs')))) {
    const dir = join(devices, pf);
    const netdevs = readDev(dir);
    for (const f of ['sriov_totalvfs', 'sriov_numvfs', 'sriov_drivers_autoprobe', 'sriov_vf_device']) {
      readFileSync(join(dir, f), 'utf8');
    }
    for (const link of readdirSync(dir).filter((n) => n.startsWith('virtfn'))) {
      readVf(join(devices, readlinkSync(join(dir, link)).slice(3)));
      vfs++;
    }
    for (const n of netdevs) {
      for (const f of ['address', 'mtu', 'operstate', 'speed']) readFileSync(join(root, 'class/net', n, f), 'utf8');
    }
  }
  return vfs;
}

async function medianMs(fn: () => Promise<number> | number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS + 2; i++) {
    const t0 = performance.now();
    const vfs = await fn();
    if (i >= 2) times.push(performance.now() - t0); // the first two warm caches and the JIT
    if (vfs !== PFS * VFS_PER_PF) throw new Error(`walk saw ${vfs} VFs, expected ${PFS * VFS_PER_PF}`);
  }
  times.sort((a, b) => a - b);
  return (times[(RUNS - 1) >> 1]! + times[RUNS >> 1]!) / 2;
}

// sysfs lives in memory: build on tmpfs when there is one, so that the disk's
// metadata speed (seconds for the ~20k inodes on a busy ext4) stays out of it.
const scratch = () => (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());

export async function benchSysfsWalk(): Promise<void> {
  const root = await mkdtemp(join(scratch(), 'vfleet-bench-sysfs-'));
  try {
    const t0 = performance.now();
    await buildSysfsTree(root, { pfs: PFS, vfsPerPf: VFS_PER_PF });
    console.log(`sysfs tree ${PFS}x${VFS_PER_PF}: built in ${(performance.now() - t0).toFixed(0)} ms`);
    const sysfs = new LinuxSysfs(root);
    const ms = await medianMs(() => walk(sysfs));
    const base = await medianMs(() => syncWalk(root));
    const perVfUs = (ms * 1000) / (PFS * VFS_PER_PF);
    console.log(
      `sysfs walk ${PFS}x${VFS_PER_PF}: median ${ms.toFixed(1)} ms (${perVfUs.toFixed(1)} µs/VF); ` +
        `baseline sync walk ${base.toFixed(1)} ms; ratio ${(ms / base).toFixed(2)}`,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchSysfsWalk();
