/** The store contract (test/contract/store.contract.ts) on the embedded engine. */
import { after, before } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { storeContract } from '../contract/store.contract.js';

let root: string;
let count = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'vfleet-contract-'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

storeContract('sqlite', {
  open: () => openSqliteStore(join(root, `data-${++count}`)),
  // One controller per file: a second controller is the same store (its transactions race in one queue).
  peer: async (store) => store,
});
