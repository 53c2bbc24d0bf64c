// A controller whose shared store stops answering (etcd without quorum, played here by a store that fails
// UNAVAILABLE on demand): the API's reads come from memory, marked as possibly stale; what memory does not
// hold is refused; writes fail 503; the mark goes when the store answers again. And a resync rebuilds memory
// from the store after the watch lost changes.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/api/server.js';
import { ApiClient, staleWarning } from '../../src/cli/remote/client.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import { PackedHosts, ReadMirror } from '../../src/controller/read-mirror.js';
import { staleReads } from '../../src/controller/stale-reads.js';
import { StoreHealth } from '../../src/controller/store-health.js';
import { SriovError } from '../../src/host/errors.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { inventoryOf, policyOf } from '../helpers/api-harness.js';
import { eventually } from '../helpers/daemon.js';
import { makeHost } from '../helpers/inventory.js';
import { watched } from '../helpers/watched-store.js';

const ADMIN = { id: 'test', role: 'admin' } as const;
const H1 = { id: 'local', role: 'agent:h1' } as const;
const gone = () => new SriovError('UNAVAILABLE', 'etcd at 198.18.0.1:2379 cannot serve the store now; nothing was written, retry later', { nothingChanged: true });

/** `inner`, failing every call UNAVAILABLE while `outage.down`. */
function flaky(inner: Store, outage: { down: boolean; calls: number }): Store {
  const guard = <T>(call: () => Promise<T>): Promise<T> => {
    outage.calls++;
    return outage.down ? Promise.reject(gone()) : call();
  };
  const failing = <T extends object>(of: T): T =>
    new Proxy(of, {
      get: (target, name: string) => (...args: unknown[]) => guard(() => (target as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name]!(...args)),
    });
  return {
    kind: inner.kind,
    tx: failing(inner.tx),
    committed: failing(inner.committed),
    transaction: (fn) => guard(() => inner.transaction(fn)),
    watch: (listener, hooks) => inner.watch(listener, hooks),
    campaign: (c) => inner.campaign(c),
    close: () => inner.close(),
  };
}

describe('reads while the shared store does not answer', () => {
  let dir: string;
  let app: FastifyInstance;
  let control: ControlPlane;
  let base: string;
  let admin: string;
  let allocationId: string;
  const outage = { down: false, calls: 0 };
  const get = (path: string, token = admin) => fetch(base + path, { headers: { authorization: `Bearer ${token}` } });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-stale-'));
    const store = flaky(watched(await openSqliteStore(dir)), outage);
    control = await ControlPlane.open(store);
    admin = (await readFile(await control.tokens.bootstrapAdmin(dir), 'utf8')).trim();
    await control.hosts.report(H1, inventoryOf('h1'));
    await control.hosts.putPolicy(ADMIN, 'h1', policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
    await control.networks.createTenant(ADMIN, 'blue');
    await control.networks.createNetwork(ADMIN, { name: 'blue', tenant: 'blue', physnet: 'fabric', vlan: 100 });
    allocationId = (await control.allocations.create(ADMIN, { network: 'blue', workload: { kind: 'vm', name: 'vm-1' } })).id;
    await control.sync.settled();
    app = await buildServer({ control, controllerHost: 'ctl-1', version: 'test' });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  const READS = ['/v1/tenants', '/v1/physnets', '/v1/networks', '/v1/networks/blue', '/v1/hosts', '/v1/hosts/h1', '/v1/allocations?state=pending'];

  it('answers from memory, each answer marked, the same as the store gave', async () => {
    const healthy = new Map<string, unknown>();
    for (const path of READS) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('warning'), null, `${path} is not marked while the store answers`);
      healthy.set(path, await res.json());
    }
    assert.ok((healthy.get('/v1/allocations?state=pending') as Array<{ id: string }>).some((a) => a.id === allocationId));

    outage.down = true;
    for (const path of READS) {
      const res = await get(path);
      const body = await res.json();
      assert.equal(res.status, 200, `${path}: ${JSON.stringify(body)}`);
      assert.equal(res.headers.get('warning'), '110 - "Response is Stale"', path);
      assert.equal(res.headers.get('vfleet-store-unreachable-since'), control.health.unreachableSince?.toISOString(), path);
      // Host summaries carry their heartbeat age, which moves on.
      if (path !== '/v1/hosts') assert.deepEqual(body, healthy.get(path), path);
    }
    const one = await get(`/v1/allocations/${allocationId}`);
    assert.equal(one.status, 200);
    assert.equal(((await one.json()) as { id: string }).id, allocationId);
  });

  it('refuses what memory does not hold, and writes, with 503 and Retry-After; a bad token is still refused', async () => {
    outage.down = true;
    for (const path of ['/v1/allocations', '/v1/allocations/no-such-allocation', `/v1/allocations/${allocationId.slice(0, 8)}`, '/v1/events']) {
      const res = await get(path);
      assert.equal(res.status, 503, path);
      assert.ok(Number(res.headers.get('retry-after')) >= 1, path);
      assert.equal(res.headers.get('warning'), null, `${path}: an error is not a stale answer`);
    }
    const write = await fetch(`${base}/v1/tenants`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{"name":"red"}' });
    assert.equal(write.status, 503);
    assert.equal((await get('/v1/tenants', 'not-a-token')).status, 401);
  });

  it('goes to memory at once while the store is known unreachable, and back to the store once it answers', async () => {
    outage.down = true;
    await get('/v1/tenants');
    const before = outage.calls;
    await get('/v1/networks');
    await get('/v1/hosts/h1');
    // Only the probe may have called meanwhile.
    assert.ok(outage.calls - before <= 1, `${outage.calls - before} store calls for two reads`);
    outage.down = false;
    await eventually('the store heard again', 20_000, async () => (control.health.unreachableSince === null ? true : undefined));
    const res = await get('/v1/tenants');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('warning'), null);
    assert.equal((await get('/v1/allocations')).status, 200);
  });

  it('the CLI says it once per command, on stderr', async () => {
    outage.down = true;
    await get('/v1/tenants');
    const lines: string[] = [];
    const client = new ApiClient({ server: base, token: admin }, (line) => lines.push(line));
    assert.deepEqual((await client.all<{ name: string }>('/v1/tenants', { limit: 1 })).map((t) => t.name).length, 1);
    await client.get('/v1/networks');
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /^warning: the controller cannot reach its store since \d{4}-\d\d-\d\dT[\d:.]+Z; this answer comes from its memory and may be stale$/);
    outage.down = false;
    await eventually('the store heard again', 20_000, async () => (control.health.unreachableSince === null ? true : undefined));
    const quiet: string[] = [];
    await new ApiClient({ server: base, token: admin }, (line) => quiet.push(line)).get('/v1/tenants');
    assert.deepEqual(quiet, []);
  });
});

