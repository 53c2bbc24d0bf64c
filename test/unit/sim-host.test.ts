import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SriovError } from '../../src/host/errors.js';
import { SCRUBBED_VF_CONFIG } from '../../src/host/model.js';
import { KernelError, type HostPorts, type VfOp } from '../../src/host/ports.js';
import { isPciAddress } from '../../src/host/validate.js';
import { simProfile, simProfileNames } from '../../src/sim/profiles.js';
import { SimHost, createSimPorts } from '../../src/sim/sim-host.js';
import { SIM_STATE_MAX_BYTES, initSimHost, loadSimState, portsPerCard, readSimState, readSimStateSync, updateSimState } from '../../src/sim/state.js';

let dir: string;
let seq = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-sim-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function simHost(profile: string, opts: { pfs?: number; numaNodes?: number } = {}) {
  const file = join(dir, `host-${seq++}.json`);
  await initSimHost(file, { profile, ...opts });
  return { file, ports: createSimPorts(file) };
}

async function kernelErrno(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof KernelError, `expected a KernelError, got ${String(e)}`);
    return e.errno;
  }
  assert.fail('expected the call to fail');
}

async function vfsOf(ports: HostPorts, pf = 'ens1f0') {
  return (await ports.links.showPf(pf)).vfs;
}

const PF0 = '0000:3b:00.0';

describe('sim host: init and profiles', () => {
  for (const name of simProfileNames()) {
    it(`initialises a ${name} host with its hardware facts`, async () => {
      const profile = simProfile(name);
      const { ports } = await simHost(name, { pfs: 4, numaNodes: 2 });
      const pfs = await ports.sysfs.listSriovPfs();
      assert.deepEqual(pfs, ['0000:3b:00.0', '0000:3b:00.1', '0000:5e:00.0', '0000:5e:00.1']);
      const pf = await ports.sysfs.readPf(PF0);
      assert.equal(pf.vendorId, profile.vendorId);
      assert.equal(pf.deviceId, profile.deviceId);
      assert.equal(pf.vfDeviceId, profile.vfDeviceId);
      assert.equal(pf.driver, profile.pfDriver);
      assert.equal(pf.totalVfs, profile.totalVfs);
      assert.equal(pf.numVfs, 0);
      assert.equal(pf.autoprobe, true);
      assert.deepEqual(pf.netdevs, ['ens1f0']);
      // Cards alternate between NUMA nodes; both ports of a card share one.
      assert.equal((await ports.sysfs.readPf('0000:3b:00.1')).numaNode, 0);
      const second = await ports.sysfs.readPf('0000:5e:00.0');
      assert.equal(second.numaNode, 1);
      assert.equal(second.localCpus, '16-31');
      assert.equal(await ports.sysfs.pciAddressOfNetdev('ens2f0'), '0000:5e:00.0');
      const link = await ports.sysfs.readNetdev('ens1f0');
      assert.equal(link?.speedMbps, profile.speedMbps);
      assert.equal(link?.operState, 'up');
      assert.equal(await ports.devlink.eswitchMode(PF0), profile.hasEswitch ? 'legacy' : null);
      assert.equal(ports.hostname(), 'simhost');
      const names = await ports.pciNames!(profile.vendorId, profile.deviceId);
      assert.ok(names.vendorName && names.deviceName);
    });
  }

  it('refuses an unknown profile and a PF count outside 1..64', async () => {
    for (const opts of [{ profile: 'e1000' }, { profile: 'igb', pfs: 0 }, { profile: 'igb', pfs: 65 }]) {
      await assert.rejects(initSimHost(join(dir, 'bad.json'), opts), (e) => {
        assert.ok(e instanceof SriovError);
        assert.equal(e.code, 'INVALID_ARGUMENT');
        return true;
      });
    }
  });

  it('writes a versioned state file, and overwrites it on init only when asked', async () => {
    const { file, ports } = await simHost('igb');
    await ports.sysfs.writeNumVfs(PF0, 2);
    await assert.rejects(initSimHost(file, { profile: 'mlx5', pfs: 1, hostname: 'lab-7' }), (e) => e instanceof SriovError && e.code === 'CONFLICT');
    await initSimHost(file, { profile: 'mlx5', pfs: 1, hostname: 'lab-7', overwrite: true });
    const state = JSON.parse(await readFile(file, 'utf8'));
    assert.equal(state.version, 1);
    assert.equal(state.hostname, 'lab-7');
    assert.equal(state.pfs.length, 1);
    assert.equal(state.pfs[0].numVfs, 0);
    assert.equal(createSimPorts(file).hostname(), 'lab-7');
  });

  it('gives every VF of a large host a unique, valid PCI address and IOMMU group', async () => {
    const { file, ports } = await simHost('ice', { pfs: 12 });
    for (const pf of await ports.sysfs.listSriovPfs()) await ports.sysfs.writeNumVfs(pf, 256);
    const state = await loadSimState(file);
    const pfAddrs = state.pfs.map((pf) => pf.pciAddress);
    const vfs = state.pfs.flatMap((pf) => pf.vfs);
    assert.equal(vfs.length, 12 * 256);
    const addrs = [...pfAddrs, ...vfs.map((v) => v.pciAddress)];
    assert.equal(new Set(addrs).size, addrs.length);
    assert.ok(addrs.every(isPciAddress));
    const groups = [...state.pfs.map((pf) => pf.iommuGroup), ...vfs.map((v) => v.iommuGroup)];
    assert.equal(new Set(groups).size, groups.length);
    const last = await ports.sysfs.readVf(vfs.at(-1)!.pciAddress);
    assert.equal(last.pciAddress, vfs.at(-1)!.pciAddress);
    assert.equal(last.iommuGroup, vfs.at(-1)!.iommuGroup);
  });
});

