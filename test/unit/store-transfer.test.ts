// sriovd store export|import through the Store interface: a store copied into another holds the same
// content (audit sequence included); an import refuses a target that is not empty, and a file that is not an export.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { exportStore, importStore, parseDump, type StoreDump } from '../../src/store/transfer.js';
import { fillStore } from '../helpers/store-fill.js';

const dirs: string[] = [];
async function fresh(): Promise<Store> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-transfer-'));
  dirs.push(dir);
  return openSqliteStore(dir);
}
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const content = (d: StoreDump) => ({ ...d, exportedAt: undefined, source: undefined });

describe('store export and import', () => {
  it('copies everything: records, heartbeat, leases, a migration in flight, the audit log in sequence', async () => {
    const [a, b] = [await fresh(), await fresh()];
    await fillStore(a, { allocations: 600, events: 520 });
    const dump = await exportStore(a);
    assert.equal(dump.allocations.length, 604, 'paged past the first 500');
    assert.equal(dump.events.length, 520);
    assert.deepEqual(dump.leases, [
      { network: 'blue-net', address: '198.18.0.10', allocation: 'alloc-ip' },
      { network: 'blue-net', address: '198.18.0.11', allocation: 'alloc-ip' },
    ]);
    assert.equal(dump.hosts.find((h) => h.name === 'host-b')?.state, 'unreachable', 'the liveness-only heartbeat is in');
    // Through JSON, as the file goes.
    const counts = await importStore(b, parseDump(JSON.parse(JSON.stringify(dump))));
    assert.equal(counts.allocations, 604);
    assert.deepEqual(content(await exportStore(b)), content(dump));
    // The copy keeps its invariants: the migration's MAC is still taken, the next event follows on.
    await assert.rejects(b.tx.insertAllocation({ ...dump.allocations.find((x) => x.id === 'alloc-src')!, id: 'again', vfIndex: 7, pciAddress: '0000:3b:02.7', migration: null }), { code: 'CONFLICT' });
    await b.tx.appendEvent({ at: dump.exportedAt, actor: 'admin', action: 'x', object: 'y', before: null, after: null });
    assert.deepEqual((await b.tx.listEvents({ afterSeq: 520 })).map((e) => [e.seq, e.action]), [[521, 'x']]);
    await Promise.all([a.close(), b.close()]);
  });

  it('exports the same text twice from the same content', async () => {
    const a = await fresh();
    await fillStore(a);
    const now = new Date('2025-02-01T00:00:00.000Z');
    assert.equal(JSON.stringify(await exportStore(a, now)), JSON.stringify(await exportStore(a, now)));
    await a.close();
  });

  it('refuses a target that is not empty, and changes nothing in it', async () => {
    const [a, b] = [await fresh(), await fresh()];
    await fillStore(a);
    const dump = await exportStore(a);
    await b.tx.putToken({ id: 'tok-x', role: 'admin', tenantId: null, hash: 'c'.repeat(64), createdAt: dump.exportedAt });
    await assert.rejects(importStore(b, dump), (err: unknown) => {
      assert.ok(err instanceof SriovError);
      assert.equal(err.code, 'CONFLICT');
      assert.match(err.message, /the target sqlite store is not empty \(it has tokens\); import only into a new store/);
      return true;
    });
    assert.deepEqual((await b.tx.listTokens()).map((t) => t.id), ['tok-x']);
    assert.deepEqual(await b.tx.listTenants(), []);
    await Promise.all([a.close(), b.close()]);
  });

  it('names the record a target refuses', async () => {
    const [a, b] = [await fresh(), await fresh()];
    await fillStore(a);
    const dump = await exportStore(a);
    // Two holders of one VF: the second is refused by the target's own invariant.
    dump.allocations.push({ ...dump.allocations.find((x) => x.id === 'alloc-ip')!, id: 'alloc-twin', mac: '02:00:00:00:00:0e' });
    await assert.rejects(importStore(b, dump), /import stopped at allocations alloc-twin: CONFLICT: .*empty it before importing again/);
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses a file that is not an export, or a log with a gap', () => {
    assert.throws(() => parseDump({ hello: 1 }, 'x.json'), /x.json is not a vfleet store export/);
    assert.throws(() => parseDump(null, 'x.json'), /not a vfleet store export/);
    const base = { format: 'vfleet-store', version: 1, physnets: [], tenants: [], networks: [], hosts: [], policies: [], tokens: [], allocations: [], leases: [], migrations: [], events: [] };
    assert.throws(() => parseDump({ ...base, version: 2 }, 'x.json'), /version 2 export; this vfleet reads version 1/);
    assert.throws(() => parseDump({ ...base, hosts: {} }, 'x.json'), /"hosts" must be an array/);
    assert.throws(() => parseDump({ ...base, events: [{ seq: 1 }, { seq: 3 }] }, 'x.json'), /audit event 2 has seq 3/);
    assert.equal(parseDump(base).events.length, 0);
  });
});
