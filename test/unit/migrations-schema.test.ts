// The schema migration that adds live migrations: a store of the previous
// version opens with its allocations unmarked and the MAC rule (now a
// trigger) still refusing a second holder of a MAC.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MIGRATIONS, openSqliteStore, SCHEMA_VERSION } from '../../src/store/sqlite/index.js';
import { makeNetwork } from '../helpers/inventory.js';
import { writeOldStore } from '../helpers/old-schema.js';
import { refusal } from '../helpers/refusal.js';

describe('the live-migration schema migration', () => {
  it('opens a store of the previous schema: allocations unmarked, MACs still unique, VFs named first', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-migrations-schema-'));
    try {
      const mine = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE migrations'));
      assert.ok(mine > 0 && mine < SCHEMA_VERSION, 'the migration exists');
      writeOldStore(dir, mine);
      const store = await openSqliteStore(dir);
      try {
        // old-1's network: an allocation holding a VF needs its own.
        await store.tx.putNetwork(makeNetwork({ name: 'red', tenant: 'acme' }));
        const old = (await store.tx.getAllocation('old-1'))!;
        assert.equal(old.migration, null);
        const twin = { ...old, id: 'new-1', vfIndex: 1, pciAddress: '0000:10:00.2', state: 'pending' as const };
        assert.match((await refusal(store.tx.insertAllocation({ ...twin, mac: '02:5F:00:00:00:01' }), 'CONFLICT')).message, /^MAC 02:5F:00:00:00:01 is in use$/);
        assert.match((await refusal(store.tx.insertAllocation({ ...twin, vfIndex: 0 }), 'CONFLICT')).message, /^VF 0 of ens1f0 on host-a is taken$/);
        await store.tx.updateAllocationState('old-1', 'released', null, 'y');
        await store.tx.insertAllocation(twin);
        assert.equal((await store.tx.getAllocation('new-1'))!.state, 'pending', 'a released holder frees its MAC');
        assert.deepEqual(await store.tx.listMigrations(), []);
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
