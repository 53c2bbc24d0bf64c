/**
 * /metrics, family by family (src/api/metrics/): each against what the API
 * says of the same thing, over a real controller on SQLite.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AgentTally } from '../../src/agent/counters.js';
import { AllocationCounts } from '../../src/api/metrics/allocations.js';
import { IsolationFindings } from '../../src/api/metrics/isolation.js';
import { ChangeFeed } from '../../src/controller/change-feed.js';
import { AgentCounterBook } from '../../src/controller/agent-counters.js';
import type { HostSummary } from '../../src/controller/host-summaries.js';
import { RECONCILE_BUCKETS_S, zeroTotals, type AgentCounters } from '../../src/domain/agent-counters.js';
import type { Allocation } from '../../src/domain/types.js';
import type { HostInventory } from '../../src/host/model.js';
import { expectStatus, inventoryOf, policyOf, startApi, type ApiHarness } from '../helpers/api-harness.js';
import { parseProm, samplesOf, value } from '../helpers/prom-text.js';

const scrape = async (h: ApiHarness) => (await expectStatus(h.call<null>(null, 'GET', '/metrics'), 200)).text;

const counters = (run: string, over: Partial<AgentCounters> = {}): AgentCounters => ({ run, ...zeroTotals(), ...over });

/** Cumulative buckets for passes of these durations (seconds). */
function bucketsOf(durations: number[]): number[] {
  return RECONCILE_BUCKETS_S.map((bound) => durations.filter((d) => d <= bound).length);
}

describe('/metrics: the fleet, from memory', () => {
  let h: ApiHarness;
  let agent: string;

  before(async () => {
    h = await startApi();
    agent = await h.token('agent:host-a');
    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'acme' }), 201);
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-a/policy', { document: policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]) }), 200);
    // ens2f0's link is down: no speed, so no capacity, and no guarantee goes there.
    const inventory = inventoryOf('host-a');
    inventory.pfs[1]!.linkState = 'down';
    inventory.pfs[1]!.linkSpeedMbps = null;
    await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventory }), 200);
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'capped', tenant: 'acme', physnet: 'fabric', vlan: 10, minTxRateMbps: 10_000, maxTxRateMbps: 25_000 }), 201);
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'open', tenant: 'acme', physnet: 'fabric', vlan: 11 }), 201);
    for (const [i, network] of ['capped', 'capped', 'open'].entries()) {
      await expectStatus(h.call(h.admin, 'POST', '/v1/allocations', { network, workload: { kind: 'vm', name: `vm-${i}` } }), 201);
    }
  });
  after(() => h.close());

  it('gives per PF the link, capacity and committed min and max rates, as GET /v1/hosts has them', async () => {
    const text = await scrape(h);
    const [summary] = (await expectStatus(h.call<HostSummary[]>(h.admin, 'GET', '/v1/hosts'), 200)).body;
    const pf = (name: string) => ({ host: 'host-a', pf: name });
    assert.equal(value(text, 'vfleet_pf_link_up', pf('ens1f0')), 1);
    assert.equal(value(text, 'vfleet_pf_link_up', pf('ens2f0')), 0);
    assert.equal(value(text, 'vfleet_pf_link_speed_mbps', pf('ens2f0')), undefined);
    for (const s of summary!.pfs) {
      assert.equal(value(text, 'vfleet_pf_committed_min_rate_mbps', pf(s.name)), s.committedMbps, s.name);
      assert.equal(value(text, 'vfleet_pf_capacity_mbps', pf(s.name)), s.capacityMbps ?? undefined, s.name);
      assert.equal(value(text, 'vfleet_vfs', { ...pf(s.name), state: 'allocated' }), s.vfs.allocated, s.name);
      assert.equal(value(text, 'vfleet_vfs', { ...pf(s.name), state: 'free' }), s.vfs.free, s.name);
    }
    // Both capped allocations carry a guarantee, so both are on ens1f0 (the only PF with a link speed): 2 × 25,000.
    assert.equal(value(text, 'vfleet_pf_committed_min_rate_mbps', pf('ens1f0')), 20_000);
    const maxRates = samplesOf(text, 'vfleet_pf_committed_max_rate_mbps');
    assert.equal(maxRates.reduce((sum, s) => sum + s.value, 0), 50_000, 'the uncapped allocation adds nothing');
    assert.equal(value(text, 'vfleet_pf_committed_max_rate_mbps', pf('ens1f0')), 50_000);
  });

  it('counts hosts by state and gives each host its heartbeat age', async () => {
    const text = await scrape(h);
    assert.equal(value(text, 'vfleet_hosts', { state: 'ready' }), 1);
    assert.equal(value(text, 'vfleet_hosts', { state: 'unreachable' }), 0);
    const age = value(text, 'vfleet_host_heartbeat_age_seconds', { host: 'host-a' });
    assert.ok(age !== undefined && age >= 0, `heartbeat age ${age}`);
  });

  it('counts allocations by state as the API lists them, holding states and failed, never released', async () => {
    const list = async () => (await expectStatus(h.call<Allocation[]>(h.admin, 'GET', '/v1/allocations'), 200)).body;
    const [a, b] = await list();
    await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a'), statuses: [{ id: a!.id, state: 'failed', reason: 'test' }] }), 200);
    await expectStatus(h.call(h.admin, 'DELETE', `/v1/allocations/${b!.id}`), 200);
    const text = await scrape(h);
    const all = await list();
    for (const state of ['pending', 'configured', 'attached', 'releasing', 'failed']) {
      assert.equal(value(text, 'vfleet_allocations', { state }), all.filter((x) => x.state === state).length, state);
    }
    assert.equal(value(text, 'vfleet_allocations', { state: 'failed' }), 1);
    assert.equal(value(text, 'vfleet_allocations', { state: 'releasing' }), 1);
    assert.equal(value(text, 'vfleet_allocations', { state: 'released' }), undefined);
  });

  it('reads allocations from the store again only after a change (or a minute)', async () => {
    let reads = 0;
    const feed = new ChangeFeed();
    let now = 0;
    const ctx = { feed, reads: { listAllocations: async () => (reads++, [] as Allocation[]) } } as unknown as ConstructorParameters<typeof AllocationCounts>[0];
    const counts = new AllocationCounts(ctx, () => now);
    await counts.current();
    await counts.current();
    assert.equal(reads, 2, 'one read: holding and failed');
    feed.bump('host-a');
    await counts.current();
    assert.equal(reads, 4);
    now += 60_000;
    await counts.current();
    assert.equal(reads, 6);
  });

  it('names no allocation, workload or tenant in any label', async () => {
    const ids = new Set((await expectStatus(h.call<Allocation[]>(h.admin, 'GET', '/v1/allocations'), 200)).body.flatMap((a) => [a.id, a.workload.name]));
    for (const s of parseProm(await scrape(h))) for (const v of Object.values(s.labels)) assert.ok(!ids.has(v), `${s.name} has label value ${v}`);
  });
});

