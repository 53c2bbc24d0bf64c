/**
 * The store contract: what every Store engine must do, through the Store
 * interface only. It runs on SQLite in the unit suite and on a real etcd
 * (one member and three) in the system suite, so the engines cannot drift:
 * each invariant SQLite keeps with its schema, etcd keeps with claim keys.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Allocation, HostRecord, Migration, Network } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import type { AllocationFilter, PagedHost, Store, StoreTx } from '../../src/store/store.js';
import { makeHost, makeNetwork } from '../helpers/inventory.js';
import { storeGroupsContract } from './store-groups.contract.js';

export interface StoreTarget {
  /** A fresh, empty store. */
  open(): Promise<Store>;
  /**
   * A second controller's handle on the same data (etcd: another client), or
   * `store` itself when only one controller can open it (SQLite). Closed by the caller.
   */
  peer(store: Store): Promise<Store>;
}

const AT = '2025-01-01T00:00:00.000Z';
const LATER = '2025-01-01T00:05:00.000Z';
const LATEST = '2025-01-01T00:10:00.000Z';

export function allocation(overrides: Partial<Allocation> = {}): Allocation {
  return {
    id: 'alloc-1',
    workload: { kind: 'container', name: 'cnf-a' },
    network: 'blue-net',
    tenant: 'blue',
    host: 'host-a',
    pf: 'ens1f0',
    pfPciAddress: '0000:3b:00.0',
    vfIndex: 3,
    pciAddress: '0000:3b:02.3',
    mac: '02:00:00:00:00:03',
    vlan: 100,
    minTxRateMbps: 1000,
    group: null,
    state: 'pending',
    reason: null,
    attachment: null,
    deviceClaim: null,
    migration: null,
    createdAt: AT,
    updatedAt: AT,
    ...overrides,
  };
}

function network(overrides: Partial<Network> = {}): Network {
  return makeNetwork({ name: 'blue-net', tenant: 'blue', createdAt: AT, ...overrides });
}

/**
 * The networks fixtures' allocations are on, `<tenant>-net` for each tenant
 * (a VLAN each): the store refuses an allocation holding a VF on a network
 * that does not exist.
 */
export async function putNetworks(store: Store, tenants: string[] = ['blue', 'red']): Promise<void> {
  for (const [i, tenant] of tenants.entries()) await store.tx.putNetwork(network({ name: `${tenant}-net`, tenant, vlan: 100 + i }));
}

function host(name = 'host-a'): HostRecord {
  return makeHost({ name, pfs: 2, vfs: 4 });
}

/** A migration's end at allocation `a`'s VF. */
export function endOf(a: Allocation): NonNullable<Migration['to']> {
  return { host: a.host, pf: a.pf, pfPciAddress: a.pfPciAddress, vfIndex: a.vfIndex, pciAddress: a.pciAddress, allocation: a.id };
}

/** A running migration of `from`, at its reserve step, with no destination yet. */
export function migration(id: string, from: Allocation, overrides: Partial<Migration> = {}): Migration {
  const end = endOf(from);
  return {
    id,
    workload: from.workload,
    tenant: from.tenant,
    network: from.network,
    mac: from.mac,
    from: end,
    to: null,
    requested: { host: 'host-b', pf: null },
    hypervisor: null,
    migrateUri: null,
    drain: null,
    state: 'running',
    step: 'reserve',
    history: [],
    downtimeMs: null,
    reason: null,
    createdAt: AT,
    updatedAt: AT,
    ...overrides,
  };
}

async function assertConflict(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SriovError, `expected SriovError, got ${String(err)}`);
    assert.equal(err.code, 'CONFLICT', err.message);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, message);
    return true;
  });
}

/** A NOT_FOUND naming `object`, nothing changed. */
async function assertNotFound(promise: Promise<unknown>, object: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SriovError, `expected SriovError, got ${String(err)}`);
    assert.equal(err.code, 'NOT_FOUND', err.message);
    assert.equal(err.details.object, object);
    assert.equal(err.details.nothingChanged, true);
    assert.match(err.message, message);
    return true;
  });
}

/** A CONFLICT whose stable `claim` says what was taken. */
async function assertClaim(promise: Promise<unknown>, claim: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SriovError, `expected SriovError, got ${String(err)}`);
    assert.equal(err.code, 'CONFLICT', err.message);
    assert.equal(err.details.claim, claim, err.message);
    assert.match(err.message, message);
    return true;
  });
}

const sorted = (ids: string[]) => [...ids].sort();

/** What a tenant without a bandwidth group reads back with. */
const NO_GROUP = { pfMinTxRateMbps: null, pfMaxTxRateMbps: null };

