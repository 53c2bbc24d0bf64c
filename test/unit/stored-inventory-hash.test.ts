// The inventory hash is part of the stored host record, written with the
// inventory: a fresh controller (a restart, or the one an agent failed over
// to) takes an agent's liveness-only report that carries the stored hash,
// and asks for the inventory (409 inventoryNeeded) only where a controller
// that took the reports itself would: another hash, no record, a PF another
// live host holds. A record from before hashes were stored is asked for once.
// The stores' side: store.contract.ts; two controllers on etcd:
// test/system/inventory-hash-etcd.system.test.ts.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isInventoryNeeded } from '../../src/agent/reporter.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { Actor } from '../../src/domain/actor.js';
import type { HostRecord } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import { inventoryHash } from '../../src/host/inventory-hash.js';
import type { HostInventory } from '../../src/host/model.js';
import { MIGRATIONS, openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { expectStatus, inventoryOf, startApi } from '../helpers/api-harness.js';
import { watchWrites } from '../helpers/store-writes.js';

const agent = (host: string): Actor => ({ id: `agent-${host}`, role: `agent:${host}` });
const OPTS = { heartbeatTimeoutMs: 30_000, heartbeatWriteMs: 0 };
const AT = '2026-01-01T00:00:00.000Z';

/** 409 inventoryNeeded, nothing changed, its message matching `why`. */
const needed = (why: RegExp) => (e: unknown) => {
  assert.ok(isInventoryNeeded(e) && e instanceof SriovError && e.details.nothingChanged === true, String(e));
  assert.match((e as Error).message, why);
  return true;
};
const claimed = (owner: string) => ({ code: 'CONFLICT', message: new RegExp(`belongs to live host ${owner}$`) });

/** A stored record of `inventory` as a controller writes it, with its hash unless `hashed` is false. */
function record(inventory: HostInventory, state: HostRecord['state'] = 'ready', hashed = true): HostRecord {
  const base = { name: inventory.hostname, state, lastHeartbeat: AT, inventory, physnets: {}, deviceTypes: {}, drainedPfs: [], updatedAt: AT };
  return hashed ? { ...base, inventoryHash: inventoryHash(inventory) } : base;
}

/** host-a's NIC (its PFs, same PCI addresses and MACs) as another host reports it. */
const moved = (to: string): HostInventory => ({ ...inventoryOf('host-a'), hostname: to });

describe('a fresh controller on stored inventory hashes', () => {
  let dir: string;
  let store: Store;
  const writes: string[] = [];
  const fresh = () => ControlPlane.open(watchWrites(store, (method) => writes.push(method)), OPTS).finally(() => (writes.length = 0));
  const inventory = inventoryOf('host-a');
  const hash = inventoryHash(inventory);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-stored-hash-'));
    store = await openSqliteStore(dir);
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores the hash the agent sent with the inventory, and a fresh controller takes its liveness report: touchHost only', async () => {
    const first = await ControlPlane.open(store, OPTS);
    await first.hosts.receive(agent('host-a'), { inventory, inventoryHash: hash });
    assert.equal((await store.tx.getHost('host-a'))!.inventoryHash, hash);
    const second = await fresh();
    assert.deepEqual(await second.hosts.receive(agent('host-a'), { inventoryHash: hash, statuses: [] }), { name: 'host-a', state: 'ready' });
    assert.deepEqual(writes, ['touchHost']);
  });

  it('still asks for the inventory when the report carries another hash, writing nothing', async () => {
    await store.tx.putHost(record(inventory));
    const control = await fresh();
    const other = inventoryHash(inventoryOf('host-a', 2));
    await assert.rejects(control.hosts.receive(agent('host-a'), { inventoryHash: other }), needed(/its inventory hash \w{12} is not the last one accepted \(\w{12}\)/));
    assert.deepEqual(writes, []);
  });

  it('asks once for the inventory of a record stored without a hash, then stores the hash with it', async () => {
    await store.tx.putHost(record(inventory, 'ready', false));
    const control = await fresh();
    await assert.rejects(control.hosts.receive(agent('host-a'), { inventoryHash: hash }), needed(/its stored record carries no inventory hash/));
    assert.deepEqual(writes, []);
    await control.hosts.receive(agent('host-a'), { inventory, inventoryHash: hash });
    assert.equal((await store.tx.getHost('host-a'))!.inventoryHash, hash);
    writes.length = 0;
    await control.hosts.receive(agent('host-a'), { inventoryHash: hash });
    assert.deepEqual(writes, ['touchHost']);
  });

  it('asks for the inventory of a host whose record is gone from the store', async () => {
    await store.tx.putHost(record(inventory));
    const control = await fresh();
    await store.tx.deleteHost('host-a');
    await assert.rejects(control.hosts.receive(agent('host-a'), { inventoryHash: hash }), needed(/the store has no record of it/));
    await assert.rejects(control.hosts.receive(agent('host-a'), { inventoryHash: hash }), needed(/carries no inventory hash/), 'the hash went with the record');
  });

  it('brings an unreachable host back with its stored hash: state, event, and no inventory', async () => {
    await store.tx.putHost(record(inventory, 'unreachable'));
    const control = await fresh();
    await control.hosts.receive(agent('host-a'), { inventoryHash: hash });
    assert.deepEqual(writes, ['touchHost', 'appendEvent']);
    assert.equal((await store.tx.getHost('host-a'))!.state, 'ready');
  });

  it('a NIC that moved while its old host was unreachable: the new host goes on, the old one is asked and refused', async () => {
    // What a controller leaves after host-a went unreachable and host-b then reported host-a's PFs.
    await store.tx.putHost(record(inventory, 'unreachable'));
    await store.tx.putHost(record(moved('host-b')));
    const control = await fresh();
    await control.hosts.receive(agent('host-b'), { inventoryHash: inventoryHash(moved('host-b')) });
    await assert.rejects(control.hosts.receive(agent('host-a'), { inventoryHash: hash }), needed(/its PF 0000:10:00.0\|b8:ce:f6:00:01:00 was reported by host host-b since/));
    await assert.rejects(control.hosts.receive(agent('host-a'), { inventory, inventoryHash: hash }), claimed('host-b'));
    assert.equal((await store.tx.getHost('host-a'))!.state, 'unreachable');
  });

  it('a PF in two ready records is neither’s: both are asked, the first whole report takes it (not the one name order picks), the other is refused', async () => {
    await store.tx.putHost(record(inventory));
    await store.tx.putHost(record(moved('host-b')));
    const control = await fresh();
    const contested = needed(/its PF 0000:10:00.0\|b8:ce:f6:00:01:00 is in another stored host's inventory too/);
    await assert.rejects(control.hosts.receive(agent('host-a'), { inventoryHash: hash }), contested);
    await assert.rejects(control.hosts.receive(agent('host-b'), { inventoryHash: inventoryHash(moved('host-b')) }), contested);
    assert.deepEqual(writes, []);
    // Seeded in name order, host-b would own it and refuse host-a for a whole grace period.
    await control.hosts.receive(agent('host-a'), { inventory, inventoryHash: hash });
    await assert.rejects(control.hosts.receive(agent('host-b'), { inventory: moved('host-b'), inventoryHash: inventoryHash(moved('host-b')) }), claimed('host-a'));
    await control.hosts.receive(agent('host-a'), { inventoryHash: hash });
  });

  it('a PF in two ready records is refused to a third host while either of them is live', async () => {
    await store.tx.putHost(record(inventory));
    await store.tx.putHost(record(moved('host-b')));
    const control = await fresh();
    await assert.rejects(control.hosts.receive(agent('host-c'), { inventory: moved('host-c'), inventoryHash: inventoryHash(moved('host-c')) }), claimed('host-a'));
    // Both go silent and are marked unreachable: the PF is free to take.
    assert.deepEqual(await control.hosts.sweep(Date.now() + 31_000), ['host-a', 'host-b']);
    await control.hosts.receive(agent('host-c'), { inventory: moved('host-c'), inventoryHash: inventoryHash(moved('host-c')) });
    await assert.rejects(control.hosts.receive(agent('host-a'), { inventoryHash: hash }), needed(/was reported by host host-c since/));
  });
});

