import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readlink, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildSysfsTree, type SysfsTree } from '../../src/fixtures/sysfs-tree.js';
import { SriovError } from '../../src/host/errors.js';
import { SysfsDriverBinding } from '../../src/host/linux/binding.js';
import { LinuxSysfs } from '../../src/host/linux/sysfs.js';
import { KernelError } from '../../src/host/ports.js';

const PF0 = '0000:3b:00.0';
const PF1 = '0000:3c:00.0';
const VF0 = '0000:40:00.0';

const isInvalid = (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT';
const isKernel = (errno: string) => (e: unknown) => e instanceof KernelError && e.errno === errno;

describe('LinuxSysfs on a fixture tree', () => {
  let root: string;
  let tree: SysfsTree;
  let sysfs: LinuxSysfs;
  const dev = (bdf: string, attr: string) => join(root, 'devices/pci0000:00', bdf, attr);

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'vfleet-sysfs-'));
    tree = await buildSysfsTree(root, { pfs: 2, vfsPerPf: 3, totalVfs: 7, numaNodes: 2 });
    sysfs = new LinuxSysfs(root);
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('lays the tree out with the kernel symlinks', async () => {
    assert.equal(await readlink(join(root, 'bus/pci/devices', PF0)), `../../../devices/pci0000:00/${PF0}`);
    assert.equal(await readlink(dev(PF0, 'virtfn1')), '../0000:40:00.1');
    assert.equal(await readlink(dev(VF0, 'physfn')), `../${PF0}`);
    assert.equal(await readlink(dev(PF0, 'driver')), '../../../bus/pci/drivers/igb');
    assert.deepEqual(
      tree.pfs.map((p) => [p.name, p.pciAddress, p.vfs.map((v) => v.netdev)]),
      [
        ['ens1f0', PF0, ['ens1f0v0', 'ens1f0v1', 'ens1f0v2']],
        ['ens2f0', PF1, ['ens2f0v0', 'ens2f0v1', 'ens2f0v2']],
      ],
    );
  });

  it('lists only devices with sriov_totalvfs (not the host bridge, not VFs)', async () => {
    assert.deepEqual(await sysfs.listSriovPfs(), [PF0, PF1]);
  });

  it('reads a PF', async () => {
    const pf = await sysfs.readPf(PF0);
    const { iommuGroup, ...rest } = pf;
    assert.equal(typeof iommuGroup, 'number');
    assert.deepEqual(rest, {
      pciAddress: PF0,
      vendorId: '8086',
      deviceId: '10c9',
      driver: 'igb',
      driverOverride: null,
      numaNode: 0,
      localCpus: '0-15',
      netdevs: ['ens1f0'],
      totalVfs: 7,
      numVfs: 3,
      autoprobe: true,
      vfDeviceId: '10ca',
      vfs: [
        { index: 0, pciAddress: '0000:40:00.0' },
        { index: 1, pciAddress: '0000:40:00.1' },
        { index: 2, pciAddress: '0000:40:00.2' },
      ],
    });
    const pf1 = await sysfs.readPf('3C:00.0');
    assert.equal(pf1.pciAddress, PF1, 'short, upper-case address is normalised');
    assert.equal(pf1.numaNode, 1);
    assert.notEqual(pf1.iommuGroup, iommuGroup);
  });

  it('sorts VFs by index, not by name (virtfn10 after virtfn2)', async () => {
    const big = await mkdtemp(join(tmpdir(), 'vfleet-sysfs-'));
    try {
      await buildSysfsTree(big, { pfs: 1, vfsPerPf: 12 });
      const pf = await new LinuxSysfs(big).readPf(PF0);
      assert.deepEqual(pf.vfs.map((v) => v.index), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      assert.equal(pf.vfs[9]?.pciAddress, '0000:40:01.1');
    } finally {
      await rm(big, { recursive: true, force: true });
    }
  });

  it('reads a VF', async () => {
    const vf = await sysfs.readVf(VF0);
    assert.equal(vf.driver, 'igbvf');
    assert.equal(vf.driverOverride, null);
    assert.equal(typeof vf.iommuGroup, 'number');
    assert.deepEqual(vf.netdevs, ['ens1f0v0']);
  });

  it('maps numa_node -1 and a set driver_override', async () => {
    await writeFile(dev(PF1, 'numa_node'), '-1\n');
    await writeFile(dev(PF1, 'driver_override'), 'vfio-pci\n');
    const pf = await sysfs.readPf(PF1);
    assert.equal(pf.numaNode, null);
    assert.equal(pf.driverOverride, 'vfio-pci');
  });

  it('reads netdevs; speed null when unknown or unreadable', async () => {
    assert.deepEqual(await sysfs.readNetdev('ens1f0'), {
      name: 'ens1f0',
      mac: '52:54:00:01:00:00',
      mtu: 1500,
      operState: 'up',
      speedMbps: 1000,
    });
    const vf = await sysfs.readNetdev('ens1f0v0');
    assert.equal(vf?.operState, 'down');
    assert.equal(vf?.speedMbps, null, 'speed -1 is unknown');
    // The kernel answers EINVAL on a down link; a directory gives EISDIR: any read failure.
    const speed = join(root, 'class/net/ens2f0/speed');
    await unlink(speed);
    await mkdir(speed);
    assert.equal((await sysfs.readNetdev('ens2f0'))?.speedMbps, null);
    assert.equal(await sysfs.readNetdev('nosuch0'), null);
  });

  it('finds the PCI address behind a netdev', async () => {
    assert.equal(await sysfs.pciAddressOfNetdev('ens1f0'), PF0);
    assert.equal(await sysfs.pciAddressOfNetdev('ens1f0v1'), '0000:40:00.1');
    assert.equal(await sysfs.pciAddressOfNetdev('nosuch0'), null);
  });

  it('writes sriov_numvfs and sriov_drivers_autoprobe', async () => {
    await sysfs.writeNumVfs(PF0, 5);
    assert.equal(await readFile(dev(PF0, 'sriov_numvfs'), 'utf8'), '5\n');
    await sysfs.writeAutoprobe(PF0, false);
    assert.equal(await readFile(dev(PF0, 'sriov_drivers_autoprobe'), 'utf8'), '0\n');
    assert.equal((await sysfs.readPf(PF0)).autoprobe, false);
  });

  it('turns write failures into KernelError with the errno, and never creates files', async () => {
    await assert.rejects(sysfs.writeNumVfs('0000:00:00.0', 1), isKernel('ENOENT'));
    await assert.rejects(readFile(dev('0000:00:00.0', 'sriov_numvfs')), { code: 'ENOENT' });
    const numvfs = dev(PF1, 'sriov_numvfs');
    await unlink(numvfs);
    await mkdir(numvfs);
    await assert.rejects(sysfs.writeNumVfs(PF1, 2), (e) => isKernel('EISDIR')(e) && (e as KernelError).operation === 'write sriov_numvfs');
  });

  it('reports a missing device as KernelError ENOENT', async () => {
    await assert.rejects(sysfs.readPf('0000:99:00.0'), isKernel('ENOENT'));
  });

  it('rejects bad names and addresses before touching the filesystem', async () => {
    // A root that does not exist: any fs access would fail with ENOENT, not INVALID_ARGUMENT.
    const s = new LinuxSysfs(join(root, 'does-not-exist'));
    const b = new SysfsDriverBinding(join(root, 'does-not-exist'));
    for (const bad of ['../../etc', '0000:3b:00.0/../..', '0000:3b:00.0/', '', '0000:3b:00.8', '/etc/passwd']) {
      await assert.rejects(s.readPf(bad), isInvalid, `readPf(${bad})`);
      await assert.rejects(s.readVf(bad), isInvalid);
      await assert.rejects(s.writeNumVfs(bad, 1), isInvalid);
      await assert.rejects(s.writeAutoprobe(bad, true), isInvalid);
      await assert.rejects(b.bind(bad, 'vfio-pci'), isInvalid);
      await assert.rejects(b.unbind(bad), isInvalid);
    }
    for (const bad of ['eth0/../..', '../../etc', '..', 'a b', 'eth0\n', 'x'.repeat(16)]) {
      await assert.rejects(s.readNetdev(bad), isInvalid, `readNetdev(${JSON.stringify(bad)})`);
      await assert.rejects(s.pciAddressOfNetdev(bad), isInvalid);
    }
    await assert.rejects(s.writeNumVfs(PF0, -1), isInvalid);
    await assert.rejects(s.writeNumVfs(PF0, 1.5), isInvalid);
    await assert.rejects(b.bind(PF0, '../../../../tmp/x'), isInvalid);
  });
});

