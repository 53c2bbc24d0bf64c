/**
 * Group commit in the SQLite store: transactions queued behind the one in
 * flight share one BEGIN ... COMMIT, each in its own savepoint. What a caller
 * can see: its own result or error, nothing visible (to another connection)
 * before its promise settles, and the store's invariants as with one
 * transaction each.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { Actor } from '../../src/domain/actor.js';
import type { Allocation, Network } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import { GroupCommit } from '../../src/store/sqlite/group-commit.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { configure, migrate } from '../../src/store/sqlite/schema.js';
import { prepareStatements } from '../../src/store/sqlite/statements.js';
import { SqliteTx } from '../../src/store/sqlite/tx.js';
import type { Store, StoreTx } from '../../src/store/store.js';
import { putNetworks } from '../contract/store.contract.js';
import { makeHost, makeNetwork } from '../helpers/inventory.js';
import { AT, sqliteDirs, storedAllocation } from '../helpers/sqlite-dirs.js';

const { freshDir, withStore } = sqliteDirs('vfleet-group-commit-');

/** Another connection to the file: it sees only what is committed. */
function reader(dataDir: string): Database.Database {
  const db = new Database(join(dataDir, 'vfleet.db'), { readonly: true });
  db.pragma('busy_timeout = 5000');
  return db;
}

function tenantNames(db: Database.Database): string[] {
  return db.prepare('SELECT name FROM tenants ORDER BY name').pluck().all() as string[];
}

function tenant(name: string) {
  return { id: `id-${name}`, name, createdAt: AT };
}

function allocation(i: number, vfIndex: number): Allocation {
  const mac = `02:00:00:00:${String(Math.floor(i / 100)).padStart(2, '0')}:${String(i % 100).padStart(2, '0')}`;
  return storedAllocation({ id: `alloc-${i}`, workload: { kind: 'container', name: `w${i}` }, vfIndex, pciAddress: `0000:3b:02.${vfIndex}`, mac, minTxRateMbps: 0 });
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** Lets every queued microtask and I/O callback run, so a promise that could settle has. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('sqlite group commit', () => {
  it('runs what queued behind the transaction in flight as one batch: each gets its own result or error, and nothing shows before the COMMIT', async () => {
    await withStore(async (store, dataDir) => {
      const raw = reader(dataDir);
      try {
        const first = gate();
        const inFlight = store.transaction(async (tx) => {
          await tx.putTenant(tenant('zero'));
          await first.wait;
        });
        await settle();
        // Queued behind `inFlight`: one batch of three.
        const last = gate();
        const lastStarted = gate();
        const settled: string[] = [];
        const a = store.transaction(async (tx) => {
          await tx.putTenant(tenant('a'));
          return 'a done';
        });
        const b = store.transaction(async (tx) => {
          await tx.putTenant(tenant('b'));
          await tx.appendEvent({ at: AT, actor: 't', action: 'b', object: 'b', before: null, after: null });
          throw new SriovError('CONFLICT', 'b refuses', { object: 'b' });
        });
        const c = store.transaction(async (tx) => {
          await tx.putTenant(tenant('c'));
          lastStarted.open();
          await last.wait;
          return 'c done';
        });
        for (const [name, p] of [['a', a], ['b', b], ['c', c]] as const) p.then(() => settled.push(name), () => settled.push(name));

        first.open();
        await inFlight;
        await lastStarted.wait;
        await settle();
        // a and b have run, c is running: none of them is committed, so none has settled.
        assert.deepEqual(settled, []);
        assert.deepEqual(tenantNames(raw), ['zero']);

        last.open();
        assert.equal(await a, 'a done');
        await assert.rejects(b, (err: unknown) => err instanceof SriovError && err.code === 'CONFLICT' && err.message === 'b refuses');
        assert.equal(await c, 'c done');
        // b's writes went with its savepoint, its event too; a and c committed.
        assert.deepEqual(tenantNames(raw), ['a', 'c', 'zero']);
        assert.deepEqual(await store.tx.listEvents(), []);
      } finally {
        raw.close();
      }
    });
  });

  it('keeps one holder per VF and a gap-free audit sequence when many race in one batch', async () => {
    await withStore(async (store) => {
      await putNetworks(store);
      const attempts = Array.from({ length: 120 }, (_, i) =>
        store.transaction(async (tx) => {
          // 120 requests for 30 VFs: of the four asking for each VF, the first wins.
          const a = allocation(i, i % 30);
          await tx.appendEvent({ at: AT, actor: 't', action: 'allocation.create', object: a.id, before: null, after: null });
          await tx.insertAllocation(a);
          return a.id;
        }),
      );
      const results = await Promise.allSettled(attempts);
      const won = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<string>).value);
      const lost = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as unknown);
      assert.deepEqual(won, Array.from({ length: 30 }, (_, i) => `alloc-${i}`));
      assert.equal(lost.length, 90);
      for (const err of lost) assert.ok(err instanceof SriovError && err.code === 'CONFLICT' && /VF \d+ of ens1f0 on host-a is taken/.test(err.message));

      const held = await store.tx.listAllocations({ holding: true });
      assert.equal(held.length, 30);
      assert.equal(new Set(held.map((a) => a.vfIndex)).size, 30);
      const events = await store.tx.listEvents();
      assert.deepEqual(events.map((e) => e.seq), Array.from({ length: 30 }, (_, i) => i + 1));
      assert.deepEqual(events.map((e) => e.object), won);
    });
  });

  it('a single store.tx call settles after its commit and undoes its own partial writes when it throws', async () => {
    await withStore(async (store) => {
      await store.tx.leaseAddresses('blue-net', 'alloc-1', ['10.0.0.2']);
      // The second address is held: the first of this call must not stay leased.
      await assert.rejects(store.tx.leaseAddresses('blue-net', 'alloc-2', ['10.0.0.3', '10.0.0.2']), (err: unknown) => err instanceof SriovError && err.code === 'CONFLICT');
      assert.deepEqual(await store.tx.listLeases('blue-net'), ['10.0.0.2']);
    });
  });

  it('refuses a transaction queued after close, and runs the ones queued before', async () => {
    const store = await openSqliteStore(freshDir());
    const before = store.transaction(async (tx) => tx.putTenant(tenant('early')));
    const closing = store.close();
    await assert.rejects(store.transaction(async (tx) => tx.putTenant(tenant('late'))), (err: unknown) => err instanceof SriovError && err.code === 'UNAVAILABLE');
    await before;
    await closing;
  });
});

