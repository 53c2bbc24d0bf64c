// Listing every host on etcd (a controller's start) reads many pages, the next one in flight while the last is
// decoded, and keeps none of them: every record comes back once, in name order, with its liveness-only
// heartbeat merged, and a transaction's own writes and deletes among them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { makeHost } from '../helpers/inventory.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

const HOSTS = 40; // more than two pages of host records (tx.ts: HOST_PAGE)
const name = (i: number) => `scan-${String(i).padStart(3, '0')}`;

describe('etcd: listing every host, page by page', () => {
  let etcd: EtcdCluster;
  let store: Store;
  before(async () => {
    etcd = await startEtcd(1);
    store = await openStore({ url: etcd.storeUrl, dataDir: '/nonexistent' });
    await Promise.all(Array.from({ length: HOSTS }, (_, i) => store.transaction((tx) => tx.putHost(makeHost({ name: name(i), pfs: 1, vfs: 4 })))));
    await store.tx.touchHost(name(17), 'unreachable', '2026-01-01T00:00:00.000Z');
  });
  after(async () => {
    await store?.close();
    await etcd?.stop();
  });

  it('returns every record once, in order, with its heartbeat', async () => {
    const hosts = await store.tx.listHosts();
    assert.deepEqual(hosts.map((h) => h.name), Array.from({ length: HOSTS }, (_, i) => name(i)));
    const beaten = hosts.find((h) => h.name === name(17))!;
    assert.equal(beaten.state, 'unreachable');
    assert.equal(beaten.lastHeartbeat, '2026-01-01T00:00:00.000Z');
    assert.ok(hosts.filter((h) => h.name !== name(17)).every((h) => h.state !== 'unreachable' || h.lastHeartbeat !== '2026-01-01T00:00:00.000Z'));
  });

  it('sees a transaction\'s own writes and deletes across pages, and twice the same', async () => {
    const [first, second] = await store.transaction(async (tx) => {
      await tx.deleteHost(name(3));
      await tx.putHost(makeHost({ name: `${name(20)}-b`, pfs: 1, vfs: 4 }));
      return [await tx.listHosts(), await tx.listHosts()];
    });
    const expected = Array.from({ length: HOSTS }, (_, i) => name(i)).filter((n) => n !== name(3));
    expected.splice(expected.indexOf(name(20)) + 1, 0, `${name(20)}-b`);
    assert.deepEqual(first!.map((h) => h.name), expected);
    assert.deepEqual(second, first);
  });
});
