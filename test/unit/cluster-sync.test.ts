// Two controllers on one store: each applies the other's committed changes
// (from the store's watch) to its own memory: the scheduler's index and MAC
// pool, the agents' long polls, allocation waiters, host liveness. Applying a
// change twice, or late, leaves the same state.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/controller/control-plane.js';
import { SriovError } from '../../src/host/errors.js';
import { Scheduler } from '../../src/scheduler/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { inventoryOf, policyOf } from '../helpers/api-harness.js';
import { makeHost, makeNetwork, makeAllocation } from '../helpers/inventory.js';
import { watched, type WatchedStore } from '../helpers/watched-store.js';

const ADMIN = { id: 'test', role: 'admin' } as const;
const H1 = { id: 'local', role: 'agent:h1' } as const;
const HOST = 'h1';
const TIMEOUT_MS = 30_000;
/** Two PFs of 4 VFs on physnet fabric: 8 VFs. */
const VFS = 8;

const vm = (name: string) => ({ kind: 'vm' as const, name });

describe('cluster sync: two controllers on one store', () => {
  let dir: string;
  let store: WatchedStore;
  let c1: ControlPlane;
  let c2: ControlPlane;
  const errors: unknown[] = [];
  const settled = () => Promise.all([c1.sync.settled(), c2.sync.settled()]);
  const free = async (c: ControlPlane) => (await c.networks.capacity(ADMIN, 'blue', HOST)).freeVfs;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-sync-'));
    store = watched(await openSqliteStore(dir));
    const opts = { heartbeatTimeoutMs: TIMEOUT_MS, onSyncError: (e: unknown) => errors.push(e) };
    c1 = await ControlPlane.open(store, opts);
    c2 = await ControlPlane.open(store, opts);
    // Everything set up through controller 2 only.
    await c2.hosts.report(H1, inventoryOf(HOST));
    await c2.hosts.putPolicy(ADMIN, HOST, policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
    await c2.networks.createTenant(ADMIN, 'blue');
    await c2.networks.createNetwork(ADMIN, { name: 'blue', tenant: 'blue', physnet: 'fabric', vlan: 100 });
    await settled();
  });

  after(async () => {
    c1.shutdown();
    c2.shutdown();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('knows a host, its policy and a network set up through the other controller', async () => {
    assert.equal(await free(c1), VFS);
    assert.deepEqual(errors, []);
  });

  it('does not hand out a VF or MAC the other controller allocated: the last VF goes once', async () => {
    const held = [];
    for (let i = 0; i < VFS - 1; i++) held.push(await c2.allocations.create(ADMIN, { network: 'blue', workload: vm(`a${i}`) }));
    await settled();
    assert.equal(await free(c1), 1);
    for (const a of held) assert.equal(c1.ctx.macs.isUsed(a.mac), true, `MAC ${a.mac} of ${a.id} is used on controller 1`);
    const last = await c1.allocations.create(ADMIN, { network: 'blue', workload: vm('last') });
    assert.ok(!held.some((a) => a.pciAddress === last.pciAddress || a.mac === last.mac), 'controller 1 chose a free VF and a free MAC');
    await settled();
    // Refused from memory (no VF left), not by the store after a stale choice.
    await assert.rejects(c2.allocations.create(ADMIN, { network: 'blue', workload: vm('one-too-many') }), (e: SriovError) => e.code === 'NO_CAPACITY');
    await assert.rejects(c1.allocations.create(ADMIN, { network: 'blue', workload: vm('one-too-many') }), (e: SriovError) => e.code === 'NO_CAPACITY');
    // Releasing through controller 1 frees the VF and MAC on controller 2 once the agent reports it released.
    await c1.allocations.delete(ADMIN, held[0]!.id);
    await c1.allocations.applyStatus(HOST, [{ id: held[0]!.id, state: 'released' }]);
    await settled();
    assert.equal(await free(c2), 1);
    assert.equal(c2.ctx.macs.isUsed(held[0]!.mac), false);
    const again = await c2.allocations.create(ADMIN, { network: 'blue', workload: vm('again') });
    assert.equal(again.pciAddress, held[0]!.pciAddress);
    await settled();
    assert.deepEqual(errors, []);
  });

  it('applying every change again, in order, changes nothing', async () => {
    const before = { free1: await free(c1), free2: await free(c2), list: await c1.allocations.list(ADMIN) };
    for (const batch of [...store.delivered]) await c1.sync.apply(batch);
    for (const batch of [...store.delivered]) await c2.sync.apply(batch);
    assert.equal(await free(c1), before.free1);
    assert.equal(await free(c2), before.free2);
    for (const a of before.list) {
      const holds = ['pending', 'configured', 'attached', 'releasing'].includes(a.state);
      assert.equal(c1.ctx.macs.isUsed(a.mac), holds, `MAC of ${a.id} (${a.state}) on controller 1`);
      assert.equal(c2.ctx.macs.isUsed(a.mac), holds, `MAC of ${a.id} (${a.state}) on controller 2`);
    }
    assert.deepEqual(errors, []);
  });

  it("wakes an agent long-polling controller 1 when an allocation on its host is changed through controller 2", async () => {
    const { revision } = await c1.hosts.desired(H1, HOST);
    const target = (await c1.allocations.list(ADMIN)).find((a) => a.state === 'pending')!;
    const polled = c1.hosts.desired(H1, HOST, revision, TIMEOUT_MS);
    await c2.allocations.applyStatus(HOST, [{ id: target.id, state: 'configured' }]);
    const desired = await polled;
    // Without the wake it would answer only after the timeout, with the revision unchanged.
    assert.notEqual(desired.revision, revision);
    assert.equal(desired.allocations.find((a) => a.id === target.id)?.state, 'configured');
  });

  it('wakes callers on controller 1 waiting for an allocation that changed through controller 2', async () => {
    const woken: string[] = [];
    const wake = c1.ctx.waits.wake.bind(c1.ctx.waits);
    c1.ctx.waits.wake = (id) => {
      woken.push(id);
      wake(id);
    };
    const target = (await c1.allocations.list(ADMIN)).find((a) => a.state === 'configured')!;
    await c2.allocations.applyStatus(HOST, [{ id: target.id, state: 'attached' }]);
    await settled();
    assert.ok(woken.includes(target.id));
  });

  it('keeps a host alive on the leader while it reports to the other controller only', async () => {
    const start = Date.now();
    await c2.hosts.report(H1, inventoryOf(HOST));
    await settled();
    assert.deepEqual(await c1.hosts.sweep(start + TIMEOUT_MS - 1), [], 'heard through controller 2');
    const freeBefore = await free(c1);
    assert.deepEqual(await c1.hosts.sweep(Date.now() + TIMEOUT_MS + 1_000), [HOST], 'then silence times it out');
    await settled();
    // Controller 2 took it out of scheduling too.
    await assert.rejects(c2.allocations.create(ADMIN, { network: 'blue', workload: vm('on-lost-host') }), (e: SriovError) => e.code === 'NO_CAPACITY');
    // A liveness-only heartbeat through controller 2 brings it back on both...
    await store.tx.touchHost(HOST, 'ready', new Date().toISOString());
    await settled();
    assert.equal(await free(c1), freeBefore);
    assert.equal(await free(c2), freeBefore);
    // ...and the leader times it out again when it falls silent again.
    assert.deepEqual(await c1.hosts.sweep(Date.now() + TIMEOUT_MS + 1_000), [HOST]);
    await c2.hosts.report(H1, inventoryOf(HOST));
    await settled();
    assert.deepEqual(errors, []);
  });

  it('wakes the event streams on controller 1 when an event is appended through controller 2', async () => {
    const before = c1.ctx.events.revision('*');
    await c2.networks.createTenant(ADMIN, 'audited');
    await settled();
    assert.notEqual(c1.ctx.events.revision('*'), before);
  });

  it('tells device views on controller 1 of a catalogue change through controller 2', async () => {
    const before = c1.ctx.catalogue.revision('*');
    await c2.networks.createNetwork(ADMIN, { name: 'blue-2', tenant: 'blue', physnet: 'fabric', vlan: 101 });
    await settled();
    assert.notEqual(c1.ctx.catalogue.revision('*'), before);
  });
});

describe('cluster sync: two controllers choosing at once', () => {
  it('places every request there is room for: a controller that lost a VF to the other decides again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-sync-race-'));
    const store = watched(await openSqliteStore(dir));
    const [c1, c2] = [await ControlPlane.open(store), await ControlPlane.open(store)];
    try {
      await c1.hosts.report(H1, inventoryOf(HOST));
      await c1.hosts.putPolicy(ADMIN, HOST, policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
      await c1.networks.createTenant(ADMIN, 'blue');
      await c1.networks.createNetwork(ADMIN, { name: 'blue', tenant: 'blue', physnet: 'fabric', vlan: 100 });
      await Promise.all([c1.sync.settled(), c2.sync.settled()]);
      const requests = Array.from({ length: VFS }, (_, i) => (i % 2 ? c2 : c1).allocations.create(ADMIN, { network: 'blue', workload: vm(`w${i}`) }));
      const placed = await Promise.all(requests);
      assert.equal(new Set(placed.map((a) => a.pciAddress)).size, VFS, 'every VF once');
      assert.equal(new Set(placed.map((a) => a.mac)).size, VFS, 'every MAC once');
      await Promise.all([c1.sync.settled(), c2.sync.settled()]);
      await assert.rejects(c1.allocations.create(ADMIN, { network: 'blue', workload: vm('more') }), (e: SriovError) => e.code === 'NO_CAPACITY');
    } finally {
      c1.shutdown();
      c2.shutdown();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('cluster sync: changes that arrive late', () => {
  const host = makeHost({ name: 'h', pfs: 1, vfs: 2, physnet: 'fabric' });
  const network = makeNetwork({ name: 'n', physnet: 'fabric' });
  const placed = (vfIndex: number) => ({ host: 'h', pf: 'ens1f0', pfPciAddress: host.inventory.pfs[0]!.pciAddress, vfIndex, pciAddress: host.inventory.pfs[0]!.vfs[vfIndex]!.pciAddress, numaNode: 0 });

  it('keeps a VF taken while a reservation here and another controller\'s holding both name it, whichever goes first', () => {
    for (const first of ['local', 'remote'] as const) {
      const s = new Scheduler();
      s.load([host], [], [{ name: 'fabric', accountingOnly: false, tenantVlans: [] }]);
      const local = makeAllocation(placed(0), network, { kind: 'vm', name: 'a' }, { id: 'local' });
      const remote = makeAllocation(placed(0), network, { kind: 'vm', name: 'b' }, { id: 'remote' });
      s.reserve(local);
      assert.equal(s.adopt(remote), true);
      assert.equal(s.adopt(remote), false, 'twice is once');
      s.release({ id: first });
      assert.equal(s.freeVfs(network, 'h')!.freeVfs, 1, `VF 0 still held after releasing ${first}`);
      s.release({ id: first === 'local' ? 'remote' : 'local' });
      assert.equal(s.freeVfs(network, 'h')!.freeVfs, 2);
    }
  });
});

describe('cluster sync: a bandwidth group this controller has not heard of yet', () => {
  it('a VF without a guarantee of a tenant just given a group is checked against its PF all the same: refused where the share does not fit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-sync-group-'));
    // No watch: what is written past this controller never reaches it, and it decides once (no retry while it waits to hear).
    const store = await openSqliteStore(dir);
    const c1 = await ControlPlane.open(store);
    try {
      await c1.hosts.report(H1, inventoryOf(HOST));
      await c1.hosts.putPolicy(ADMIN, HOST, policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
      await c1.networks.createTenant(ADMIN, 'blue');
      await c1.networks.createTenant(ADMIN, 'red');
      await c1.networks.createNetwork(ADMIN, { name: 'gold', tenant: 'blue', physnet: 'fabric', vlan: 100, minTxRateMbps: 90_000 });
      await c1.networks.createNetwork(ADMIN, { name: 'red', tenant: 'red', physnet: 'fabric', vlan: 200 });
      // 90 of each PF's 100 Gbit/s guaranteed: 10 Gbit/s of headroom on each.
      for (const name of ['g1', 'g2']) await c1.allocations.create(ADMIN, { network: 'gold', workload: vm(name) });
      // Red's group, as another controller sets it, not (yet) watched by this one: a share of 20 Gbit/s per PF.
      const red = (await store.tx.getTenant('red'))!;
      await store.tx.putTenant({ ...red, pfMinTxRateMbps: 20_000 });
      assert.equal(c1.ctx.scheduler.tenantGroup('red'), undefined, 'this controller does not know the group');
      await assert.rejects(c1.allocations.create(ADMIN, { network: 'red', workload: vm('r1') }), (e: SriovError) => {
        assert.equal(e.code, 'CONFLICT', e.message);
        assert.equal(e.details.claim, 'bandwidth', e.message);
        assert.match(e.message, /tenant red's bandwidth group would add 20000 Mbps of guarantee on h1\/ens\df0: 90000 of its 100000 Mbps are committed \(headroom 10000 Mbps\)/);
        return true;
      });
      assert.deepEqual(await store.tx.listAllocations({ tenant: 'red' }), [], 'nothing over-committed');
    } finally {
      c1.shutdown();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
