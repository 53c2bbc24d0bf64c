// etcd failing while controllers run: reads served from memory, marked as possibly stale, while etcd has no
// quorum (writes 503 with Retry-After), and the mark gone once quorum is back, without a restart; a watch whose
// resume point etcd compacted away makes the controller read its state again, so its memory does not drift.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { ControlPlane } from '../../src/controller/control-plane.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { eventually, startDaemon, type Daemon } from '../helpers/daemon.js';
import { allocation, putNetworks } from '../contract/store.contract.js';
import { makeHost, pfPci } from '../helpers/inventory.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

const SRIOVCTL = new URL('../../../bin/sriovctl.js', import.meta.url).pathname;

/** Runs `sriovctl ARGS` against `server`: exit code, stdout, stderr. */
function sriovctl(server: string, token: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env, SRIOV_SERVER: server, SRIOV_TOKEN: token, SRIOV_CONFIG: '/nonexistent/vfleet.yaml' };
  const proc = spawn(process.execPath, [SRIOVCTL, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let [stdout, stderr] = ['', ''];
  proc.stdout!.on('data', (d: Buffer) => (stdout += d));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => proc.once('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('a controller on a 3-member etcd that loses quorum while it runs', () => {
  let dir: string;
  let etcd: EtcdCluster;
  let daemon: Daemon;
  let admin: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-stale-'));
    etcd = await startEtcd(3);
    // The demo: a simulated host, a tenant, a network and containers attached on it.
    daemon = await startDaemon(['--store', etcd.storeUrl, '--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0']);
    admin = (await readFile(join(dir, 'data', 'admin.token'), 'utf8')).trim();
  });
  after(async () => {
    await daemon?.kill();
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (path: string) => fetch(`${daemon.url}${path}`, { headers: { authorization: `Bearer ${admin}` } });
  const post = (name: string) =>
    fetch(`${daemon.url}/v1/tenants`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
  const json = async <T>(path: string): Promise<{ status: number; stale: string | null; since: string | null; body: T }> => {
    const res = await get(path);
    return { status: res.status, stale: res.headers.get('warning'), since: res.headers.get('vfleet-store-unreachable-since'), body: (await res.json()) as T };
  };

  it('answers reads from memory marked stale and writes 503, then drops the mark and writes again when quorum is back', async () => {
    // Every demo container attached, so that nothing changes between the reads below.
    const attached = await eventually('the demo containers attached', 60_000, async () => {
      const r = await json<Array<{ id: string; host: string; state: string }>>('/v1/allocations');
      return r.body.length > 0 && r.body.every((a) => a.state === 'attached') ? r.body : undefined;
    });
    const [one] = attached;
    const healthy = {
      tenants: await json<Array<{ name: string }>>('/v1/tenants'),
      networks: await json<Array<{ name: string }>>('/v1/networks'),
      hosts: await json<Array<{ name: string }>>('/v1/hosts'),
      host: await json<{ name: string; inventory: unknown }>(`/v1/hosts/${one!.host}`),
      allocation: await json<{ id: string; state: string }>(`/v1/allocations/${one!.id}`),
    };
    for (const [what, r] of Object.entries(healthy)) {
      assert.equal(r.status, 200, what);
      assert.equal(r.stale, null, `${what} is not marked while etcd answers`);
    }

    await etcd.kill(1);
    await etcd.kill(2);
    const refused = await post('beta');
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);

    // The same reads, from memory: the same answers, each marked.
    const stale = {
      tenants: await json<Array<{ name: string }>>('/v1/tenants'),
      networks: await json<Array<{ name: string }>>('/v1/networks'),
      hosts: await json<Array<{ name: string }>>('/v1/hosts'),
      host: await json<{ name: string; inventory: unknown }>(`/v1/hosts/${one!.host}`),
      allocation: await json<{ id: string; state: string }>(`/v1/allocations/${one!.id}`),
    };
    for (const [what, r] of Object.entries(stale)) {
      assert.equal(r.status, 200, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.stale, '110 - "Response is Stale"', what);
      assert.ok(r.since !== null && !Number.isNaN(Date.parse(r.since)), `${what}: since ${r.since}`);
    }
    assert.deepEqual(stale.tenants.body, healthy.tenants.body);
    assert.deepEqual(stale.networks.body, healthy.networks.body);
    assert.deepEqual(stale.host.body, healthy.host.body);
    assert.deepEqual(stale.allocation.body, healthy.allocation.body);
    assert.deepEqual(stale.hosts.body.map((h) => h.name), healthy.hosts.body.map((h) => h.name));
    const held = await json<Array<{ id: string }>>('/v1/allocations?state=attached');
    assert.deepEqual(held.body.map((a) => a.id), attached.map((a) => a.id));
    // What memory does not hold is refused as the store would have, not answered incompletely.
    const all = await get('/v1/allocations');
    assert.equal(all.status, 503);
    assert.ok(Number(all.headers.get('retry-after')) >= 1);
    assert.match(((await all.json()) as { error: { message: string } }).error.message, /has not answered since .*released or failed allocations/);
    const events = await get('/v1/events');
    assert.equal(events.status, 503);

    // The CLI says it, once, on stderr, and still prints the answer.
    const cli = await sriovctl(daemon.url, admin, ['tenant', 'list']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /demo/);
    assert.equal(cli.stderr.match(/warning: the controller cannot reach its store since \S+; this answer comes from its memory and may be stale/g)?.length, 1, cli.stderr);

    await etcd.start(1);
    await etcd.start(2);
    // The same controller, not restarted: writes go through once etcd has a leader again, and the mark goes.
    await eventually('a write after quorum is back', 60_000, async () => ((await post('beta')).status === 201 ? true : undefined));
    const back = await eventually('reads without the stale mark', 30_000, async () => {
      const r = await json<Array<{ name: string }>>('/v1/tenants');
      return r.stale === null ? r : undefined;
    });
    assert.deepEqual(back.body.map((t) => t.name).sort(), [...healthy.tenants.body.map((t) => t.name), 'beta'].sort());
    assert.equal((await get('/v1/allocations')).status, 200);
    const quiet = await sriovctl(daemon.url, admin, ['tenant', 'list']);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stderr, /warning/);
  });
});

