/**
 * The catalogue cache's bounds (store/catalogue-cache.ts), over counted
 * reads: an entry is kept `ttlMs` from when its read began, then read again;
 * `drop` forgets everything and a read in flight across it keeps nothing;
 * not following, every read goes through; absent records are never kept.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Network, TokenRecord } from '../../src/domain/types.js';
import { CatalogueCache } from '../../src/store/catalogue-cache.js';
import type { CommittedReads } from '../../src/store/store.js';
import { makeNetwork } from '../helpers/inventory.js';

const AT = '2026-12-02T00:00:00.000Z';

function counted(delayMs = 0) {
  const calls = { token: 0, network: 0 };
  const tokens = new Map<string, TokenRecord>([['h1', { id: 't1', role: 'admin', tenantId: null, hash: 'h1', createdAt: AT }]]);
  const networks = new Map<string, Network>([['blue', makeNetwork({ name: 'blue', tenant: 'acme', vlan: 100, createdAt: AT })]]);
  const reads = {
    findTokenByHash: async (hash: string) => {
      calls.token++;
      // As a store's read: what was there when it was made, answered later.
      const found = tokens.get(hash) ?? null;
      if (delayMs) await sleep(delayMs);
      return found;
    },
    getNetwork: async (name: string) => {
      calls.network++;
      return networks.get(name) ?? null;
    },
  } as unknown as CommittedReads;
  return { calls, tokens, networks, reads };
}

describe('the catalogue cache', () => {
  it('keeps an entry for ttlMs, then reads it again', async () => {
    const { calls, reads } = counted();
    const cached = new CatalogueCache({ ttlMs: 80 }).over(reads);
    await cached.findTokenByHash('h1');
    await cached.findTokenByHash('h1');
    assert.equal(calls.token, 1);
    await sleep(100);
    assert.equal((await cached.findTokenByHash('h1'))?.id, 't1');
    assert.equal(calls.token, 2);
  });

  it('keeps no absent record: a token created meanwhile is found', async () => {
    const { calls, tokens, reads } = counted();
    const cached = new CatalogueCache({ ttlMs: 10_000 }).over(reads);
    assert.equal(await cached.findTokenByHash('h2'), null);
    tokens.set('h2', { id: 't2', role: 'admin', tenantId: null, hash: 'h2', createdAt: AT });
    assert.equal((await cached.findTokenByHash('h2'))?.id, 't2');
    assert.equal(calls.token, 2);
  });

  it('forgets everything at a drop, and a read in flight across it keeps nothing', async () => {
    const { calls, tokens, reads } = counted(30);
    const cache = new CatalogueCache({ ttlMs: 10_000 });
    const cached = cache.over(reads);
    await cached.findTokenByHash('h1');
    cache.drop();
    const inFlight = cached.findTokenByHash('h1');
    await sleep(5);
    tokens.delete('h1');
    cache.drop();
    assert.equal((await inFlight)?.id, 't1', 'the read began before the revocation');
    assert.equal(await cached.findTokenByHash('h1'), null, 'what it read was not kept past the drop');
    assert.equal(calls.token, 3);
  });

  it('reads through while not following, and keeps nothing then', async () => {
    const { calls, networks, reads } = counted();
    const cache = new CatalogueCache({ ttlMs: 10_000, following: false });
    const cached = cache.over(reads);
    await cached.getNetwork('blue');
    await cached.getNetwork('blue');
    assert.equal(calls.network, 2);
    cache.follow(true);
    await cached.getNetwork('blue');
    await cached.getNetwork('blue');
    assert.equal(calls.network, 3);
    cache.follow(false);
    networks.delete('blue');
    assert.equal(await cached.getNetwork('blue'), null);
  });
});
