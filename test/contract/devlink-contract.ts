/**
 * The devlink contract: behaviour every `Devlink` port must show, on the
 * simulated host in the unit suite and on the kernel's netdevsim in the lab,
 * so the simulator cannot drift from the kernel's devlink core. It uses only
 * what netdevsim and the simulated host share: VF ports found by `vfnum`
 * (never by a port index), rates within 5000 Mbit/s, and VFs that do not
 * hold the eswitch back (netdevsim has no VF drivers; the simulated target
 * creates its VFs unbound).
 *
 * The target's PF must drive its VFs' rates through devlink rate leaves in
 * switchdev mode and allow rate nodes; the suite leaves it in legacy mode
 * with no VFs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EswitchMode } from '../../src/host/model.js';
import { KernelError, type DevlinkPortFacts, type DevlinkRateFacts, type HostPorts } from '../../src/host/ports.js';

export interface DevlinkContractTarget {
  ports: HostPorts;
  /** The PF's device address as the inventory has it (`0000:3b:00.0`, `netdevsim10`). */
  device: string;
  /** `echo n > sriov_numvfs` (through 0 when needed), leaving the VFs free for an eswitch mode change. */
  setNumVfs(n: number): Promise<void>;
}

const NODE = 'vfleet-acme';
const OTHER = 'vfleet-zeta';

