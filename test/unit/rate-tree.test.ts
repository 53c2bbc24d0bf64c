// The host layer's view of a PF's devlink rate tree (src/host/rate-tree.ts), on a simulated mlx5 PF in switchdev mode.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { childrenOf, clearLeaf, deleteRateNode, ensureRateNode, hasRateNodes, parentLeaf, readRateTree } from '../../src/host/rate-tree.js';
import { switchdevHost, type SwitchdevHost } from '../helpers/switchdev-host.js';

describe('host: devlink rate tree', { timeout: 30_000 }, () => {
  let dir: string;
  let sim: SwitchdevHost;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-rate-tree-'));
    sim = await switchdevHost(dir, { legacy: [1] });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('knows which PFs have rate nodes from the inventory alone', () => {
    assert.equal(hasRateNodes(sim.pfs[0]!), true);
    assert.equal(hasRateNodes(sim.pfs[1]!), false);
  });

  it("maps each VF's leaf through its pcivf port, and each write updates the tree it was given", async () => {
    const dl = sim.ports.devlink;
    const pf = sim.pfs[0]!;
    const tree = await readRateTree(dl, pf.pciAddress);
    assert.deepEqual([...tree.leaves.keys()].sort(), [0, 1, 2, 3]);
    assert.equal(await ensureRateNode(dl, tree, 'vfleet-acme', { txShareMbps: 100, txMaxMbps: 900 }), 'created');
    assert.equal(await ensureRateNode(dl, tree, 'vfleet-acme', { txShareMbps: 100, txMaxMbps: 900 }), null);
    assert.equal(await ensureRateNode(dl, tree, 'vfleet-acme', { txShareMbps: 100, txMaxMbps: 1200 }), 'set');
    assert.equal(await parentLeaf(dl, tree, 3, 'vfleet-acme'), true);
    assert.equal(await parentLeaf(dl, tree, 3, 'vfleet-acme'), false);
    assert.deepEqual(await readRateTree(dl, pf.pciAddress), tree);
    assert.deepEqual(childrenOf(tree, 'vfleet-acme'), { vfs: [3], others: [], nodes: [] });
  });

  it("refuses to delete a node with children (the kernel's EBUSY) and deletes it once emptied", async () => {
    const dl = sim.ports.devlink;
    const pf = sim.pfs[0]!;
    const tree = await readRateTree(dl, pf.pciAddress);
    await ensureRateNode(dl, tree, 'vfleet-acme', { txShareMbps: 0, txMaxMbps: 900 });
    await parentLeaf(dl, tree, 0, 'vfleet-acme');
    await assert.rejects(deleteRateNode(dl, tree, 'vfleet-acme'), (e: unknown) => e instanceof SriovError && e.code === 'BUSY' && e.message.includes('rate del'));
    assert.equal(await clearLeaf(dl, tree, 0), true);
    assert.equal(await deleteRateNode(dl, tree, 'vfleet-acme'), true);
    assert.equal((await readRateTree(dl, pf.pciAddress)).nodes.size, 0);
  });

  it('writes only nodes named vfleet-* with a valid devlink name, before touching the host', async () => {
    const dl = sim.ports.devlink;
    const pf = sim.pfs[0]!;
    await dl.addRateNode(pf.pciAddress, 'ops', { txShareMbps: 0, txMaxMbps: 500 });
    const tree = await readRateTree(dl, pf.pciAddress);
    for (const name of ['ops', 'vfleet-a/b', '12']) {
      await assert.rejects(ensureRateNode(dl, tree, name, { txShareMbps: 0, txMaxMbps: 1 }), (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT');
    }
    await assert.rejects(deleteRateNode(dl, tree, 'ops'), (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT');
    assert.deepEqual([...(await readRateTree(dl, pf.pciAddress)).nodes.keys()], ['ops']);
  });
});