describe('stale reads, piece by piece', () => {
  it('the health: only UNAVAILABLE marks the store unreachable, and a probe that answers clears it', async () => {
    let answers = false;
    const health = new StoreHealth({ probe: async () => (answers ? undefined : Promise.reject(gone())), healthyProbeMs: 0, downProbeMs: 10 });
    try {
      assert.equal(health.failed(new SriovError('CONFLICT', 'taken')), false);
      assert.equal(health.failed(new Error('boom')), false);
      assert.equal(health.unreachableSince, null);
      assert.equal(health.failed(gone()), true);
      const since = health.unreachableSince as Date | null;
      assert.ok(since instanceof Date);
      health.failed(gone());
      assert.equal(health.unreachableSince, since, 'a second failure keeps the first time');
      answers = true;
      await eventually('the probe answered', 5_000, async () => (health.unreachableSince === null ? true : undefined));
    } finally {
      health.stop();
    }
  });

  it('a read that fails otherwise fails as it did; one the store answers is not taken from memory', async () => {
    const health = new StoreHealth({ probe: async () => undefined, healthyProbeMs: 0 });
    const mirror = new ReadMirror(() => new Date());
    mirror.putCatalogue({ tenants: [{ id: 'm', name: 'from-memory', createdAt: 'x' }], physnets: [], networks: [] });
    const store = { listTenants: async () => [{ id: 's', name: 'from-store', createdAt: 'x' }] };
    const reads = staleReads({ ...mirror, ...store, getHost: () => Promise.reject(new SriovError('INVALID_ARGUMENT', 'bad name')) } as never, mirror, health);
    assert.deepEqual((await reads.listTenants()).map((t) => t.name), ['from-store']);
    await assert.rejects(reads.getHost('x'), (e: SriovError) => e.code === 'INVALID_ARGUMENT');
    assert.equal(health.unreachableSince, null);
    health.stop();
  });

  it('the mirror: a host record with its later heartbeat, holding allocations only, paged by id', async () => {
    const mirror = new ReadMirror(() => new Date('2026-01-01T00:00:00Z'));
    const host = makeHost({ name: 'h1', pfs: 1, vfs: 2 });
    mirror.putHost('h1', host);
    mirror.heard('h1', 'unreachable', '2026-01-01T00:00:05.000Z');
    mirror.heard('nobody', 'ready', '2026-01-01T00:00:05.000Z');
    assert.deepEqual(await mirror.getHost('h1'), { ...host, state: 'unreachable', lastHeartbeat: '2026-01-01T00:00:05.000Z' });
    assert.equal(await mirror.getHost('nobody'), null);
    mirror.putHost('h1', host);
    assert.deepEqual(await mirror.getHost('h1'), host, 'a record written again supersedes the heartbeat');
    const alloc = (id: string, state: 'attached' | 'released') => ({ id, state, tenant: 't', host: 'h1', network: 'n', workload: { kind: 'vm', name: id }, attachment: null, deviceClaim: null, pciAddress: id }) as never;
    for (const id of ['c', 'a', 'b']) mirror.putAllocation(id, alloc(id, 'attached'));
    mirror.putAllocation('b', alloc('b', 'released'));
    assert.deepEqual((await mirror.listAllocations({ state: 'attached', limit: 5 })).map((a) => a.id), ['a', 'c']);
    assert.deepEqual((await mirror.listAllocations({ holding: true, after: 'a', limit: 5 })).map((a) => a.id), ['c']);
    await assert.rejects(mirror.listAllocations({}), /has not answered since 2026-01-01T00:00:00.000Z.*released or failed allocations/);
    await assert.rejects(mirror.listAllocations({ state: 'released' }), (e: SriovError) => e.code === 'UNAVAILABLE');
    await assert.rejects(mirror.getAllocation('b'), (e: SriovError) => e.code === 'UNAVAILABLE');
    mirror.putToken('t1', { id: 't1', role: 'admin', tenantId: null, hash: 'h-1', createdAt: 'x' });
    assert.equal((await mirror.findTokenByHash('h-1'))?.id, 't1');
    mirror.putToken('t1', null);
    assert.equal(await mirror.findTokenByHash('h-1'), null, 'a revoked token is gone from memory too');
  });

  it('the mirror at start: records deflated from their stored text, each in a buffer of its own size, with the heartbeat the text predates', async () => {
    const host = makeHost({ name: 'h1', pfs: 2, vfs: 8 });
    const beaten = { ...host, state: 'unreachable' as const, lastHeartbeat: '2026-01-01T00:00:05.000Z' };
    const packed = new PackedHosts();
    packed.add({ record: beaten, json: JSON.stringify(host) });
    packed.add({ record: { ...host, name: 'h2' } });
    for (const b of packed.packed.values()) assert.equal(b.buffer.byteLength, b.length, 'not a slice of a larger chunk');
    const mirror = new ReadMirror(() => new Date());
    mirror.load({ hosts: packed, holding: [], catalogue: { tenants: [], physnets: [], networks: [] }, tokens: [] });
    assert.deepEqual(await mirror.getHost('h1'), beaten);
    assert.deepEqual(await mirror.getHost('h2'), { ...host, name: 'h2' });
    mirror.putHost('h1', host);
    assert.deepEqual(await mirror.getHost('h1'), host, 'a record written again supersedes the heartbeat');
  });

  it('the CLI recognises the mark, and only it', () => {
    assert.equal(staleWarning(new Headers({})), null);
    assert.equal(staleWarning(new Headers({ warning: '199 - "Miscellaneous"' })), null);
    assert.match(staleWarning(new Headers({ warning: '110 - "Response is Stale"' }))!, /^warning: the controller cannot reach its store; /);
    assert.match(staleWarning(new Headers({ warning: '110 - "Response is Stale"', 'vfleet-store-unreachable-since': '2026-01-01T00:00:00.000Z' }))!, /since 2026-01-01T00:00:00.000Z;/);
    // A header that is not a time is not echoed onto the terminal.
    assert.doesNotMatch(staleWarning(new Headers({ warning: '110 - "Response is Stale"', 'vfleet-store-unreachable-since': '\u001b[2Jgotcha' }))!, /gotcha/);
  });
});

