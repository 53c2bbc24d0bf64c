// Tenant bandwidth groups: the agent keeps each PF's devlink rate tree as
// desired (issue 14). A simulated mlx5 host in switchdev mode; desired states
// built by hand, as the controller would send them.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { AgentTally } from '../../src/agent/counters.js';
import { Reconciler } from '../../src/agent/reconciler.js';
import type { DesiredAllocation, DesiredRateGroup, DesiredState } from '../../src/controller/desired-state.js';
import { SriovHost } from '../../src/host/configurator.js';
import type { PfInfo } from '../../src/host/model.js';
import type { Devlink, HostPorts } from '../../src/host/ports.js';
import { readRateTree, type RateTree } from '../../src/host/rate-tree.js';
import { desiredState } from '../helpers/migration-host.js';
import { groupAllocation, rateGroup, switchdevHost, type SwitchdevHost } from '../helpers/switchdev-host.js';

const state = (allocations: DesiredAllocation[], rateGroups: DesiredRateGroup[]): DesiredState => desiredState(allocations, { rateGroups });

describe('agent: tenant rate groups on a switchdev PF', { timeout: 60_000 }, () => {
  let dir: string;
  let sim: SwitchdevHost;
  let pf: PfInfo;
  const tree = (p: PfInfo = pf): Promise<RateTree> => readRateTree(sim.ports.devlink, p.pciAddress);
  const leafObject = async (vf: number) => (await tree()).leaves.get(vf)!.object;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-rate-groups-'));
    sim = await switchdevHost(dir);
    pf = sim.pfs[0]!;
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("creates the tenant's node with its rates when its first VF lands, then parents each of its VFs", async () => {
    const r = new Reconciler(sim.host);
    const a1 = groupAllocation('a1', pf, 0, { state: 'pending' });
    const first = await r.reconcile(state([a1], [rateGroup(pf)]));
    assert.deepEqual(first.errors, []);
    assert.deepEqual(first.statuses, [{ id: 'a1', state: 'configured' }]);
    let t = await tree();
    assert.deepEqual(t.nodes.get('vfleet-acme'), { name: 'vfleet-acme', txShareMbps: 2000, txMaxMbps: 10000, parent: null });
    assert.equal(t.leaves.get(0)!.parent, 'vfleet-acme');
    assert.equal(t.leaves.get(1)!.parent, null);
    // A fresh placement is not drift.
    assert.deepEqual(first.events, []);

    const a2 = groupAllocation('a2', pf, 1, { state: 'pending' });
    const second = await r.reconcile(state([{ ...a1, state: 'configured' }, a2], [rateGroup(pf)]));
    assert.deepEqual(second.errors, []);
    t = await tree();
    assert.equal(t.leaves.get(1)!.parent, 'vfleet-acme');
    assert.deepEqual([...t.nodes.keys()], ['vfleet-acme']);
    // The other PF, with no group, is left as it was.
    assert.equal((await tree(sim.pfs[1]!)).nodes.size, 0);
  });

  it('places a new allocation through the incremental pass, and deletes the node when its last VF is released', async () => {
    const r = new Reconciler(sim.host);
    await r.reconcile(state([], []));
    const a1 = groupAllocation('a1', pf, 2, { state: 'pending' });
    const applied = await r.apply(state([a1], [rateGroup(pf)]));
    assert.deepEqual(applied.errors, []);
    assert.equal((await tree()).leaves.get(2)!.parent, 'vfleet-acme');
    const released = await r.apply(state([{ ...a1, state: 'releasing' }], [rateGroup(pf)]));
    assert.deepEqual(released.statuses, [{ id: 'a1', state: 'released' }]);
    const t = await tree();
    assert.equal(t.nodes.size, 0);
    assert.equal(t.leaves.get(2)!.parent, null);
  });

  it('repairs a leaf un-parented or moved to another node by hand, and a node whose rates were changed, counting each as drift', async () => {
    const r = new Reconciler(sim.host);
    const tally = new AgentTally();
    const a1 = groupAllocation('a1', pf, 0);
    const a2 = groupAllocation('a2', pf, 1);
    const desired = state([a1, a2], [rateGroup(pf)]);
    tally.passed(await r.reconcile(state([{ ...a1, state: 'pending' }, { ...a2, state: 'pending' }], [rateGroup(pf)])), 0.1);
    tally.passed(await r.reconcile(desired), 0.1);
    assert.equal(tally.snapshot().driftRepaired, 0);

    await sim.ports.devlink.addRateNode(pf.pciAddress, 'ops', { txShareMbps: 0, txMaxMbps: 500 });
    await sim.ports.devlink.setRate(await leafObject(0), { parent: null });
    // The devlink core moves a leaf only through noparent.
    await sim.ports.devlink.setRate(await leafObject(1), { parent: null });
    await sim.ports.devlink.setRate(await leafObject(1), { parent: 'ops' });
    await sim.ports.devlink.setRate(`pci/${pf.pciAddress}/vfleet-acme`, { txMaxMbps: 40000 });
    const repaired = await r.reconcile(desired);
    tally.passed(repaired, 0.1);
    assert.deepEqual(repaired.errors, []);
    const t = await tree();
    assert.equal(t.leaves.get(0)!.parent, 'vfleet-acme');
    assert.equal(t.leaves.get(1)!.parent, 'vfleet-acme');
    assert.deepEqual(t.nodes.get('vfleet-acme'), { name: 'vfleet-acme', txShareMbps: 2000, txMaxMbps: 10000, parent: null });
    // The hand-made node is not vfleet's: left alone.
    assert.deepEqual(t.nodes.get('ops'), { name: 'ops', txShareMbps: 0, txMaxMbps: 500, parent: null });
    assert.deepEqual(repaired.events.map((e) => e.object).sort(), ['allocation/a1', 'allocation/a2', `${pf.name}/vfleet-acme`]);
    assert.ok(repaired.events.every((e) => e.action === 'drift.repaired'));
    assert.equal(tally.snapshot().driftRepaired, 3);

    // A node deleted by hand (with its leaves un-parented first) comes back too.
    for (const vf of [0, 1]) await sim.ports.devlink.setRate(await leafObject(vf), { parent: null });
    await sim.ports.devlink.deleteRateNode(pf.pciAddress, 'vfleet-acme');
    const again = await r.reconcile(desired);
    assert.deepEqual(again.errors, []);
    assert.equal((await tree()).leaves.get(0)!.parent, 'vfleet-acme');
    assert.equal(again.events.filter((e) => e.action === 'drift.repaired').length, 3);
  });

  it('a changed group rate is applied, not reported as drift', async () => {
    const r = new Reconciler(sim.host);
    const a1 = groupAllocation('a1', pf, 0);
    await r.reconcile(state([a1], [rateGroup(pf)]));
    const raised = await r.reconcile(state([a1], [rateGroup(pf, { txMaxMbps: 20000 })]));
    assert.deepEqual(raised.events, []);
    assert.equal((await tree()).nodes.get('vfleet-acme')!.txMaxMbps, 20000);
  });

  it("release un-parents the leaf and clears its rates before reporting the VF free; the last VF's release deletes the node", async () => {
    const r = new Reconciler(sim.host);
    const a1 = groupAllocation('a1', pf, 0);
    const a2 = groupAllocation('a2', pf, 1);
    await r.reconcile(state([a1, a2], [rateGroup(pf)]));
    // The VF's own cap, as the host layer sets it on the leaf in switchdev mode.
    await sim.ports.devlink.setRate(await leafObject(0), { txShareMbps: 100, txMaxMbps: 800 });

    const first = await r.reconcile(state([{ ...a1, state: 'releasing' }, a2], [rateGroup(pf)]));
    assert.deepEqual(first.errors, []);
    assert.deepEqual(first.statuses, [{ id: 'a1', state: 'released' }]);
    let t = await tree();
    assert.deepEqual({ ...t.leaves.get(0)!, object: '' }, { object: '', txShareMbps: 0, txMaxMbps: 0, parent: null });
    assert.equal(t.leaves.get(1)!.parent, 'vfleet-acme');
    assert.ok(t.nodes.has('vfleet-acme'), 'the node stays while a VF of the tenant is there');

    const last = await r.reconcile(state([{ ...a2, state: 'releasing' }], [rateGroup(pf)]));
    assert.deepEqual(last.statuses, [{ id: 'a2', state: 'released' }]);
    t = await tree();
    assert.equal(t.nodes.size, 0);
    assert.equal(t.leaves.get(1)!.parent, null);
  });

  it("collects vfleet-* nodes no group names, emptying them first; never touches others' nodes or the leaves under them", async () => {
    const r = new Reconciler(sim.host);
    const dl = sim.ports.devlink;
    const mine = groupAllocation('a3', pf, 2, { rateGroup: null });
    await r.reconcile(state([{ ...mine, state: 'pending' }], []));
    await dl.addRateNode(pf.pciAddress, 'vfleet-gone', { txShareMbps: 0, txMaxMbps: 3000 });
    await dl.addRateNode(pf.pciAddress, 'ops', { txShareMbps: 0, txMaxMbps: 500 });
    await dl.setRate(await leafObject(0), { parent: 'vfleet-gone', txMaxMbps: 700 });
    await dl.setRate(await leafObject(1), { parent: 'ops', txMaxMbps: 600 });
    // One of ours without a group, under the foreign node: an admin's choice, left there.
    await dl.setRate(await leafObject(2), { parent: 'ops' });

    const result = await r.reconcile(state([mine], []));
    assert.deepEqual(result.errors, []);
    const t = await tree();
    assert.deepEqual([...t.nodes.keys()], ['ops']);
    assert.deepEqual({ ...t.leaves.get(0)!, object: '' }, { object: '', txShareMbps: 0, txMaxMbps: 0, parent: null });
    assert.deepEqual({ ...t.leaves.get(1)!, object: '' }, { object: '', txShareMbps: 0, txMaxMbps: 600, parent: 'ops' });
    assert.equal(t.leaves.get(2)!.parent, 'ops');
    assert.deepEqual(result.events.map((e) => `${e.action} ${e.object}`).sort(), [`orphan.scrubbed ${pf.name}/vf0`, `orphan.scrubbed ${pf.name}/vfleet-gone`]);
  });

  it('an agent that died between creating the node and parenting the leaves: the next reconcile converges', async () => {
    const dying = withDevlink(sim.ports, (inner) => ({
      ...inner,
      addRateNode: async (device, name, limits) => {
        await inner.addRateNode(device, name, limits);
        throw new Error('agent killed after devlink port function rate add');
      },
    }));
    const a1 = groupAllocation('a1', pf, 0, { state: 'pending' });
    const a2 = groupAllocation('a2', pf, 1, { state: 'pending' });
    const desired = state([a1, a2], [rateGroup(pf)]);
    const crashed = await new Reconciler(new SriovHost(dying)).reconcile(desired);
    assert.ok(crashed.errors.some((e) => e.includes('agent killed')), crashed.errors.join('\n'));
    let t = await tree();
    assert.ok(t.nodes.has('vfleet-acme'));
    assert.equal(t.leaves.get(0)!.parent, null);

    const next = await new Reconciler(sim.host).reconcile(desired);
    assert.deepEqual(next.errors, []);
    t = await tree();
    assert.deepEqual([...t.nodes.keys()], ['vfleet-acme']);
    assert.equal(t.leaves.get(0)!.parent, 'vfleet-acme');
    assert.equal(t.leaves.get(1)!.parent, 'vfleet-acme');
  });

  it('a node left by a dead agent whose allocation failed meanwhile is collected, not left an orphan', async () => {
    const dying = withDevlink(sim.ports, (inner) => ({
      ...inner,
      addRateNode: async (device, name, limits) => {
        await inner.addRateNode(device, name, limits);
        throw new Error('agent killed');
      },
    }));
    await new Reconciler(new SriovHost(dying)).reconcile(state([groupAllocation('a1', pf, 0, { state: 'pending' })], [rateGroup(pf)]));
    assert.ok((await tree()).nodes.has('vfleet-acme'));
    const next = await new Reconciler(sim.host).reconcile(state([], []));
    assert.deepEqual(next.errors, []);
    assert.equal((await tree()).nodes.size, 0);
  });

  it('refuses a desired group that is not named vfleet-*, touching nothing', async () => {
    const r = new Reconciler(sim.host);
    const a1 = groupAllocation('a1', pf, 0, { rateGroup: 'ops' });
    const result = await r.reconcile(state([a1], [rateGroup(pf, { node: 'ops' })]));
    assert.ok(result.errors.some((e) => e.includes('ops is not a vfleet group name')), result.errors.join('\n'));
    const t = await tree();
    assert.equal(t.nodes.size, 0);
    assert.equal(t.leaves.get(0)!.parent, null);
  });
});

