// The catalogue and the tokens from memory on etcd (store/catalogue-cache.ts), on a real etcd with two
// stores on one keyspace as two controllers: a store answers them from memory only while its watch runs;
// its own commits are seen at once; another store's changes (a token revoked, a network changed or
// deleted) are seen once its watch brings them, well within the bound; and without a watch each read
// goes to etcd, so nothing is kept.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TokenRecord } from '../../src/domain/types.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { makeNetwork } from '../helpers/inventory.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

const AT = '2026-12-02T00:00:00.000Z';
const token = (id: string, hash: string): TokenRecord => ({ id, role: 'admin', tenantId: null, hash, createdAt: AT });

/** Well under the cache's bound (1 s), far over a watch's delay on loopback. */
async function within(ms: number, what: string, ok: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(5);
  }
  return Date.now() - t0;
}

describe('the etcd store keeps the catalogue and the tokens from its watch', { timeout: 60_000 }, () => {
  let etcd: EtcdCluster;
  const stores: Store[] = [];
  const open = async (prefix: string) => {
    const s = await openStore({ url: `${etcd.storeUrl}${prefix}`, dataDir: '/nonexistent' });
    stores.push(s);
    return s;
  };

  before(async () => {
    etcd = await startEtcd(1);
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await etcd?.stop();
  });

  it('sees its own commits at once and another controller\'s within its watch\'s delay', async () => {
    const [a, b] = [await open('/cache-1/'), await open('/cache-1/')];
    const offs = [a.watch(() => {}), b.watch(() => {})];
    await a.tx.putToken(token('t1', 'h1'));
    await a.tx.putTenant({ id: 'id-acme', name: 'acme', createdAt: AT });
    await a.tx.putNetwork(makeNetwork({ name: 'blue', tenant: 'acme', vlan: 100, createdAt: AT }));
    assert.equal((await b.committed.findTokenByHash('h1'))?.id, 't1', 'a token created elsewhere: read from etcd, not refused from memory');
    assert.equal((await b.committed.getNetwork('blue'))?.vlan, 100);

    // Revoked through b itself: refused by b at once.
    await b.tx.deleteToken('t1');
    assert.equal(await b.committed.findTokenByHash('h1'), null);

    await a.tx.putToken(token('t2', 'h2'));
    assert.equal((await b.committed.findTokenByHash('h2'))?.id, 't2');
    // Revoked, changed and deleted through a: b, which holds them in memory, hears it from its watch.
    await a.tx.deleteToken('t2');
    await within(500, 'b refuses the token a revoked', async () => (await b.committed.findTokenByHash('h2')) === null);
    await a.tx.putNetwork(makeNetwork({ name: 'blue', tenant: 'acme', vlan: 200, createdAt: AT }));
    await within(500, 'b sees the network a changed', async () => (await b.committed.getNetwork('blue'))?.vlan === 200);
    await a.tx.deleteNetwork('blue');
    await within(500, 'b no longer sees the network a deleted', async () => (await b.committed.getNetwork('blue')) === null);
    offs.forEach((off) => off());
  });

  it('answers from etcd, keeping nothing, while no watch runs', async () => {
    const [a, b] = [await open('/cache-2/'), await open('/cache-2/')];
    await a.tx.putToken(token('t1', 'h1'));
    assert.equal((await b.committed.findTokenByHash('h1'))?.id, 't1');
    // No watch on b to hear it: only a read of etcd sees the revocation at once.
    await a.tx.deleteToken('t1');
    assert.equal(await b.committed.findTokenByHash('h1'), null);

    // Once b's watch stops, what it kept goes with it.
    const off = b.watch(() => {});
    await a.tx.putToken(token('t2', 'h2'));
    assert.equal((await b.committed.findTokenByHash('h2'))?.id, 't2');
    off();
    await a.tx.deleteToken('t2');
    assert.equal(await b.committed.findTokenByHash('h2'), null);
  });
});