describe('sim host: NUMA placement', () => {
  const placement = async (pfs: number, numaNodes: number) => {
    const { ports } = await simHost('ice', { pfs, numaNodes });
    const inv = await Promise.all((await ports.sysfs.listSriovPfs()).map((a) => ports.sysfs.readPf(a)));
    return inv.map((pf) => `${pf.netdevs[0]}@${pf.numaNode}`);
  };

  it('--pfs 2 --numa-nodes 2 puts one PF on each node (a single-port card per socket)', async () => {
    assert.deepEqual(await placement(2, 2), ['ens1f0@0', 'ens2f0@1']);
  });

  it('dual-port cards alternate between nodes once every node has one', async () => {
    assert.deepEqual(await placement(4, 2), ['ens1f0@0', 'ens1f1@0', 'ens2f0@1', 'ens2f1@1']);
    assert.deepEqual(await placement(3, 2), ['ens1f0@0', 'ens1f1@0', 'ens2f0@1']);
    assert.deepEqual(await placement(2, 1), ['ens1f0@0', 'ens1f1@0']);
  });

  it('every node gets a PF while there are PFs enough', () => {
    for (let nodes = 1; nodes <= 8; nodes++) {
      for (let pfs = 1; pfs <= 16; pfs++) {
        const ports = portsPerCard(pfs, nodes);
        const cards = Math.ceil(pfs / ports);
        assert.ok(ports >= 1 && ports <= 2, `${pfs} PFs on ${nodes} nodes: ${ports} ports a card`);
        assert.ok(cards >= Math.min(pfs, nodes), `${pfs} PFs on ${nodes} nodes leave a node empty`);
      }
    }
  });
});

