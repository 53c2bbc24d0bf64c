/**
 * Lists that scale: every list endpoint pages with `limit` and an opaque
 * cursor (Link: rel="next"), filters run on the server, and `GET /v1/hosts`
 * answers summaries built from memory, without inventories.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { HostSummary } from '../../src/controller/host-summaries.js';
import type { Actor } from '../../src/domain/actor.js';
import type { Allocation, HostRecord } from '../../src/domain/types.js';
import { expectStatus, startApi, type ApiHarness } from '../helpers/api-harness.js';
import { makeHost } from '../helpers/inventory.js';

const ADMIN: Actor = { id: 'test', role: 'admin' };
let h: ApiHarness;
let alpha = '';

interface Page<T> {
  status: number;
  body: T;
  next: string | null;
}

async function get<T>(token: string, path: string): Promise<Page<T>> {
  const res = await fetch(h.base + path, { headers: { authorization: `Bearer ${token}` } });
  const link = res.headers.get('link');
  const next = link === null ? null : (/^<([^>]+)>; rel="next"$/.exec(link)?.[1] ?? 'unparsed');
  return { status: res.status, body: (await res.json()) as T, next };
}

/** Follows the Link headers from `path`; every page, as it came. */
async function pages<T>(token: string, path: string): Promise<T[][]> {
  const out: T[][] = [];
  for (let next: string | null = path; next !== null; ) {
    const page: Page<T[]> = await get<T[]>(token, next);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    out.push(page.body);
    next = page.next;
  }
  return out;
}

/** A host as its agent would have registered it, put straight into the store and this controller's memory. */
async function addHost(record: HostRecord): Promise<void> {
  await h.store.tx.putHost(record);
  h.control.ctx.scheduler.loadHost(record);
  h.control.hosts.seed([record]);
}

const allocate = (network: string, workload: string) => h.control.allocations.create(ADMIN, { network, workload: { kind: 'vm', name: workload } });
const ids = (list: Array<{ id: string }>) => list.map((a) => a.id);

before(async () => {
  h = await startApi();
  for (const name of ['alpha', 'beta']) await h.control.networks.createTenant(ADMIN, name);
  alpha = await h.token('tenant:alpha');
  // host-a..host-e: ens1f0 on fabric, ens2f0 on edge, 4 VFs each, 25G links.
  for (const name of ['host-c', 'host-a', 'host-e', 'host-b', 'host-d']) {
    await addHost(makeHost({ name, pfs: 2, vfs: 4, driver: 'ice', linkSpeedMbps: 25_000, physnet: 'fabric', pf: { 1: { physnet: 'edge' } } }));
  }
  for (const p of ['fabric', 'edge']) await h.control.networks.putPhysnet(ADMIN, p, {});
  await h.control.networks.createNetwork(ADMIN, { name: 'alpha-fab', tenant: 'alpha', physnet: 'fabric', vlan: 100, minTxRateMbps: 1000 });
  await h.control.networks.createNetwork(ADMIN, { name: 'beta-edge', tenant: 'beta', physnet: 'edge', vlan: 200 });
  for (let i = 0; i < 6; i++) await allocate('alpha-fab', `vm-a${i}`);
  for (let i = 0; i < 5; i++) await allocate('beta-edge', `vm-b${i}`);
});

after(async () => {
  await h.close();
});