export function storeContract(engine: string, target: StoreTarget): void {
  async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
    const store = await target.open();
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  }

  /** Two controllers' handles on one store (one handle twice where only one controller can open it). */
  async function withTwo(fn: (one: Store, two: Store) => Promise<void>): Promise<void> {
    await withStore(async (one) => {
      const two = await target.peer(one);
      try {
        await fn(one, two);
      } finally {
        if (two !== one) await two.close();
      }
    });
  }

  const withNetworks = async (store: Store) => {
    await putNetworks(store);
    return store;
  };
  /** withStore and withTwo on a store with the fixtures' networks (putNetworks). */
  const onNetworks = (fn: (store: Store) => Promise<void>) => withStore(async (store) => fn(await withNetworks(store)));
  const twoOnNetworks = (fn: (one: Store, two: Store) => Promise<void>) => withTwo(async (one, two) => fn(await withNetworks(one), two));

  const ids = async (store: Store, filter?: AllocationFilter) => (await store.tx.listAllocations(filter)).map((a) => a.id);

  storeGroupsContract(engine, target);

  describe(`${engine} store contract: round-trips`, () => {
    it('tenants: an update keeps the first id', () =>
      withStore(async (store) => {
        await store.tx.putTenant({ id: 'id-red', name: 'red', createdAt: AT });
        await store.tx.putTenant({ id: 'id-blue', name: 'blue', createdAt: AT });
        await store.tx.putTenant({ id: 'id-other', name: 'blue', createdAt: LATER });
        assert.deepEqual(await store.tx.getTenant('blue'), { id: 'id-blue', name: 'blue', ...NO_GROUP, createdAt: LATER });
        assert.equal(await store.tx.getTenant('green'), null);
        assert.deepEqual((await store.tx.listTenants()).map((t) => t.name), ['blue', 'red']);
        assert.equal(await store.tx.deleteTenant('red'), true);
        assert.equal(await store.tx.deleteTenant('red'), false);
        assert.deepEqual(await store.tx.listTenants(), [{ id: 'id-blue', name: 'blue', ...NO_GROUP, createdAt: LATER }]);
      }));

    it('tenants: a bandwidth group round-trips, changes and clears, keeping the id', () =>
      withStore(async (store) => {
        await store.tx.putTenant({ id: 'id-red', name: 'red', pfMinTxRateMbps: 2000, pfMaxTxRateMbps: 8000, createdAt: AT });
        assert.deepEqual(await store.tx.getTenant('red'), { id: 'id-red', name: 'red', pfMinTxRateMbps: 2000, pfMaxTxRateMbps: 8000, createdAt: AT });
        await store.tx.putTenant({ id: 'id-other', name: 'red', pfMinTxRateMbps: null, pfMaxTxRateMbps: 5000, createdAt: AT });
        assert.deepEqual(await store.tx.listTenants(), [{ id: 'id-red', name: 'red', pfMinTxRateMbps: null, pfMaxTxRateMbps: 5000, createdAt: AT }]);
        await store.tx.putTenant({ id: 'id-red', name: 'red', createdAt: AT });
        assert.deepEqual(await store.tx.getTenant('red'), { id: 'id-red', name: 'red', ...NO_GROUP, createdAt: AT });
      }));

    it('physnets, by name', () =>
      withStore(async (store) => {
        await store.tx.putPhysnet({ name: 'datacentre', accountingOnly: false, tenantVlans: [] });
        await store.tx.putPhysnet({ name: 'access', accountingOnly: true, tenantVlans: [{ from: 1000, to: 1999 }] });
        await store.tx.putPhysnet({ name: 'datacentre', accountingOnly: true, groupsAccountingOnly: true, tenantVlans: [{ from: 10, to: 20 }, { from: 30, to: 30 }] });
        assert.deepEqual(await store.tx.listPhysnets(), [
          { name: 'access', accountingOnly: true, groupsAccountingOnly: false, tenantVlans: [{ from: 1000, to: 1999 }] },
          { name: 'datacentre', accountingOnly: true, groupsAccountingOnly: true, tenantVlans: [{ from: 10, to: 20 }, { from: 30, to: 30 }] },
        ]);
        await store.tx.putPhysnet({ name: 'datacentre', accountingOnly: true, groupsAccountingOnly: false, tenantVlans: [] });
        assert.equal((await store.tx.listPhysnets()).find((p) => p.name === 'datacentre')?.groupsAccountingOnly, false);
      }));

    it('networks, with tenant, physnet and segment filters', () =>
      withStore(async (store) => {
        const blue = network({ mtu: 9000, spoofChk: false, trust: true, vlanProto: '802.1ad', deviceType: 'vfio-pci', vlan: 300 });
        const red = network({ name: 'red-net', tenant: 'red', vlan: 200, ipam: { cidr: '198.18.0.0/24', routes: [] } });
        const access = network({ name: 'a-net', tenant: 'red', physnet: 'access', vlan: 200 });
        for (const n of [blue, red, access]) await store.tx.putNetwork(n);
        assert.deepEqual(await store.tx.getNetwork('blue-net'), blue);
        assert.deepEqual(await store.tx.getNetwork('red-net'), red);
        assert.equal(await store.tx.getNetwork('nope'), null);
        assert.deepEqual(await store.tx.listNetworks(), [access, blue, red]);
        assert.deepEqual(await store.tx.listNetworks({ tenant: 'red' }), [access, red]);
        // A physnet's networks come by VLAN.
        assert.deepEqual(await store.tx.listNetworks({ physnet: 'datacentre' }), [red, blue]);
        assert.deepEqual(await store.tx.listNetworks({ physnet: 'datacentre', vlan: 200 }), [red]);
        assert.deepEqual(await store.tx.listNetworks({ physnet: 'datacentre', vlan: 200, tenant: 'blue' }), []);
        await store.tx.putNetwork({ ...blue, maxTxRateMbps: 5000 });
        assert.equal((await store.tx.getNetwork('blue-net'))?.maxTxRateMbps, 5000);
        assert.equal(await store.tx.deleteNetwork('red-net'), true);
        assert.equal(await store.tx.deleteNetwork('red-net'), false);
      }));

    it('hosts, whole, by name', () =>
      withStore(async (store) => {
        const a = { ...host('host-b'), drainedPfs: ['0000:3b:00.1', '0000:3b:00.0', '0000:3b:00.1'] };
        await store.tx.putHost(a);
        assert.deepEqual(await store.tx.getHost('host-b'), { ...a, drainedPfs: ['0000:3b:00.0', '0000:3b:00.1'] });
        const unreachable = { ...host('host-a'), state: 'unreachable' as const, lastHeartbeat: null, updatedAt: LATER };
        await store.tx.putHost(unreachable);
        assert.deepEqual((await store.tx.listHosts()).map((h) => h.name), ['host-a', 'host-b']);
        assert.deepEqual((await store.tx.listHosts())[0], unreachable);
        assert.equal(await store.tx.getHost('host-c'), null);
        assert.equal(await store.tx.deleteHost('host-b'), true);
        assert.equal(await store.tx.deleteHost('host-b'), false);
        assert.deepEqual(await store.tx.listHosts(), [unreachable]);
      }));

    it('host pages: every record once, in name order, as listHosts reads it (heartbeats merged); a stored text is the record but for its liveness', () =>
      withStore(async (store) => {
        // More hosts than one etcd page holds (16).
        const names = Array.from({ length: 37 }, (_, i) => `host-${String(i).padStart(2, '0')}`);
        for (const name of names.slice().reverse()) await store.tx.putHost(host(name));
        await store.tx.touchHost('host-07', 'unreachable', LATER);
        const pages: PagedHost[][] = [];
        await store.tx.listHostPages((page) => pages.push(page));
        const paged = pages.flat();
        assert.ok(pages.every((page) => page.length > 0), 'no empty page');
        assert.deepEqual(
          paged.map((h) => h.record),
          await store.tx.listHosts(),
        );
        assert.deepEqual(paged.map((h) => h.record.name), names);
        assert.deepEqual(paged[7]!.record, { ...host('host-07'), state: 'unreachable', lastHeartbeat: LATER });
        for (const { record, json } of paged) {
          if (json !== undefined) assert.deepEqual({ ...(JSON.parse(json) as HostRecord), state: record.state, lastHeartbeat: record.lastHeartbeat }, record);
        }
      }));

    it('touchHost sets only state and lastHeartbeat; a later putHost wins', () =>
      withStore(async (store) => {
        const h = host();
        await store.tx.putHost(h);
        assert.equal(await store.tx.touchHost('host-a', 'unreachable', LATER), true);
        assert.equal(await store.tx.touchHost('host-z', 'ready', LATER), false);
        assert.equal(await store.tx.getHost('host-z'), null);
        const touched = { ...h, state: 'unreachable' as const, lastHeartbeat: LATER };
        assert.deepEqual(await store.tx.getHost('host-a'), touched);
        assert.deepEqual(await store.tx.listHosts(), [touched]);
        await store.tx.touchHost('host-a', 'ready', LATEST);
        assert.deepEqual(await store.tx.getHost('host-a'), { ...h, lastHeartbeat: LATEST });
        const reported = { ...h, lastHeartbeat: LATER, updatedAt: LATER, drainedPfs: ['0000:3b:00.0'] };
        await store.tx.putHost(reported);
        assert.deepEqual(await store.tx.getHost('host-a'), reported);
        assert.equal(await store.tx.deleteHost('host-a'), true);
        assert.equal(await store.tx.touchHost('host-a', 'ready', LATEST), false);
        assert.deepEqual(await store.tx.listHosts(), []);
      }));

    it('hosts: the inventory hash is stored with the record, kept by touchHost, replaced or dropped by the next putHost', () =>
      withStore(async (store) => {
        const h = host();
        const hashed = { ...h, inventoryHash: 'a'.repeat(64) };
        await store.tx.putHost(hashed);
        assert.deepEqual(await store.tx.getHost('host-a'), hashed);
        await store.tx.touchHost('host-a', 'ready', LATER);
        assert.deepEqual(await store.tx.listHosts(), [{ ...hashed, lastHeartbeat: LATER }]);
        await store.transaction(async (tx) => tx.putHost({ ...hashed, inventoryHash: 'b'.repeat(64), updatedAt: LATER }));
        assert.equal((await store.tx.getHost('host-a'))?.inventoryHash, 'b'.repeat(64));
        // A record without one (as from before hashes were stored) reads back without the field, not with null.
        await store.tx.putHost(h);
        assert.deepEqual(await store.tx.getHost('host-a'), h);
        assert.equal('inventoryHash' in (await store.tx.listHosts())[0]!, false);
      }));

    it('allocations, with filters that combine', () =>
      onNetworks(async (store) => {
        const a1 = allocation({ group: 'fabric-a', workload: { kind: 'vm', name: 'vm-1' } });
        const a2 = allocation({ id: 'alloc-2', vfIndex: 4, mac: '02:00:00:00:00:04', host: 'host-b', pciAddress: '0000:3b:02.4' });
        const a3 = allocation({ id: 'alloc-3', vfIndex: 5, mac: '02:00:00:00:00:05', tenant: 'red', network: 'red-net' });
        for (const a of [a1, a2, a3]) await store.tx.insertAllocation(a);
        assert.deepEqual(await store.tx.getAllocation('alloc-1'), a1);
        assert.equal(await store.tx.getAllocation('nope'), null);
        const released = await store.tx.updateAllocationState('alloc-2', 'released', 'workload deleted', LATER);
        assert.deepEqual(released, { ...a2, state: 'released', reason: 'workload deleted', updatedAt: LATER });
        assert.deepEqual(await store.tx.getAllocation('alloc-2'), released);
        assert.equal(await store.tx.updateAllocationState('nope', 'released', null, LATER), null);

        assert.deepEqual(sorted(await ids(store)), ['alloc-1', 'alloc-2', 'alloc-3']);
        assert.deepEqual(sorted(await ids(store, { holding: true })), ['alloc-1', 'alloc-3']);
        assert.deepEqual(await ids(store, { holding: false }), ['alloc-2']);
        assert.deepEqual(sorted(await ids(store, { tenant: 'blue' })), ['alloc-1', 'alloc-2']);
        assert.deepEqual(await ids(store, { tenant: 'blue', holding: true }), ['alloc-1']);
        assert.deepEqual(await ids(store, { host: 'host-a', network: 'red-net' }), ['alloc-3']);
        assert.deepEqual(await ids(store, { host: 'host-b', holding: true }), []);
        assert.deepEqual(await ids(store, { state: 'released' }), ['alloc-2']);
        assert.deepEqual(sorted(await ids(store, { state: 'pending' })), ['alloc-1', 'alloc-3']);
        assert.deepEqual(await ids(store, { workload: 'vm-1' }), ['alloc-1']);
        assert.deepEqual(await ids(store, { pciAddress: '0000:3b:02.4' }), ['alloc-2']);
        assert.deepEqual(await ids(store, { network: 'red-net', tenant: 'blue' }), []);
      }));

    it('attachments, claims and their binding', () =>
      onNetworks(async (store) => {
        await store.tx.insertAllocation(allocation({ deviceClaim: { resource: 'vfleet.io/blue' } }));
        await store.tx.insertAllocation(allocation({ id: 'alloc-2', vfIndex: 4, mac: '02:00:00:00:00:04' }));
        assert.deepEqual(await ids(store, { unboundClaim: true }), ['alloc-1']);
        const attachment = { kind: 'container' as const, netns: '/var/run/netns/pod-a', ifname: 'net1', hostIfName: null, ips: ['198.18.0.5/24'] };
        const bound = await store.tx.bindClaim('alloc-1', 'pod-a', attachment, LATER);
        assert.deepEqual(bound, { ...allocation({ deviceClaim: { resource: 'vfleet.io/blue' } }), workload: { kind: 'container', name: 'pod-a' }, attachment, updatedAt: LATER });
        // Bound once: a second ADD racing for it changes nothing; nor does binding a non-claim.
        assert.equal(await store.tx.bindClaim('alloc-1', 'pod-b', attachment, LATEST), null);
        assert.equal(await store.tx.bindClaim('alloc-2', 'pod-b', attachment, LATEST), null);
        assert.equal(await store.tx.bindClaim('nope', 'pod-b', attachment, LATEST), null);
        assert.deepEqual(await ids(store, { unboundClaim: true }), []);
        assert.deepEqual(await ids(store, { ifname: 'net1' }), ['alloc-1']);
        const vm = { kind: 'vm' as const, vm: 'vm-9', failover: false };
        assert.deepEqual((await store.tx.setAllocationAttachment('alloc-2', vm))?.attachment, vm);
        assert.deepEqual((await store.tx.getAllocation('alloc-2'))?.attachment, vm);
        assert.equal((await store.tx.setAllocationAttachment('alloc-2', null))?.attachment, null);
        assert.equal(await store.tx.setAllocationAttachment('nope', null), null);
      }));

    it('id prefixes: how many match, and the one when it is one', () =>
      onNetworks(async (store) => {
        await store.tx.insertAllocation(allocation({ id: 'abc-1' }));
        await store.tx.insertAllocation(allocation({ id: 'abd-2', vfIndex: 4, mac: '02:00:00:00:00:04', tenant: 'red' }));
        await store.tx.insertAllocation(allocation({ id: 'xyz-3', vfIndex: 5, mac: '02:00:00:00:00:05', host: 'host-b' }));
        assert.deepEqual(await store.tx.findAllocationByIdPrefix('ab'), { count: 2, allocation: null });
        assert.equal((await store.tx.findAllocationByIdPrefix('abc')).allocation?.id, 'abc-1');
        assert.equal((await store.tx.findAllocationByIdPrefix('ab', 'red')).allocation?.id, 'abd-2');
        assert.deepEqual(await store.tx.findAllocationByIdPrefix('xyz', undefined, 'host-a'), { count: 0, allocation: null });
        assert.equal((await store.tx.findAllocationByIdPrefix('xyz', undefined, 'host-b')).allocation?.id, 'xyz-3');
        assert.deepEqual(await store.tx.findAllocationByIdPrefix('q'), { count: 0, allocation: null });
      }));

    it('policies, one per host', () =>
      withStore(async (store) => {
        await store.tx.putPolicy({ host: 'host-b', document: 'pfs: []\n', updatedAt: AT });
        await store.tx.putPolicy({ host: 'host-a', document: 'pfs: []\n', updatedAt: AT });
        await store.tx.putPolicy({ host: 'host-a', document: 'pfs: [ens1f0]\n', updatedAt: LATER });
        assert.deepEqual(await store.tx.listPolicies('host-a'), [{ host: 'host-a', document: 'pfs: [ens1f0]\n', updatedAt: LATER }]);
        assert.deepEqual((await store.tx.listPolicies()).map((p) => p.host), ['host-a', 'host-b']);
        assert.deepEqual(await store.tx.listPolicies('host-c'), []);
      }));

    it('tokens: found by hash, the hash unique, a changed hash frees the old one', () =>
      withStore(async (store) => {
        const admin = { id: 'tok-1', role: 'admin' as const, tenantId: null, hash: 'a'.repeat(64), createdAt: AT };
        const agent = { id: 'tok-2', role: 'agent:host-a' as const, tenantId: null, hash: 'b'.repeat(64), createdAt: LATER };
        const tenant = { id: 'tok-3', role: 'tenant:blue' as const, tenantId: 'id-blue', hash: 'd'.repeat(64), createdAt: LATER };
        for (const t of [tenant, agent, admin]) await store.tx.putToken(t);
        assert.deepEqual(await store.tx.findTokenByHash('b'.repeat(64)), agent);
        assert.deepEqual(await store.tx.findTokenByHash('d'.repeat(64)), tenant);
        assert.equal(await store.tx.findTokenByHash('c'.repeat(64)), null);
        assert.deepEqual(await store.tx.listTokens(), [admin, agent, tenant]);
        await assertConflict(store.tx.putToken({ ...agent, id: 'tok-4' }), /token hash already in use/);
        const rotated = { ...agent, hash: 'e'.repeat(64) };
        await store.tx.putToken(rotated);
        assert.equal(await store.tx.findTokenByHash('b'.repeat(64)), null);
        assert.deepEqual(await store.tx.findTokenByHash('e'.repeat(64)), rotated);
        await store.tx.putToken({ ...admin, id: 'tok-5', hash: 'b'.repeat(64) });
        assert.equal(await store.tx.deleteToken('tok-1'), true);
        assert.equal(await store.tx.deleteToken('tok-1'), false);
        assert.equal(await store.tx.findTokenByHash('a'.repeat(64)), null);
      }));

    it('events, ascending by seq, with afterSeq, limit and object filters', () =>
      withStore(async (store) => {
        assert.equal(await store.tx.getLastEventSeq(), 0);
        await store.tx.appendEvent({ at: AT, actor: 'admin', action: 'tenant.create', object: 'tenant/blue', before: undefined, after: { name: 'blue' } });
        const first = { seq: 1, at: AT, actor: 'admin', action: 'tenant.create', object: 'tenant/blue', before: null, after: { name: 'blue' } };
        assert.deepEqual(await store.tx.listEvents(), [first]);
        assert.equal(await store.committed.getLastEventSeq(), 1);
        for (let i = 0; i < 4; i++) {
          const object = i % 2 === 0 ? 'allocation/x' : 'allocation/y';
          await store.tx.appendEvent({ at: LATER, actor: 'a', action: 'allocate', object, before: null, after: i });
        }
        const seqs = async (opts?: Parameters<Store['tx']['listEvents']>[0]) => (await store.tx.listEvents(opts)).map((e) => e.seq);
        assert.deepEqual(await store.tx.listEvents(), [first, ...(await store.tx.listEvents({ afterSeq: 1 }))]);
        assert.deepEqual(await seqs(), [1, 2, 3, 4, 5]);
        assert.deepEqual(await seqs({ afterSeq: 2 }), [3, 4, 5]);
        assert.deepEqual(await seqs({ afterSeq: 1, limit: 2 }), [2, 3]);
        assert.deepEqual(await seqs({ object: 'allocation/x' }), [2, 4]);
        assert.deepEqual(await seqs({ object: 'allocation/x', afterSeq: 2 }), [4]);
        assert.equal(await store.tx.getLastEventSeq(), 5);
        assert.equal(await store.committed.getLastEventSeq(), 5);
      }));

    it('migrations: oldest first, with filters', () =>
      withStore(async (store) => {
        const a = allocation();
        const m1 = migration('mig-1', a, { state: 'completed', drain: 'drain-1', to: { ...migration('x', a).from, host: 'host-b', allocation: 'alloc-d' } });
        const m2 = migration('mig-2', a, { createdAt: LATER, tenant: 'red' });
        await store.tx.insertMigration(m2);
        await store.tx.insertMigration(m1);
        assert.deepEqual(await store.tx.getMigration('mig-1'), m1);
        assert.equal(await store.tx.getMigration('nope'), null);
        const list = async (f?: Parameters<Store['tx']['listMigrations']>[0]) => (await store.tx.listMigrations(f)).map((m) => m.id);
        assert.deepEqual(await list(), ['mig-1', 'mig-2']);
        assert.deepEqual(await list({ active: true }), ['mig-2']);
        assert.deepEqual(await list({ active: false }), ['mig-1']);
        assert.deepEqual(await list({ state: 'completed' }), ['mig-1']);
        assert.deepEqual(await list({ allocation: 'alloc-1' }), ['mig-1', 'mig-2']);
        assert.deepEqual(await list({ tenant: 'red' }), ['mig-2']);
        assert.deepEqual(await list({ drain: 'drain-1' }), ['mig-1']);
        assert.deepEqual(await list({ host: 'host-b' }), ['mig-1']);
        assert.deepEqual(await list({ host: 'host-a' }), ['mig-1', 'mig-2']);
        const done = { ...m2, state: 'failed' as const, reason: 'agent lost', updatedAt: LATEST };
        assert.equal(await store.tx.updateMigration(done), true);
        assert.deepEqual(await store.tx.getMigration('mig-2'), done);
        assert.equal(await store.tx.updateMigration(migration('nope', a)), false);
      }));
  });

  describe(`${engine} store contract: paging`, () => {
    it('pages allocations by id, with filters, stable under writes elsewhere in the list', () =>
      onNetworks(async (store) => {
        for (let i = 0; i < 9; i++) {
          await store.tx.insertAllocation(allocation({ id: `a-${i}`, vfIndex: i, mac: `02:00:00:00:01:0${i}`, host: i % 3 === 0 ? 'host-b' : 'host-a' }));
        }
        const page1 = await ids(store, { limit: 4 });
        assert.deepEqual(page1, ['a-0', 'a-1', 'a-2', 'a-3']);
        // Inserted before the cursor and deleted after it: the next page is still the rest, in order.
        await store.tx.insertAllocation(allocation({ id: 'a-00', vfIndex: 20, mac: '02:00:00:00:01:20' }));
        await store.tx.updateAllocationState('a-5', 'released', null, LATER);
        assert.deepEqual(await ids(store, { limit: 4, after: 'a-3' }), ['a-4', 'a-5', 'a-6', 'a-7']);
        assert.deepEqual(await ids(store, { limit: 4, after: 'a-7' }), ['a-8']);
        assert.deepEqual(await ids(store, { limit: 4, after: 'a-8' }), []);
        assert.deepEqual(await ids(store, { host: 'host-b', limit: 2 }), ['a-0', 'a-3']);
        assert.deepEqual(await ids(store, { host: 'host-b', limit: 2, after: 'a-3' }), ['a-6']);
        assert.deepEqual(await ids(store, { holding: true, limit: 3, after: 'a-3' }), ['a-4', 'a-6', 'a-7']);
        assert.deepEqual(await ids(store, { state: 'released', limit: 10 }), ['a-5']);
        assert.deepEqual(await ids(store, { tenant: 'blue', host: 'host-a', limit: 3, after: 'a-2' }), ['a-4', 'a-5', 'a-7']);
      }));
    it('pages allocations by state alone: in id order, another controller\'s changes seen, the cursor kept under changes, a transaction\'s own change listed', () =>
      twoOnNetworks(async (one, two) => {
        const id = (i: number) => `s-${String(i).padStart(2, '0')}`;
        for (let i = 0; i < 12; i++) await one.tx.insertAllocation(allocation({ id: id(i), vfIndex: i, mac: `02:00:00:00:02:${String(i).padStart(2, '0')}` }));
        for (let i = 0; i < 12; i += 2) await two.tx.updateAllocationState(id(i), 'attached', null, LATER);
        assert.deepEqual(await ids(one, { state: 'attached', limit: 3 }), ['s-00', 's-02', 's-04']);
        // Into the state before the cursor, out of it and into it after: the next page is what stands after the cursor.
        await two.tx.updateAllocationState('s-01', 'attached', null, LATEST);
        await two.tx.updateAllocationState('s-06', 'released', null, LATEST);
        await two.tx.updateAllocationState('s-07', 'attached', null, LATEST);
        assert.deepEqual(await ids(one, { state: 'attached', limit: 3, after: 's-04' }), ['s-07', 's-08', 's-10']);
        assert.deepEqual(await ids(one, { state: 'attached', limit: 3, after: 's-10' }), []);
        assert.deepEqual(await ids(one, { state: 'attached', limit: 3 }), ['s-00', 's-01', 's-02']);
        const listed = await one.transaction(async (tx) => {
          await tx.updateAllocationState('s-03', 'attached', null, LATEST);
          await tx.updateAllocationState('s-04', 'releasing', null, LATEST);
          return (await tx.listAllocations({ state: 'attached', limit: 4, after: 's-01' })).map((a) => a.id);
        });
        assert.deepEqual(listed, ['s-02', 's-03', 's-07', 's-08']);
        assert.deepEqual((await ids(two, { state: 'pending' })).sort(), ['s-05', 's-09', 's-11']);
        assert.deepEqual(await ids(two, { state: 'released', limit: 5 }), ['s-06']);
        assert.deepEqual(await ids(two, { state: 'failed', limit: 5 }), []);
      }));
  });

  describe(`${engine} store contract: invariants`, () => {
    it('one holder per VF, one per MAC in any case, never naming the holder', () =>
      onNetworks(async (store) => {
        await store.tx.insertAllocation(allocation());
        await assertConflict(store.tx.insertAllocation(allocation({ id: 'alloc-2', mac: '02:00:00:00:00:99' })), /^VF 3 of ens1f0 on host-a is taken$/);
        await assertConflict(store.tx.insertAllocation(allocation({ id: 'alloc-2', vfIndex: 4, mac: '02:00:00:00:00:03'.toUpperCase() })), /^MAC 02:00:00:00:00:03 is in use$/);
        await assertConflict(store.tx.insertAllocation(allocation({ state: 'released' })), /alloc-1 already exists/);
        // The same VF index on another PF or host is another VF.
        await store.tx.insertAllocation(allocation({ id: 'alloc-3', pfPciAddress: '0000:3b:00.1', mac: '02:00:00:00:00:33' }));
        await store.tx.insertAllocation(allocation({ id: 'alloc-4', host: 'host-b', mac: '02:00:00:00:00:34' }));
        assert.deepEqual(sorted(await ids(store)), ['alloc-1', 'alloc-3', 'alloc-4']);
      }));

    it('a released VF and MAC can be taken again, but not both back', () =>
      onNetworks(async (store) => {
        await store.tx.insertAllocation(allocation());
        await store.tx.updateAllocationState('alloc-1', 'releasing', null, LATER);
        await assertConflict(store.tx.insertAllocation(allocation({ id: 'alloc-2' })), /is taken/);
        await store.tx.updateAllocationState('alloc-1', 'released', null, LATER);
        await store.tx.insertAllocation(allocation({ id: 'alloc-2' }));
        assert.deepEqual(await ids(store, { holding: true }), ['alloc-2']);
        await assertConflict(store.tx.updateAllocationState('alloc-1', 'pending', null, LATER), /^VF 3 of ens1f0 on host-a is taken$/);
        assert.equal((await store.tx.getAllocation('alloc-1'))?.state, 'released');
        await store.tx.updateAllocationState('alloc-2', 'failed', 'gone', LATER);
        await store.tx.insertAllocation(allocation({ id: 'alloc-3', vfIndex: 9 }));
        await assertConflict(store.tx.updateAllocationState('alloc-1', 'pending', null, LATER), /^MAC 02:00:00:00:00:03 is in use$/);
      }));

    it('guarantees on a PF: an insert past its capacity is refused; release, failure, a re-hold and a rollback keep the count exact', () =>
      onNetworks(async (store) => {
        const cap = { capacityMbps: 2500 };
        // 1000 Mbps each unless told otherwise; VF i with MAC ...:05:i.
        const g = (id: string, vfIndex: number, over: Partial<Allocation> = {}) =>
          allocation({ id, vfIndex, mac: `02:00:00:00:05:${String(vfIndex).padStart(2, '0')}`, ...over });
        const insert = (a: Allocation) => store.tx.insertAllocation(a, cap);
        await insert(g('bw-1', 1));
        await insert(g('bw-2', 2));
        await assertClaim(insert(g('bw-3', 3)), 'bandwidth', /^guarantee of 1000 Mbps no longer fits on host-a\/ens1f0: 2000 of its 2500 Mbps are committed \(headroom 500 Mbps\); choose another PF$/);
        // The VF and MAC are named before the bandwidth, with their own claims.
        await assertClaim(insert(g('bw-3', 1, { mac: '02:00:00:00:05:99' })), 'vf', /^VF 1 of ens1f0 on host-a is taken$/);
        await assertClaim(insert(g('bw-3', 3, { mac: '02:00:00:00:05:01' })), 'mac', /^MAC 02:00:00:00:05:01 is in use$/);
        // What fits still goes: up to the capacity exactly, no guarantee, another PF, another host.
        await insert(g('bw-4', 4, { minTxRateMbps: 500 }));
        await insert(g('bw-5', 5, { minTxRateMbps: 0 }));
        await insert(g('bw-6', 6, { pfPciAddress: '0000:3b:00.1' }));
        await insert(g('bw-7', 7, { host: 'host-b' }));
        await assertClaim(insert(g('bw-3', 3, { minTxRateMbps: 1 })), 'bandwidth', /2500 of its 2500 Mbps are committed \(headroom 0 Mbps\)/);
        // Releasing still holds the guarantee; released gives it back, and so does failed.
        await store.tx.updateAllocationState('bw-1', 'releasing', null, LATER);
        await assertClaim(insert(g('bw-3', 3)), 'bandwidth', /2500 of its 2500/);
        await store.tx.updateAllocationState('bw-1', 'released', null, LATER);
        await insert(g('bw-3', 3));
        await store.tx.updateAllocationState('bw-2', 'failed', 'gone', LATER);
        await assertClaim(insert(g('bw-8', 8, { minTxRateMbps: 1001 })), 'bandwidth', /1500 of its 2500 Mbps are committed \(headroom 1000 Mbps\)/);
        // A released allocation taken back into a holding state counts again.
        await store.tx.updateAllocationState('bw-1', 'pending', null, LATEST);
        await assertClaim(insert(g('bw-8', 8, { minTxRateMbps: 1 })), 'bandwidth', /2500 of its 2500/);
        // A transaction that fails counts nothing of what it did, a release included.
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.updateAllocationState('bw-3', 'released', null, LATEST);
            await tx.insertAllocation(g('bw-9', 9, { minTxRateMbps: 500 }), cap);
            throw new Error('agent refused');
          }),
          /agent refused/,
        );
        await assertClaim(insert(g('bw-8', 8, { minTxRateMbps: 1 })), 'bandwidth', /2500 of its 2500/);
        // Within one transaction, a release makes room for what follows it.
        await store.transaction(async (tx) => {
          await tx.updateAllocationState('bw-3', 'released', null, LATEST);
          await tx.insertAllocation(g('bw-9', 9, { minTxRateMbps: 600 }), cap);
          await assertClaim(tx.insertAllocation(g('bw-10', 10, { minTxRateMbps: 401 }), cap), 'bandwidth', /2100 of its 2500/);
        });
        // Without a check (an import) the guarantee is counted, not refused.
        await store.tx.insertAllocation(g('bw-10', 10, { minTxRateMbps: 400 }));
        await assertClaim(insert(g('bw-11', 11, { minTxRateMbps: 1 })), 'bandwidth', /2500 of its 2500/);
        // The other PF counted only its own.
        await insert(g('bw-12', 12, { pfPciAddress: '0000:3b:00.1', minTxRateMbps: 1500 }));
        await assertClaim(insert(g('bw-13', 13, { pfPciAddress: '0000:3b:00.1', minTxRateMbps: 1 })), 'bandwidth', /host-a\/ens1f0: 2500 of its 2500/);
      }));

    it('a migration’s destination holds its own guarantee on its PF until its source lets go of its one', () =>
      onNetworks(async (store) => {
        const cap = { capacityMbps: 1500 };
        await store.tx.insertAllocation(allocation(), cap);
        await store.tx.insertAllocation(allocation({ id: 'b-1', host: 'host-b', vfIndex: 1, mac: '02:00:00:00:06:01', minTxRateMbps: 500 }), cap);
        await store.tx.setAllocationMigration('alloc-1', { id: 'mig-1', role: 'source' }, LATER);
        const dest = allocation({ id: 'alloc-d', host: 'host-b', migration: { id: 'mig-1', role: 'destination' } });
        await store.tx.insertAllocation(dest, cap);
        await assertClaim(store.tx.insertAllocation(allocation({ id: 'b-2', host: 'host-b', vfIndex: 2, mac: '02:00:00:00:06:02', minTxRateMbps: 1 }), cap), 'bandwidth', /host-b\/ens1f0: 1500 of its 1500/);
        await assertClaim(store.tx.insertAllocation(allocation({ id: 'a-2', vfIndex: 2, mac: '02:00:00:00:06:03', minTxRateMbps: 501 }), cap), 'bandwidth', /host-a\/ens1f0: 1000 of its 1500/);
        // The source lets go: its PF has its guarantee back, the destination keeps its own.
        await store.tx.updateAllocationState('alloc-1', 'released', null, LATEST);
        await store.tx.setAllocationMigration('alloc-d', null, LATEST);
        await store.tx.insertAllocation(allocation({ id: 'a-2', vfIndex: 2, mac: '02:00:00:00:06:03', minTxRateMbps: 1500 }), cap);
        await assertClaim(store.tx.insertAllocation(allocation({ id: 'b-2', host: 'host-b', vfIndex: 2, mac: '02:00:00:00:06:02', minTxRateMbps: 1 }), cap), 'bandwidth', /1500 of its 1500/);
      }));

    it('a migration’s destination shares its own source’s MAC, and nothing else does', () =>
      onNetworks(async (store) => {
        const source = allocation();
        await store.tx.insertAllocation(source);
        await store.tx.setAllocationMigration('alloc-1', { id: 'mig-1', role: 'source' }, LATER);
        const dest = allocation({ id: 'alloc-d', host: 'host-b', migration: { id: 'mig-1', role: 'destination' } });
        await store.tx.insertAllocation(dest);
        // Another migration's destination, another source of the same migration, or a plain allocation: no.
        await assertConflict(store.tx.insertAllocation(allocation({ id: 'x-1', host: 'host-c', migration: { id: 'mig-2', role: 'destination' } })), /MAC .* is in use/);
        await assertConflict(store.tx.insertAllocation(allocation({ id: 'x-2', host: 'host-c', migration: { id: 'mig-1', role: 'source' } })), /MAC .* is in use/);
        await assertConflict(store.tx.insertAllocation(allocation({ id: 'x-3', host: 'host-c' })), /MAC .* is in use/);
        // Clearing one end's mark while the other still holds the MAC would leave two plain holders.
        await assertConflict(store.tx.setAllocationMigration('alloc-d', null, LATEST), /MAC .* is in use/);
        assert.deepEqual((await store.tx.getAllocation('alloc-d'))?.migration, { id: 'mig-1', role: 'destination' });
        // The source lets go: then the destination keeps the MAC alone.
        await store.tx.updateAllocationState('alloc-1', 'released', null, LATEST);
        assert.deepEqual((await store.tx.setAllocationMigration('alloc-d', null, LATEST))?.migration, null);
        assert.equal(await store.tx.setAllocationMigration('nope', null, LATEST), null);
      }));

    it('one tenant per (physnet, VLAN), never naming the owner; free again once its networks are gone', () =>
      withStore(async (store) => {
        await store.tx.putNetwork(network());
        await store.tx.putNetwork(network({ name: 'blue-net-2' }));
        await assertConflict(store.tx.putNetwork(network({ name: 'red-net', tenant: 'red' })), /^VLAN 100 on physnet datacentre is taken by another tenant$/);
        await assertConflict(store.tx.putNetwork(network({ name: 'blue-net-2', tenant: 'red' })), /^VLAN 100 on physnet datacentre is taken by another tenant$/);
        await store.tx.putNetwork(network({ name: 'red-net', tenant: 'red', physnet: 'access' }));
        await store.tx.putNetwork(network({ name: 'red-net-2', tenant: 'red', vlan: 101 }));
        assert.equal((await store.tx.listNetworks({ tenant: 'red' })).length, 2);
        // A network moved off the pair frees its place there.
        await store.tx.putNetwork(network({ name: 'blue-net-2', vlan: 102 }));
        await store.tx.deleteNetwork('blue-net');
        await store.tx.putNetwork(network({ name: 'red-net-3', tenant: 'red' }));
        // The only network on a pair may change its tenant.
        await store.tx.putNetwork(network({ name: 'blue-net-2', vlan: 102, tenant: 'green' }));
        assert.equal((await store.tx.getNetwork('blue-net-2'))?.tenant, 'green');
      }));

    it('an allocation holding a VF needs its network: refused on one that does not exist, and its network cannot go while it holds one', () =>
      onNetworks(async (store) => {
        await assertNotFound(store.tx.insertAllocation(allocation({ network: 'gone-net' })), 'gone-net', /^network gone-net not found$/);
        assert.deepEqual(await ids(store), []);
        // An import's released allocation may be on a network deleted long ago.
        await store.tx.insertAllocation(allocation({ id: 'alloc-old', network: 'gone-net', state: 'released' }));
        // A network put in the same transaction is there for the insert.
        await store.transaction(async (tx) => {
          await tx.putNetwork(network({ name: 'new-net' }));
          await tx.insertAllocation(allocation({ network: 'new-net' }));
        });
        await assertConflict(store.tx.deleteNetwork('new-net'), /^network new-net still has allocations$/);
        assert.notEqual(await store.tx.getNetwork('new-net'), null);
        await store.tx.updateAllocationState('alloc-1', 'released', null, LATER);
        assert.equal(await store.tx.deleteNetwork('new-net'), true);
        await assertNotFound(store.tx.insertAllocation(allocation({ id: 'alloc-2', network: 'new-net' })), 'new-net', /^network new-net not found$/);
        assert.deepEqual(sorted(await ids(store)), ['alloc-1', 'alloc-old']);
      }));

    it('IP leases: one holder per address in a network', () =>
      withStore(async (store) => {
        await store.tx.leaseAddresses('blue-net', 'alloc-1', ['198.18.0.10', '198.18.0.11']);
        await store.tx.leaseAddresses('blue-net', 'alloc-1', ['198.18.0.10']);
        await store.tx.leaseAddresses('red-net', 'alloc-2', ['198.18.0.10']);
        // In a transaction, a refusal leaves none of the request's addresses leased.
        await assertConflict(
          store.transaction((tx) => tx.leaseAddresses('blue-net', 'alloc-2', ['198.18.0.12', '198.18.0.11'])),
          /address 198\.18\.0\.11 on network blue-net is held by allocation alloc-1/,
        );
        assert.deepEqual(await store.tx.listLeases('blue-net'), ['198.18.0.10', '198.18.0.11']);
        assert.equal(await store.tx.releaseAddresses('alloc-1'), 2);
        assert.equal(await store.tx.releaseAddresses('alloc-1'), 0);
        assert.deepEqual(await store.tx.listLeases('blue-net'), []);
        assert.deepEqual(await store.tx.listLeases('red-net'), ['198.18.0.10']);
        await store.tx.leaseAddresses('blue-net', 'alloc-2', ['198.18.0.11']);
      }));

    it('one unfinished migration per allocation', () =>
      withStore(async (store) => {
        const a = allocation();
        await store.tx.insertMigration(migration('mig-1', a));
        await assertConflict(store.tx.insertMigration(migration('mig-2', a)), /allocation alloc-1 is already migrating \(migration mig-1\)/);
        await assertConflict(store.tx.insertMigration(migration('mig-1', a, { state: 'completed' })), /migration mig-1 already exists|already migrating/);
        // A finished one may be recorded beside it; once it ends, a new one may start.
        await store.tx.insertMigration(migration('mig-0', a, { state: 'aborted' }));
        await store.tx.updateMigration(migration('mig-1', a, { state: 'rolling-back' }));
        await assertConflict(store.tx.insertMigration(migration('mig-2', a)), /already migrating/);
        await store.tx.updateMigration(migration('mig-1', a, { state: 'completed' }));
        await store.tx.insertMigration(migration('mig-2', a));
        assert.deepEqual((await store.tx.listMigrations({ active: true })).map((m) => m.id), ['mig-2']);
      }));
  });

  describe(`${engine} store contract: transactions`, () => {
    it('rolls back every write when fn throws', () =>
      onNetworks(async (store) => {
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.putTenant({ id: 'id-blue', name: 'blue', createdAt: AT });
            await tx.insertAllocation(allocation());
            await tx.leaseAddresses('blue-net', 'alloc-1', ['198.18.0.10']);
            await tx.appendEvent({ at: AT, actor: 'a', action: 'allocate', object: 'alloc-1', before: null, after: 1 });
            throw new Error('host unreachable');
          }),
          /host unreachable/,
        );
        assert.deepEqual(await store.tx.listTenants(), []);
        assert.deepEqual(await store.tx.listAllocations(), []);
        assert.deepEqual(await store.tx.listLeases('blue-net'), []);
        assert.deepEqual(await store.tx.listEvents(), []);
        // Nothing was claimed either: the VF and MAC are free.
        await store.tx.insertAllocation(allocation({ id: 'alloc-2' }));
      }));

    it('commits and returns fn’s value; reads in it see its own writes', () =>
      onNetworks(async (store) => {
        const value = await store.transaction(async (tx) => {
          await tx.insertAllocation(allocation());
          assert.equal((await tx.getAllocation('alloc-1'))?.state, 'pending');
          assert.deepEqual((await tx.listAllocations({ host: 'host-a' })).map((a) => a.id), ['alloc-1']);
          await tx.updateAllocationState('alloc-1', 'configured', null, LATER);
          await tx.appendEvent({ at: AT, actor: 'a', action: 'allocate', object: 'alloc-1', before: null, after: 1 });
          await tx.appendEvent({ at: AT, actor: 'a', action: 'configure', object: 'alloc-1', before: null, after: 2 });
          return 'done';
        });
        assert.equal(value, 'done');
        assert.equal((await store.tx.getAllocation('alloc-1'))?.state, 'configured');
        assert.deepEqual(await ids(store, { state: 'pending' }), []);
        // Read outside the transaction, the log has its events (on etcd, once numbered after the commit).
        assert.deepEqual((await store.tx.listEvents()).map((e) => [e.seq, e.action]), [[1, 'allocate'], [2, 'configure']]);
      }));

    it('concurrent transactions: one that throws is undone alone, with its own error; the others commit', () =>
      onNetworks(async (store) => {
        const take = (id: string, vfIndex: number, fail?: string) =>
          store.transaction(async (tx) => {
            await tx.insertAllocation(allocation({ id, vfIndex, mac: `02:00:00:00:03:${String(vfIndex).padStart(2, '0')}` }));
            await tx.leaseAddresses('blue-net', id, [`198.18.1.${vfIndex}`]);
            await tx.appendEvent({ at: AT, actor: 'a', action: 'allocate', object: id, before: null, after: vfIndex });
            if (fail) throw new Error(fail);
            return id;
          });
        const results = await Promise.allSettled([
          take('ok-1', 1),
          take('boom', 2, 'agent refused'),
          take('ok-3', 3),
          take('dup', 1),
          take('ok-4', 4),
        ]);
        assert.equal(results[1]?.status, 'rejected');
        assert.match(String((results[1] as PromiseRejectedResult).reason), /agent refused/);
        assert.equal(results[3]?.status, 'rejected');
        assert.match(String((results[3] as PromiseRejectedResult).reason), /VF 1 of ens1f0 on host-a is taken/);
        assert.deepEqual([results[0], results[2], results[4]].map((r) => (r as PromiseFulfilledResult<string>).value), ['ok-1', 'ok-3', 'ok-4']);
        assert.deepEqual(sorted(await ids(store)), ['ok-1', 'ok-3', 'ok-4']);
        const events = await store.tx.listEvents();
        assert.deepEqual(events.map((e) => e.seq), [1, 2, 3]);
        assert.deepEqual(sorted(events.map((e) => e.object)), ['ok-1', 'ok-3', 'ok-4']);
        assert.deepEqual(await store.tx.listLeases('blue-net'), ['198.18.1.1', '198.18.1.3', '198.18.1.4']);
        // What the failed one had claimed is free.
        await store.tx.insertAllocation(allocation({ id: 'again', vfIndex: 2, mac: '02:00:00:00:03:02' }));
      }));

    // The timeout only stops a regression (a committed read that waits for the transaction) from hanging the suite.
    it('committed reads answer what is committed while a transaction is open, without waiting for it, and see it once it commits', { timeout: 60_000 }, () =>
      onNetworks(async (store) => {
        await store.tx.putTenant({ id: 'id-blue', name: 'blue', createdAt: AT });
        await store.tx.insertAllocation(allocation());
        let commit!: () => void;
        const held = new Promise<void>((resolve) => (commit = resolve));
        let wrote!: () => void;
        const written = new Promise<void>((resolve) => (wrote = resolve));
        const open = store.transaction(async (tx) => {
          await tx.putTenant({ id: 'id-red', name: 'red', createdAt: AT });
          await tx.updateAllocationState('alloc-1', 'configured', null, LATER);
          wrote();
          await held;
        });
        await written;
        // The transaction commits only after these answer: a read that waited for it would never answer.
        assert.deepEqual((await store.committed.listTenants()).map((t) => t.name), ['blue']);
        assert.equal((await store.committed.getAllocation('alloc-1'))?.state, 'pending');
        commit();
        await open;
        assert.deepEqual((await store.committed.listTenants()).map((t) => t.name), ['blue', 'red']);
        assert.equal((await store.committed.getAllocation('alloc-1'))?.state, 'configured');
        assert.deepEqual((await store.committed.listAllocations({ state: 'configured' })).map((a) => a.id), ['alloc-1']);
      }));

    it('refuses a transaction handle used after its transaction ended', () =>
      withStore(async (store) => {
        const leaked = await store.transaction(async (tx) => tx);
        await assert.rejects(leaked.listTenants(), /transaction already ended/);
      }));

    it('two controllers racing read-then-insert for the last VF: exactly one wins', () =>
      twoOnNetworks(async (one, two) => {
        const takeLastVf = (store: Store, id: string, mac: string) =>
          store.transaction(async (tx) => {
            const held = await tx.listAllocations({ host: 'host-a', holding: true });
            if (held.length > 0) throw new Error(`no free VF for ${id}`);
            await new Promise((resolve) => setImmediate(resolve));
            await tx.insertAllocation(allocation({ id, mac }));
            return id;
          });
        const results = await Promise.allSettled([takeLastVf(one, 'alloc-1', '02:00:00:00:00:01'), takeLastVf(two, 'alloc-2', '02:00:00:00:00:02')]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        assert.equal(won.length, 1, JSON.stringify(results));
        // The loser saw the winner's insert in its own check.
        assert.match(String(lost[0]?.reason), /no free VF for alloc-/);
        assert.deepEqual(await ids(one, { holding: true }), [(won[0] as PromiseFulfilledResult<string>).value]);
      }));

    it('a network deleted through one controller while another allocates on it: never both, and no allocation outlives its network', () =>
      twoOnNetworks(async (one, two) => {
        /**
         * `first`'s transaction through `store` does its part, then (on its
         * first run) lets `second` run whole before it commits: up to 500 ms,
         * where one store runs transactions one at a time (SQLite) and
         * `second` waits for it. Settled: [first, second].
         */
        const interleaved = async (store: Store, first: (tx: StoreTx) => Promise<unknown>, second: () => Promise<unknown>) => {
          let inner: Promise<unknown> | null = null;
          const outer = store.transaction(async (tx) => {
            await first(tx);
            inner ??= second();
            await Promise.race([inner.catch(() => {}), new Promise((resolve) => setTimeout(resolve, 500))]);
          });
          const settledOuter = (await Promise.allSettled([outer]))[0]!;
          return [settledOuter, (await Promise.allSettled([inner!]))[0]!] as const;
        };
        let name = '';
        let a = allocation();
        for (const [round, order] of (['delete inside the insert', 'insert inside the delete'] as const).entries()) {
          name = `race-net-${round}`;
          a = allocation({ id: `race-${round}`, network: name, vfIndex: round, mac: `02:00:00:00:0c:0${round}` });
          await one.tx.putNetwork(network({ name }));
          const [inserted, removed] =
            order === 'delete inside the insert'
              ? await interleaved(two, (tx) => tx.insertAllocation(a), () => one.tx.deleteNetwork(name))
              : await interleaved(one, (tx) => tx.deleteNetwork(name), () => two.tx.insertAllocation(a)).then(([r, i]) => [i, r] as const);
          const outcome = `${order}: ${JSON.stringify([inserted, removed].map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')))}`;
          assert.equal([inserted, removed].filter((r) => r.status === 'fulfilled').length, 1, outcome);
          const refusal = inserted.status === 'rejected' ? inserted.reason : (removed as PromiseRejectedResult).reason;
          assert.match(String(refusal), inserted.status === 'rejected' ? new RegExp(`network ${name} not found`) : new RegExp(`network ${name} still has allocations`), outcome);
          for (const held of await two.tx.listAllocations({ holding: true })) assert.notEqual(await one.tx.getNetwork(held.network), null, `${order}: ${held.id} outlives ${held.network}`);
        }
      }));

    it('many blind inserts of one VF through two controllers: exactly one holds it, the rest are CONFLICT', () =>
      twoOnNetworks(async (one, two) => {
        const tries = Array.from({ length: 12 }, (_, i) =>
          (i % 2 === 0 ? one : two).tx.insertAllocation(allocation({ id: `race-${i}`, mac: `02:00:00:00:02:${String(i).padStart(2, '0')}` })),
        );
        const results = await Promise.allSettled(tries);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        for (const r of results) {
          if (r.status === 'rejected') {
            assert.ok(r.reason instanceof SriovError && r.reason.code === 'CONFLICT', String(r.reason));
          }
        }
        assert.equal((await two.tx.listAllocations({ holding: true })).length, 1);
      }));

    it('two controllers racing for the last guarantee bandwidth of a PF, on different VFs: it is never over-committed', () =>
      twoOnNetworks(async (one, two) => {
        const cap = { capacityMbps: 2500 };
        // Room for two of 1000 Mbps; eight tries, each on its own VF and MAC.
        const tries = Array.from({ length: 8 }, (_, i) =>
          (i % 2 === 0 ? one : two).tx.insertAllocation(allocation({ id: `bw-${i}`, vfIndex: i, mac: `02:00:00:00:07:${String(i).padStart(2, '0')}` }), cap),
        );
        const results = await Promise.allSettled(tries);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2, JSON.stringify(results.map((r) => r.status === 'rejected' && String(r.reason))));
        for (const r of results) {
          if (r.status === 'rejected') assert.ok(r.reason instanceof SriovError && r.reason.code === 'CONFLICT' && r.reason.details.claim === 'bandwidth', String(r.reason));
        }
        const held = await two.tx.listAllocations({ holding: true });
        assert.equal(held.reduce((sum, a) => sum + a.minTxRateMbps, 0), 2000);
        // Released through one controller, the room is there for the other.
        await one.tx.updateAllocationState(held[0]!.id, 'released', null, LATER);
        await two.tx.insertAllocation(allocation({ id: 'bw-last', vfIndex: 9, mac: '02:00:00:00:07:99' }), cap);
        await assertClaim(one.tx.insertAllocation(allocation({ id: 'bw-over', vfIndex: 10, mac: '02:00:00:00:07:98', minTxRateMbps: 501 }), cap), 'bandwidth', /2000 of its 2500/);
      }));

    it('the audit sequence stays gap-free under concurrent appends from two controllers, each reading its own at once', () =>
      withTwo(async (one, two) => {
        const n = 48;
        const appends = Array.from({ length: n }, async (_, i) => {
          const store = i % 2 === 0 ? one : two;
          await store.transaction(async (tx) => {
            await tx.putTenant({ id: `id-${i}`, name: `t-${i}`, createdAt: AT });
            await tx.appendEvent({ at: AT, actor: 'a', action: 'tenant.create', object: `tenant/t-${i}`, before: null, after: i });
            if (i % 3 === 0) await tx.appendEvent({ at: AT, actor: 'a', action: 'tenant.check', object: `tenant/t-${i}`, before: null, after: i });
          });
          // Read-your-writes: once the write returned, the store that wrote it lists its events.
          const mine = await store.tx.listEvents({ object: `tenant/t-${i}` });
          assert.deepEqual(mine.map((e) => e.action), i % 3 === 0 ? ['tenant.create', 'tenant.check'] : ['tenant.create'], `t-${i}`);
          assert.equal(mine.length === 2 ? mine[1]!.seq - mine[0]!.seq : 1, 1, 'a transaction\'s events are consecutive');
        });
        await Promise.all(appends);
        const total = n + n / 3;
        for (const store of [one, two]) {
          const events = await store.tx.listEvents();
          assert.deepEqual(events.map((e) => e.seq), Array.from({ length: total }, (_, i) => i + 1), 'gap-free, no number twice');
          assert.deepEqual(sorted(events.filter((e) => e.action === 'tenant.create').map((e) => String(e.after))), sorted(Array.from({ length: n }, (_, i) => String(i))), 'each event once');
          assert.equal(await store.tx.getLastEventSeq(), total);
        }
        assert.equal((await two.tx.listTenants()).length, n);
      }));
  });
}
