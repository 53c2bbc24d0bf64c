/**
 * The routes the console's operating pages added: the fleet overview
 * (`GET /v1/overview`, from memory, staff) and a node policy's plan
 * (`POST /v1/hosts/:name/policy/plan`, a dry run of the PUT, staff).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { expectStatus, inventoryOf, newToken, policyOf, startApi, type ApiHarness } from '../helpers/api-harness.js';

interface Overview {
  hosts: { total: number; ready: number; unreachable: number; withDrainedPfs: number };
  drainedPfs: number;
  vfs: { total: number; allocated: number; free: number; unschedulable: number; failed: number };
  physnets: Array<{ name: string; hosts: number; pfs: number; committedMbps: number; capacityMbps: number; vfs: { allocated: number; total: number } }>;
  unreachableHosts: Array<{ name: string }>;
  drained: Array<{ host: string; pf: string }>;
  failedAllocations: Array<{ id: string; reason: string | null; workload: { name: string } }>;
  truncated: boolean;
}

interface Plan {
  host: string;
  changes: boolean;
  lines: string[];
  pfs: Array<{ pf: string; numVfs: { from: number; to: number } | null; mtu: { from: number | null; to: number } | null }>;
}

describe('console routes: overview and policy plan', () => {
  let h: ApiHarness;
  let agent: string;
  let tenant: string;
  const policy = policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]);

  before(async () => {
    h = await startApi();
    agent = (await newToken(h, 'agent:host-a')).token;
    await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a') }), 200);
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-a/policy', { document: policy }), 200);
    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'alpha' }), 201);
    tenant = (await newToken(h, 'tenant:alpha')).token;
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'alpha-net', tenant: 'alpha', physnet: 'fabric', vlan: 100, minTxRateMbps: 1000 }), 201);
  });
  after(() => h.close());

  it('sums the fleet from memory: hosts, VFs, guarantees per physnet, drained PFs and failed allocations', async () => {
    const held = (await expectStatus(h.call<{ id: string }>(h.admin, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'container', name: 'ok-1' } }), 201)).body;
    const failing = (await expectStatus(h.call<{ id: string }>(h.admin, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'container', name: 'bad-1' } }), 201)).body;
    await expectStatus(
      h.call(agent, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a'), statuses: [{ id: failing.id, state: 'failed', reason: 'net1 already exists' }] }),
      200,
    );
    await expectStatus(h.call(h.admin, 'POST', '/v1/hosts/host-a/pfs/ens2f0/drain'), 200);
    const o = (await expectStatus(h.call<Overview>(h.admin, 'GET', '/v1/overview'), 200)).body;
    assert.deepEqual(o.hosts, { total: 1, ready: 1, unreachable: 0, withDrainedPfs: 1 });
    assert.equal(o.drainedPfs, 1);
    assert.deepEqual(o.drained.map((d) => `${d.host}/${d.pf}`), ['host-a/ens2f0']);
    assert.equal(o.vfs.total, 8);
    assert.equal(o.vfs.allocated, 1, 'the failed one freed its VF');
    assert.equal(o.vfs.failed, 1);
    assert.deepEqual(o.failedAllocations.map((a) => [a.id, a.workload.name, a.reason]), [[failing.id, 'bad-1', 'net1 already exists']]);
    assert.equal(o.physnets.length, 1);
    assert.equal(o.physnets[0]!.name, 'fabric');
    assert.equal(o.physnets[0]!.pfs, 2);
    assert.equal(o.physnets[0]!.committedMbps, 1000);
    assert.ok(o.physnets[0]!.capacityMbps >= 100_000);
    assert.equal(o.truncated, false);
    // Matches the host summaries it is built from.
    const [summary] = (await expectStatus(h.call<Array<{ vfs: { allocated: number } }>>(h.admin, 'GET', '/v1/hosts'), 200)).body;
    assert.equal(summary!.vfs.allocated, o.vfs.allocated);
    await expectStatus(h.call(h.admin, 'POST', '/v1/hosts/host-a/pfs/ens2f0/undrain'), 200);
    await expectStatus(h.call(h.admin, 'DELETE', `/v1/allocations/${held.id}`), 200);
    await expectStatus(h.call(h.admin, 'DELETE', `/v1/allocations/${failing.id}`), 200);
  });

  it('is staff-only: a tenant and an agent are refused', async () => {
    await expectStatus(h.call(tenant, 'GET', '/v1/overview'), 403, 'FORBIDDEN');
    await expectStatus(h.call(agent, 'GET', '/v1/overview'), 403, 'FORBIDDEN');
  });

  it('plans a policy as a diff without storing it', async () => {
    const next = policy.replace('numVfs: 4', 'numVfs: 4\n    mtu: 9000');
    const plan = (await expectStatus(h.call<Plan>(h.admin, 'POST', '/v1/hosts/host-a/policy/plan', { document: next }), 200)).body;
    assert.equal(plan.changes, true);
    assert.ok(plan.lines.some((l) => /ens1f0 .*← policy fabric/.test(l)), plan.lines.join('\n'));
    assert.ok(plan.lines.some((l) => /~ mtu: 1500 → 9000/.test(l)), plan.lines.join('\n'));
    assert.deepEqual(plan.pfs.map((p) => p.mtu), [{ from: 1500, to: 9000 }, { from: 1500, to: 9000 }]);
    assert.deepEqual(plan.pfs.map((p) => p.numVfs), [null, null]);
    const stored = (await expectStatus(h.call<{ document: string }>(h.admin, 'GET', '/v1/hosts/host-a/policy'), 200)).body;
    assert.equal(stored.document, policy);
  });

  it('refuses what the PUT would refuse, the same way: a VF count that recreates held VFs, a bad document, a tenant', async () => {
    const held = (await expectStatus(h.call<{ id: string; pf: string }>(h.admin, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'container', name: 'hold-1' } }), 201)).body;
    const more = policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']], 2);
    const busy = await expectStatus(h.call(h.admin, 'POST', '/v1/hosts/host-a/policy/plan', { document: more }), 409, 'BUSY');
    assert.match(busy.text, /hold-1/);
    await expectStatus(h.call(h.admin, 'POST', '/v1/hosts/host-a/policy/plan', { document: 'policies: [{name: x}]' }), 400, 'INVALID_ARGUMENT');
    await expectStatus(h.call(h.admin, 'POST', '/v1/hosts/no-such-host/policy/plan', { document: policy }), 404, 'NOT_FOUND');
    await expectStatus(h.call(tenant, 'POST', '/v1/hosts/host-a/policy/plan', { document: policy }), 403, 'FORBIDDEN');
    await expectStatus(h.call(h.admin, 'DELETE', `/v1/allocations/${held.id}`), 200);
  });
});