describe('list paging: allocations', () => {
  it('pages by id with a Link to the next page, and the pages add up to the whole list, once each', async () => {
    const all = ids((await get<Allocation[]>(h.admin, '/v1/allocations')).body);
    assert.equal(all.length, 11);
    const seen = await pages<Allocation>(h.admin, '/v1/allocations?limit=3');
    assert.deepEqual(seen.map((p) => p.length), [3, 3, 3, 2]);
    assert.deepEqual(ids(seen.flat()), [...all].sort());
  });

  it('gives no Link when the page holds the rest exactly', async () => {
    const seen = await pages<Allocation>(h.admin, '/v1/allocations?limit=11');
    assert.deepEqual(seen.map((p) => p.length), [11]);
  });

  it('keeps a cursor stable under writes: nothing given twice, nothing that stayed is skipped', async () => {
    const first = await get<Allocation[]>(h.admin, '/v1/allocations?limit=4');
    const firstIds = ids(first.body);
    await Promise.all([allocate('alpha-fab', 'late-1'), allocate('beta-edge', 'late-2')]);
    const rest = ids((await pages<Allocation>(h.admin, first.next!)).flat());
    assert.equal(rest.filter((id) => firstIds.includes(id)).length, 0);
    const last = firstIds[firstIds.length - 1]!;
    const expected = ids((await h.store.tx.listAllocations({})).filter((a) => a.id > last)).sort();
    assert.deepEqual(rest, expected);
  });

  it('filters by state, tenant, physnet, network and host in the store, and the cursor keeps the filters', async () => {
    const target = (await h.store.tx.listAllocations({ network: 'beta-edge' })).filter((a) => a.workload.name.startsWith('vm-b')).slice(0, 3);
    for (const a of target) await h.store.tx.updateAllocationState(a.id, 'attached', null, new Date().toISOString());
    const attached = (await pages<Allocation>(h.admin, '/v1/allocations?state=attached&limit=2')).flat();
    assert.deepEqual(ids(attached), ids(target).sort());
    assert.ok(attached.every((a) => a.state === 'attached'));

    const beta = (await pages<Allocation>(h.admin, '/v1/allocations?tenant=beta&limit=2')).flat();
    assert.ok(beta.length >= 5 && beta.every((a) => a.tenant === 'beta'), JSON.stringify(beta.map((a) => a.tenant)));
    const edge = (await pages<Allocation>(h.admin, '/v1/allocations?physnet=edge&limit=2')).flat();
    assert.deepEqual(ids(edge), ids(beta));
    assert.deepEqual((await get<Allocation[]>(h.admin, '/v1/allocations?physnet=edge&network=alpha-fab')).body, []);
    const fabric = (await get<Allocation[]>(h.admin, '/v1/allocations?physnet=fabric&state=pending')).body;
    assert.ok(fabric.length >= 6 && fabric.every((a) => a.network === 'alpha-fab' && a.state === 'pending'));

    const onHost = (await get<Allocation[]>(h.admin, '/v1/allocations?host=host-a')).body;
    assert.ok(onHost.length > 0 && onHost.every((a) => a.host === 'host-a'));
  });

  it('shows a tenant its own only: another tenant named finds nothing', async () => {
    const own = (await pages<Allocation>(alpha, '/v1/allocations?limit=2')).flat();
    assert.ok(own.length >= 6 && own.every((a) => a.tenant === 'alpha'));
    assert.deepEqual((await get<Allocation[]>(alpha, '/v1/allocations?tenant=beta')).body, []);
    assert.deepEqual((await get<Allocation[]>(alpha, '/v1/allocations?physnet=edge')).body, []);
  });
});

describe('list paging: bad cursors and limits', () => {
  it('refuses a cursor given with filters, naming cursor, and changes nothing', async () => {
    const first = await get<Allocation[]>(h.admin, '/v1/allocations?state=pending&limit=1');
    const cursor = new URL(first.next!, h.base).searchParams.get('cursor')!;
    const r = await get<{ error: { code: string; message: string } }>(h.admin, `/v1/allocations?cursor=${cursor}&state=attached`);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'INVALID_ARGUMENT');
    assert.match(r.body.error.message, /^cursor carries the filters of the first page; give cursor \(and limit\) without state$/);
    assert.equal((await get(h.admin, `/v1/allocations?cursor=${cursor}&limit=1`)).status, 200);
  });

  it('refuses a forged cursor, one of another list, and one whose filters the route would refuse', async () => {
    const forge = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const hosts = await get<HostSummary[]>(h.admin, '/v1/hosts?limit=1');
    const hostCursor = new URL(hosts.next!, h.base).searchParams.get('cursor')!;
    for (const cursor of ['bm90LWpzb24', hostCursor, forge({ v: 1, l: 'allocations', k: 'x', f: { state: 'sideways' } }), forge({ v: 1, l: 'allocations', k: 'x', f: { sql: '1' } })]) {
      const r = await get<{ error: { code: string; message: string } }>(h.admin, `/v1/allocations?cursor=${cursor}`);
      assert.equal(r.status, 400, cursor);
      assert.match(r.body.error.message, /^cursor is not one the allocations list gave out; start again without cursor$/);
    }
  });

  it('refuses a limit outside 1-1000, naming limit', async () => {
    for (const limit of ['0', '1001']) {
      const r = await get<{ error: { message: string } }>(h.admin, `/v1/allocations?limit=${limit}`);
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /^limit must be 1-1000/);
    }
  });
});

