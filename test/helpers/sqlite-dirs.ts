/**
 * Fresh SQLite stores for tests: one temporary root per test file (made
 * before its tests, removed after), a new data directory per store.
 */
import { after, before } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Allocation } from '../../src/domain/types.js';
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

/** A pending container allocation of VF 3 on host-a's ens1f0, network blue-net. */
export function storedAllocation(overrides: Partial<Allocation> = {}): Allocation {
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