describe('/metrics: the agents’ counters', () => {
  let h: ApiHarness;
  let agent: string;
  const report = (c: unknown, status = 200) => expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a'), counters: c }), status);

  before(async () => {
    h = await startApi();
    agent = await h.token('agent:host-a');
  });
  after(() => h.close());

  it('exposes a reconcile histogram and drift, orphan, repair and error counters per host', async () => {
    await report(counters('run-1', { reconcileBuckets: bucketsOf([0.02, 3]), reconcileCount: 2, reconcileSeconds: 3.02, driftRepaired: 4, orphansScrubbed: 1, repairs: 2, reconcileErrors: 1 }));
    const text = await scrape(h);
    const host = { host: 'host-a' };
    assert.equal(value(text, 'vfleet_agent_reconcile_duration_seconds_bucket', { ...host, le: '0.01' }), 0);
    assert.equal(value(text, 'vfleet_agent_reconcile_duration_seconds_bucket', { ...host, le: '0.05' }), 1);
    assert.equal(value(text, 'vfleet_agent_reconcile_duration_seconds_bucket', { ...host, le: '5' }), 2);
    assert.equal(value(text, 'vfleet_agent_reconcile_duration_seconds_bucket', { ...host, le: '+Inf' }), 2);
    assert.equal(value(text, 'vfleet_agent_reconcile_duration_seconds_count', host), 2);
    assert.equal(value(text, 'vfleet_agent_reconcile_duration_seconds_sum', host), 3.02);
    assert.equal(value(text, 'vfleet_agent_drift_repaired_total', host), 4);
    assert.equal(value(text, 'vfleet_agent_orphans_scrubbed_total', host), 1);
    assert.equal(value(text, 'vfleet_agent_repairs_total', host), 2);
    assert.equal(value(text, 'vfleet_agent_reconcile_errors_total', host), 1);
  });

  it('carries a restarted agent’s earlier totals over, so the counters never go back', async () => {
    const host = { host: 'host-a' };
    const start = await scrape(h);
    const drift0 = value(start, 'vfleet_agent_drift_repaired_total', host)!;
    const passes0 = value(start, 'vfleet_agent_reconcile_duration_seconds_count', host)!;
    await report(counters('run-2', { driftRepaired: 5 }));
    assert.equal(value(await scrape(h), 'vfleet_agent_drift_repaired_total', host), drift0 + 5);
    // The same report again (a retry) counts nothing twice.
    await report(counters('run-2', { driftRepaired: 5 }));
    await report(counters('run-3', { driftRepaired: 1, reconcileBuckets: bucketsOf([0.2]), reconcileCount: 1, reconcileSeconds: 0.2 }));
    const text = await scrape(h);
    assert.equal(value(text, 'vfleet_agent_drift_repaired_total', host), drift0 + 6);
    assert.equal(value(text, 'vfleet_agent_reconcile_duration_seconds_count', host), passes0 + 1);
    assert.equal(value(text, 'vfleet_agent_reconcile_duration_seconds_bucket', { ...host, le: '0.5' }), value(start, 'vfleet_agent_reconcile_duration_seconds_bucket', { ...host, le: '0.5' })! + 1);
  });

  it('refuses counters a histogram cannot be built from, applying nothing of the report', async () => {
    const before = await scrape(h);
    const r = await report(counters('run-4', { reconcileBuckets: bucketsOf([3]).reverse(), reconcileCount: 1, reconcileSeconds: 3, driftRepaired: 99 }), 400);
    assert.match(r.text, /counters\.reconcileBuckets must be cumulative/);
    await report({ ...counters('run-4'), reconcileBuckets: [0] }, 400);
    await report({ ...counters('run-4'), extra: 1 }, 400);
    assert.equal(value(await scrape(h), 'vfleet_agent_drift_repaired_total', { host: 'host-a' }), value(before, 'vfleet_agent_drift_repaired_total', { host: 'host-a' }));
  });

  it('an agent counts its passes (AgentTally), and the book carries runs over', () => {
    const tally = new AgentTally('r');
    tally.passed({ events: [{ action: 'drift.repaired', object: 'allocation/x', detail: '' }, { action: 'orphan.scrubbed', object: 'vf', detail: '' }], errors: ['policy'] }, 0.07);
    tally.passed({ events: [{ action: 'allocation.recovered', object: 'allocation/y', detail: '' }], errors: [] }, null);
    const snap = tally.snapshot();
    assert.deepEqual([snap.reconcileCount, snap.driftRepaired, snap.orphansScrubbed, snap.repairs, snap.reconcileErrors], [1, 1, 1, 1, 1]);
    assert.deepEqual(snap.reconcileBuckets, bucketsOf([0.07]));
    const book = new AgentCounterBook();
    book.record('h', snap);
    // Counters that went back under the same run are a restart too.
    book.record('h', { ...snap, driftRepaired: 0 });
    assert.equal([...book.totals()][0]![1].driftRepaired, 1);
    book.forget('h');
    assert.equal([...book.totals()].length, 0);
  });
});

