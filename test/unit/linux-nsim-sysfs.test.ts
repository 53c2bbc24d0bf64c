// netdevsim devices as PFs in LinuxSysfs, on a fixture tree laid out as the
// lab's 6.1 kernel shows them (test/fixtures/devlink/environment.txt), and a
// PCI PF in switchdev mode whose representors are its netdevs too.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildSysfsTree } from '../../src/fixtures/sysfs-tree.js';
import { SriovError } from '../../src/host/errors.js';
import { LinuxSysfs } from '../../src/host/linux/sysfs.js';
import { KernelError } from '../../src/host/ports.js';

const isInvalid = (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT';
const isKernel = (errno: string) => (e: unknown) => e instanceof KernelError && e.errno === errno;

/** A netdev under a device directory, with its class/net link. */
async function netdev(root: string, deviceDir: string, name: string, physPortName: string | null): Promise<void> {
  const dir = join(deviceDir, 'net', name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'operstate'), 'up\n');
  await writeFile(join(dir, 'address'), '02:00:00:00:00:01\n');
  // igb has no phys_port_name: reading it fails (EOPNOTSUPP); here the file is absent.
  if (physPortName !== null) await writeFile(join(dir, 'phys_port_name'), `${physPortName}\n`);
  await symlink(`../../../${basename(deviceDir)}`, join(dir, 'device'));
  await mkdir(join(root, 'class/net'), { recursive: true });
  await symlink(dir, join(root, 'class/net', name));
}

