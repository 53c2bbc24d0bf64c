// Heartbeats that cost nothing: a report without inventory, whose hash the
// controller accepted last, writes touchHost and nothing else; one whose hash
// it does not know is answered 409 inventoryNeeded with nothing written, and
// the agent sends it again whole (its inventory changed, or its record has
// no hash). Over the API, and through real agents in process. A fresh
// controller on a stored hash: stored-inventory-hash.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import { InProcessLink } from '../../src/agent/link.js';
import { isInventoryNeeded, Reporter } from '../../src/agent/reporter.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { AgentReport } from '../../src/controller/hosts.js';
import type { Actor } from '../../src/domain/actor.js';
import { SriovError } from '../../src/host/errors.js';
import { inventoryHash } from '../../src/host/inventory-hash.js';
import { SriovHost } from '../../src/host/configurator.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { expectStatus, inventoryOf, startApi, type ApiHarness } from '../helpers/api-harness.js';
import { eventually } from '../helpers/daemon.js';
import { watchWrites } from '../helpers/store-writes.js';

/** The in-process caller that may report for any host (the daemon's own agent, tools). */
const LOCAL: Actor = { id: 'local', role: 'admin' };
const AGENT: Actor = { id: 'local', role: 'agent:host-a' };

/** Every StoreTx write (method name) made through `store`, in or out of transactions. */
const recordWrites = (store: Store, writes: string[]): Store => watchWrites(store, (method) => writes.push(method));

const inventoryNeeded = (e: unknown) => isInventoryNeeded(e) && e instanceof SriovError && e.details.nothingChanged === true;