describe('list paging: host summaries', () => {
  it('lists summaries in name order, paged, with no inventory in them', async () => {
    const seen = await pages<HostSummary>(h.admin, '/v1/hosts?limit=2');
    assert.deepEqual(seen.map((p) => p.map((s) => s.name)), [['host-a', 'host-b'], ['host-c', 'host-d'], ['host-e']]);
    for (const s of seen.flat()) assert.equal('inventory' in s, false);
  });

  it('counts VFs, committed bandwidth against capacity, heartbeat age and drained PFs from memory', async () => {
    const held = await h.store.tx.listAllocations({ host: 'host-a', holding: true });
    await h.control.drains.drainPf(ADMIN, 'host-a', 'ens2f0');
    const [a] = (await get<HostSummary[]>(h.admin, '/v1/hosts?limit=1')).body;
    assert.equal(a!.name, 'host-a');
    assert.equal(a!.state, 'ready');
    assert.equal(a!.vfs.total, 8);
    assert.equal(a!.vfs.allocated, held.length);
    assert.equal(a!.vfs.free, 8 - held.length);
    const edge = a!.pfs.find((p) => p.name === 'ens2f0')!;
    assert.equal(edge.drained, true);
    assert.equal(edge.vfs.unschedulable, edge.vfs.free);
    assert.deepEqual(a!.drainedPfs, [edge.pciAddress]);
    const fabric = a!.pfs.find((p) => p.name === 'ens1f0')!;
    assert.equal(fabric.physnet, 'fabric');
    assert.equal(fabric.committedMbps, 1000 * held.filter((x) => x.network === 'alpha-fab').length);
    assert.equal(fabric.capacityMbps, 25_000);
    assert.equal(a!.capacityMbps, 50_000);
    assert.equal(a!.committedMbps, fabric.committedMbps + edge.committedMbps);
    assert.ok(a!.heartbeatAgeMs !== null && a!.heartbeatAgeMs >= 0);
    await h.control.drains.undrainPf(ADMIN, 'host-a', 'ens2f0');
  });

  it('filters by state and physnet; the full inventory stays at /v1/hosts/:name', async () => {
    h.control.ctx.scheduler.setHostState('host-d', 'unreachable');
    assert.deepEqual((await get<HostSummary[]>(h.admin, '/v1/hosts?state=unreachable')).body.map((s) => s.name), ['host-d']);
    h.control.ctx.scheduler.setHostState('host-d', 'ready');
    assert.equal((await get<HostSummary[]>(h.admin, '/v1/hosts?physnet=edge')).body.length, 5);
    assert.deepEqual((await get<HostSummary[]>(h.admin, '/v1/hosts?physnet=nowhere')).body, []);
    const full = await get<HostRecord>(h.admin, '/v1/hosts/host-b');
    assert.equal(full.body.inventory.pfs.length, 2);
  });

  it('is staff only: a tenant gets 403', async () => {
    await expectStatus(h.call(alpha, 'GET', '/v1/hosts'), 403, 'FORBIDDEN');
  });
});

describe('list paging: the other lists', () => {
  it('pages tenants, networks, physnets, tokens, events and migrations the same way', async () => {
    assert.deepEqual((await pages<{ name: string }>(h.admin, '/v1/tenants?limit=1')).map((p) => p.map((t) => t.name)), [['alpha'], ['beta']]);
    assert.deepEqual((await pages<{ name: string }>(h.admin, '/v1/physnets?limit=1')).flat().map((p) => p.name), ['edge', 'fabric']);
    assert.deepEqual((await pages<{ name: string }>(h.admin, '/v1/networks?limit=1')).flat().map((n) => n.name), ['alpha-fab', 'beta-edge']);
    assert.deepEqual((await get<Array<{ name: string }>>(h.admin, '/v1/networks?physnet=edge')).body.map((n) => n.name), ['beta-edge']);
    assert.deepEqual((await get<Array<{ name: string }>>(alpha, '/v1/networks?tenant=beta')).body, []);
    const tokens = (await pages<{ id: string }>(h.admin, '/v1/tokens?limit=1')).flat();
    assert.equal(tokens.length, (await h.store.tx.listTokens()).length);
    const events = (await pages<{ seq: number }>(h.admin, '/v1/events?limit=4')).flat().map((e) => e.seq);
    assert.deepEqual(events, (await h.store.tx.listEvents({})).map((e) => e.seq));
    const later = (await pages<{ seq: number }>(h.admin, `/v1/events?after=${events[2]}&limit=2`)).flat().map((e) => e.seq);
    assert.deepEqual(later, events.slice(3));
    assert.deepEqual(await pages(h.admin, '/v1/migrations?limit=1'), [[]]);
  });
});
