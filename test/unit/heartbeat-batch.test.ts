// SQLite's cheap heartbeats, at the disk: liveness lives in a narrow table of
// its own (host_liveness, schema migration 10), and the due liveness writes of
// many hosts are gathered and written in one transaction (heartbeat-batch.ts)
// instead of one commit per host. What must still hold: a host coming back is
// written at once with its host.ready event; a host deleted under a pending
// heartbeat is asked for its inventory; reads see the batched heartbeat.
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
import { inventoryHash } from '../../src/host/inventory-hash.js';
import { MIGRATIONS, openSqliteStore, SCHEMA_VERSION } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { inventoryOf } from '../helpers/api-harness.js';
import { watchWrites } from '../helpers/store-writes.js';

const agent = (host: string): Actor => ({ id: 'local', role: `agent:${host}` });
const HOSTS = ['host-a', 'host-b', 'host-c'];
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `store`, telling of every transaction (its writes, by method name) as it commits. */
function recordTransactions(store: Store, commits: string[][]): Store {
  let open: string[] | null = null;
  const watched = watchWrites(store, (method) => (open ?? (open = [])).push(method));
  return new Proxy(watched, {
    get(target, prop, receiver) {
      if (prop === 'transaction') {
        return async <T>(fn: Parameters<Store['transaction']>[0]) => {
          const result = (await target.transaction(fn)) as T;
          if (open) commits.push(open);
          open = null;
          return result;
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}

describe('batched heartbeats (SQLite)', () => {
  let dir: string;
  let store: Store;
  let control: ControlPlane;
  const commits: string[][] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-hb-batch-'));
    store = await openSqliteStore(dir);
    // Every report due (1 ms), and a flush interval no test waits for: flushHeartbeats writes what is pending.
    control = await ControlPlane.open(recordTransactions(store, commits), { heartbeatTimeoutMs: 30_000, heartbeatWriteMs: 1, heartbeatFlushMs: 3_600_000 });
    for (const [i, name] of HOSTS.entries()) {
      const inventory = inventoryOf(name, i + 1);
      await control.hosts.receive(agent(name), { inventory, inventoryHash: inventoryHash(inventory) });
    }
    commits.length = 0;
    await pause(5);
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const beat = (name: string, i: number) => control.hosts.receive(agent(name), { inventoryHash: inventoryHash(inventoryOf(name, i + 1)) });

  it('writes the due heartbeats of several hosts in one transaction, and reads show them', async () => {
    const before = await store.tx.listHosts();
    for (const [i, name] of HOSTS.entries()) assert.deepEqual(await beat(name, i), { name, state: 'ready' });
    assert.deepEqual(commits, [], 'nothing written per report');
    await control.hosts.flushHeartbeats();
    assert.deepEqual(commits, [['touchHost', 'touchHost', 'touchHost']]);
    const after = await store.tx.listHosts();
    for (const [i, h] of after.entries()) {
      assert.ok(h.lastHeartbeat! > before[i]!.lastHeartbeat!, `${h.name}: heartbeat ${h.lastHeartbeat} after ${before[i]!.lastHeartbeat}`);
      assert.deepEqual({ ...h, lastHeartbeat: null }, { ...before[i]!, lastHeartbeat: null }, 'only the heartbeat moved');
      assert.deepEqual(await store.tx.getHost(h.name), h);
    }
    await control.hosts.flushHeartbeats();
    assert.equal(commits.length, 1, 'an empty batch writes nothing');
  });

  it('writes a host coming back at once, with its host.ready event', async () => {
    assert.deepEqual(await control.hosts.sweep(Date.now() + 31_000), HOSTS);
    commits.length = 0;
    await beat('host-a', 0);
    assert.deepEqual(commits, [['touchHost', 'appendEvent']]);
    assert.equal((await store.tx.getHost('host-a'))!.state, 'ready');
    await control.hosts.flushHeartbeats();
    assert.equal(commits.length, 1, 'nothing was left pending');
  });

  it('drops a pending heartbeat when the sweep marks its host unreachable: the flush does not bring it back', async () => {
    await beat('host-a', 0);
    assert.deepEqual(await control.hosts.sweep(Date.now() + 31_000), HOSTS);
    await control.hosts.flushHeartbeats();
    assert.equal((await store.tx.getHost('host-a'))!.state, 'unreachable');
  });

  it('asks for the inventory of a host deleted under its pending heartbeat, and does not bring its record back', async () => {
    await beat('host-a', 0);
    await beat('host-b', 1);
    assert.equal(await store.tx.deleteHost('host-a'), true);
    await control.hosts.flushHeartbeats();
    assert.equal(await store.tx.getHost('host-a'), null);
    assert.ok((await store.tx.getHost('host-b'))!.lastHeartbeat);
    await assert.rejects(beat('host-a', 0), (e: unknown) => isInventoryNeeded(e));
    await beat('host-b', 1);
  });
});

describe('host_liveness migration', () => {
  it('opens a store of the previous schema: its hosts keep their state and heartbeat, and touches read back', async () => {
    const dataDir = join(await mkdtemp(join(tmpdir(), 'vfleet-hb-migr-')), 'data');
    const mine = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE host_liveness'));
    assert.ok(mine > 0 && mine < SCHEMA_VERSION, 'the migration exists');
    await mkdir(dataDir, { recursive: true });
    const db = new Database(join(dataDir, 'vfleet.db'));
    for (const sql of MIGRATIONS.slice(0, mine)) db.exec(sql);
    db.pragma(`user_version = ${mine}`);
    const inventory = inventoryOf('host-a');
    const AT = '2026-01-01T00:00:00.000Z';
    db.prepare(
      `INSERT INTO hosts (name, state, last_heartbeat, inventory_json, physnets_json, device_types_json, updated_at)
       VALUES (?, 'unreachable', ?, ?, '{}', '{}', ?)`,
    ).run('host-a', AT, JSON.stringify(inventory), AT);
    db.close();
    const store = await openSqliteStore(dataDir);
    try {
      const old: HostRecord = { name: 'host-a', state: 'unreachable', lastHeartbeat: AT, inventory, physnets: {}, deviceTypes: {}, drainedPfs: [], updatedAt: AT };
      assert.deepEqual(await store.tx.getHost('host-a'), old);
      assert.equal(await store.tx.touchHost('host-a', 'ready', '2026-01-01T00:01:00.000Z'), true);
      assert.deepEqual(await store.tx.listHosts(), [{ ...old, state: 'ready', lastHeartbeat: '2026-01-01T00:01:00.000Z' }]);
    } finally {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
