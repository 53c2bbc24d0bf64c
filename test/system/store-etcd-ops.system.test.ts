// The etcd store as an operator meets it: a SQLite deployment moved onto etcd with `sriovd store export|import`
// (nothing lost, the audit sequence kept), and a controller on a 3-member etcd that loses quorum (writes 503 with
// Retry-After, nothing half-written) and serves again once quorum is back, without a restart.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Leadership, StoreChange } from '../../src/store/store.js';
import { openStore } from '../../src/store/open.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { exportStore, type StoreDump } from '../../src/store/transfer.js';
import { SRIOVD, startDaemon, type Daemon } from '../helpers/daemon.js';
import { fillStore } from '../helpers/store-fill.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

/** Runs `sriovd ARGS` to its end: exit code and what it wrote on stderr. */
function sriovd(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const proc = spawn(process.execPath, [SRIOVD, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => proc.once('exit', (code) => resolve({ code, stderr })));
}

const content = (d: StoreDump) => ({ ...d, exportedAt: undefined, source: undefined });

describe('SQLite onto etcd with sriovd store export|import', () => {
  let dir: string;
  let etcd: EtcdCluster;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-move-'));
    etcd = await startEtcd(1);
  });
  after(async () => {
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('moves everything, the audit log with its numbers, and refuses a second import', async () => {
    const sqlite = await openSqliteStore(join(dir, 'data'));
    await fillStore(sqlite, { allocations: 300, events: 600 });
    await sqlite.close();
    const file = join(dir, 'export.json');
    const out = await sriovd(['store', 'export', '--data-dir', join(dir, 'data'), '--out', file]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /exported .*304 allocations, 2 leases, 2 migrations, 600 events from the sqlite store/);
    const url = `${etcd.storeUrl}/moved`;
    const imported = await sriovd(['store', 'import', file, '--store', url]);
    assert.equal(imported.code, 0, imported.stderr);
    const exported = JSON.parse(await readFile(file, 'utf8')) as StoreDump;
    const store = await openStore({ url, dataDir: dir });
    try {
      const moved = await exportStore(store);
      assert.equal(moved.source, 'etcd');
      assert.deepEqual(content(moved), content(exported));
      // The log goes on from where SQLite's ended.
      await store.tx.appendEvent({ at: moved.exportedAt, actor: 'admin', action: 'moved', object: 'store', before: null, after: null });
      assert.deepEqual((await store.tx.listEvents({ afterSeq: 600 })).map((e) => [e.seq, e.action]), [[601, 'moved']]);
    } finally {
      await store.close();
    }
    const again = await sriovd(['store', 'import', file, '--store', url]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /CONFLICT: the target etcd store is not empty/);
  });
});

describe('two controllers on one etcd through openStore', () => {
  let dir: string;
  let etcd: EtcdCluster;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-two-'));
    etcd = await startEtcd(1);
  });
  after(async () => {
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const becomes = (l: Leadership, ms: number) =>
    new Promise<void>((resolve, reject) => {
      if (l.leader) return resolve();
      const timer = setTimeout(() => reject(new Error(`not leader within ${ms} ms`)), ms);
      l.onChange((now) => now && (clearTimeout(timer), resolve()));
    });

  it("sees the other's writes through its watch, and takes over leadership when the other closes", async () => {
    const url = `${etcd.storeUrl}/two`;
    const [one, two] = [await openStore({ url, dataDir: dir }), await openStore({ url, dataDir: dir })];
    try {
      const seen: StoreChange[] = [];
      one.watch((changes) => seen.push(...changes));
      await fillStore(two, { events: 1 });
      await two.tx.touchHost('host-a', 'ready', '2025-01-01T01:00:00.000Z');
      const wanted = (c: StoreChange) => c.kind === 'heartbeat' && c.name === 'host-a' && c.at === '2025-01-01T01:00:00.000Z';
      for (let i = 0; i < 100 && !seen.some(wanted); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(seen.some(wanted), 'the heartbeat written through two');
      assert.ok(seen.some((c) => c.kind === 'catalogue'));
      assert.deepEqual(seen.filter((c) => c.kind === 'allocation').map((c) => c.kind === 'allocation' && c.id), ['alloc-ip', 'alloc-old', 'alloc-src', 'alloc-dst']);
      assert.ok(seen.some((c) => c.kind === 'policy' && c.host === 'host-a'));
      assert.deepEqual(seen.filter((c) => c.kind === 'migration').map((c) => c.kind === 'migration' && c.id), ['mig-done', 'mig-run']);
      const a = await one.campaign('one');
      await becomes(a, 10_000);
      const b = await two.campaign('two');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(b.leader, false);
      // Closing resigns: the standby leads at once, not a lease TTL later.
      await one.close();
      await becomes(b, 2_000);
    } finally {
      await Promise.allSettled([one.close(), two.close()]);
    }
  });
});

describe('a controller on etcd that loses quorum', () => {
  let dir: string;
  let etcd: EtcdCluster;
  let daemon: Daemon;
  let admin: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-quorum-'));
    etcd = await startEtcd(3);
    daemon = await startDaemon(['--store', etcd.storeUrl, '--no-agent', '--no-demo', '--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0']);
    admin = (await readFile(join(dir, 'data', 'admin.token'), 'utf8')).trim();
  });
  after(async () => {
    await daemon?.kill();
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (name: string) =>
    fetch(`${daemon.url}/v1/tenants`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
  const tenants = async () => ((await (await fetch(`${daemon.url}/v1/tenants`, { headers: { authorization: `Bearer ${admin}` } })).json()) as Array<{ name: string }>).map((t) => t.name).sort();

  it('answers writes 503 with Retry-After while quorum is lost, and serves again when it is back', async () => {
    assert.equal((await post('alpha')).status, 201);
    await etcd.kill(1);
    await etcd.kill(2);
    const refused = await post('beta');
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1, `Retry-After: ${refused.headers.get('retry-after')}`);
    const { error } = (await refused.json()) as { error: { code: string; message: string } };
    assert.equal(error.code, 'UNAVAILABLE');
    assert.match(error.message, /etcd at .*127\.0\.0\.1/);
    await etcd.start(1);
    await etcd.start(2);
    // The same controller, not restarted: the write goes through once etcd has a leader again.
    let status = 0;
    for (let i = 0; i < 60 && status !== 201; i++) {
      status = (await post('beta')).status;
      if (status !== 201) await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(status, 201);
    assert.deepEqual(await tenants(), ['alpha', 'beta'], 'beta once, and nothing half-written');
  });
});