describe('agent: rate groups cost nothing where there are none', { timeout: 60_000 }, () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-rate-groups-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads no rate tree on PFs in legacy mode', async () => {
    const sim = await switchdevHost(dir, { legacy: [0, 1] });
    const calls: string[] = [];
    const counted = withDevlink(sim.ports, (inner) => ({
      ...inner,
      rates: (device) => (calls.push(`rates ${device}`), inner.rates(device)),
      ports: (device) => (calls.push(`ports ${device}`), inner.ports(device)),
    }));
    const r = new Reconciler(new SriovHost(counted));
    const a1 = groupAllocation('a1', sim.pfs[0]!, 0, { rateGroup: null, state: 'pending' });
    await r.reconcile(state([a1], []));
    await r.reconcile(state([{ ...a1, state: 'releasing' }], []));
    assert.deepEqual(calls, []);
  });

  it('on a switchdev PF with no group, reads only the rate objects, once per pass', async () => {
    const sim = await switchdevHost(dir, { pfs: 1 });
    const calls: string[] = [];
    // Discovery (representors, leaf rates) and the VF's own rate writes read ports and rates too: only the group code's reads count here.
    const own = (call: string) => (new Error().stack?.includes('rate-groups.js') ? calls.push(call) : undefined);
    const counted = withDevlink(sim.ports, (inner) => ({
      ...inner,
      rates: (device) => (own('rates'), inner.rates(device)),
      ports: (device) => (own('ports'), inner.ports(device)),
    }));
    const r = new Reconciler(new SriovHost(counted));
    const result = await r.reconcile(state([groupAllocation('a1', sim.pfs[0]!, 0, { rateGroup: null })], []));
    assert.deepEqual(result.errors, []);
    assert.deepEqual(calls.filter((c) => c === 'ports'), []);
    assert.ok(calls.filter((c) => c === 'rates').length <= 1, calls.join(', '));
  });
});

/** `ports` with its devlink port replaced by `wrap(devlink)`. */
function withDevlink(ports: HostPorts, wrap: (inner: Devlink) => Devlink): HostPorts {
  return { ...ports, devlink: wrap(ports.devlink) };
}