describe('liveness-only reports (controller)', () => {
  let dir: string;
  let store: Store;
  let control: ControlPlane;
  const writes: string[] = [];
  const inventory = inventoryOf('host-a');
  const hash = inventoryHash(inventory);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-heartbeat-'));
    store = await openSqliteStore(dir);
    // Every liveness report written, as on etcd; SQLite's default writes an idle host's heartbeat once a minute (tested below).
    control = await ControlPlane.open(recordWrites(store, writes), { heartbeatTimeoutMs: 30_000, heartbeatWriteMs: 0 });
    writes.length = 0;
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes only touchHost for a known hash: the inventory stays, the heartbeat moves', async () => {
    await control.hosts.receive(AGENT, { inventory, inventoryHash: hash });
    assert.ok(writes.includes('putHost'), 'the first report is written whole');
    const first = await store.tx.getHost('host-a');
    writes.length = 0;
    await new Promise((r) => setTimeout(r, 5));
    const answer = await control.hosts.receive(AGENT, { inventoryHash: hash });
    assert.deepEqual(answer, { name: 'host-a', state: 'ready' });
    assert.deepEqual(writes, ['touchHost'], 'no putHost, no event');
    const now = await store.tx.getHost('host-a');
    assert.deepEqual(now!.inventory, first!.inventory);
    assert.equal(now!.updatedAt, first!.updatedAt);
    assert.ok(now!.lastHeartbeat! > first!.lastHeartbeat!, `heartbeat ${now!.lastHeartbeat} after ${first!.lastHeartbeat}`);
  });

  it('answers an unknown hash 409 inventoryNeeded, writing nothing and applying none of the report', async () => {
    await control.hosts.receive(AGENT, { inventory, inventoryHash: hash });
    const before = await store.tx.getHost('host-a');
    writes.length = 0;
    const other = inventoryHash(inventoryOf('host-a', 2));
    const status = { id: 'no-such-allocation', state: 'attached' as const };
    await assert.rejects(control.hosts.receive(AGENT, { inventoryHash: other, statuses: [status] }), (e: unknown) => {
      assert.ok(inventoryNeeded(e), String(e));
      assert.match((e as Error).message, /^report for host host-a came without inventory, and its inventory hash \w{12} is not the last one accepted .*: send it again with the inventory$/);
      return true;
    });
    assert.deepEqual(writes, []);
    assert.deepEqual(await store.tx.getHost('host-a'), before);
  });

  it('a restarted controller takes liveness reports at once: the hash is in the stored record', async () => {
    await control.hosts.receive(AGENT, { inventory, inventoryHash: hash });
    const restarted = await ControlPlane.open(recordWrites(store, writes), { heartbeatTimeoutMs: 30_000, heartbeatWriteMs: 0 });
    writes.length = 0;
    await restarted.hosts.receive(AGENT, { inventoryHash: hash });
    assert.deepEqual(writes, ['touchHost']);
  });

  it('brings an unreachable host back with a liveness report: state, event and scheduling', async () => {
    await control.hosts.receive(AGENT, { inventory, inventoryHash: hash });
    assert.deepEqual(await control.hosts.sweep(Date.now() + 31_000), ['host-a']);
    assert.equal((await store.tx.getHost('host-a'))!.state, 'unreachable');
    writes.length = 0;
    await control.hosts.receive(AGENT, { inventoryHash: hash });
    assert.deepEqual(writes, ['touchHost', 'appendEvent']);
    assert.equal((await store.tx.getHost('host-a'))!.state, 'ready');
    const ready = (await store.tx.listEvents({ limit: 1000 })).filter((e) => e.action === 'host.ready');
    assert.deepEqual(ready.map((e) => [e.object, e.before, e.after]), [['host/host-a', 'unreachable', 'ready']]);
    assert.deepEqual(await control.hosts.sweep(Date.now() + 29_000), [], 'a fresh grace period');
  });

  it('asks for the inventory when another live host now reports one of its PFs', async () => {
    await control.hosts.receive(AGENT, { inventory, inventoryHash: hash });
    await control.hosts.sweep(Date.now() + 31_000);
    // The NIC moved: host-b reports host-a's PFs (same PF MACs) while host-a is unreachable.
    const moved = { ...inventoryOf('host-a'), hostname: 'host-b' };
    await control.hosts.receive({ id: 'b', role: 'agent:host-b' }, { inventory: moved, inventoryHash: inventoryHash(moved) });
    writes.length = 0;
    await assert.rejects(control.hosts.receive(AGENT, { inventoryHash: hash }), (e: unknown) => inventoryNeeded(e) && /was reported by host host-b since/.test((e as Error).message));
    assert.deepEqual(writes, []);
    assert.equal((await store.tx.getHost('host-a'))!.state, 'unreachable');
  });

  it('on SQLite writes an idle host’s heartbeat at most every heartbeatWriteMs, but a host coming back at once', async () => {
    const hourly = await ControlPlane.open(recordWrites(store, writes), { heartbeatTimeoutMs: 30_000, heartbeatWriteMs: 3_600_000 });
    await hourly.hosts.receive(AGENT, { inventory, inventoryHash: hash });
    writes.length = 0;
    for (let i = 0; i < 3; i++) assert.deepEqual(await hourly.hosts.receive(AGENT, { inventoryHash: hash }), { name: 'host-a', state: 'ready' });
    assert.deepEqual(writes, [], 'noted in memory only');
    assert.deepEqual(await hourly.hosts.sweep(Date.now() + 29_000), [], 'the sweep counts them');
    await hourly.hosts.sweep(Date.now() + 31_000);
    writes.length = 0;
    await hourly.hosts.receive(AGENT, { inventoryHash: hash });
    assert.deepEqual(writes, ['touchHost', 'appendEvent']);
    assert.equal((await store.tx.getHost('host-a'))!.state, 'ready');
  });

  it('on etcd writes every liveness report: the touch is how the other controllers see the host alive', async () => {
    const etcdLike = new Proxy(recordWrites(store, writes), { get: (target, prop, receiver) => (prop === 'kind' ? 'etcd' : (Reflect.get(target, prop, receiver) as unknown)) });
    const shared = await ControlPlane.open(etcdLike, { heartbeatTimeoutMs: 30_000, heartbeatWriteMs: 3_600_000 });
    await shared.hosts.receive(AGENT, { inventory, inventoryHash: hash });
    writes.length = 0;
    for (let i = 0; i < 3; i++) await shared.hosts.receive(AGENT, { inventoryHash: hash });
    assert.deepEqual(writes, ['touchHost', 'touchHost', 'touchHost']);
  });

  it('takes the hash of a host record that comes through the watch, whoever wrote it; forgets it with a record that has none', async () => {
    await control.hosts.receive(AGENT, { inventory, inventoryHash: hash });
    const own = (await store.tx.getHost('host-a'))!;
    control.hosts.hostChanged('host-a', { ...own, updatedAt: new Date(Date.now() + 1000).toISOString() });
    await control.hosts.receive(AGENT, { inventoryHash: hash });
    const other = inventoryHash(inventoryOf('host-a', 2));
    control.hosts.hostChanged('host-a', { ...own, inventoryHash: other });
    await assert.rejects(control.hosts.receive(AGENT, { inventoryHash: hash }), inventoryNeeded);
    await control.hosts.receive(AGENT, { inventoryHash: other });
    const { inventoryHash: _, ...unhashed } = own;
    control.hosts.hostChanged('host-a', unhashed);
    await assert.rejects(control.hosts.receive(AGENT, { inventoryHash: other }), inventoryNeeded);
  });

  it('refuses a report without inventory that names no host or no hash, or a host that disagrees with the inventory', async () => {
    await assert.rejects(control.hosts.receive(LOCAL, { inventoryHash: hash }), { code: 'INVALID_ARGUMENT', message: 'a report without "inventory" names its host in field "host"' });
    await assert.rejects(control.hosts.receive(AGENT, {}), { code: 'INVALID_ARGUMENT', message: /needs "inventoryHash"/ });
    await assert.rejects(control.hosts.receive(AGENT, { host: 'host-b', inventoryHash: hash }), { code: 'FORBIDDEN' });
    await assert.rejects(control.hosts.receive(LOCAL, { host: 'host-b', inventory, inventoryHash: hash }), { code: 'INVALID_ARGUMENT', message: /field "host" is host-b but the inventory's hostname is host-a/ });
    assert.deepEqual(writes, []);
  });
});