describe('GroupCommit when SQLite rolls the whole transaction back', () => {
  it('fails the members before with UNAVAILABLE (nothing written) and runs the ones after in a new batch', async () => {
    const dataDir = freshDir();
    await openSqliteStore(dataDir).then((s) => s.close());
    const db = new Database(join(dataDir, 'vfleet.db'));
    configure(db);
    migrate(db, 'test');
    const queue = new GroupCommit(db, new SqliteTx(db, prepareStatements(db)));
    const rollback = db.prepare('ROLLBACK');
    try {
      const hold = gate();
      const first = queue.transaction(async () => hold.wait);
      await settle();
      const put = (name: string) => (tx: StoreTx) => tx.putTenant(tenant(name));
      const before = queue.transaction(put('before'));
      // What SQLITE_FULL or an I/O error does: the transaction is gone under the member's feet.
      const broken = queue.transaction(async (tx) => {
        await tx.putTenant(tenant('broken'));
        rollback.run();
        throw new Error('disk full');
      });
      const afterIt = queue.transaction(put('after'));
      hold.open();
      await first;
      await assert.rejects(before, (err: unknown) => err instanceof SriovError && err.code === 'UNAVAILABLE' && /disk full/.test(err.message));
      await assert.rejects(broken, /disk full/);
      await afterIt;
      assert.deepEqual(db.prepare('SELECT name FROM tenants ORDER BY name').pluck().all(), ['after']);
    } finally {
      queue.close();
      db.close();
    }
  });
});

