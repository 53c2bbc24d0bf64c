import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Allocation, HostRecord, Network } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import { MIGRATIONS, openSqliteStore, SCHEMA_VERSION } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { makeNetwork } from '../helpers/inventory.js';
import { AT, sqliteDirs, storedAllocation } from '../helpers/sqlite-dirs.js';

const LATER = '2025-01-01T00:05:00.000Z';

const { freshDir, withStore } = sqliteDirs('vfleet-sqlite-');

/** A second, raw connection: what an operator (or an attacker with file access) could do. */
function rawDb(dataDir: string): Database.Database {
  const db = new Database(join(dataDir, 'vfleet.db'));
  db.pragma('busy_timeout = 5000');
  return db;
}

function network(overrides: Partial<Network> = {}): Network {
  return makeNetwork({ name: 'blue-net', tenant: 'blue', createdAt: AT, ...overrides });
}

const allocation = storedAllocation;

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

async function assertConflict(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SriovError, `expected SriovError, got ${String(err)}`);
    assert.equal(err.code, 'CONFLICT');
    assert.equal(err.exitCode, 2);
    assert.match(err.message, message);
    return true;
  });
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
    assert.deepEqual(await reopened.tx.listTenants(), [{ id: 'id-blue', name: 'blue', createdAt: AT }]);
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

