/**
 * Fresh SQLite stores for tests: one temporary root per test file (made
 * before its tests, removed after), a new data directory per store.
 */
import { after, before } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';

export const AT = '2025-01-01T00:00:00.000Z';

/** Registers the root's before/after hooks; call at the top level of a test file. */
export function sqliteDirs(prefix: string): { freshDir(): string; withStore(fn: (store: Store, dataDir: string) => Promise<void>): Promise<void> } {
  let root = '';
  let count = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const freshDir = () => join(root, `data-${++count}`);
  return {
    freshDir,
    async withStore(fn) {
      const dataDir = freshDir();
      const store = await openSqliteStore(dataDir);
      try {
        await fn(store, dataDir);
      } finally {
        await store.close();
      }
    },
  };
}

/** A pending container allocation of VF 3 on host-a's ens1f0, network blue-net: the store contract's. */
export { allocation as storedAllocation } from '../contract/store.contract.js';
