/**
 * The SQLite store's committed reads keep the catalogue (tenants, physnets,
 * networks) between the commits that change it: a commit is seen by the next
 * read, a rollback changes nothing, a read in flight across a commit is not
 * kept, and what callers share cannot be written into.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Tenant } from '../../src/domain/types.js';
import { CatalogueCache } from '../../src/store/catalogue-cache.js';
import type { CommittedReads } from '../../src/store/store.js';
import { makeNetwork } from '../helpers/inventory.js';
import { AT, sqliteDirs } from '../helpers/sqlite-dirs.js';

const { withStore } = sqliteDirs('vfleet-catalogue-cache-');

const tenant = (name: string): Tenant => ({ id: `id-${name}`, name, createdAt: AT });

describe('SQLite committed reads of the catalogue', () => {
  it('see each committed change at the next read, and nothing of a rolled-back one', () =>
    withStore(async (store) => {
      await store.tx.putTenant(tenant('acme'));
      await store.tx.putNetwork(makeNetwork({ name: 'blue', tenant: 'acme', vlan: 100, createdAt: AT }));
      assert.equal((await store.committed.getNetwork('blue'))?.vlan, 100);
      assert.deepEqual((await store.committed.listNetworks({ physnet: 'datacentre', vlan: 100 })).map((n) => n.name), ['blue']);

      await store.tx.putNetwork(makeNetwork({ name: 'blue', tenant: 'acme', vlan: 200, createdAt: AT }));
      assert.equal((await store.committed.getNetwork('blue'))?.vlan, 200);
      assert.deepEqual(await store.committed.listNetworks({ physnet: 'datacentre', vlan: 100 }), []);

      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.putNetwork(makeNetwork({ name: 'blue', tenant: 'acme', vlan: 300, createdAt: AT }));
          await tx.deleteTenant('acme');
          throw new Error('refused');
        }),
        /refused/,
      );
      assert.equal((await store.committed.getNetwork('blue'))?.vlan, 200);
      assert.deepEqual((await store.committed.listTenants()).map((t) => t.name), ['acme']);

      await store.tx.deleteNetwork('blue');
      assert.equal(await store.committed.getNetwork('blue'), null);
      await store.tx.putTenant(tenant('globex'));
      assert.deepEqual((await store.committed.listTenants()).map((t) => t.name), ['acme', 'globex']);
    }));

  it('hands out records that throw when written into, and lists a caller may sort', () =>
    withStore(async (store) => {
      await store.tx.putTenant(tenant('acme'));
      await store.tx.putTenant(tenant('globex'));
      await store.tx.putNetwork(makeNetwork({ name: 'blue', tenant: 'acme', vlan: 100, ipam: { cidr: '198.18.0.0/24', routes: [] }, createdAt: AT }));
      const network = (await store.committed.getNetwork('blue'))!;
      assert.throws(() => {
        network.vlan = 7;
      }, TypeError);
      assert.throws(() => {
        network.ipam!.cidr = '198.19.0.0/24';
      }, TypeError);
      (await store.committed.listTenants()).reverse();
      assert.deepEqual((await store.committed.listTenants()).map((t) => t.name), ['acme', 'globex']);
      assert.equal((await store.committed.getNetwork('blue'))?.vlan, 100);
    }));

  it('does not keep a read that was in flight when a catalogue write committed', async () => {
    const cache = new CatalogueCache();
    let rows = [tenant('acme')];
    let reads = 0;
    let answer: (() => void) | undefined;
    const inner = {
      listTenants: () => {
        reads++;
        const now = rows;
        return new Promise<Tenant[]>((resolve) => (answer = () => resolve(now)));
      },
    } as unknown as CommittedReads;
    const committed = cache.over(inner);

    const inFlight = committed.listTenants();
    // A batch writes the catalogue and commits before the read's answer is taken in.
    cache.wrote();
    rows = [tenant('acme'), tenant('globex')];
    cache.settled();
    answer!();
    assert.deepEqual((await inFlight).map((t) => t.name), ['acme']);

    const next = committed.listTenants();
    answer!();
    assert.deepEqual((await next).map((t) => t.name), ['acme', 'globex']);
    assert.equal(reads, 2);
    // Kept now: no catalogue write since.
    assert.deepEqual((await committed.listTenants()).map((t) => t.name), ['acme', 'globex']);
    assert.equal(reads, 2);
  });
});
