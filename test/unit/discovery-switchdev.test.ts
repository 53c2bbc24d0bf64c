// Discovery in switchdev mode: representors, rate leaves and nodes; legacy mode makes no devlink port/rate calls; netdevsim PFs.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { discoverHost, discoverPf, resolvePf } from '../../src/host/discovery.js';
import type { HostPorts, PfPciFacts } from '../../src/host/ports.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** The ports, counting devlink port/rate reads. */
async function simPorts(profile: string): Promise<{ ports: HostPorts; pf: string; calls: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-discovery-switchdev-'));
  dirs.push(dir);
  const file = join(dir, 'host.json');
  await initSimHost(file, { profile, pfs: 1 });
  const inner = createSimPorts(file);
  const calls: string[] = [];
  const devlink = {
    ...inner.devlink,
    ports: (d: string) => (calls.push('ports'), inner.devlink.ports(d)),
    rates: (d: string) => (calls.push('rates'), inner.devlink.rates(d)),
  };
  const ports = { ...inner, devlink };
  const [pf] = await ports.sysfs.listSriovPfs();
  return { ports, pf: pf!, calls };
}

describe('discovery in switchdev mode', () => {
  it('legacy mode: no representors, no rate fields, and no devlink port or rate reads', async () => {
    const { ports, pf, calls } = await simPorts('mlx5');
    await ports.sysfs.writeNumVfs(pf, 3);
    const info = await discoverPf(ports, pf);
    assert.equal(info.eswitchMode, 'legacy');
    assert.equal(info.rateNodes, undefined);
    for (const vf of info.vfs) {
      assert.equal(vf.representor, undefined);
      assert.equal(vf.rateParent, undefined);
    }
    assert.deepEqual(calls, []);
  });

  it('maps each VF to its representor, reads min/max rates from the leaves, their parents and every node', async () => {
    const { ports, pf, calls } = await simPorts('mlx5');
    await ports.sysfs.writeAutoprobe(pf, false);
    await ports.sysfs.writeNumVfs(pf, 3);
    await ports.devlink.setEswitchMode(pf, 'switchdev');
    const leaf = (vf: number) => `pci/${pf}/${128 + vf}`;
    await ports.devlink.addRateNode(pf, 'vfleet-acme', { txShareMbps: 1000, txMaxMbps: 5000 });
    await ports.devlink.addRateNode(pf, 'theirs', { txShareMbps: 0, txMaxMbps: 700 });
    await ports.devlink.setRate(leaf(1), { txShareMbps: 100, txMaxMbps: 400, parent: 'vfleet-acme' });
    calls.length = 0;
    const info = await discoverPf(ports, pf);
    assert.equal(info.name, 'ens1f0', 'the uplink, not a representor, names the PF');
    assert.deepEqual(
      info.vfs.map((v) => v.representor),
      [0, 1, 2].map((n) => ({ netdev: `ens1f0r${n}`, devlinkPort: leaf(n) })),
    );
    const vf1 = info.vfs[1]!;
    assert.deepEqual([vf1.minTxRateMbps, vf1.maxTxRateMbps, vf1.rateParent], [100, 400, 'vfleet-acme']);
    assert.deepEqual([info.vfs[0]!.minTxRateMbps, info.vfs[0]!.maxTxRateMbps, info.vfs[0]!.rateParent], [0, 0, null]);
    assert.deepEqual(
      [...(info.rateNodes ?? [])].sort((a, b) => a.name.localeCompare(b.name)),
      [
        { name: 'theirs', txShareMbps: 0, txMaxMbps: 700, parent: null },
        { name: 'vfleet-acme', txShareMbps: 1000, txMaxMbps: 5000, parent: null },
      ],
    );
    assert.deepEqual(calls.sort(), ['ports', 'rates'], 'one port read and one rate read per PF');
  });

  it('a driver rating through ip link in switchdev (bnxt) gets representors but no rate fields', async () => {
    const { ports, pf, calls } = await simPorts('bnxt');
    await ports.sysfs.writeNumVfs(pf, 2);
    await ports.devlink.setEswitchMode(pf, 'switchdev');
    const info = await discoverPf(ports, pf);
    assert.equal(info.vfs[0]!.representor?.devlinkPort, `pci/${pf}/128`);
    assert.equal(info.vfs[0]!.rateParent, undefined);
    assert.equal(info.rateNodes, undefined);
    assert.deepEqual(calls, ['ports']);
  });
});