describe('sqlite store: round-trips', () => {
  it('tenants', () =>
    withStore(async (store) => {
      await store.tx.putTenant({ id: 'id-red', name: 'red', createdAt: AT });
      await store.tx.putTenant({ id: 'id-blue', name: 'blue', createdAt: AT });
      // The id is the tenant's identity: an update of the same name keeps the first one.
      await store.tx.putTenant({ id: 'id-other', name: 'blue', createdAt: LATER });
      assert.deepEqual(await store.tx.getTenant('blue'), { id: 'id-blue', name: 'blue', createdAt: LATER });
      assert.equal(await store.tx.getTenant('green'), null);
      assert.deepEqual(
        (await store.tx.listTenants()).map((t) => t.name),
        ['blue', 'red'],
      );
      assert.equal(await store.tx.deleteTenant('red'), true);
      assert.equal(await store.tx.deleteTenant('red'), false);
      assert.deepEqual(await store.tx.listTenants(), [{ id: 'id-blue', name: 'blue', createdAt: LATER }]);
    }));

  it('physnets', () =>
    withStore(async (store) => {
      await store.tx.putPhysnet({ name: 'datacentre', accountingOnly: false, tenantVlans: [] });
      await store.tx.putPhysnet({ name: 'access', accountingOnly: true, tenantVlans: [{ from: 1000, to: 1999 }] });
      await store.tx.putPhysnet({ name: 'datacentre', accountingOnly: true, tenantVlans: [{ from: 10, to: 20 }, { from: 30, to: 30 }] });
      assert.deepEqual(await store.tx.listPhysnets(), [
        { name: 'access', accountingOnly: true, tenantVlans: [{ from: 1000, to: 1999 }] },
        { name: 'datacentre', accountingOnly: true, tenantVlans: [{ from: 10, to: 20 }, { from: 30, to: 30 }] },
      ]);
    }));

  it('networks', () =>
    withStore(async (store) => {
      const blue = network({ mtu: 9000, spoofChk: false, trust: true, vlanProto: '802.1ad', deviceType: 'vfio-pci' });
      const red = network({ name: 'red-net', tenant: 'red', vlan: 200 });
      await store.tx.putNetwork(blue);
      await store.tx.putNetwork(red);
      assert.deepEqual(await store.tx.getNetwork('blue-net'), blue);
      assert.deepEqual(await store.tx.getNetwork('red-net'), red);
      assert.equal(await store.tx.getNetwork('nope'), null);
      assert.deepEqual(await store.tx.listNetworks({ tenant: 'red' }), [red]);
      assert.deepEqual(await store.tx.listNetworks(), [blue, red]);
      await store.tx.putNetwork({ ...blue, maxTxRateMbps: 5000 });
      assert.equal((await store.tx.getNetwork('blue-net'))?.maxTxRateMbps, 5000);
      assert.equal(await store.tx.deleteNetwork('red-net'), true);
      assert.equal(await store.tx.deleteNetwork('red-net'), false);
    }));

  it('hosts, with inventory, physnets and device types as JSON', () =>
    withStore(async (store) => {
      const h = host();
      await store.tx.putHost(h);
      assert.deepEqual(await store.tx.getHost('host-a'), h);
      const unreachable = { ...h, state: 'unreachable' as const, lastHeartbeat: null, updatedAt: LATER };
      await store.tx.putHost(unreachable);
      assert.deepEqual(await store.tx.listHosts(), [unreachable]);
      assert.equal(await store.tx.getHost('host-b'), null);
      assert.equal(await store.tx.deleteHost('host-a'), true);
      assert.deepEqual(await store.tx.listHosts(), []);
    }));

  it('allocations, with filters that combine', () =>
    withStore(async (store) => {
      const a1 = allocation({ group: 'fabric-a', workload: { kind: 'vm', name: 'vm-1' } });
      const a2 = allocation({ id: 'alloc-2', vfIndex: 4, mac: '02:00:00:00:00:04', host: 'host-b' });
      const a3 = allocation({ id: 'alloc-3', vfIndex: 5, mac: '02:00:00:00:00:05', tenant: 'red', network: 'red-net' });
      for (const a of [a1, a2, a3]) await store.tx.insertAllocation(a);
      assert.deepEqual(await store.tx.getAllocation('alloc-1'), a1);
      assert.equal(await store.tx.getAllocation('nope'), null);

      const released = await store.tx.updateAllocationState('alloc-2', 'released', 'workload deleted', LATER);
      assert.deepEqual(released, { ...a2, state: 'released', reason: 'workload deleted', updatedAt: LATER });
      assert.equal(await store.tx.updateAllocationState('nope', 'released', null, LATER), null);

      const ids = async (filter?: Parameters<Store['tx']['listAllocations']>[0]) =>
        (await store.tx.listAllocations(filter)).map((a) => a.id);
      assert.deepEqual(await ids(), ['alloc-1', 'alloc-2', 'alloc-3']);
      assert.deepEqual(await ids({ holding: true }), ['alloc-1', 'alloc-3']);
      assert.deepEqual(await ids({ holding: false }), ['alloc-2']);
      assert.deepEqual(await ids({ tenant: 'blue' }), ['alloc-1', 'alloc-2']);
      assert.deepEqual(await ids({ tenant: 'blue', holding: true }), ['alloc-1']);
      assert.deepEqual(await ids({ host: 'host-a', network: 'red-net' }), ['alloc-3']);
      assert.deepEqual(await ids({ host: 'host-b', holding: true }), []);
    }));

  it('policies', () =>
    withStore(async (store) => {
      await store.tx.putPolicy({ host: 'host-b', document: 'pfs: []\n', updatedAt: AT });
      await store.tx.putPolicy({ host: 'host-a', document: 'pfs: []\n', updatedAt: AT });
      await store.tx.putPolicy({ host: 'host-a', document: 'pfs: [ens1f0]\n', updatedAt: LATER });
      assert.deepEqual(await store.tx.listPolicies('host-a'), [
        { host: 'host-a', document: 'pfs: [ens1f0]\n', updatedAt: LATER },
      ]);
      assert.deepEqual(
        (await store.tx.listPolicies()).map((p) => p.host),
        ['host-a', 'host-b'],
      );
      assert.deepEqual(await store.tx.listPolicies('host-c'), []);
    }));

  it('tokens, with a unique hash', () =>
    withStore(async (store) => {
      const admin = { id: 'tok-1', role: 'admin' as const, tenantId: null, hash: 'a'.repeat(64), createdAt: AT };
      const agent = { id: 'tok-2', role: 'agent:host-a' as const, tenantId: null, hash: 'b'.repeat(64), createdAt: LATER };
      const tenant = { id: 'tok-3', role: 'tenant:blue' as const, tenantId: 'id-blue', hash: 'd'.repeat(64), createdAt: LATER };
      await store.tx.putToken(admin);
      await store.tx.putToken(agent);
      await store.tx.putToken(tenant);
      assert.deepEqual(await store.tx.findTokenByHash('b'.repeat(64)), agent);
      assert.deepEqual(await store.tx.findTokenByHash('d'.repeat(64)), tenant);
      assert.equal(await store.tx.findTokenByHash('c'.repeat(64)), null);
      assert.deepEqual(await store.tx.listTokens(), [admin, agent, tenant]);
      await assertConflict(store.tx.putToken({ ...agent, id: 'tok-4' }), /token hash already in use/);
      assert.equal(await store.tx.deleteToken('tok-1'), true);
      assert.equal(await store.tx.deleteToken('tok-1'), false);
    }));

  it('events, ascending by seq, with afterSeq, limit and object filters', () =>
    withStore(async (store) => {
      const first = await store.tx.appendEvent({
        at: AT,
        actor: 'admin',
        action: 'tenant.create',
        object: 'tenant/blue',
        before: undefined,
        after: { name: 'blue' },
      });
      assert.deepEqual(first, {
        seq: 1,
        at: AT,
        actor: 'admin',
        action: 'tenant.create',
        object: 'tenant/blue',
        before: null,
        after: { name: 'blue' },
      });
      for (let i = 0; i < 4; i++) {
        const object = i % 2 === 0 ? 'allocation/x' : 'allocation/y';
        await store.tx.appendEvent({ at: LATER, actor: 'a', action: 'allocate', object, before: null, after: i });
      }
      const seqs = async (opts?: Parameters<Store['tx']['listEvents']>[0]) =>
        (await store.tx.listEvents(opts)).map((e) => e.seq);
      assert.deepEqual(await seqs(), [1, 2, 3, 4, 5]);
      assert.deepEqual(await seqs({ afterSeq: 2 }), [3, 4, 5]);
      assert.deepEqual(await seqs({ afterSeq: 1, limit: 2 }), [2, 3]);
      assert.deepEqual(await seqs({ object: 'allocation/x' }), [2, 4]);
      assert.deepEqual(await seqs({ object: 'allocation/x', afterSeq: 2 }), [4]);
    }));
});