describe('resync: memory rebuilt from the store after the watch lost changes', () => {
  let dir: string;
  let control: ControlPlane;
  let inner: Store;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-resync-'));
    inner = await openSqliteStore(dir);
    control = await ControlPlane.open(watched(inner), { resume: false });
    await control.hosts.report(H1, inventoryOf('h1'));
    await control.hosts.putPolicy(ADMIN, 'h1', policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
    await control.networks.createTenant(ADMIN, 'blue');
    await control.networks.createNetwork(ADMIN, { name: 'blue', tenant: 'blue', physnet: 'fabric', vlan: 100 });
    await control.sync.settled();
  });

  after(async () => {
    control.shutdown();
    await inner.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('takes in what was written behind the watch, and forgets what was deleted', async () => {
    const a = await control.allocations.create(ADMIN, { network: 'blue', workload: { kind: 'vm', name: 'vm-1' } });
    await control.sync.settled();
    // Behind the watch's back (the changes it lost): the allocation released, a host added, a tenant added.
    await inner.tx.updateAllocationState(a.id, 'released', null, new Date().toISOString());
    await inner.tx.putHost(makeHost({ name: 'h2', pfs: 1, vfs: 2 }));
    await inner.tx.putTenant({ id: 'r', name: 'red', createdAt: new Date().toISOString() });
    assert.ok(control.ctx.scheduler.holds(a.id), 'memory drifted');
    let woken = false;
    const unwatch = control.ctx.feed.watch('h1', () => (woken = true));
    control.sync.resync();
    await control.sync.settled();
    assert.equal(control.ctx.scheduler.holds(a.id), false);
    assert.equal(control.ctx.macs.isUsed(a.mac), false);
    assert.deepEqual([...control.ctx.scheduler.hosts()].map((h) => h.name).sort(), ['h1', 'h2']);
    assert.ok(control.hosts.lastSeenAt('h2') !== undefined);
    assert.ok(woken, "h1's agent woken to read its desired state again");
    unwatch();

    await inner.tx.deleteHost('h2');
    control.sync.resync();
    await control.sync.settled();
    assert.deepEqual([...control.ctx.scheduler.hosts()].map((h) => h.name), ['h1']);
    assert.equal(control.hosts.lastSeenAt('h2'), undefined);
  });
});