/** `netdevsim<id>` with its port `eth<id>` (`p1`), `numVfs` VFs and representors when switchdev. */
async function nsimDevice(root: string, id: number, opts: { numVfs: number; maxVfs: number | null; switchdev: boolean }): Promise<void> {
  const dir = join(root, 'devices/netdevsim', `netdevsim${id}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'sriov_numvfs'), `${opts.numVfs}\n`);
  await mkdir(join(root, 'bus/netdevsim/drivers/netdevsim'), { recursive: true });
  await symlink('../../../bus/netdevsim/drivers/netdevsim', join(dir, 'driver'));
  await mkdir(join(root, 'bus/netdevsim/devices'), { recursive: true });
  await symlink(`../../../devices/netdevsim/netdevsim${id}`, join(root, 'bus/netdevsim/devices', `netdevsim${id}`));
  if (opts.maxVfs !== null) {
    await mkdir(join(root, 'kernel/debug/netdevsim', `netdevsim${id}`), { recursive: true });
    await writeFile(join(root, 'kernel/debug/netdevsim', `netdevsim${id}`, 'max_vfs'), `${opts.maxVfs}\n`);
  }
  // Representors sort before the port by name here (eth10 < eth9), as they can on a real host.
  await netdev(root, dir, `eth9${id}`, 'p1');
  if (opts.switchdev) for (let i = 0; i < opts.numVfs; i++) await netdev(root, dir, `eth1${id}${i}`, `pf0vf${i}`);
}

describe('LinuxSysfs: netdevsim devices as PFs', () => {
  let root: string;
  let sysfs: LinuxSysfs;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'vfleet-nsim-'));
    await buildSysfsTree(root, { pfs: 1, vfsPerPf: 0, totalVfs: 7 });
    await nsimDevice(root, 10, { numVfs: 4, maxVfs: 4, switchdev: true });
    await nsimDevice(root, 2, { numVfs: 0, maxVfs: 8, switchdev: false });
    // A device without sriov_numvfs is no PF.
    await mkdir(join(root, 'devices/netdevsim/netdevsim3'), { recursive: true });
    await symlink('../../../devices/netdevsim/netdevsim3', join(root, 'bus/netdevsim/devices/netdevsim3'));
    sysfs = new LinuxSysfs(root);
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('lists them after the PCI PFs, by number, only those with sriov_numvfs', async () => {
    assert.deepEqual(await sysfs.listSriovPfs(), ['0000:3b:00.0', 'netdevsim2', 'netdevsim10']);
  });

  it('lists no netdevsim device when the driver is not loaded', async () => {
    const bare = await mkdtemp(join(tmpdir(), 'vfleet-nsim-'));
    await buildSysfsTree(bare, { pfs: 1, vfsPerPf: 0, totalVfs: 7 });
    assert.deepEqual(await new LinuxSysfs(bare).listSriovPfs(), ['0000:3b:00.0']);
    await rm(bare, { recursive: true, force: true });
  });

  it('reads one: driver netdevsim, not PCI, max_vfs as totalVfs, synthesized VFs, its port first', async () => {
    assert.deepEqual(await sysfs.readPf('netdevsim10'), {
      pciAddress: 'netdevsim10',
      vendorId: '',
      deviceId: '',
      driver: 'netdevsim',
      driverOverride: null,
      numaNode: null,
      localCpus: null,
      iommuGroup: null,
      netdevs: ['eth910', 'eth1100', 'eth1101', 'eth1102', 'eth1103'],
      totalVfs: 4,
      numVfs: 4,
      autoprobe: false,
      vfDeviceId: null,
      vfs: [0, 1, 2, 3].map((index) => ({ index, pciAddress: `netdevsim10:vf${index}` })),
    });
    const two = await sysfs.readPf('netdevsim2');
    assert.deepEqual([two.totalVfs, two.numVfs, two.vfs, two.netdevs], [8, 0, [], ['eth92']]);
  });

  it('says where max_vfs is when debugfs is not there', async () => {
    await nsimDevice(root, 4, { numVfs: 0, maxVfs: null, switchdev: false });
    await assert.rejects(sysfs.readPf('netdevsim4'), (e: unknown) => isKernel('ENOENT')(e) && /max_vfs \(debugfs\)/.test((e as Error).message));
  });

  it('reads a VF: a devlink port only (no driver, netdev or IOMMU group); ENODEV past numVfs', async () => {
    assert.deepEqual(await sysfs.readVf('netdevsim10:vf3'), { pciAddress: 'netdevsim10:vf3', driver: null, driverOverride: null, iommuGroup: null, netdevs: [] });
    await assert.rejects(sysfs.readVf('netdevsim10:vf4'), isKernel('ENODEV'));
    await assert.rejects(sysfs.readVf('netdevsim10:vf../x'), isInvalid);
  });

  it('maps its netdevs, the port and the representors, to the device', async () => {
    assert.equal(await sysfs.pciAddressOfNetdev('eth910'), 'netdevsim10');
    assert.equal(await sysfs.pciAddressOfNetdev('eth1102'), 'netdevsim10');
  });

  it('writes sriov_numvfs of the device; refuses sriov_drivers_autoprobe (it has none)', async () => {
    await sysfs.writeNumVfs('netdevsim2', 3);
    assert.equal(await readFile(join(root, 'devices/netdevsim/netdevsim2/sriov_numvfs'), 'utf8'), '3\n');
    await assert.rejects(sysfs.writeNumVfs('netdevsim99', 1), isKernel('ENOENT'));
    await assert.rejects(sysfs.writeNumVfs('netdevsim2', -1), isInvalid);
    await assert.rejects(sysfs.writeAutoprobe('netdevsim2', false), (e: unknown) => isKernel('ENOENT')(e) && /netdevsim device/.test((e as Error).message));
    await assert.rejects(sysfs.readPf('netdevsim/../x'), isInvalid);
  });
});

describe('LinuxSysfs: a PCI PF in switchdev mode', () => {
  let root: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'vfleet-nsim-'));
    await buildSysfsTree(root, { pfs: 1, vfsPerPf: 2, totalVfs: 7 });
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('lists the uplink first, then the representors (the inventory takes the first as the PF)', async () => {
    const pfDir = join(root, 'devices/pci0000:00/0000:3b:00.0');
    // mlx5: the uplink `p0`; the representors' names sort before it.
    await writeFile(join(pfDir, 'net/ens1f0/phys_port_name'), 'p0\n');
    for (const [name, port] of [['dev0', 'pf0vf0'], ['dev1', 'pf0vf1'], ['ens1f0r2', 'c1pf0vf2']] as const) {
      await mkdir(join(pfDir, 'net', name), { recursive: true });
      await writeFile(join(pfDir, 'net', name, 'phys_port_name'), `${port}\n`);
    }
    assert.deepEqual((await new LinuxSysfs(root).readPf('0000:3b:00.0')).netdevs, ['ens1f0', 'dev0', 'dev1', 'ens1f0r2']);
  });
});
