/**
 * The store contract on a real etcd (one member, then three on loopback),
 * and what only a distributed store has: etcd unreachable (UNAVAILABLE,
 * naming the endpoints, nothing half-written), and a member killed in the
 * middle of a burst of allocations through two controllers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { EtcdStore } from '../../src/store/etcd/store.js';
import type { Store } from '../../src/store/store.js';
import { makeHost } from '../helpers/inventory.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { allocation, putNetworks, storeContract, type StoreTarget } from '../contract/store.contract.js';

let prefixes = 0;

/** Each store its own prefix: the tests share one cluster, never one keyspace. */
function target(cluster: () => EtcdCluster): StoreTarget {
  const open = (prefix: string) => EtcdStore.open({ client: { hosts: cluster().endpoints }, prefix });
  const prefixOf = new WeakMap<Store, string>();
  return {
    async open() {
      const prefix = `/vfleet-test-${process.pid}-${++prefixes}/`;
      const store = await open(prefix);
      prefixOf.set(store, prefix);
      return store;
    },
    peer: (store) => open(prefixOf.get(store)!),
  };
}

for (const size of [1, 3]) {
  describe(`etcd store, ${size} member${size > 1 ? 's' : ''}`, { timeout: 180_000 }, () => {
    let cluster: EtcdCluster;
    before(async () => {
      cluster = await startEtcd(size);
    });
    after(() => cluster?.stop());
    storeContract(`etcd (${size})`, target(() => cluster));
  });
}

describe('etcd store: what one etcd Txn can carry', { timeout: 120_000 }, () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcd(1);
  });
  after(() => cluster?.stop());

  it('host reports of ~100 KB each, 24 at once: group commit splits them under etcd\'s request size, every one lands', async () => {
    const store = await EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/big/' });
    try {
      const hosts = Array.from({ length: 24 }, (_, i) => makeHost({ name: `big-${i}`, pfs: 4, vfs: 64 }));
      assert.ok(JSON.stringify(hosts[0]).length > 60_000, 'a host record is large');
      await Promise.all(hosts.map((h) => store.tx.putHost(h)));
      assert.deepEqual((await store.tx.listHosts()).map((h) => h.name).sort(), hosts.map((h) => h.name).sort());
      assert.deepEqual(await store.tx.getHost('big-7'), hosts[7]);
    } finally {
      await store.close();
    }
  });

  it('a transaction too large for one Txn is refused whole (OUT_OF_RANGE, saying how to split it); nothing is written', async () => {
    const store = await EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/huge/' });
    try {
      await assert.rejects(
        store.transaction(async (tx) => {
          for (let i = 0; i < 200; i++) await tx.putTenant({ id: `id-${i}`, name: `t-${i}`, createdAt: 'now' });
        }),
        (err: unknown) => err instanceof SriovError && err.code === 'OUT_OF_RANGE' && /200 writes .* split it/.test(err.message),
      );
      assert.deepEqual(await store.tx.listTenants(), []);
      // The store goes on: the next transaction commits.
      await store.tx.putTenant({ id: 'id-ok', name: 'ok', createdAt: 'now' });
      assert.equal((await store.tx.listTenants()).length, 1);
    } finally {
      await store.close();
    }
  });
});

