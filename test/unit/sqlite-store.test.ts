import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { HostRecord } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import { Checkpointer } from '../../src/store/sqlite/checkpointer.js';
import { MIGRATIONS, openSqliteStore, SCHEMA_VERSION } from '../../src/store/sqlite/index.js';
import { putNetworks } from '../contract/store.contract.js';
import { AT, sqliteDirs, storedAllocation } from '../helpers/sqlite-dirs.js';

const { freshDir, withStore } = sqliteDirs('vfleet-sqlite-');

/** A second, raw connection: what an operator (or an attacker with file access) could do. */
function rawDb(dataDir: string): Database.Database {
  const db = new Database(join(dataDir, 'vfleet.db'));
  db.pragma('busy_timeout = 5000');
  return db;
}

function host(): HostRecord {
  return {
    name: 'host-a',
    state: 'ready',
    lastHeartbeat: AT,
    inventory: {
      hostname: 'host-a',
      pfs: [
        {
          name: 'ens1f0',
          pciAddress: '0000:3b:00.0',
          vendorId: '8086',
          deviceId: '1572',
          driver: 'i40e',
          mac: '3c:fd:fe:00:00:01',
          mtu: 9000,
          linkState: 'up',
          linkSpeedMbps: 10000,
          numaNode: 0,
          localCpus: '0-15',
          totalVfs: 64,
          numVfs: 1,
          autoprobe: true,
          eswitchMode: null,
          vfDeviceId: '154c',
          vfs: [
            {
              index: 0,
              pciAddress: '0000:3b:02.0',
              driver: 'iavf',
              driverOverride: null,
              netdev: 'ens1f0v0',
              iommuGroup: 42,
              mac: '00:00:00:00:00:00',
              vlan: 0,
              qos: 0,
              vlanProto: '802.1Q',
              minTxRateMbps: 0,
              maxTxRateMbps: 0,
              spoofChk: true,
              trust: null,
              linkState: 'auto',
            },
          ],
        },
      ],
    },
    physnets: { '0000:3b:00.0': 'datacentre' },
    deviceTypes: { '0000:3b:00.0': 'vfio-pci' },
    drainedPfs: [],
    updatedAt: AT,
  };
}