describe('the inventory hash over the API', () => {
  it('GET /v1/hosts/:name shows it; the host list and a liveness report’s answer do not', async () => {
    const h = await startApi();
    try {
      const token = await h.token('agent:host-a');
      const inventory = inventoryOf('host-a');
      await expectStatus(h.call(token, 'POST', '/v1/agent/report', { inventory, inventoryHash: inventoryHash(inventory) }), 200);
      const shown = await expectStatus(h.call<HostRecord>(h.admin, 'GET', '/v1/hosts/host-a'), 200);
      assert.equal(shown.body.inventoryHash, inventoryHash(inventory));
      const list = await expectStatus(h.call<unknown[]>(h.admin, 'GET', '/v1/hosts'), 200);
      assert.equal(list.body.length, 1);
      assert.doesNotMatch(list.text, /inventoryHash|[0-9a-f]{64}/);
      const live = await expectStatus(h.call(token, 'POST', '/v1/agent/report', { inventoryHash: inventoryHash(inventory) }), 200);
      assert.deepEqual(live.body, { host: 'host-a', state: 'ready' });
    } finally {
      await h.close();
    }
  });
});

describe('the SQLite inventory hash migration', () => {
  it('opens a store of the previous schema: its hosts read back without a hash, and a hash is stored and read back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-hash-migration-'));
    try {
      const mine = MIGRATIONS.findIndex((m) => m.includes('ADD COLUMN inventory_hash'));
      assert.ok(mine > 0, 'the migration exists');
      await mkdir(dir, { recursive: true });
      const db = new Database(join(dir, 'vfleet.db'));
      for (const sql of MIGRATIONS.slice(0, mine)) db.exec(sql);
      db.pragma(`user_version = ${mine}`);
      const old = record(inventoryOf('host-a'), 'ready', false);
      db.prepare(
        `INSERT INTO hosts (name, state, last_heartbeat, inventory_json, physnets_json, device_types_json, updated_at)
         VALUES (?, 'ready', ?, ?, '{}', '{}', ?)`,
      ).run(old.name, AT, JSON.stringify(old.inventory), AT);
      db.close();
      const store = await openSqliteStore(dir);
      try {
        assert.deepEqual(await store.tx.getHost('host-a'), old, 'an old host comes back whole, with no hash');
        const hashed = record(inventoryOf('host-a'));
        await store.tx.putHost(hashed);
        assert.deepEqual(await store.tx.listHosts(), [hashed]);
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