describe('the agent side of the exchange (Reporter)', () => {
  const inventory = inventoryOf('host-a');

  it('sends the inventory once, then only its hash; whole again when it changed or when asked', async () => {
    const sent: AgentReport[] = [];
    let known: string | null = null;
    const reporter = new Reporter(async (r) => {
      sent.push(r);
      if (r.inventory) known = r.inventoryHash!;
      else if (r.inventoryHash !== known) throw new SriovError('CONFLICT', 'who?', { data: { inventoryNeeded: true } });
    });
    const kinds = () => sent.splice(0).map((r) => (r.inventory ? 'whole' : 'hash'));
    await reporter.report(inventory, []);
    await reporter.report(inventory, [{ id: 'a', state: 'attached' }]);
    assert.deepEqual(kinds(), ['whole', 'hash']);
    const changed = inventoryOf('host-a', 7);
    await reporter.report(changed, []);
    assert.deepEqual(kinds(), ['whole']);
    known = null; // the controller restarted
    await reporter.report(changed, [{ id: 'a', state: 'released' }]);
    assert.deepEqual(sent.map((r) => [r.inventory ? 'whole' : 'hash', r.statuses]), [
      ['hash', [{ id: 'a', state: 'released' }]],
      ['whole', [{ id: 'a', state: 'released' }]],
    ]);
    assert.ok(sent.every((r) => r.inventoryHash === inventoryHash(changed)));
  });

  it('passes other refusals on, and sends whole after a failed whole report', async () => {
    const sent: AgentReport[] = [];
    let fail: Error | null = new SriovError('INVALID_ARGUMENT', 'bad inventory');
    const reporter = new Reporter(async (r) => {
      sent.push(r);
      if (fail) throw fail;
    });
    await assert.rejects(reporter.report(inventory, []), { message: 'bad inventory' });
    fail = null;
    await reporter.report(inventory, []);
    assert.deepEqual(sent.map((r) => !!r.inventory), [true, true]);
  });

  it('hashes the inventory JSON with sha256', () => {
    assert.match(inventoryHash(inventory), /^[0-9a-f]{64}$/);
    assert.equal(inventoryHash(inventory), inventoryHash(structuredClone(inventory)), 'equal inventories, equal hashes');
    assert.notEqual(inventoryHash(inventory), inventoryHash(inventoryOf('host-a', 2)));
  });
});