async function refused(p: Promise<unknown>, errno: string): Promise<void> {
  const err = await p.then(
    () => assert.fail(`expected ${errno}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof KernelError, `expected a KernelError, got ${String(err)}`);
  assert.equal(err.errno, errno, err.message);
}

export function devlinkContract(name: string, setup: () => Promise<DevlinkContractTarget>): void {
  describe(`devlink contract: ${name}`, () => {
    let t: DevlinkContractTarget;
    const devlink = () => t.ports.devlink;
    const mode = () => devlink().eswitchMode(t.device);
    const setMode = (m: EswitchMode) => devlink().setEswitchMode(t.device, m);
    const vfPorts = async (): Promise<DevlinkPortFacts[]> => (await devlink().ports(t.device)).filter((p) => p.flavour === 'pcivf');
    const portOf = async (vf: number): Promise<string> => {
      const port = (await vfPorts()).find((p) => p.vfnum === vf);
      assert.ok(port, `VF ${vf} has a pcivf port`);
      return port.port;
    };
    const rates = () => devlink().rates(t.device);
    const leafOf = async (vf: number): Promise<DevlinkRateFacts | undefined> => {
      const port = await portOf(vf);
      return (await rates()).find((r) => r.type === 'leaf' && r.object === port);
    };
    const nodeOf = async (node: string): Promise<DevlinkRateFacts | undefined> => (await rates()).find((r) => r.type === 'node' && r.object.endsWith(`/${node}`));
    const nodeObject = (node: string) => `${t.device.startsWith('netdevsim') ? 'netdevsim/' : 'pci/'}${t.device}/${node}`;

    it('starts in legacy mode with no VFs, and a set to the same mode is a no-op', async () => {
      t = await setup();
      await t.setNumVfs(0);
      if ((await mode()) !== 'legacy') await setMode('legacy');
      assert.equal(await mode(), 'legacy');
      await setMode('legacy');
      assert.equal(await mode(), 'legacy', 'legacy → legacy succeeds and changes nothing');
      assert.deepEqual(await vfPorts(), []);
      assert.deepEqual(await rates(), []);
    });

    it('in legacy mode with VFs there are no representor ports and no rate objects', async () => {
      await t.setNumVfs(3);
      assert.equal(await mode(), 'legacy');
      assert.deepEqual(await vfPorts(), []);
      assert.deepEqual(await rates(), []);
      const uplink = (await devlink().ports(t.device)).filter((p) => p.flavour === 'physical');
      assert.equal(uplink.length, 1, 'the uplink port is there in either mode');
    });

    it('switches to switchdev and reads it back; each VF gets a representor port with a netdev', async () => {
      await setMode('switchdev');
      assert.equal(await mode(), 'switchdev');
      await setMode('switchdev');
      assert.equal(await mode(), 'switchdev', 'switchdev → switchdev is a no-op');
      const ports = await vfPorts();
      assert.deepEqual(ports.map((p) => p.vfnum).sort(), [0, 1, 2]);
      const uplink = (await devlink().ports(t.device)).find((p) => p.flavour === 'physical');
      const netdevs = ports.map((p) => p.netdev);
      for (const p of ports) {
        assert.ok(p.netdev, `VF ${p.vfnum}'s port ${p.port} has a representor netdev`);
        assert.notEqual(p.netdev, uplink?.netdev, 'a representor is not the uplink');
        assert.equal(p.pfnum, 0);
      }
      assert.equal(new Set(netdevs).size, 3, 'one representor per VF');
    });

    it('has one rate leaf per VF port, with no rates and no parent', async () => {
      const leaves = (await rates()).filter((r) => r.type === 'leaf');
      const ports = (await vfPorts()).map((p) => p.port).sort();
      assert.deepEqual(leaves.map((l) => l.object).sort(), ports);
      for (const leaf of leaves) assert.deepEqual([leaf.txShareMbps, leaf.txMaxMbps, leaf.parent], [0, 0, null]);
    });

    it("sets a leaf's tx_share and tx_max and reads them back; the devlink tool refuses tx_share above a non-zero tx_max", async () => {
      await devlink().setRate(await portOf(0), { txShareMbps: 100, txMaxMbps: 500 });
      assert.deepEqual(await leafOf(0), { object: await portOf(0), type: 'leaf', txShareMbps: 100, txMaxMbps: 500, parent: null });
      // iproute2 checks before the kernel (which would accept it), against the current value of the one not given.
      await refused(devlink().setRate(await portOf(1), { txShareMbps: 300, txMaxMbps: 200 }), 'EINVAL');
      assert.deepEqual([(await leafOf(1))?.txShareMbps, (await leafOf(1))?.txMaxMbps], [0, 0], 'nothing of a refused set applied');
      await devlink().setRate(await portOf(1), { txShareMbps: 300 });
      assert.deepEqual([(await leafOf(1))?.txShareMbps, (await leafOf(1))?.txMaxMbps], [300, 0], 'a share with no cap is fine');
      await refused(devlink().setRate(await portOf(1), { txMaxMbps: 200 }), 'EINVAL');
      await devlink().setRate(await portOf(1), { txMaxMbps: 400 });
      assert.deepEqual([(await leafOf(1))?.txShareMbps, (await leafOf(1))?.txMaxMbps], [300, 400], 'an absent field is left as it is');
    });

    it('adds a node with its rates, parents leaves to it, and reads the tree back', async () => {
      await devlink().addRateNode(t.device, NODE, { txShareMbps: 1000, txMaxMbps: 2000 });
      assert.deepEqual(await nodeOf(NODE), { object: nodeObject(NODE), type: 'node', txShareMbps: 1000, txMaxMbps: 2000, parent: null });
      await devlink().setRate(await portOf(0), { parent: NODE });
      await devlink().setRate(await portOf(1), { parent: NODE });
      assert.equal((await leafOf(0))?.parent, NODE);
      assert.equal((await leafOf(1))?.parent, NODE);
      assert.equal((await leafOf(0))?.txMaxMbps, 500, 'parenting keeps the leaf rates');
      await devlink().setRate(nodeObject(NODE), { txShareMbps: 1500 });
      assert.deepEqual([(await nodeOf(NODE))?.txShareMbps, (await nodeOf(NODE))?.txMaxMbps], [1500, 2000]);
    });

    it('refuses a second node of the same name, and moving a leaf without a noparent first', async () => {
      await refused(devlink().addRateNode(t.device, NODE, { txShareMbps: 0, txMaxMbps: 0 }), 'EEXIST');
      await devlink().addRateNode(t.device, OTHER, { txShareMbps: 0, txMaxMbps: 0 });
      await refused(devlink().setRate(await portOf(0), { parent: OTHER }), 'EBUSY');
      assert.equal((await leafOf(0))?.parent, NODE, 'the refused move changed nothing');
      await devlink().setRate(await portOf(0), { parent: null });
      await devlink().setRate(await portOf(0), { parent: OTHER });
      assert.equal((await leafOf(0))?.parent, OTHER, 'noparent, then parent, moves it');
      await devlink().setRate(await portOf(0), { parent: null });
      assert.equal((await leafOf(0))?.parent, null);
    });

    it('refuses an unknown parent, a parent to self, and a loop of parents', async () => {
      await refused(devlink().setRate(await portOf(2), { parent: 'vfleet-nosuch' }), 'ENODEV');
      await refused(devlink().setRate(nodeObject(NODE), { parent: NODE }), 'EINVAL');
      await devlink().setRate(nodeObject(OTHER), { parent: NODE });
      assert.equal((await nodeOf(OTHER))?.parent, NODE, 'a node may have a node as parent');
      await refused(devlink().setRate(nodeObject(NODE), { parent: OTHER }), 'EEXIST');
      assert.equal((await nodeOf(NODE))?.parent, null, 'the loop was not made');
    });

    it('refuses to delete a node with children, and deletes it once they are gone', async () => {
      await refused(devlink().deleteRateNode(t.device, NODE), 'EBUSY');
      await devlink().setRate(nodeObject(OTHER), { parent: null });
      await refused(devlink().deleteRateNode(t.device, NODE), 'EBUSY');
      await devlink().setRate(await portOf(1), { parent: null });
      await devlink().deleteRateNode(t.device, NODE);
      assert.equal(await nodeOf(NODE), undefined);
      await refused(devlink().deleteRateNode(t.device, NODE), 'ENODEV');
    });

    it('refuses switching to legacy (or even to switchdev again) while a rate node exists', async () => {
      await refused(setMode('legacy'), 'EBUSY');
      assert.equal(await mode(), 'switchdev');
      await refused(setMode('switchdev'), 'EBUSY');
      await devlink().deleteRateNode(t.device, OTHER);
      assert.deepEqual((await rates()).filter((r) => r.type === 'node'), []);
    });

    it('back in legacy mode the representor ports and leaves are gone, and nodes cannot be added', async () => {
      await setMode('legacy');
      assert.equal(await mode(), 'legacy');
      assert.deepEqual(await vfPorts(), []);
      assert.deepEqual(await rates(), []);
      await refused(devlink().addRateNode(t.device, NODE, { txShareMbps: 0, txMaxMbps: 0 }), 'EOPNOTSUPP');
      assert.deepEqual(await rates(), [], 'the refused add left no node');
    });

    it('a switchdev PF gets fresh leaves: the rates of an earlier switchdev stint are gone', async () => {
      await setMode('switchdev');
      const leaf = await leafOf(0);
      assert.deepEqual([leaf?.txShareMbps, leaf?.txMaxMbps, leaf?.parent], [0, 0, null]);
      await setMode('legacy');
      await t.setNumVfs(0);
      assert.equal(await mode(), 'legacy');
    });
  });
}