describe('sim host: files that are not a simulated host', () => {
  /** A refusal names the file, is one short line, and never quotes what the file holds. */
  async function refusedFile(file: string, why: RegExp, secret?: string): Promise<void> {
    const check = (e: unknown) => {
      assert.ok(e instanceof SriovError, `expected SriovError, got ${String(e)}`);
      assert.equal(e.exitCode, 2, e.message);
      assert.ok(e.message.includes(file), `names the file: ${e.message}`);
      assert.match(e.message, why);
      assert.ok(e.message.length < 300 && !e.message.includes('\n'), `one short line: ${e.message}`);
      if (secret) assert.ok(!e.message.includes(secret), `quotes the file: ${e.message}`);
      return true;
    };
    await assert.rejects(readSimState(file), check);
    await assert.rejects(loadSimState(file), check);
    assert.throws(() => readSimStateSync(file), check);
    await assert.rejects(updateSimState(file, () => undefined), check);
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.lock')), [], 'no lock file left beside it');
  }

  it('a text file: not JSON, its bytes unquoted', async () => {
    const file = join(dir, `passwd-${seq++}`);
    await writeFile(file, 'root:x:0:0:root-secret:/root:/bin/bash\n');
    await refusedFile(file, /is not a simulated host file: not JSON/, 'root-secret');
  });

  it('a directory', async () => {
    const file = join(dir, `dir-${seq++}`);
    await mkdir(file);
    await refusedFile(file, /directory/);
  });

  it(`a file above ${SIM_STATE_MAX_BYTES / 2 ** 20} MB, refused before it is read`, async () => {
    const file = join(dir, `huge-${seq++}.json`);
    await writeFile(file, '');
    await truncate(file, SIM_STATE_MAX_BYTES + 1);
    await refusedFile(file, /MB, above the 64 MB/);
  });

  it('JSON of another shape, by the first field that is wrong', async () => {
    const { file } = await simHost('igb');
    const good = JSON.parse(await readFile(file, 'utf8'));
    const shapes: Array<[unknown, RegExp]> = [
      [[1, 2], /not a JSON object/],
      [{ ...good, version: 'x'.repeat(5000) }, /version is "\\"x{30,40}…", expected 1/],
      [{ ...good, pfs: 'many' }, /pfs is not a list/],
      [{ ...good, pfs: [{ ...good.pfs[0], profile: 'e1000' }] }, /pfs\[0\]\.profile is not one of igb, ixgbe/],
      [{ ...good, pfs: [{ ...good.pfs[0], numVfs: 3 }] }, /pfs\[0\]\.vfs does not hold numVfs VFs/],
      [{ ...good, hostname: 7 }, /hostname is not a lower-case DNS name/],
      [{ ...good, hostname: 'Node\nX' }, /hostname is not a lower-case DNS name/],
      [{ ...good, pfs: [{ ...good.pfs[0], name: '../../x' }] }, /pfs\[0\]\.name is not an interface name/],
    ];
    for (const [state, why] of shapes) {
      const bad = join(dir, `shape-${seq++}.json`);
      await writeFile(bad, JSON.stringify(state));
      await refusedFile(bad, why);
    }
  });

  it('init never writes over a directory, and says when the directory is missing', async () => {
    const target = join(dir, `dir-${seq++}`);
    await mkdir(target);
    await assert.rejects(initSimHost(target, { profile: 'igb', overwrite: true }), (e) => e instanceof SriovError && /directory/.test(e.message));
    await assert.rejects(initSimHost(join(dir, 'nope', 'h.json'), { profile: 'igb' }), (e) => e instanceof SriovError && /its directory does not exist/.test(e.message) && e.exitCode === 2);
  });
});

describe('sim host: sriov_numvfs', () => {
  it('refuses non-zero to different non-zero with EBUSY and succeeds through 0', async () => {
    const { ports } = await simHost('i40e');
    await ports.sysfs.writeNumVfs(PF0, 3);
    assert.equal(await kernelErrno(ports.sysfs.writeNumVfs(PF0, 5)), 'EBUSY');
    assert.equal((await ports.sysfs.readPf(PF0)).numVfs, 3);
    await ports.sysfs.writeNumVfs(PF0, 3); // same value: no-op
    await ports.sysfs.writeNumVfs(PF0, 0);
    const empty = await ports.sysfs.readPf(PF0);
    assert.equal(empty.numVfs, 0);
    assert.deepEqual(empty.vfs, []);
    await ports.sysfs.writeNumVfs(PF0, 5);
    const pf = await ports.sysfs.readPf(PF0);
    assert.equal(pf.numVfs, 5);
    assert.deepEqual(
      pf.vfs.map((v) => v.index),
      [0, 1, 2, 3, 4],
    );
  });

  it('answers ERANGE above sriov_totalvfs', async () => {
    const { ports } = await simHost('igb');
    assert.equal(await kernelErrno(ports.sysfs.writeNumVfs(PF0, 8)), 'ERANGE');
    await ports.sysfs.writeNumVfs(PF0, 7);
    assert.equal((await ports.sysfs.readPf(PF0)).numVfs, 7);
  });

  it('creates VFs with reset values, bound to the VF driver with a netdev when autoprobe is on', async () => {
    const { ports } = await simHost('i40e');
    await ports.sysfs.writeNumVfs(PF0, 2);
    for (const vf of await vfsOf(ports)) {
      assert.deepEqual({ ...vf, index: undefined, stats: undefined }, { ...SCRUBBED_VF_CONFIG, index: undefined, stats: undefined });
    }
    const pf = await ports.sysfs.readPf(PF0);
    const dev = await ports.sysfs.readVf(pf.vfs[1]!.pciAddress);
    assert.equal(dev.driver, 'iavf');
    assert.deepEqual(dev.netdevs, ['ens1f0v1']);
    assert.equal(await ports.sysfs.pciAddressOfNetdev('ens1f0v1'), pf.vfs[1]!.pciAddress);
  });

  it('tears every VF down on 0: a recreated VF starts from reset values again', async () => {
    const { ports } = await simHost('mlx5');
    await ports.sysfs.writeNumVfs(PF0, 2);
    assert.deepEqual(await ports.links.applyVfOps('ens1f0', [{ vf: 0, field: 'mac', mac: '02:aa:00:00:00:01' }]), {
      ok: true,
    });
    await ports.sysfs.writeNumVfs(PF0, 0);
    assert.equal(await ports.sysfs.readNetdev('ens1f0v0'), null);
    await ports.sysfs.writeNumVfs(PF0, 2);
    assert.equal((await vfsOf(ports))[0]!.mac, '00:00:00:00:00:00');
  });
});

describe('sim host: driver binding', () => {
  it('leaves VFs unbound with autoprobe off; binds to vfio-pci and back', async () => {
    const { ports } = await simHost('igb');
    await ports.sysfs.writeAutoprobe(PF0, false);
    await ports.sysfs.writeNumVfs(PF0, 2);
    const bdf = (await ports.sysfs.readPf(PF0)).vfs[0]!.pciAddress;
    let dev = await ports.sysfs.readVf(bdf);
    assert.equal(dev.driver, null);
    assert.deepEqual(dev.netdevs, []);

    // Without driver_override the kernel will not probe a VF while autoprobe is off.
    await ports.drivers.bind(bdf, null);
    assert.equal((await ports.sysfs.readVf(bdf)).driver, null);

    await ports.drivers.bind(bdf, 'vfio-pci');
    dev = await ports.sysfs.readVf(bdf);
    assert.equal(dev.driver, 'vfio-pci');
    assert.equal(dev.driverOverride, 'vfio-pci');
    assert.deepEqual(dev.netdevs, []);

    await ports.drivers.bind(bdf, 'igbvf');
    dev = await ports.sysfs.readVf(bdf);
    assert.equal(dev.driver, 'igbvf');
    assert.deepEqual(dev.netdevs, ['ens1f0v0']);
    const netdev = await ports.sysfs.readNetdev('ens1f0v0');
    assert.equal(netdev?.operState, 'down');
    assert.equal(netdev?.speedMbps, null);

    await ports.drivers.unbind(bdf);
    dev = await ports.sysfs.readVf(bdf);
    assert.equal(dev.driver, null);
    assert.deepEqual(dev.netdevs, []);
    assert.equal(await ports.sysfs.readNetdev('ens1f0v0'), null);
  });

  it('clearing the override re-probes the default VF driver when autoprobe is on', async () => {
    const { ports } = await simHost('ice');
    await ports.sysfs.writeNumVfs(PF0, 1);
    const bdf = (await ports.sysfs.readPf(PF0)).vfs[0]!.pciAddress;
    await ports.drivers.bind(bdf, 'vfio-pci');
    await ports.drivers.bind(bdf, null);
    const dev = await ports.sysfs.readVf(bdf);
    assert.equal(dev.driver, 'iavf');
    assert.equal(dev.driverOverride, null);
    assert.deepEqual(dev.netdevs, ['ens1f0v0']);
  });

  it('refuses a driver the host does not have, and leaves a VF unbound when probe fails', async () => {
    const { ports } = await simHost('igb');
    await ports.sysfs.writeNumVfs(PF0, 1);
    const bdf = (await ports.sysfs.readPf(PF0)).vfs[0]!.pciAddress;
    assert.equal(await kernelErrno(ports.drivers.bind(bdf, 'nosuchdriver')), 'ENODEV');
    assert.equal((await ports.sysfs.readVf(bdf)).driver, 'igbvf');
    // igb is loaded (it drives the PF) but cannot drive a VF: override set, device unbound.
    assert.equal(await kernelErrno(ports.drivers.bind(bdf, 'igb')), 'EINVAL');
    const dev = await ports.sysfs.readVf(bdf);
    assert.equal(dev.driver, null);
    assert.equal(dev.driverOverride, 'igb');
    assert.equal(await kernelErrno(ports.drivers.bind('0000:99:00.0', 'vfio-pci')), 'ENODEV');
  });

  it('binds mlx5 VFs to mlx5_core with a netdev', async () => {
    const { ports } = await simHost('mlx5');
    await ports.sysfs.writeAutoprobe(PF0, false);
    await ports.sysfs.writeNumVfs(PF0, 1);
    const bdf = (await ports.sysfs.readPf(PF0)).vfs[0]!.pciAddress;
    await ports.drivers.bind(bdf, 'mlx5_core');
    assert.deepEqual((await ports.sysfs.readVf(bdf)).netdevs, ['ens1f0v0']);
  });
});

describe('sim host: VF ops', () => {
  it('igb: stops at the first refused op; earlier ops stay applied', async () => {
    const { ports } = await simHost('igb');
    await ports.sysfs.writeNumVfs(PF0, 2);
    const result = await ports.links.applyVfOps('ens1f0', [
      { vf: 1, field: 'mac', mac: '02:00:00:00:00:11' },
      { vf: 1, field: 'linkState', state: 'enable' },
      { vf: 1, field: 'trust', on: true },
    ]);
    assert.ok(!result.ok);
    assert.equal(result.failedAt, 1);
    assert.equal(result.errno, 'EOPNOTSUPP');
    assert.match(result.message, /Operation not supported/);
    const vf = (await vfsOf(ports))[1]!;
    assert.equal(vf.mac, '02:00:00:00:00:11');
    assert.equal(vf.trust, false);
    assert.equal(vf.linkState, 'auto');
  });

  it('igb: refuses min rate, 802.1ad and a max rate above the 1G link', async () => {
    const { ports } = await simHost('igb');
    await ports.sysfs.writeNumVfs(PF0, 1);
    const errnoOf = async (op: VfOp) => {
      const r = await ports.links.applyVfOps('ens1f0', [op]);
      return r.ok ? 'ok' : r.errno;
    };
    assert.equal(await errnoOf({ vf: 0, field: 'rate', minTxRateMbps: 100, maxTxRateMbps: 500 }), 'EINVAL');
    assert.equal(await errnoOf({ vf: 0, field: 'rate', minTxRateMbps: 0, maxTxRateMbps: 1001 }), 'EINVAL');
    assert.equal(await errnoOf({ vf: 0, field: 'rate', minTxRateMbps: 0, maxTxRateMbps: 500 }), 'ok');
    assert.equal(await errnoOf({ vf: 0, field: 'vlan', vlan: 10, qos: 0, vlanProto: '802.1ad' }), 'EPROTONOSUPPORT');
    assert.equal(await errnoOf({ vf: 0, field: 'vlan', vlan: 10, qos: 3, vlanProto: '802.1Q' }), 'ok');
    const vf = (await vfsOf(ports))[0]!;
    assert.equal(vf.maxTxRateMbps, 500);
    assert.deepEqual([vf.vlan, vf.qos, vf.vlanProto], [10, 3, '802.1Q']);
  });

  it('i40e: EAGAIN once per new VF, then rates below 50 Mbps are raised to 50', async () => {
    const { ports } = await simHost('i40e');
    await ports.sysfs.writeNumVfs(PF0, 2);
    const ops: VfOp[] = [
      { vf: 0, field: 'rate', minTxRateMbps: 0, maxTxRateMbps: 30 },
      { vf: 1, field: 'rate', minTxRateMbps: 0, maxTxRateMbps: 120 },
    ];
    let r = await ports.links.applyVfOps('ens1f0', ops);
    assert.deepEqual([r.ok, !r.ok && r.failedAt, !r.ok && r.errno], [false, 0, 'EAGAIN']);
    r = await ports.links.applyVfOps('ens1f0', ops);
    // VF 0's reset is over; VF 1 is addressed for the first time and is still in reset.
    assert.deepEqual([r.ok, !r.ok && r.failedAt, !r.ok && r.errno], [false, 1, 'EAGAIN']);
    r = await ports.links.applyVfOps('ens1f0', ops);
    assert.deepEqual(r, { ok: true });
    const vfs = await vfsOf(ports);
    assert.equal(vfs[0]!.maxTxRateMbps, 50);
    // i40e keeps larger values as asked (hardware credits are 50 Mbps each).
    assert.equal(vfs[1]!.maxTxRateMbps, 120);
    r = await ports.links.applyVfOps('ens1f0', [{ vf: 0, field: 'rate', minTxRateMbps: 10, maxTxRateMbps: 100 }]);
    assert.equal(!r.ok && r.errno, 'EINVAL');
  });

  it('i40e: recreated VFs are in reset again', async () => {
    const { ports } = await simHost('i40e');
    const op: VfOp[] = [{ vf: 0, field: 'trust', on: true }];
    await ports.sysfs.writeNumVfs(PF0, 1);
    assert.equal((await ports.links.applyVfOps('ens1f0', op)).ok, false);
    assert.equal((await ports.links.applyVfOps('ens1f0', op)).ok, true);
    await ports.sysfs.writeNumVfs(PF0, 0);
    await ports.sysfs.writeNumVfs(PF0, 1);
    const r = await ports.links.applyVfOps('ens1f0', op);
    assert.equal(!r.ok && r.errno, 'EAGAIN');
    assert.equal((await vfsOf(ports))[0]!.trust, false);
  });

  it('ice: the sum of min rates on a PF must fit the link speed', async () => {
    const { ports } = await simHost('ice');
    await ports.sysfs.writeNumVfs(PF0, 3);
    const rate = (vf: number, min: number): VfOp => ({ vf, field: 'rate', minTxRateMbps: min, maxTxRateMbps: 0 });
    assert.deepEqual(await ports.links.applyVfOps('ens1f0', [rate(0, 60_000), rate(1, 40_000)]), { ok: true });
    const r = await ports.links.applyVfOps('ens1f0', [rate(2, 1)]);
    assert.equal(!r.ok && r.errno, 'EINVAL');
    // Lowering one VF's guarantee makes room: its own old value does not count twice.
    assert.deepEqual(await ports.links.applyVfOps('ens1f0', [rate(0, 50_000), rate(2, 10_000)]), { ok: true });
    assert.deepEqual(
      (await vfsOf(ports)).map((v) => v.minTxRateMbps),
      [50_000, 40_000, 10_000],
    );
    // The other port has its own link.
    await ports.sysfs.writeNumVfs('0000:3b:00.1', 1);
    assert.deepEqual(await ports.links.applyVfOps('ens1f1', [rate(0, 100_000)]), { ok: true });
    const ad = await ports.links.applyVfOps('ens1f0', [{ vf: 0, field: 'vlan', vlan: 5, qos: 0, vlanProto: '802.1ad' }]);
    assert.equal(!ad.ok && ad.errno, 'EPROTONOSUPPORT');
  });

  it('any driver: bad VF index, min above max, max above link, multicast MAC', async () => {
    const { ports } = await simHost('mlx5');
    await ports.sysfs.writeNumVfs(PF0, 2);
    const cases: Array<[VfOp, string]> = [
      [{ vf: 2, field: 'trust', on: true }, 'EINVAL'],
      [{ vf: 0, field: 'rate', minTxRateMbps: 500, maxTxRateMbps: 100 }, 'EINVAL'],
      [{ vf: 0, field: 'rate', minTxRateMbps: 0, maxTxRateMbps: 100_001 }, 'EINVAL'],
      [{ vf: 0, field: 'mac', mac: '01:00:5e:00:00:01' }, 'EINVAL'],
      [{ vf: 0, field: 'mac', mac: 'ff:ff:ff:ff:ff:ff' }, 'EINVAL'],
      [{ vf: 0, field: 'vlan', vlan: 4096, qos: 0, vlanProto: '802.1Q' }, 'EINVAL'],
    ];
    for (const [op, errno] of cases) {
      const r = await ports.links.applyVfOps('ens1f0', [op]);
      assert.equal(!r.ok && r.errno, errno, JSON.stringify(op));
    }
    assert.deepEqual(
      await ports.links.applyVfOps('ens1f0', [
        { vf: 0, field: 'rate', minTxRateMbps: 100, maxTxRateMbps: 0 },
        { vf: 0, field: 'vlan', vlan: 100, qos: 2, vlanProto: '802.1ad' },
        { vf: 0, field: 'linkState', state: 'disable' },
      ]),
      { ok: true },
    );
    const vf = (await vfsOf(ports))[0]!;
    assert.deepEqual([vf.minTxRateMbps, vf.vlanProto, vf.linkState], [100, '802.1ad', 'disable']);
    assert.equal(await kernelErrno(ports.links.applyVfOps('ens9f9', [])), 'ENODEV');
  });

  it('bnxt refuses a VLAN priority; ixgbe ignores state enable', async () => {
    const bnxt = await simHost('bnxt');
    await bnxt.ports.sysfs.writeNumVfs(PF0, 1);
    const r = await bnxt.ports.links.applyVfOps('ens1f0', [{ vf: 0, field: 'vlan', vlan: 7, qos: 1, vlanProto: '802.1Q' }]);
    assert.equal(!r.ok && r.errno, 'EINVAL');
    const ixgbe = await simHost('ixgbe');
    await ixgbe.ports.sysfs.writeNumVfs(PF0, 1);
    assert.deepEqual(await ixgbe.ports.links.applyVfOps('ens1f0', [{ vf: 0, field: 'linkState', state: 'enable' }]), {
      ok: true,
    });
    assert.equal((await vfsOf(ixgbe.ports))[0]!.linkState, 'auto');
  });

  it('the admin MAC shows on the VF netdev', async () => {
    const { ports } = await simHost('ice');
    await ports.sysfs.writeNumVfs(PF0, 1);
    const before = await ports.sysfs.readNetdev('ens1f0v0');
    assert.ok(before?.mac && before.mac !== '00:00:00:00:00:00');
    await ports.links.applyVfOps('ens1f0', [{ vf: 0, field: 'mac', mac: '02:12:34:56:78:9a' }]);
    assert.equal((await ports.sysfs.readNetdev('ens1f0v0'))?.mac, '02:12:34:56:78:9a');
  });
});

describe('sim host: links', () => {
  it('enforces the driver MTU range and brings netdevs up', async () => {
    const { ports } = await simHost('igb');
    assert.equal(await kernelErrno(ports.links.setMtu('ens1f0', 9217)), 'EINVAL');
    assert.equal(await kernelErrno(ports.links.setMtu('ens1f0', 67)), 'EINVAL');
    await ports.links.setMtu('ens1f0', 9216);
    assert.equal((await ports.links.showPf('ens1f0')).mtu, 9216);
    await ports.sysfs.writeNumVfs(PF0, 1);
    await ports.links.setUp('ens1f0v0');
    await ports.links.setMtu('ens1f0v0', 9000);
    const vf = await ports.sysfs.readNetdev('ens1f0v0');
    assert.deepEqual([vf?.operState, vf?.speedMbps, vf?.mtu], ['up', 1000, 9000]);
    assert.equal(await kernelErrno(ports.links.setUp('nope0')), 'ENODEV');
    assert.equal(await ports.sysfs.readNetdev('nope0'), null);
  });

  it('reports monotonic stats only while a VF passes traffic', async () => {
    const file = join(dir, `host-${seq++}.json`);
    await initSimHost(file, { profile: 'mlx5', pfs: 1 });
    let now = 1_000_000;
    const ports = new SimHost(file, () => now).ports;
    await ports.sysfs.writeNumVfs(PF0, 1);
    const rx = async () => (await ports.links.showPf('ens1f0', { stats: true })).vfs[0]!.stats!.rxPackets;
    assert.equal(await rx(), 0);
    now += 10_000;
    const a = await rx();
    assert.ok(a > 0);
    await ports.links.applyVfOps('ens1f0', [{ vf: 0, field: 'linkState', state: 'disable' }]);
    now += 10_000;
    assert.equal(await rx(), a);
    await ports.links.applyVfOps('ens1f0', [{ vf: 0, field: 'linkState', state: 'auto' }]);
    now += 5_000;
    assert.ok((await rx()) > a);
    assert.equal((await ports.links.showPf('ens1f0')).vfs[0]!.stats, undefined);
  });
});

describe('sim host: shared state', () => {
  it('two SimHost instances on one file see each other’s writes', async () => {
    const { file } = await simHost('i40e');
    const a = new SimHost(file).ports;
    const b = new SimHost(file).ports;
    await a.sysfs.writeAutoprobe(PF0, false);
    await a.sysfs.writeNumVfs(PF0, 4);
    const pf = await b.sysfs.readPf(PF0);
    assert.deepEqual([pf.numVfs, pf.autoprobe], [4, false]);
    assert.equal(await kernelErrno(b.sysfs.writeNumVfs(PF0, 2)), 'EBUSY');
    await b.drivers.bind(pf.vfs[3]!.pciAddress, 'vfio-pci');
    assert.equal((await a.sysfs.readVf(pf.vfs[3]!.pciAddress)).driver, 'vfio-pci');
  });

  it('parallel writers do not lose updates', async () => {
    const { file, ports } = await simHost('mlx5', { pfs: 2 });
    await ports.sysfs.writeNumVfs(PF0, 16);
    await ports.sysfs.writeNumVfs('0000:3b:00.1', 16);
    const hosts = [new SimHost(file).ports, new SimHost(file).ports, ports];
    const mac = (pf: number, vf: number) => `02:00:00:00:${pf.toString(16).padStart(2, '0')}:${vf.toString(16).padStart(2, '0')}`;
    const writes = [];
    for (let vf = 0; vf < 16; vf++) {
      for (const [pf, name] of ['ens1f0', 'ens1f1'].entries()) {
        const host = hosts[(vf + pf) % hosts.length]!;
        writes.push(host.links.applyVfOps(name, [{ vf, field: 'mac', mac: mac(pf, vf) }]));
      }
    }
    writes.push(ports.links.setMtu('ens1f1', 9000));
    const results = await Promise.all(writes);
    assert.ok(results.every((r) => r === undefined || r.ok));
    for (const [pf, name] of ['ens1f0', 'ens1f1'].entries()) {
      const macs = (await vfsOf(ports, name)).map((v) => v.mac);
      assert.deepEqual(
        macs,
        Array.from({ length: 16 }, (_, vf) => mac(pf, vf)),
      );
    }
    assert.equal((await ports.links.showPf('ens1f1')).mtu, 9000);
    // No temp or lock files left behind.
    const leftovers = (await readdir(dir)).filter((f) => f.startsWith(file.split('/').pop()!) && f !== file.split('/').pop());
    assert.deepEqual(leftovers, []);
  });

  it('separate processes do not lose updates', async () => {
    const { file, ports } = await simHost('ice', { pfs: 1 });
    await ports.sysfs.writeNumVfs(PF0, 32);
    const simHostJs = fileURLToPath(new URL('../../src/sim/sim-host.js', import.meta.url));
    const script = (worker: number) => `
      import { createSimPorts } from ${JSON.stringify(simHostJs)};
      const ports = createSimPorts(${JSON.stringify(file)});
      await Promise.all(Array.from({ length: 8 }, (_, i) =>
        ports.links.applyVfOps('ens1f0', [{ vf: ${worker} * 8 + i, field: 'trust', on: true }])));
    `;
    const run = promisify(execFile);
    await Promise.all([0, 1, 2, 3].map((w) => run(process.execPath, ['--input-type=module', '-e', script(w)])));
    assert.ok((await vfsOf(ports)).every((v) => v.trust === true));
  });

  it('recovers a lock left behind by a dead process', async () => {
    const { file, ports } = await simHost('igb');
    await writeFile(`${file}.lock`, '99999\n');
    const old = new Date(Date.now() - 60_000);
    await utimes(`${file}.lock`, old, old);
    await ports.sysfs.writeNumVfs(PF0, 1);
    assert.equal((await ports.sysfs.readPf(PF0)).numVfs, 1);
  });

  it('says which file is missing', async () => {
    const ports = createSimPorts(join(dir, 'absent.json'));
    await assert.rejects(ports.sysfs.listSriovPfs(), (e) => e instanceof SriovError && e.code === 'NOT_FOUND');
  });
});

describe('simulated host state, read at once', () => {
  it('readers at once share one read and parse of the file; a write is read again', async () => {
    const file = join(dir, `shared-${seq++}.json`);
    await initSimHost(file, { profile: 'ice', pfs: 2 });
    const states = await Promise.all(Array.from({ length: 8 }, () => readSimState(file)));
    assert.ok(states.every((s) => s === states[0]), 'one parse for all');
    await updateSimState(file, (s) => {
      s.hostname = 'renamed';
    });
    const [again, twice] = await Promise.all([readSimState(file), readSimState(file)]);
    assert.equal(again, twice);
    assert.equal(again.hostname, 'renamed');
  });
});