describe('SysfsDriverBinding on a fixture tree', () => {
  let root: string;
  let binding: SysfsDriverBinding;
  const VF1 = '0000:40:00.1';
  const read = (p: string) => readFile(join(root, p), 'utf8');

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'vfleet-binding-'));
    await buildSysfsTree(root, { pfs: 1, vfsPerPf: 2 });
    binding = new SysfsDriverBinding(root);
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('binds: driver_override, then unbind from the current driver, then drivers_probe', async () => {
    await binding.bind(VF0, 'vfio-pci');
    assert.equal(await read(`devices/pci0000:00/${VF0}/driver_override`), 'vfio-pci\n');
    assert.equal(await read('bus/pci/drivers/igbvf/unbind'), `${VF0}\n`);
    assert.equal(await read('bus/pci/drivers_probe'), `${VF0}\n`);
  });

  it('clears driver_override with an empty write when driver is null', async () => {
    await binding.bind(VF1, null);
    assert.equal(await read(`devices/pci0000:00/${VF1}/driver_override`), '\n');
    assert.equal(await read('bus/pci/drivers_probe'), `${VF1}\n`);
  });

  it('unbind writes the BDF to driver/unbind; is a no-op when unbound; fails for a missing device', async () => {
    await binding.unbind(VF1);
    assert.equal(await read('bus/pci/drivers/igbvf/unbind'), `${VF1}\n`);
    await unlink(join(root, 'devices/pci0000:00', VF1, 'driver'));
    await writeFile(join(root, 'bus/pci/drivers/igbvf/unbind'), '');
    await binding.unbind(VF1);
    assert.equal(await read('bus/pci/drivers/igbvf/unbind'), '');
    await assert.rejects(binding.unbind('0000:99:00.0'), isKernel('ENOENT'));
  });
});