describe('an idle agent in process writes its inventory once', { timeout: 60_000 }, () => {
  let dir: string;
  let store: Store;
  let agent: Agent;
  const writes: string[] = [];

  after(async () => {
    await agent.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('heartbeats are touchHost alone while the host does not change', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-heartbeat-agent-'));
    await initSimHost(join(dir, 'host.json'), { profile: 'ice', pfs: 2, hostname: 'sim-a' });
    store = await openSqliteStore(join(dir, 'data'));
    const control = await ControlPlane.open(recordWrites(store, writes), { heartbeatWriteMs: 0 });
    const host = new SriovHost(createSimPorts(join(dir, 'host.json')));
    // A whole-host pass on every heartbeat: it reads the inventory again each time, which must hash the same.
    agent = new Agent(host, new InProcessLink(control, { id: 'local', role: 'agent:sim-a' }), { heartbeatMs: 50, resyncMs: 1 });
    agent.start();
    await eventually('ten heartbeats', 20_000, async () => (writes.filter((w) => w === 'touchHost').length >= 10 ? true : undefined));
    assert.equal(writes.filter((w) => w === 'putHost').length, 1, writes.join(' '));
    assert.ok(writes.every((w) => w === 'putHost' || w === 'touchHost' || w === 'appendEvent'), writes.join(' '));
    assert.equal((await store.tx.getHost('sim-a'))!.state, 'ready');
  });
});

describe('POST /v1/agent/report', () => {
  let h: ApiHarness;
  let agent: string;
  const inventory = inventoryOf('host-a');
  const hash = inventoryHash(inventory);

  before(async () => {
    h = await startApi();
    agent = await h.token('agent:host-a');
  });
  after(() => h.close());

  it('takes a report with its inventory, then one with the hash alone', async () => {
    const whole = await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventory, inventoryHash: hash }), 200);
    assert.deepEqual(whole.body, { host: 'host-a', state: 'ready' });
    const live = await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventoryHash: hash, statuses: [] }), 200);
    assert.deepEqual(live.body, { host: 'host-a', state: 'ready' });
  });

  it('answers an unknown hash 409 CONFLICT with data.inventoryNeeded', async () => {
    const r = await expectStatus(h.call<{ error: { code: string; data?: { inventoryNeeded?: boolean }; object?: string } }>(agent, 'POST', '/v1/agent/report', { inventoryHash: 'a'.repeat(64) }), 409, 'CONFLICT');
    assert.deepEqual([r.body.error.data, r.body.error.object], [{ inventoryNeeded: true }, 'host-a']);
  });

  it('refuses a malformed hash, and a report with neither inventory nor hash, naming the field', async () => {
    const bad = await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventoryHash: 'ABC' }), 400, 'INVALID_ARGUMENT');
    assert.match(bad.body.error.message, /inventoryHash/);
    const none = await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { statuses: [] }), 400, 'INVALID_ARGUMENT');
    assert.match(none.body.error.message, /needs "inventoryHash"/);
  });
});
