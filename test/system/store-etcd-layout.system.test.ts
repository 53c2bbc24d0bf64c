/**
 * The etcd store's keyspace as it writes it, and as main's code wrote it:
 * - a group-commit batch's audit events are one record (read back one by
 *   one, gap-free, from any number); records of one event, as main's code
 *   wrote them, still read beside the new ones;
 * - lists by host, network or tenant find their candidates in the store's
 *   memory (no index key per allocation), see what another controller
 *   inserted, and a list that an insert elsewhere makes stale fails its
 *   commit; allocations main's code wrote (with its index keys) still list;
 * - a list by workload alone (a container ADD with no host) is not a scan of
 *   every allocation, whose commit any allocation's change elsewhere failed;
 *   it still sees another controller's insert, and a claim bound to a pod.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdStore } from '../../src/store/etcd/store.js';
import { allocation, putNetworks } from '../contract/store.contract.js';

import { startEtcd, type EtcdCluster } from '../support/etcd.js';

const at = '2026-01-01T00:00:00.000Z';

describe('etcd store: the keyspace', { timeout: 120_000 }, () => {
  let cluster: EtcdCluster;
  let store: EtcdStore;
  before(async () => {
    cluster = await startEtcd(1);
  });
  after(async () => {
    await store?.close();
    await cluster?.stop();
  });

  it('a batch appends its audit events as one record; every event reads back in order, from any number and by object', async () => {
    store = await EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/layout/' });
    // The networks the allocations of the tests below are on.
    await putNetworks(store);
    const k = store.keys;
    // Two events as main's code wrote them: one key each.
    for (const seq of [1, 2]) await store.client.put(k.auditEvent(seq)).value(JSON.stringify({ seq, at, actor: 'old', action: 'a', object: `o-${seq}`, before: null, after: null }));
    await store.client.put(k.auditSeq).value('2');
    // 40 transactions queued together (group commit), some with two events.
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        store.transaction(async (tx) => {
          await tx.appendEvent({ at, actor: 'new', action: 'a', object: `o-${i % 3}`, before: null, after: { i } });
          if (i % 4 === 0) await tx.appendEvent({ at, actor: 'new', action: 'b', object: 'twice', before: null, after: { i } });
        }),
      ),
    );
    const total = 2 + 40 + 10;
    const records = await store.client.getAll().prefix(k.ranges.auditEvents).keys();
    assert.ok(records.length < total / 2, `${records.length} records for ${total} events: a batch writes one`);
    const all = await store.tx.listEvents({ limit: 1000 });
    assert.deepEqual(
      all.map((e) => e.seq),
      Array.from({ length: total }, (_, i) => i + 1),
    );
    assert.deepEqual(all.slice(0, 2).map((e) => e.actor), ['old', 'old']);
    for (let after = 0; after < total; after++) {
      const page = await store.tx.listEvents({ afterSeq: after, limit: 3 });
      assert.deepEqual(
        page.map((e) => e.seq),
        all.slice(after, after + 3).map((e) => e.seq),
        `after ${after}`,
      );
    }
    const twice = await store.tx.listEvents({ object: 'twice', afterSeq: 5 });
    assert.deepEqual(twice.map((e) => e.seq), all.filter((e) => e.object === 'twice' && e.seq > 5).map((e) => e.seq));
    assert.equal(twice.length, 10 - all.filter((e) => e.object === 'twice' && e.seq <= 5).length);
    // The next append continues the sequence.
    await store.tx.appendEvent({ at, actor: 'new', action: 'c', object: 'last', before: null, after: null });
    assert.deepEqual((await store.tx.listEvents({ afterSeq: total })).map((e) => [e.seq, e.action]), [[total + 1, 'c']]);
  });

  it('a transaction undone inside a batch takes its events with it: the sequence stays gap-free', async () => {
    const before = (await store.tx.listEvents({ limit: 10_000 })).length;
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        store.transaction(async (tx) => {
          await tx.appendEvent({ at, actor: 'x', action: 'a', object: `u-${i}`, before: null, after: null });
          if (i % 3 === 1) throw new Error('undone');
        }),
      ),
    );
    assert.equal(results.filter((r) => r.status === 'rejected').length, 4);
    const all = await store.tx.listEvents({ limit: 10_000 });
    assert.equal(all.length, before + 8);
    assert.deepEqual(
      all.map((e) => e.seq),
      Array.from({ length: all.length }, (_, i) => i + 1),
    );
    assert.deepEqual(all.slice(before).map((e) => e.object).sort(), ['u-0', 'u-11', 'u-2', 'u-3', 'u-5', 'u-6', 'u-8', 'u-9']);

  });

  it('lists by host, network and tenant come from memory, include what another controller inserted, and write no index key per allocation', async () => {
    const other = await EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/layout/' });
    try {
      const k = store.keys;
      // Written as main's code did: the record and its four index keys, no added/ key.
      const old = allocation({ id: 'old-1', host: 'hx', vfIndex: 0, mac: '02:00:00:00:01:00' });
      await store.client.put(k.allocation(old.id)).value(JSON.stringify(old));
      for (const [f, v] of [['host', 'hx'], ['tenant', 'blue'], ['network', 'blue-net'], ['state', 'pending']]) await store.client.put(`${k.prefix}idx/allocations/${f}/${v}/${old.id}`).value('');
      assert.deepEqual((await store.tx.listAllocations({ host: 'hx' })).map((a) => a.id), ['old-1']);
      // The other controller inserts; this one lists it (its memory follows etcd's watch).
      await other.tx.insertAllocation(allocation({ id: 'new-2', host: 'hx', vfIndex: 1, mac: '02:00:00:00:01:01', network: 'red-net' }));
      await store.tx.insertAllocation(allocation({ id: 'new-1', host: 'hy', vfIndex: 1, mac: '02:00:00:00:01:02' }));
      assert.deepEqual((await store.tx.listAllocations({ host: 'hx' })).map((a) => a.id), ['new-2', 'old-1']);
      assert.deepEqual((await store.tx.listAllocations({ tenant: 'blue', limit: 2 })).map((a) => a.id), ['new-1', 'new-2']);
      assert.deepEqual((await store.tx.listAllocations({ tenant: 'blue', limit: 2, after: 'new-2' })).map((a) => a.id), ['old-1']);
      assert.deepEqual((await other.tx.listAllocations({ network: 'blue-net' })).map((a) => a.id), ['new-1', 'old-1']);
      assert.deepEqual((await other.tx.listAllocations({ host: 'hx', network: 'red-net' })).map((a) => a.id), ['new-2']);
      assert.deepEqual(await store.tx.listAllocations({ host: 'nowhere' }), []);
      const idx = await store.client.getAll().prefix(`${k.prefix}idx/`).keys();
      assert.equal(idx.length, 4, 'only main\'s index keys: none written since');
      // Inside one transaction, its own insert lists at once.
      const listed = await store.transaction(async (tx) => {
        await tx.insertAllocation(allocation({ id: 'new-3', host: 'hz', vfIndex: 2, mac: '02:00:00:00:01:03' }));
        return (await tx.listAllocations({ host: 'hz' })).map((a) => a.id);
      });
      assert.deepEqual(listed, ['new-3']);
    } finally {
      await other.close();
    }
  });

  it('a group tenant deleted while it held VFs takes its tenant-groups entry and pf-tenants keys with it, in the one Txn', async () => {
    const k = store.keys;
    await store.tx.putTenant({ id: 'g-1', name: 'gone', pfMinTxRateMbps: 1000, pfMaxTxRateMbps: null, createdAt: at });
    await store.tx.insertAllocation(allocation({ id: 'g-1', host: 'hg', vfIndex: 0, mac: '02:00:00:00:04:00', tenant: 'gone', minTxRateMbps: 0 }));
    assert.equal(await store.client.get(k.pfTenant('hg', '0000:3b:00.0', 'gone')).string(), JSON.stringify({ vfs: 1, minTxRateMbps: 0 }));
    assert.equal(await store.tx.deleteTenant('gone'), true);
    assert.deepEqual(await store.client.getAll().prefix(`${k.prefix}pf-tenants/`).keys(), []);
    assert.equal(await store.client.get(k.tenantGroups).string(), null);
    assert.equal(await store.client.get(k.pfCommitted('hg', '0000:3b:00.0')).string(), null, 'its VF without a guarantee commits nothing');
  });

  it('a list that an insert by another controller makes stale fails its commit, and runs again on what is there', async () => {
    const other = await EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/layout/' });
    try {
      let runs = 0;
      const counted = await store.transaction(async (tx) => {
        runs++;
        const held = await tx.listAllocations({ host: 'hw' });
        if (runs === 1) await other.tx.insertAllocation(allocation({ id: 'late-1', host: 'hw', vfIndex: 9, mac: '02:00:00:00:02:09' }));
        await tx.putTenant({ id: `count-${held.length}`, name: 'counted', createdAt: at });
        return held.length;
      });
      assert.equal(counted, 1, 'the commit decided on the list as it stands');
      assert.ok(runs >= 2, `ran ${runs} times: the first commit lost`);
      assert.equal((await store.tx.getTenant('counted'))?.id, 'count-1');
    } finally {
      await other.close();
    }
  });

  it('a list by workload alone reads its candidates: a change to another allocation elsewhere does not fail its commit; an insert of that workload does', async () => {
    const other = await EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/layout/' });
    try {
      await store.tx.insertAllocation(allocation({ id: 'wl-1', host: 'hv', vfIndex: 1, mac: '02:00:00:00:03:01', workload: { kind: 'container', name: 'pod-w' } }));
      await store.tx.insertAllocation(allocation({ id: 'wl-2', host: 'hv', vfIndex: 2, mac: '02:00:00:00:03:02', workload: { kind: 'container', name: 'pod-z' } }));
      let runs = 0;
      const listed = await store.transaction(async (tx) => {
        runs++;
        const held = await tx.listAllocations({ workload: 'pod-w', holding: true });
        // Another controller (an agent's report) moves an allocation of another workload on.
        if (runs === 1) await other.tx.updateAllocationState('wl-2', 'configured', null, at);
        await tx.putTenant({ id: `w-${held.length}`, name: 'by-workload', createdAt: at });
        return held.map((a) => a.id);
      });
      assert.deepEqual(listed, ['wl-1']);
      assert.equal(runs, 1, 'another workload\'s change does not touch what the list read');
      runs = 0;
      const again = await store.transaction(async (tx) => {
        runs++;
        const held = await tx.listAllocations({ workload: 'pod-w' });
        if (runs === 1) await other.tx.insertAllocation(allocation({ id: 'wl-3', host: 'hu', vfIndex: 3, mac: '02:00:00:00:03:03', workload: { kind: 'container', name: 'pod-w' } }));
        await tx.putTenant({ id: `w-${held.length}`, name: 'by-workload-2', createdAt: at });
        return held.map((a) => a.id);
      });
      assert.deepEqual(again, ['wl-1', 'wl-3'], 'the commit decided on the list as it stands');
      assert.ok(runs >= 2, `ran ${runs} times: the first commit lost to the insert of that workload`);
      // A device-plugin claim bound to its pod elsewhere lists under the pod's name.
      await store.tx.insertAllocation(allocation({ id: 'wl-4', host: 'hu', vfIndex: 4, mac: '02:00:00:00:03:04', deviceClaim: { resource: 'vfleet.io/blue' }, workload: { kind: 'container', name: 'claim-4' } }));
      assert.deepEqual((await store.tx.listAllocations({ workload: 'claim-4' })).map((a) => a.id), ['wl-4']);
      await other.tx.bindClaim('wl-4', 'pod-b', { kind: 'container', netns: '/run/netns/b', ifname: 'net1', hostIfName: null, ips: [] }, at);
      assert.deepEqual((await store.tx.listAllocations({ workload: 'pod-b' })).map((a) => a.id), ['wl-4']);
      assert.deepEqual(await store.tx.listAllocations({ workload: 'claim-4' }), []);
    } finally {
      await other.close();
    }
  });
});