describe('etcd store: failures', { timeout: 180_000 }, () => {
  it('etcd unreachable: UNAVAILABLE naming the endpoints, at open and on a write', async () => {
    const cluster = await startEtcd(1);
    try {
      const store = await EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/down/', callTimeoutMs: 1500 });
      await putNetworks(store);
      await store.tx.insertAllocation(allocation());
      await cluster.kill(0);
      const unavailable = (err: unknown) => {
        assert.ok(err instanceof SriovError, String(err));
        assert.equal(err.code, 'UNAVAILABLE');
        assert.ok(err.message.includes(cluster.endpoints[0]!), err.message);
        return true;
      };
      await assert.rejects(store.tx.insertAllocation(allocation({ id: 'alloc-2', vfIndex: 4, mac: '02:00:00:00:00:04' })), unavailable);
      await store.close();
      await assert.rejects(EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/down/', callTimeoutMs: 1500 }), unavailable);
      // Back up: the first allocation is there, the refused one is not, and the store works again.
      await cluster.start(0);
      const again = await EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/down/' });
      assert.deepEqual((await again.tx.listAllocations()).map((a) => a.id), ['alloc-1']);
      await again.tx.insertAllocation(allocation({ id: 'alloc-2', vfIndex: 4, mac: '02:00:00:00:00:04' }));
      await again.close();
    } finally {
      await cluster.stop();
    }
  });

  it('quorum lost (two of three down): writes are UNAVAILABLE and nothing half-written; quorum back, writes resume', async () => {
    const cluster = await startEtcd(3);
    try {
      const store = await EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/quorum/', callTimeoutMs: 1500 });
      await putNetworks(store);
      await store.tx.insertAllocation(allocation());
      await cluster.kill(1);
      await cluster.kill(2);
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.insertAllocation(allocation({ id: 'alloc-2', vfIndex: 4, mac: '02:00:00:00:00:04' }));
          await tx.appendEvent({ at: 'now', actor: 'a', action: 'allocate', object: 'alloc-2', before: null, after: null });
        }),
        (err: unknown) => err instanceof SriovError && err.code === 'UNAVAILABLE',
      );
      await cluster.start(1);
      // The same store, no restart: the write goes through once a majority is back.
      await store.transaction(async (tx) => {
        await tx.insertAllocation(allocation({ id: 'alloc-3', vfIndex: 5, mac: '02:00:00:00:00:05' }));
        await tx.appendEvent({ at: 'now', actor: 'a', action: 'allocate', object: 'alloc-3', before: null, after: null });
      });
      assert.deepEqual((await store.tx.listAllocations()).map((a) => a.id).sort(), ['alloc-1', 'alloc-3']);
      assert.deepEqual((await store.tx.listEvents()).map((e) => e.seq), [1]);
      await store.close();
    } finally {
      await cluster.stop();
    }
  });

  it('32 in flight on each of two controllers, batches pipelined, every VF tried twice: one holder per VF, the audit sequence gap-free', async () => {
    const cluster = await startEtcd(3);
    const open = () => EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/pipelined/' });
    const [one, two] = [await open(), await open()];
    try {
      await putNetworks(one);
      const VFS = 256;
      const committed: string[] = [];
      let next = 0;
      const worker = async (store: Store) => {
        for (let i = next++; i < VFS * 2; i = next++) {
          const id = `p-${i}`;
          try {
            await store.transaction(async (tx) => {
              await tx.insertAllocation(allocation({ id, vfIndex: i % VFS, mac: `02:00:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i % 256).toString(16).padStart(2, '0')}` }));
              await tx.appendEvent({ at: 'now', actor: 'burst', action: 'allocate', object: id, before: null, after: { i } });
            });
            committed.push(id);
          } catch (err) {
            // The only refusal: the VF taken (by the other controller, or by this one's own first try).
            assert.ok(err instanceof SriovError && err.code === 'CONFLICT' && /is taken/.test(err.message), String(err));
          }
        }
      };
      await Promise.all(Array.from({ length: 64 }, (_, w) => worker(w % 2 === 0 ? one : two)));
      const held = await one.tx.listAllocations({ holding: true });
      assert.deepEqual(held.map((a) => a.vfIndex).sort((a, b) => a - b), Array.from({ length: VFS }, (_, i) => i), 'each VF held once');
      assert.deepEqual(held.map((a) => a.id).sort(), [...committed].sort(), 'what was reported committed, and only that');
      const events = await two.tx.listEvents({ limit: 10_000 });
      assert.deepEqual(events.map((e) => e.seq), Array.from({ length: VFS }, (_, i) => i + 1), 'audit sequence gap-free');
      assert.deepEqual(events.map((e) => e.object).sort(), [...committed].sort(), 'one event per allocation');
    } finally {
      await Promise.all([one.close(), two.close()]);
      await cluster.stop();
    }
  });

  it('one of three members killed during a burst of allocations through two controllers: none lost or duplicated', async () => {
    const cluster = await startEtcd(3);
    const open = () => EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/burst/', callTimeoutMs: 3000 });
    const [one, two] = [await open(), await open()];
    try {
      await putNetworks(one);
      const VFS = 128;
      const committed: string[] = [];
      const refused: unknown[] = [];
      let killed: Promise<void> | null = null;
      let committedBeforeKill = -1;
      // 4 workers per controller take VFs 0..127, two tries each (so half the tries collide on a VF).
      let next = 0;
      const worker = async (store: Store, w: number) => {
        for (;;) {
          const i = next++;
          if (i >= VFS * 2) return;
          const id = `burst-${i}`;
          try {
            await store.transaction(async (tx) => {
              await tx.insertAllocation(allocation({ id, vfIndex: i % VFS, mac: `02:00:00:00:${String(w).padStart(2, '0')}:${(i % 256).toString(16).padStart(2, '0')}` }));
              await tx.appendEvent({ at: 'now', actor: 'burst', action: 'allocate', object: id, before: null, after: { i } });
            });
            committed.push(id);
          } catch (err) {
            refused.push(err);
          }
          // A member dies a quarter of the way in (member 0: the one each client tries first).
          if (killed === null && committed.length >= VFS / 4) {
            committedBeforeKill = committed.length;
            killed = cluster.kill(0);
          }
        }
      };
      await Promise.all([0, 1, 2, 3].map((w) => worker(one, w)).concat([4, 5, 6, 7].map((w) => worker(two, w))));
      await killed;
      assert.ok(committedBeforeKill > 0 && committed.length > committedBeforeKill + VFS / 4, `${committedBeforeKill} committed before the kill, ${committed.length} in all`);
      // Every refusal is a clean one (the VF taken, or the store unavailable while the cluster re-elected).
      for (const err of refused) assert.ok(err instanceof SriovError && ['CONFLICT', 'UNAVAILABLE'].includes(err.code), String(err));
      const held = await two.tx.listAllocations({ holding: true });
      const vfs = held.map((a) => a.vfIndex);
      assert.equal(new Set(vfs).size, vfs.length, 'no VF held twice');
      // Every commit reported is there, and nothing that was not reported... except a commit whose reply was lost.
      const ids = new Set(held.map((a) => a.id));
      for (const id of committed) assert.ok(ids.has(id), `${id} reported committed but missing`);
      const events = await two.tx.listEvents({ limit: 10_000 });
      assert.deepEqual(events.map((e) => e.seq), Array.from({ length: events.length }, (_, i) => i + 1), 'audit sequence gap-free');
      assert.deepEqual(events.map((e) => e.object).sort(), [...ids].sort(), 'one event per allocation');
    } finally {
      await Promise.all([one.close(), two.close()]);
      await cluster.stop();
    }
  });
});