describe('sqlite store: invariants the schema enforces', () => {
  it('refuses a second holder of a VF, and a duplicate MAC in any case, never naming the holder', () =>
    withStore(async (store) => {
      await store.tx.insertAllocation(allocation());
      await assertConflict(
        store.tx.insertAllocation(allocation({ id: 'alloc-2', mac: '02:00:00:00:00:99' })),
        /^VF 3 of ens1f0 on host-a is taken$/,
      );
      await assertConflict(
        store.tx.insertAllocation(allocation({ id: 'alloc-2', vfIndex: 4, mac: '02:00:00:00:00:03'.toUpperCase() })),
        /^MAC 02:00:00:00:00:03 is in use$/,
      );
      await assertConflict(store.tx.insertAllocation(allocation({ state: 'released' })), /alloc-1 already exists/);
      assert.equal((await store.tx.listAllocations()).length, 1);
    }));

  it('lets a released allocation’s VF and MAC be taken again, but not both back', () =>
    withStore(async (store) => {
      await store.tx.insertAllocation(allocation());
      await store.tx.updateAllocationState('alloc-1', 'releasing', null, LATER);
      await store.tx.updateAllocationState('alloc-1', 'released', null, LATER);
      await store.tx.insertAllocation(allocation({ id: 'alloc-2' }));
      assert.deepEqual(
        (await store.tx.listAllocations({ holding: true })).map((a) => a.id),
        ['alloc-2'],
      );
      await assertConflict(
        store.tx.updateAllocationState('alloc-1', 'pending', null, LATER),
        /^VF 3 of ens1f0 on host-a is taken$/,
      );
      assert.equal((await store.tx.getAllocation('alloc-1'))?.state, 'released');
    }));

  it('gives a (physnet, VLAN) to one tenant only, never naming the owner', () =>
    withStore(async (store) => {
      await store.tx.putNetwork(network());
      await store.tx.putNetwork(network({ name: 'blue-net-2' }));
      await assertConflict(
        store.tx.putNetwork(network({ name: 'red-net', tenant: 'red' })),
        /^VLAN 100 on physnet datacentre is taken by another tenant$/,
      );
      await assertConflict(
        store.tx.putNetwork(network({ name: 'blue-net-2', tenant: 'red' })),
        /^VLAN 100 on physnet datacentre is taken by another tenant$/,
      );
      await store.tx.putNetwork(network({ name: 'red-net', tenant: 'red', physnet: 'access' }));
      await store.tx.putNetwork(network({ name: 'red-net-2', tenant: 'red', vlan: 101 }));
      assert.equal((await store.tx.listNetworks({ tenant: 'red' })).length, 2);

      // Once blue's networks on the pair are gone, the pair is free again.
      await store.tx.deleteNetwork('blue-net');
      await store.tx.deleteNetwork('blue-net-2');
      await store.tx.putNetwork(network({ name: 'red-net-3', tenant: 'red' }));
    }));

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

describe('sqlite store: transactions', () => {
  it('rolls back every write when fn throws', () =>
    withStore(async (store) => {
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.putTenant({ id: 'id-blue', name: 'blue', createdAt: AT });
          await tx.insertAllocation(allocation());
          await tx.appendEvent({ at: AT, actor: 'a', action: 'allocate', object: 'alloc-1', before: null, after: 1 });
          throw new Error('host unreachable');
        }),
        /host unreachable/,
      );
      assert.deepEqual(await store.tx.listTenants(), []);
      assert.deepEqual(await store.tx.listAllocations(), []);
      assert.deepEqual(await store.tx.listEvents(), []);
    }));

  it('commits and returns fn’s value', () =>
    withStore(async (store) => {
      const seq = await store.transaction(async (tx) => {
        await tx.insertAllocation(allocation());
        return (await tx.appendEvent({ at: AT, actor: 'a', action: 'allocate', object: 'alloc-1', before: null, after: 1 }))
          .seq;
      });
      assert.equal(seq, 1);
      assert.equal((await store.tx.getAllocation('alloc-1'))?.state, 'pending');
    }));

  it('runs racing read-then-insert transactions one after the other', () =>
    withStore(async (store) => {
      // Each transaction checks that the host's only VF is free, yields, then takes it.
      const takeLastVf = (id: string, mac: string) =>
        store.transaction(async (tx) => {
          const held = await tx.listAllocations({ host: 'host-a', holding: true });
          if (held.length > 0) throw new Error(`no free VF for ${id}`);
          await new Promise((resolve) => setImmediate(resolve));
          await tx.insertAllocation(allocation({ id, mac }));
          return id;
        });
      const results = await Promise.allSettled([
        takeLastVf('alloc-1', '02:00:00:00:00:01'),
        takeLastVf('alloc-2', '02:00:00:00:00:02'),
        store.tx.listAllocations(),
      ]);
      assert.deepEqual(results[0], { status: 'fulfilled', value: 'alloc-1' });
      // The loser saw the winner's insert in its check: it never reached the unique index.
      assert.equal(results[1]?.status, 'rejected');
      assert.match(String((results[1] as PromiseRejectedResult).reason), /no free VF for alloc-2/);
      // A standalone read queued behind both sees the committed result, not a half-done one.
      assert.equal(results[2]?.status, 'fulfilled');
      assert.deepEqual(
        (results[2] as PromiseFulfilledResult<Allocation[]>).value.map((a) => a.id),
        ['alloc-1'],
      );
    }));

  it('refuses a transaction handle used after its transaction ended', () =>
    withStore(async (store) => {
      const leaked = await store.transaction(async (tx) => tx);
      await assert.rejects(leaked.listTenants(), /transaction already ended/);
    }));
});

/** The child: opens the store and commits allocations until killed, reporting each commit. */
const WRITER = `
const { openSqliteStore } = await import(process.env.STORE_URL);
const store = await openSqliteStore(process.env.DATA_DIR);
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
