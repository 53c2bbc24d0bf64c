// Lab suite (needs root and the SR-IOV lab, and netdevsim.ko from
// test/lab/netdevsim.sh): the Linux devlink and sysfs ports on netdevsim,
// the kernel's devlink test driver, beside the lab's real igb PFs.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { SriovHost } from '../../src/host/configurator.js';
import { createLinuxPorts } from '../../src/host/linux/index.js';
import { KernelError, type HostPorts } from '../../src/host/ports.js';
import { labPfs, requireLab } from './lab-host.js';
import { delNsimDevice, newNsimDevice, type NsimDevice } from './netdevsim.js';

const isKernel = (errno: string, text?: string) => (e: unknown) =>
  e instanceof KernelError && e.errno === errno && (text === undefined || e.message.includes(text));

describe('devlink and sysfs on netdevsim (lab)', () => {
  let nsim: NsimDevice;
  let ports: HostPorts;
  let host: SriovHost;
  const DEV = 'netdevsim10';
  const HANDLE = 'netdevsim/netdevsim10';
  const leaf = (vf: number) => `${HANDLE}/${128 + vf}`;
  const rateOf = async (object: string) => (await ports.devlink.rates(DEV)).find((r) => r.object === object);

  before(async () => {
    requireLab();
    // max_vfs 6, not netdevsim's default 4: totalVfs must come from it.
    nsim = await newNsimDevice(10, { maxVfs: 6 });
    ports = createLinuxPorts({});
    host = new SriovHost(ports);
  });
  after(() => {
    if (nsim) delNsimDevice(nsim);
  });

  it('discovers netdevsim10 as a PF: driver netdevsim, totalVfs from max_vfs, no VFs yet', async () => {
    assert.ok((await ports.sysfs.listSriovPfs()).includes(DEV));
    const inv = await host.inventory();
    const pf = inv.pfs.find((p) => p.pciAddress === DEV);
    assert.ok(pf, `inventory: ${inv.pfs.map((p) => p.pciAddress).join(', ')}`);
    assert.equal(pf.driver, 'netdevsim');
    assert.equal(pf.name, nsim.netdev);
    assert.deepEqual([pf.totalVfs, pf.numVfs, pf.vendorId, pf.eswitchMode], [6, 0, '', 'legacy']);
    assert.ok(inv.pfs.some((p) => p.driver === 'igb'), 'the igb PFs are still there');
    assert.equal(await ports.sysfs.pciAddressOfNetdev(nsim.netdev), DEV);
  });

  it("writes sriov_numvfs: 4 VFs as devlink ports only; netdevsim's refusals", async () => {
    await ports.sysfs.writeNumVfs(DEV, 4);
    const pf = await ports.sysfs.readPf(DEV);
    assert.deepEqual(pf.vfs.map((v) => v.pciAddress), ['netdevsim10:vf0', 'netdevsim10:vf1', 'netdevsim10:vf2', 'netdevsim10:vf3']);
    assert.deepEqual(await ports.sysfs.readVf('netdevsim10:vf3'), { pciAddress: 'netdevsim10:vf3', driver: null, driverOverride: null, iommuGroup: null, netdevs: [] });
    await assert.rejects(ports.sysfs.readVf('netdevsim10:vf4'), isKernel('ENODEV'));
    // nsim_drv_configure_vfs: non-zero to non-zero is EBUSY (as on PCI), above max_vfs ENOMEM.
    await assert.rejects(ports.sysfs.writeNumVfs(DEV, 2), isKernel('EBUSY'));
    await ports.sysfs.writeNumVfs(DEV, 0);
    await assert.rejects(ports.sysfs.writeNumVfs(DEV, 7), isKernel('ENOMEM'));
    await ports.sysfs.writeNumVfs(DEV, 4);
    assert.equal((await ports.sysfs.readPf(DEV)).numVfs, 4);
    await assert.rejects(ports.sysfs.writeAutoprobe(DEV, false), isKernel('ENOENT'));
  });

  it('switches to switchdev and reads it back; each VF gets a representor port', async () => {
    await ports.devlink.setEswitchMode(DEV, 'switchdev');
    assert.equal(await ports.devlink.eswitchMode(DEV), 'switchdev');
    const devPorts = await ports.devlink.ports(DEV);
    assert.deepEqual(devPorts.map((p) => [p.port, p.flavour, p.pfnum, p.vfnum]), [
      [`${HANDLE}/0`, 'physical', null, null],
      [leaf(0), 'pcivf', 0, 0],
      [leaf(1), 'pcivf', 0, 1],
      [leaf(2), 'pcivf', 0, 2],
      [leaf(3), 'pcivf', 0, 3],
    ]);
    assert.equal(devPorts[0]!.netdev, nsim.netdev);
    const sysClass = (netdev: string, attr: string) => readFileSync(`/sys/class/net/${netdev}/${attr}`, 'utf8').trim();
    const switchId = sysClass(nsim.netdev, 'phys_switch_id');
    for (const p of devPorts.slice(1)) {
      assert.ok(p.netdev, `${p.port} has a representor`);
      assert.equal(sysClass(p.netdev, 'phys_port_name'), `pf0vf${p.vfnum}`);
      assert.equal(sysClass(p.netdev, 'phys_switch_id'), switchId, 'the representor shares the PF switch id');
      assert.equal(await ports.sysfs.pciAddressOfNetdev(p.netdev), DEV);
    }
    // The representors are the device's netdevs too: its own port stays first.
    const pf = await ports.sysfs.readPf(DEV);
    assert.equal(pf.netdevs.length, 5);
    assert.equal(pf.netdevs[0], nsim.netdev);
    assert.equal((await host.inventory()).pfs.find((p) => p.pciAddress === DEV)?.name, nsim.netdev);
  });

  it('has a rate leaf per VF; sets tx_share/tx_max and reads them back in whole Mbit/s', async () => {
    assert.deepEqual(await ports.devlink.rates(DEV), [0, 1, 2, 3].map((vf) => ({ object: leaf(vf), type: 'leaf', txShareMbps: 0, txMaxMbps: 0, parent: null })));
    await ports.devlink.setRate(leaf(0), { txShareMbps: 10, txMaxMbps: 50 });
    assert.deepEqual(await rateOf(leaf(0)), { object: leaf(0), type: 'leaf', txShareMbps: 10, txMaxMbps: 50, parent: null });
    // devlink's JSON is in bytes/s: 10 Mbit/s is 1250000.
    const raw = JSON.parse(execFileSync('devlink', ['-j', 'port', 'function', 'rate', 'show', leaf(0)], { encoding: 'utf8' }));
    assert.deepEqual(raw.rate[leaf(0)], { type: 'leaf', tx_share: 1_250_000, tx_max: 6_250_000 });
    await ports.devlink.setRate(leaf(0), { txMaxMbps: 0 });
    assert.deepEqual(await rateOf(leaf(0)), { object: leaf(0), type: 'leaf', txShareMbps: 10, txMaxMbps: 0, parent: null });
  });

  it('adds nodes, parents leaves and nodes to them, un-parents and deletes them', async () => {
    await ports.devlink.addRateNode(DEV, 'vfleet-acme', { txShareMbps: 100, txMaxMbps: 200 });
    await ports.devlink.addRateNode(DEV, 'vfleet-beta', { txShareMbps: 0, txMaxMbps: 0 });
    await assert.rejects(ports.devlink.addRateNode(DEV, 'vfleet-acme', { txShareMbps: 1, txMaxMbps: 1 }), isKernel('EEXIST'));
    await ports.devlink.setRate(leaf(0), { parent: 'vfleet-acme' });
    await ports.devlink.setRate(leaf(1), { txShareMbps: 20, parent: 'vfleet-acme' });
    await ports.devlink.setRate(`${HANDLE}/vfleet-beta`, { txMaxMbps: 300, parent: 'vfleet-acme' });
    await ports.devlink.setRate(`${HANDLE}/vfleet-acme`, { txShareMbps: 150 });
    const rates = await ports.devlink.rates(DEV);
    assert.deepEqual(
      rates.filter((r) => r.type === 'node').sort((a, b) => a.object.localeCompare(b.object)),
      [
        { object: `${HANDLE}/vfleet-acme`, type: 'node', txShareMbps: 150, txMaxMbps: 200, parent: null },
        { object: `${HANDLE}/vfleet-beta`, type: 'node', txShareMbps: 0, txMaxMbps: 300, parent: 'vfleet-acme' },
      ],
    );
    assert.deepEqual(await rateOf(leaf(1)), { object: leaf(1), type: 'leaf', txShareMbps: 20, txMaxMbps: 0, parent: 'vfleet-acme' });
    await assert.rejects(ports.devlink.setRate(leaf(2), { parent: 'vfleet-nope' }), isKernel('ENODEV'));

    await ports.devlink.setRate(leaf(1), { parent: null });
    assert.equal((await rateOf(leaf(1)))?.parent, null);
    await ports.devlink.setRate(`${HANDLE}/vfleet-beta`, { parent: null });
    await ports.devlink.deleteRateNode(DEV, 'vfleet-beta');
    assert.equal(await rateOf(`${HANDLE}/vfleet-beta`), undefined);
    await assert.rejects(ports.devlink.deleteRateNode(DEV, 'vfleet-beta'), isKernel('ENODEV'));
  });

  it("refuses what the kernel refuses: a node with children, a parent loop, legacy while nodes exist, a node in legacy", async () => {
    // vfleet-acme still parents leaf 0.
    await assert.rejects(ports.devlink.deleteRateNode(DEV, 'vfleet-acme'), isKernel('EBUSY', 'Node has children'));
    await ports.devlink.addRateNode(DEV, 'vfleet-child', { txShareMbps: 0, txMaxMbps: 0 });
    await ports.devlink.setRate(`${HANDLE}/vfleet-child`, { parent: 'vfleet-acme' });
    await assert.rejects(ports.devlink.setRate(`${HANDLE}/vfleet-acme`, { parent: 'vfleet-child' }), isKernel('EEXIST', 'already a parent'));
    await assert.rejects(ports.devlink.setRate(`${HANDLE}/vfleet-acme`, { parent: 'vfleet-acme' }), (e: unknown) => e instanceof KernelError);
    await assert.rejects(ports.devlink.setEswitchMode(DEV, 'legacy'), isKernel('EBUSY', 'Rate node(s) exists.'));
    assert.equal(await ports.devlink.eswitchMode(DEV), 'switchdev', 'the refused change left the mode');

    await ports.devlink.setRate(`${HANDLE}/vfleet-child`, { parent: null });
    await ports.devlink.deleteRateNode(DEV, 'vfleet-child');
    await ports.devlink.setRate(leaf(0), { parent: null });
    await ports.devlink.deleteRateNode(DEV, 'vfleet-acme');
    await ports.devlink.setEswitchMode(DEV, 'legacy');
    assert.equal(await ports.devlink.eswitchMode(DEV), 'legacy');
    assert.deepEqual(await ports.devlink.rates(DEV), [], 'legacy mode has no rate objects');
    assert.deepEqual((await ports.devlink.ports(DEV)).map((p) => p.flavour), ['physical']);
    await assert.rejects(ports.devlink.addRateNode(DEV, 'vfleet-acme', { txShareMbps: 0, txMaxMbps: 0 }), isKernel('EOPNOTSUPP', 'only in switchdev mode'));
  });

  it('takes tx_share with tx_max 0 (unlimited); the devlink tool refuses tx_share above a non-zero tx_max, which the kernel would take', async () => {
    await ports.devlink.setEswitchMode(DEV, 'switchdev');
    await ports.devlink.setRate(leaf(2), { txShareMbps: 30, txMaxMbps: 0 });
    assert.deepEqual(await rateOf(leaf(2)), { object: leaf(2), type: 'leaf', txShareMbps: 30, txMaxMbps: 0, parent: null });
    await ports.devlink.addRateNode(DEV, 'vfleet-open', { txShareMbps: 100, txMaxMbps: 0 });
    assert.deepEqual(await rateOf(`${HANDLE}/vfleet-open`), { object: `${HANDLE}/vfleet-open`, type: 'node', txShareMbps: 100, txMaxMbps: 0, parent: null });
    await ports.devlink.deleteRateNode(DEV, 'vfleet-open');
    // In one command, or one at a time against the object's current value: the tool checks before the kernel.
    await assert.rejects(ports.devlink.setRate(leaf(2), { txShareMbps: 20, txMaxMbps: 10 }), isKernel('EINVAL', 'Expected tx_share <= tx_max'));
    await assert.rejects(ports.devlink.setRate(leaf(2), { txMaxMbps: 10 }), isKernel('EINVAL', 'Expected tx_share <= tx_max'));
    await ports.devlink.setRate(leaf(2), { txMaxMbps: 40 });
    await assert.rejects(ports.devlink.setRate(leaf(2), { txShareMbps: 50 }), isKernel('EINVAL', 'Expected tx_share <= tx_max'));
    await assert.rejects(ports.devlink.addRateNode(DEV, 'vfleet-over', { txShareMbps: 20, txMaxMbps: 10 }), isKernel('EINVAL', 'Expected tx_share <= tx_max'));
    assert.deepEqual(await rateOf(leaf(2)), { object: leaf(2), type: 'leaf', txShareMbps: 30, txMaxMbps: 40, parent: null });
    assert.equal(await rateOf(`${HANDLE}/vfleet-over`), undefined);
    await ports.devlink.setRate(leaf(2), { txShareMbps: 0, txMaxMbps: 0 });
  });

  it('a rate that is not whole Mbit/s is refused by netdevsim, and a refused set may still apply its first attribute', async () => {
    // devlink takes other units; vfleet never sends them. The kernel sets tx_share, then refuses tx_max.
    const r = spawnSync('devlink', ['port', 'function', 'rate', 'set', leaf(3), 'tx_share', '1mbit', 'tx_max', '1500kbit'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /TX rate value not in link speed units of 1Mbps/);
    assert.equal((await rateOf(leaf(3)))?.txShareMbps, 1, 'the kernel applied tx_share before it refused tx_max');
    await ports.devlink.setRate(leaf(3), { txShareMbps: 0 });
    await ports.devlink.setEswitchMode(DEV, 'legacy');
  });

  it('leaves the igb PFs working beside it', async () => {
    const [igb] = await labPfs(host);
    assert.ok(await host.setNumVfs(igb!, 2));
    const pf = (await host.inventory()).pfs.find((p) => p.name === igb);
    assert.deepEqual([pf?.numVfs, pf?.vfs.length, pf?.vfs[0]?.pciAddress.length], [2, 2, 12]);
    await host.setNumVfs(igb!, 0);
    assert.equal(await ports.devlink.eswitchMode(pf!.pciAddress), null, 'igb has no devlink eswitch');
  });
});