describe('/metrics: isolation findings, refusals, build info, defaults', () => {
  let h: ApiHarness;
  let agent: string;

  before(async () => {
    h = await startApi({ version: '1.2.3' });
    agent = await h.token('agent:host-a');
    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'acme' }), 201);
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-a/policy', { document: policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]) }), 200);
    // Two unallocated VFs left configured (a teardown that never ran), one of them trusted with spoof checking off.
    const inventory: HostInventory = inventoryOf('host-a');
    Object.assign(inventory.pfs[0]!.vfs[2]!, { mac: '02:00:00:00:00:aa', vlan: 42 });
    Object.assign(inventory.pfs[0]!.vfs[3]!, { mac: '02:00:00:00:00:bb', vlan: 43, trust: true, spoofChk: false });
    await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventory }), 200);
  });
  after(() => h.close());

  it('counts isolation findings by kind, as sriovctl audit isolation finds them', async () => {
    const text = await scrape(h);
    const audit = (await expectStatus(h.call<{ violations: Array<{ kind: string }> }>(h.admin, 'GET', '/v1/audit/isolation'), 200)).body;
    for (const kind of ['shared-vlan', 'duplicate-mac', 'trust-without-spoofchk', 'unallocated-config', 'drift']) {
      assert.equal(value(text, 'vfleet_isolation_findings', { kind }), audit.violations.filter((v) => v.kind === kind).length, kind);
    }
    assert.equal(value(text, 'vfleet_isolation_findings', { kind: 'unallocated-config' }), 2);
    assert.equal(value(text, 'vfleet_isolation_findings', { kind: 'trust-without-spoofchk' }), 1);
    assert.ok((value(text, 'vfleet_isolation_audit_timestamp_seconds') ?? 0) > 0);
  });

  it('runs the audit again in the background once its result is older than the maximum age', async () => {
    let now = 1_000_000;
    let runs = 0;
    const ctx = h.control.ctx;
    const counting = { ...ctx, store: { ...ctx.store, tx: new Proxy(ctx.store.tx, { get: (t, k) => (k === 'listHosts' ? () => (runs++, t.listHosts()) : Reflect.get(t, k)) }) } };
    const findings = new IsolationFindings(counting, 60_000, () => now);
    const [first, second] = await Promise.all([findings.current(), findings.current()]);
    assert.equal(first, second, 'one audit for two scrapes at once');
    now += 59_999;
    assert.equal(await findings.current(), first);
    assert.equal(runs, 1);
    now += 1;
    // Stale: answered from the last audit while the next one runs.
    assert.equal(await findings.current(), first);
    await findings.idle();
    assert.equal(runs, 2);
    assert.equal((await findings.current()).at, now);
  });

  it('counts the API’s NO_CAPACITY refusals of a VF by the scheduler’s reason', async () => {
    const refusals = async () => samplesOf(await scrape(h), 'vfleet_scheduler_refusals_total');
    const before = await refusals();
    assert.ok(before.length >= 12 && before.every((s) => s.value === 0), 'every reason is listed from the start, at 0');
    // A physnet no PF is on: a node policy of a host that never reported names it.
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-z/policy', { document: policyOf([['empty', 'ens1f0', 'empty']]) }), 200);
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'nowhere', tenant: 'acme', physnet: 'empty', vlan: 5 }), 201);
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'huge', tenant: 'acme', physnet: 'fabric', vlan: 6, minTxRateMbps: 60_000 }), 201);
    const allocate = (network: string, name: string) => h.call(h.admin, 'POST', '/v1/allocations', { network, workload: { kind: 'vm', name } });
    await expectStatus(allocate('nowhere', 'w1'), 409, 'NO_CAPACITY');
    await expectStatus(allocate('huge', 'w2'), 201);
    await expectStatus(allocate('huge', 'w3'), 201);
    // Two PFs of 100 Gbps, each with 60 Gbps committed: a third 60 Gbps guarantee fits nowhere.
    const refused = await expectStatus(allocate('huge', 'w4'), 409, 'NO_CAPACITY');
    assert.equal((refused.body as unknown as { error: { data: { reason: string } } }).error.data.reason, 'headroom');
    const after = await refusals();
    const count = (reason: string) => after.find((s) => s.labels.reason === reason)?.value;
    assert.deepEqual([count('no-pf'), count('headroom'), count('full'), count('other')], [1, 1, 0, 0]);
  });

  it('says which vfleet runs, and keeps only the default metrics it chose (none promtool flags)', async () => {
    const samples = parseProm(await scrape(h));
    const info = samples.find((s) => s.name === 'vfleet_build_info');
    assert.deepEqual(info?.labels, { version: '1.2.3', node: 'ctl-1', store: 'sqlite', nodejs: process.version });
    assert.equal(info?.value, 1);
    const names = new Set(samples.map((s) => s.name));
    for (const gone of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total', 'nodejs_heap_space_size_used_bytes']) assert.ok(!names.has(gone), gone);
    for (const kept of ['nodejs_active_handles', 'process_cpu_seconds_total', 'process_resident_memory_bytes']) assert.ok(names.has(kept), kept);
  });
});
