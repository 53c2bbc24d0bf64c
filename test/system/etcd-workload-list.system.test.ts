/**
 * The read every container ADD makes before it decides (the interfaces its
 * workload already holds on the host: allocations.ts heldInterface), on a
 * real etcd: it reads the workload's allocations, not every allocation of
 * the host, and the same read of requests side by side shares one snapshot
 * (run.ts isSmallRead), instead of costing etcd a round trip each. Counted in
 * calls and records etcd answered, which the machine's load does not change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { EtcdStore } from '../../src/store/etcd/store.js';
import { allocation, putNetworks } from '../contract/store.contract.js';
import { countEtcdCalls, type EtcdCalls } from '../support/etcd-calls.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

const AT = '2026-01-01T00:00:00.000Z';
const ON_HOST = 200;
const mac = (i: number) => `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

describe('etcd store: a workload’s allocations on a host', { timeout: 120_000 }, () => {
  let cluster: EtcdCluster;
  let store: EtcdStore;
  let reads: EtcdCalls;
  before(async () => {
    cluster = await startEtcd(1);
    store = await EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/workloads/' });
    reads = countEtcdCalls(store);
    await putNetworks(store);
    // ON_HOST workloads with one VF each on h-0, and "web" with two of its own there and one on h-1.
    await Promise.all(
      Array.from({ length: ON_HOST }, (_, i) => store.tx.insertAllocation(allocation({ id: `a-${String(i).padStart(4, '0')}`, host: 'h-0', vfIndex: i, mac: mac(i), workload: { kind: 'container', name: `w-${i}` }, minTxRateMbps: 0, createdAt: AT }))),
    );
    for (const [i, host] of ['h-0', 'h-0', 'h-1'].entries()) {
      await store.tx.insertAllocation(allocation({ id: `web-${i}`, host, vfIndex: ON_HOST + i, mac: mac(ON_HOST + i), workload: { kind: 'container', name: 'web' }, minTxRateMbps: 0, createdAt: AT }));
    }
  });
  after(async () => {
    await store?.close();
    await cluster?.stop();
  });

  it('reads the workload’s records, not the host’s', async (t: TestContext) => {
    // The store's memory of ids loads on its first filtered list.
    await store.tx.listAllocations({ host: 'h-1' });
    reads.reset();
    const web = await store.tx.listAllocations({ host: 'h-0', workload: 'web', holding: true });
    assert.deepEqual(web.map((a) => a.id), ['web-0', 'web-1']);
    t.diagnostic(`host h-0 (${ON_HOST + 2} allocations), workload web: ${reads.records} records read`);
    // By the host, it read all of h-0's.
    assert.ok(reads.records <= 3, `read ${reads.records} records for the 2 of one workload on a host of ${ON_HOST + 2}`);
  });

  it('shares one snapshot among the same reads of requests side by side', async (t: TestContext) => {
    await store.tx.listAllocations({ host: 'h-1' });
    reads.reset();
    const found = await Promise.all(Array.from({ length: 32 }, (_, i) => store.tx.listAllocations({ host: 'h-0', workload: `w-${i}`, holding: true })));
    assert.deepEqual(found.map((list) => list.map((a) => a.id)), Array.from({ length: 32 }, (_, i) => [`a-${String(i).padStart(4, '0')}`]));
    t.diagnostic(`32 requests' checks of their workload: ${reads.reads} etcd read calls, ${reads.records} records`);
    // Alone, each was a round trip of its own (32), then one more for its record.
    assert.ok(reads.reads <= 4, `${reads.reads} etcd read calls for 32 side by side`);
  });
});