describe('allocations through the service with group commit', () => {
  const ADMIN: Actor = { id: 'test', role: 'admin' };

  async function seeded(store: Store, net: Network, linkSpeedMbps?: number): Promise<ControlPlane> {
    await store.transaction(async (tx) => {
      await tx.putPhysnet({ name: 'datacentre', accountingOnly: false, tenantVlans: [] });
      await tx.putTenant(tenant(net.tenant));
      await tx.putNetwork(net);
      await tx.putHost(makeHost({ name: 'h1', pfs: 1, vfs: 4, linkSpeedMbps }));
    });
    return ControlPlane.open(store);
  }

  function create(control: ControlPlane, fields: Record<string, unknown> = {}) {
    return control.allocations.create(ADMIN, { network: 'net1', workload: { kind: 'container', name: 'w' }, ...fields });
  }

  it('16 at once for 4 VFs: 4 get distinct VFs and MACs, 12 are refused, and the audit log has the 4 in order', async () => {
    await withStore(async (store) => {
      const control = await seeded(store, makeNetwork());
      const results = await Promise.allSettled(Array.from({ length: 16 }, () => create(control)));
      const made = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<Allocation>).value);
      const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as unknown);
      assert.equal(made.length, 4);
      assert.equal(new Set(made.map((a) => a.vfIndex)).size, 4);
      assert.equal(new Set(made.map((a) => a.mac)).size, 4);
      for (const err of refused) assert.ok(err instanceof SriovError && err.code === 'NO_CAPACITY');
      assert.deepEqual((await store.tx.listAllocations({ holding: true })).map((a) => a.id).sort(), made.map((a) => a.id).sort());
      const events = await store.tx.listEvents();
      assert.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4]);
    });
  });

  it('a write the store refuses gives back the VF and the MAC it reserved', async () => {
    await withStore(async (store, dataDir) => {
      const control = await seeded(store, makeNetwork());
      // Another writer takes VF 0 behind the controller's back: its index still thinks it free.
      const raw = new Database(join(dataDir, 'vfleet.db'));
      raw.pragma('busy_timeout = 5000');
      const vf0 = makeHost({ name: 'h1', pfs: 1, vfs: 4 }).inventory.pfs[0]!.vfs[0]!.pciAddress;
      raw.prepare(
        `INSERT INTO allocations (id, workload_kind, workload_name, network, tenant, host, pf, pf_pci_address, vf_index, pci_address,
           mac, vlan, min_tx_rate_mbps, state, created_at, updated_at)
         VALUES ('other', 'container', 'x', 'net1', 'acme', 'h1', 'ens1f0', ?, 0, ?, '02:aa:00:00:00:01', 100, 0, 'pending', 'x', 'x')`,
      ).run(makeHost({ name: 'h1', pfs: 1, vfs: 4 }).inventory.pfs[0]!.pciAddress, vf0);
      raw.close();
      const free = control.ctx.scheduler.freeVfs(makeNetwork(), 'h1')!.freeVfs;
      const mac = '02:bb:00:00:00:01';
      await assert.rejects(create(control, { host: 'h1', pciAddress: vf0, mac }), (err: unknown) => err instanceof SriovError && err.code === 'CONFLICT' && /VF 0 of ens1f0 on h1 is taken/.test(err.message));
      assert.equal(control.ctx.scheduler.freeVfs(makeNetwork(), 'h1')!.freeVfs, free);
      assert.equal(control.ctx.macs.isUsed(mac), false);
    });
  });

  it('a guarantee the store refuses (another writer committed the PF’s bandwidth behind the controller’s back) gives back the VF and the MAC', async () => {
    await withStore(async (store, dataDir) => {
      const net = makeNetwork({ minTxRateMbps: 6000 });
      const control = await seeded(store, net, 10_000);
      const pf = makeHost({ name: 'h1', pfs: 1, vfs: 4 }).inventory.pfs[0]!;
      const raw = new Database(join(dataDir, 'vfleet.db'));
      raw.pragma('busy_timeout = 5000');
      raw.prepare(
        `INSERT INTO allocations (id, workload_kind, workload_name, network, tenant, host, pf, pf_pci_address, vf_index, pci_address,
           mac, vlan, min_tx_rate_mbps, state, created_at, updated_at)
         VALUES ('other', 'container', 'x', 'net1', 'acme', 'h1', 'ens1f0', ?, 3, ?, '02:aa:00:00:00:01', 100, 6000, 'pending', 'x', 'x')`,
      ).run(pf.pciAddress, pf.vfs[3]!.pciAddress);
      raw.close();
      const free = control.ctx.scheduler.freeVfs(net, 'h1')!.freeVfs;
      const mac = '02:bb:00:00:00:01';
      await assert.rejects(
        create(control, { mac }),
        (err: unknown) =>
          err instanceof SriovError &&
          err.code === 'CONFLICT' &&
          err.details.claim === 'bandwidth' &&
          /^guarantee of 6000 Mbps no longer fits on h1\/ens1f0: 6000 of its 10000 Mbps are committed \(headroom 4000 Mbps\)/.test(err.message),
      );
      assert.equal(control.ctx.scheduler.freeVfs(net, 'h1')!.freeVfs, free);
      assert.equal(control.ctx.macs.isUsed(mac), false);
      assert.deepEqual((await store.tx.listAllocations()).map((a) => a.id), ['other']);
    });
  });

  it("checks a network's rates against the placed PF's reported link speed, a 0 Mbps one included, and reserves nothing when refused", async () => {
    await withStore(async (store) => {
      const net = makeNetwork({ maxTxRateMbps: 1000 });
      const control = await seeded(store, net, 0);
      await assert.rejects(create(control), (err: unknown) => err instanceof SriovError && err.code === 'OUT_OF_RANGE' && /exceeds the 0 Mbps link of h1\/ens1f0/.test(err.message));
      assert.equal(control.ctx.scheduler.freeVfs(net, 'h1')!.freeVfs, 4);
      assert.deepEqual(await store.tx.listAllocations(), []);
    });
  });
});