describe('a controller whose watch resumes from a compacted revision', () => {
  let dir: string;
  let etcd: EtcdCluster;
  const stores: Store[] = [];
  const controls: ControlPlane[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-compact-'));
    etcd = await startEtcd(3);
  });
  after(async () => {
    controls.forEach((c) => c.shutdown());
    await Promise.allSettled(stores.map((s) => s.close()));
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads its state again, rebuilds memory and goes on watching', async () => {
    const [a, b, c] = etcd.members.map((m) => m.clientUrl.replace(/^http:\/\//, ''));
    const errors: string[] = [];
    // Controller one talks to member 0 only, so its watch is cut while that member is down.
    const oneStore = await openStore({ url: `etcd://${a}/compact`, dataDir: dir, onError: (e) => errors.push(e.message) });
    const twoStore = await openStore({ url: `etcd://${b},${c}/compact`, dataDir: dir });
    stores.push(oneStore, twoStore);
    const one = await ControlPlane.open(oneStore, { resume: false });
    controls.push(one);
    await twoStore.tx.putHost(makeHost({ name: 'host-a', pfs: 1, vfs: 4 }));
    await eventually('host-a on controller one', 10_000, async () => ([...one.ctx.scheduler.hosts()].some((h) => h.name === 'host-a') ? true : undefined));

    await etcd.kill(0);
    // Written while controller one cannot see it, then compacted away. The first write waits for the two
    // members left to elect a leader, if member 0 led.
    await eventually('a leader among members 1 and 2', 60_000, async () => (await twoStore.tx.putHost(makeHost({ name: 'host-b', pfs: 1, vfs: 4 })), true));
    await putNetworks(twoStore);
    await twoStore.tx.insertAllocation(allocation({ id: 'alloc-b1', host: 'host-b', pfPciAddress: pfPci(0), vfIndex: 1, mac: '02:00:00:00:0b:01' }));
    await twoStore.tx.deleteHost('host-a');
    const client = new Etcd3({ hosts: [etcd.endpoints[1]!, etcd.endpoints[2]!] });
    try {
      const { header } = await client.kv.range({ key: Buffer.from('/compact/') });
      await client.kv.compact({ revision: header.revision, physical: true });
    } finally {
      client.close();
    }
    await etcd.start(0);

    // The resync: what was written meanwhile is in memory, what was deleted is gone.
    await eventually('the resync on controller one', 60_000, async () => {
      const hosts = [...one.ctx.scheduler.hosts()].map((h) => h.name);
      return hosts.includes('host-b') && !hosts.includes('host-a') && one.ctx.scheduler.holds('alloc-b1') ? true : undefined;
    });
    assert.ok(one.ctx.macs.isUsed('02:00:00:00:0b:01'), 'the MAC pool rebuilt');
    assert.ok(errors.some((e) => /ended by etcd, changes may be lost/.test(e)), errors.join('\n'));
    assert.deepEqual(await one.ctx.reads.getHost('host-b'), await twoStore.tx.getHost('host-b'));

    // And it goes on watching: a change after the resync arrives too.
    await twoStore.tx.updateAllocationState('alloc-b1', 'released', null, new Date().toISOString());
    await eventually('the release on controller one', 10_000, async () => (one.ctx.scheduler.holds('alloc-b1') ? undefined : true));
    assert.ok(!one.ctx.macs.isUsed('02:00:00:00:0b:01'));
  });
});