describe('sqlite store: schema and migrations', () => {
  it('creates the schema in a 0700 data dir, in WAL mode, and reopening is a no-op', async () => {
    const dataDir = freshDir();
    const store = await openSqliteStore(dataDir);
    await store.tx.putTenant({ id: 'id-blue', name: 'blue', createdAt: AT });
    await store.close();
    assert.equal((await stat(dataDir)).mode & 0o777, 0o700);

    const db = rawDb(dataDir);
    const schema = db.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all();
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
    for (const table of ['allocations', 'events', 'hosts', 'networks', 'physnets', 'policies', 'tenants', 'tokens']) {
      assert.ok(tables.includes(table), `table ${table} exists`);
    }
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.close();

    const reopened = await openSqliteStore(dataDir);
    assert.deepEqual(await reopened.tx.listTenants(), [{ id: 'id-blue', name: 'blue', pfMinTxRateMbps: null, pfMaxTxRateMbps: null, createdAt: AT }]);
    await reopened.close();
    const again = rawDb(dataDir);
    assert.deepEqual(again.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all(), schema);
    assert.equal(again.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    again.close();
  });

  it('refuses a database from a newer vfleet', async () => {
    const dataDir = freshDir();
    await (await openSqliteStore(dataDir)).close();
    const db = rawDb(dataDir);
    db.pragma('user_version = 99');
    db.close();
    await assert.rejects(openSqliteStore(dataDir), (err: unknown) => {
      assert.ok(err instanceof SriovError);
      assert.equal(err.code, 'UNSUPPORTED');
      assert.match(err.message, new RegExp(`schema version 99, newer than the ${SCHEMA_VERSION} this vfleet knows`));
      return true;
    });
  });
});

describe('sqlite store: the drained PFs migration', () => {
  it('opens a store of the previous schema: its hosts have no drained PF, and a drain is stored and read back', async () => {
    const dataDir = freshDir();
    const mine = MIGRATIONS.findIndex((m) => m.includes('ADD COLUMN drained_pfs_json'));
    assert.ok(mine > 0, 'the migration exists');
    await mkdir(dataDir, { recursive: true });
    const db = rawDb(dataDir);
    for (const sql of MIGRATIONS.slice(0, mine)) db.exec(sql);
    db.pragma(`user_version = ${mine}`);
    const h = host();
    db.prepare(
      `INSERT INTO hosts (name, state, last_heartbeat, inventory_json, physnets_json, device_types_json, updated_at)
       VALUES (?, 'ready', ?, ?, ?, ?, ?)`,
    ).run(h.name, AT, JSON.stringify(h.inventory), JSON.stringify(h.physnets), JSON.stringify(h.deviceTypes), AT);
    db.close();
    const store = await openSqliteStore(dataDir);
    try {
      assert.deepEqual(await store.tx.getHost('host-a'), h, 'an old host comes back whole, with no drained PF');
      // Stored as a set: once each, sorted, whatever order it was given in.
      await store.tx.putHost({ ...h, drainedPfs: ['0000:3b:00.1', '0000:3b:00.0', '0000:3b:00.1'] });
      assert.deepEqual((await store.tx.getHost('host-a'))?.drainedPfs, ['0000:3b:00.0', '0000:3b:00.1']);
      assert.deepEqual((await store.tx.listHosts())[0]?.drainedPfs, ['0000:3b:00.0', '0000:3b:00.1']);
      await store.tx.putHost({ ...h, drainedPfs: [] });
      assert.deepEqual((await store.tx.getHost('host-a'))?.drainedPfs, []);
    } finally {
      await store.close();
    }
    const raw = rawDb(dataDir);
    assert.equal(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    raw.close();
  });
});

describe('sqlite store: the tenant bandwidth groups migration', () => {
  it('opens a store of the previous schema: its tenants have no group and its physnets refuse groups they cannot enforce', async () => {
    const dataDir = freshDir();
    const mine = MIGRATIONS.findIndex((m) => m.includes('ADD COLUMN pf_min_tx_rate_mbps'));
    assert.ok(mine > 0, 'the migration exists');
    await mkdir(dataDir, { recursive: true });
    const db = rawDb(dataDir);
    for (const sql of MIGRATIONS.slice(0, mine)) db.exec(sql);
    db.pragma(`user_version = ${mine}`);
    db.prepare(`INSERT INTO tenants (id, name, created_at) VALUES ('id-blue', 'blue', ?)`).run(AT);
    db.prepare(`INSERT INTO physnets (name, accounting_only, tenant_vlans_json) VALUES ('fabric', 1, '[]')`).run();
    db.close();
    const store = await openSqliteStore(dataDir);
    try {
      assert.deepEqual(await store.tx.getTenant('blue'), { id: 'id-blue', name: 'blue', pfMinTxRateMbps: null, pfMaxTxRateMbps: null, createdAt: AT });
      assert.deepEqual(await store.tx.listPhysnets(), [{ name: 'fabric', accountingOnly: true, groupsAccountingOnly: false, tenantVlans: [] }]);
      await store.tx.putTenant({ id: 'id-blue', name: 'blue', pfMinTxRateMbps: 1000, pfMaxTxRateMbps: 2000, createdAt: AT });
      assert.deepEqual([(await store.tx.getTenant('blue'))?.pfMinTxRateMbps, (await store.tx.getTenant('blue'))?.pfMaxTxRateMbps], [1000, 2000]);
    } finally {
      await store.close();
    }
  });
});

describe('sqlite store: what the schema enforces for other connections', () => {
  it('keeps events append-only, even for another connection', () =>
    withStore(async (store, dataDir) => {
      await store.tx.appendEvent({ at: AT, actor: 'admin', action: 'x', object: 'o', before: null, after: 1 });
      const db = rawDb(dataDir);
      try {
        assert.throws(() => db.prepare("UPDATE events SET actor = 'mallory'").run(), /append-only/);
        assert.throws(() => db.prepare('DELETE FROM events').run(), /append-only/);
      } finally {
        db.close();
      }
      assert.equal((await store.tx.listEvents())[0]?.actor, 'admin');
    }));
});

describe('sqlite store: its watch', () => {
  it('says the audit log grew once per committed batch that appended, after its commit, and nothing for batches without events', () =>
    withStore(async (store) => {
      const heard: string[] = [];
      const off = store.watch((changes) => heard.push(...changes.map((c) => c.kind)));
      const event = { at: AT, actor: 'admin', action: 'x', object: 'o', before: null, after: 1 };
      await store.tx.putPhysnet({ name: 'fabric', accountingOnly: false, tenantVlans: [] });
      assert.deepEqual(heard, []);
      // Queued together: one batch, one COMMIT, one word of it; the reader woken by it finds both events.
      let seenAtNews = -1;
      const offSeen = store.watch(() => void store.committed.getLastEventSeq().then((n) => (seenAtNews = n)));
      await Promise.all([store.transaction((tx) => tx.appendEvent(event)), store.transaction((tx) => tx.appendEvent(event))]);
      assert.deepEqual(heard, ['audit']);
      assert.equal(seenAtNews, 2);
      offSeen();
      off();
      await store.tx.appendEvent(event);
      assert.deepEqual(heard, ['audit']);
    }));
});

describe('sqlite store: one queue, in order', () => {
  it('runs racing read-then-insert transactions in the order queued, and a read queued behind them sees their commits', () =>
    withStore(async (store) => {
      await putNetworks(store);
      // Each transaction checks that the host's only VF is free, yields, then takes it.
      const takeLastVf = (id: string, mac: string) =>
        store.transaction(async (tx) => {
          if ((await tx.listAllocations({ host: 'host-a', holding: true })).length > 0) throw new Error(`no free VF for ${id}`);
          await new Promise((resolve) => setImmediate(resolve));
          await tx.insertAllocation(storedAllocation({ id, mac }));
          return id;
        });
      const [first, second, read] = await Promise.allSettled([
        takeLastVf('alloc-1', '02:00:00:00:00:01'),
        takeLastVf('alloc-2', '02:00:00:00:00:02'),
        store.tx.listAllocations(),
      ]);
      // One connection, one queue: the first queued is the one that wins, not whichever finishes first.
      assert.deepEqual(first, { status: 'fulfilled', value: 'alloc-1' });
      assert.equal(second?.status, 'rejected');
      assert.deepEqual(read?.status === 'fulfilled' ? read.value.map((a) => a.id) : read, ['alloc-1']);
    }));
});

describe('sqlite store: WAL checkpoints', () => {
  it('a thread of its own copies the WAL into the file while the writer never checkpoints, and says so when it cannot', async () => {
    const dataDir = freshDir();
    await mkdir(dataDir, { recursive: true });
    const file = join(dataDir, 'vfleet.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE t (x TEXT)');
    const insert = db.prepare('INSERT INTO t (x) VALUES (?)');
    for (let i = 0; i < 64; i++) insert.run('x'.repeat(4000));
    assert.ok((await stat(file)).size < 64 * 4000, 'the rows are only in the WAL');
    const failures: unknown[] = [];
    const checkpointer = new Checkpointer(file, (err) => failures.push(err), 10);
    try {
      // Only a checkpoint writes pages into the database file: this waits for the thread's.
      while ((await stat(file)).size < 64 * 4000) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(failures.length, 0);
    } finally {
      await checkpointer.stop();
      db.close();
    }
    // A file it cannot open: the thread ends, and the store is told to checkpoint itself.
    // (The thread does not hold the process open: an interval does, until it has said so.)
    const awake = setInterval(() => {}, 50);
    await new Promise<void>((resolve) => new Checkpointer(join(dataDir, 'nope.db'), (err) => resolve(void failures.push(err)), 10));
    clearInterval(awake);
    assert.equal(failures.length, 1);
    // What crosses from the thread is SQLite's code (the error's class does not).
    assert.equal((failures[0] as { code?: string }).code, 'SQLITE_CANTOPEN');
  });

  it('close() leaves no WAL, with every commit in the file', async () => {
    const dataDir = freshDir();
    const store = await openSqliteStore(dataDir);
    for (let i = 0; i < 20; i++) await store.tx.putTenant({ id: `id-${i}`, name: `t-${i}`, createdAt: AT });
    await store.close();
    // Empty, or gone with the last connection.
    assert.equal((await stat(join(dataDir, 'vfleet.db-wal')).catch(() => ({ size: 0 }))).size, 0);
    const db = rawDb(dataDir);
    assert.equal(db.prepare('SELECT COUNT(*) FROM tenants').pluck().get(), 20);
    db.close();
  });
});

/** The child: opens the store and commits allocations until killed, reporting each commit. */
const WRITER = `
const { openSqliteStore } = await import(process.env.STORE_URL);
const store = await openSqliteStore(process.env.DATA_DIR);
await store.tx.putNetwork({
  name: 'n', tenant: 't', physnet: 'datacentre', vlan: 100, qos: 0, vlanProto: '802.1Q', mtu: null, spoofChk: true, trust: false,
  maxTxRateMbps: 0, minTxRateMbps: 0, deviceType: 'netdevice', ipam: null, createdAt: 'now',
});
for (let i = 0; ; i++) {
  const id = 'alloc-' + i;
  await store.transaction(async (tx) => {
    await tx.insertAllocation({
      id, workload: { kind: 'container', name: 'w' + i }, network: 'n', tenant: 't', host: 'host-a',
      pf: 'ens1f0', pfPciAddress: '0000:3b:00.0', vfIndex: i, pciAddress: 'x', mac: 'mac-' + i, vlan: 100,
      minTxRateMbps: 0, group: null, state: 'pending', reason: null, createdAt: 'now', updatedAt: 'now',
    });
    await tx.appendEvent({ at: 'now', actor: 'child', action: 'allocate', object: id, before: null, after: { i } });
  });
  process.stdout.write(id + '\\n');
}
`;

/** Spawns the writer, SIGKILLs it once it has reported `count` commits, and returns what it reported. */
function killWriterAfter(dataDir: string, count: number): Promise<string[]> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', WRITER], {
    env: { ...process.env, DATA_DIR: dataDir, STORE_URL: new URL('../../src/store/sqlite/index.js', import.meta.url).href },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    output += chunk;
    if (output.split('\n').length > count) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited with ${code ?? signal} before it was killed`));
      // A line cut short by the kill was not reported in full: only whole lines count.
      else resolve(output.split('\n').slice(0, -1));
    });
  });
}

describe('sqlite store: crash safety', () => {
  it('survives SIGKILL mid-stream with every reported commit intact', { timeout: 60_000 }, async () => {
    const dataDir = freshDir();
    const reported = await killWriterAfter(dataDir, 300);
    assert.ok(reported.length >= 300, `child reported ${reported.length} commits`);

    const db = rawDb(dataDir);
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    db.close();

    const store = await openSqliteStore(dataDir);
    try {
      const stored = new Set((await store.tx.listAllocations()).map((a) => a.id));
      const missing = reported.filter((id) => !stored.has(id));
      assert.deepEqual(missing, []);
      const events = await store.tx.listEvents({ limit: 1_000_000 });
      assert.equal(events.length, stored.size, 'each allocation committed with its event, never one alone');
    } finally {
      await store.close();
    }
  });
});