describe('discovery of a netdevsim PF', () => {
  const DEVICE = 'netdevsim10';
  const facts: PfPciFacts = {
    pciAddress: DEVICE,
    vendorId: '0000',
    deviceId: '0000',
    driver: 'netdevsim',
    driverOverride: null,
    numaNode: null,
    localCpus: null,
    iommuGroup: null,
    netdevs: ['eni10np1'],
    totalVfs: 4,
    numVfs: 2,
    autoprobe: false,
    vfDeviceId: null,
    vfs: [0, 1].map((index) => ({ index, pciAddress: `${DEVICE}:vf${index}` })),
  };
  const fail = (what: string) => () => Promise.reject(new Error(`${what} must not be called`));
  const ports = {
    sysfs: {
      listSriovPfs: async () => [DEVICE],
      readPf: async (d: string) => (d === DEVICE ? facts : Promise.reject(new Error(d))),
      readVf: fail('readVf of a netdevsim VF'),
      readNetdev: async (name: string) => ({ name, mac: '02:00:00:00:00:01', mtu: 1500, operState: 'up' as const, speedMbps: null }),
      pciAddressOfNetdev: async () => null,
      writeNumVfs: fail('writeNumVfs'),
      writeAutoprobe: fail('writeAutoprobe'),
    },
    links: { showPf: async () => ({ mac: '02:00:00:00:00:01', mtu: 1500, operState: 'up' as const, vfs: [] }) },
    devlink: {
      eswitchMode: async () => 'switchdev' as const,
      ports: async () => [
        { port: 'netdevsim/netdevsim10/0', flavour: 'physical', netdev: 'eni10np1', pfnum: 0, vfnum: null },
        { port: 'netdevsim/netdevsim10/128', flavour: 'pcivf', netdev: 'eni10npf0vf0', pfnum: 0, vfnum: 0 },
        { port: 'netdevsim/netdevsim10/129', flavour: 'pcivf', netdev: 'eni10npf0vf1', pfnum: 0, vfnum: 1 },
      ],
      rates: async () => [
        { object: 'netdevsim/netdevsim10/128', type: 'leaf' as const, txShareMbps: 10, txMaxMbps: 20, parent: 'vfleet-a' },
        { object: 'netdevsim/netdevsim10/129', type: 'leaf' as const, txShareMbps: 0, txMaxMbps: 0, parent: null },
        { object: 'netdevsim/netdevsim10/vfleet-a', type: 'node' as const, txShareMbps: 100, txMaxMbps: 200, parent: null },
      ],
    },
    hostname: () => 'h1',
  } as unknown as HostPorts;

  it('reads no VF devices, and shows its VFs by their netdevsim addresses with representors and leaves', async () => {
    const inv = await discoverHost(ports);
    const pf = inv.pfs[0]!;
    assert.equal(pf.pciAddress, DEVICE);
    assert.equal(pf.name, 'eni10np1');
    assert.deepEqual(pf.vfs.map((v) => [v.pciAddress, v.driver, v.netdev, v.iommuGroup]), [
      ['netdevsim10:vf0', null, null, null],
      ['netdevsim10:vf1', null, null, null],
    ]);
    assert.deepEqual(pf.vfs[0]!.representor, { netdev: 'eni10npf0vf0', devlinkPort: 'netdevsim/netdevsim10/128' });
    assert.deepEqual([pf.vfs[0]!.minTxRateMbps, pf.vfs[0]!.maxTxRateMbps, pf.vfs[0]!.rateParent], [10, 20, 'vfleet-a']);
    assert.deepEqual(pf.rateNodes, [{ name: 'vfleet-a', txShareMbps: 100, txMaxMbps: 200, parent: null }]);
  });

  it('is found by its device name', async () => {
    assert.equal(await resolvePf(ports, 'netdevsim10'), DEVICE);
  });
});
