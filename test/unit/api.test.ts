/**
 * The HTTP API end to end: a real server on a loopback port over a real
 * SQLite store, driven with fetch as each role would drive it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DesiredState } from '../../src/controller/desired-state.js';
import type { HostSummary } from '../../src/controller/host-summaries.js';
import type { Allocation, AuditEvent, HostRecord, Network } from '../../src/domain/types.js';
import type { HostInventory } from '../../src/host/model.js';
import { expectStatus, startApi, type ApiHarness, type ErrorBody, type Reply } from '../helpers/api-harness.js';
import { makeHost } from '../helpers/inventory.js';

let h: ApiHarness;

const call = <T = ErrorBody>(token: string | null, method: string, path: string, body?: unknown) => h.call<T>(token, method, path, body);

const tokens = { operator: '', alpha: '', beta: '', agentA: '', agentB: '' };

async function newToken(role: string): Promise<string> {
  const r = await call<{ token: string; role: string }>(h.admin, 'POST', '/v1/tokens', { role });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.role, role);
  return r.body.token;
}

/** Two PFs of four VFs, on NUMA nodes 0 and 1: ens1f0 (0000:10:00.0) and ens2f0 (0000:11:00.0). */
const inventoryOf = (name: string): HostInventory => makeHost({ name, pfs: 2, vfs: 4, numaNodes: 2, driver: 'ice', linkSpeedMbps: 100_000 }).inventory;

const policy = (rules: Array<[name: string, pf: string, physnet: string]>) =>
  'policies:\n' + rules.map(([name, pf, physnet]) => `  - name: ${name}\n    selector: { pfNames: [${pf}] }\n    numVfs: 4\n    physnet: ${physnet}\n`).join('');


async function allocate(token: string, network: string, workload: string): Promise<Reply<Allocation & ErrorBody>> {
  return call<Allocation & ErrorBody>(token, 'POST', '/v1/allocations', { network, workload: { kind: 'vm', name: workload } });
}

async function report(token: string, host: string, statuses: unknown[] = []): Promise<Reply<{ host: string; state: string } & ErrorBody>> {
  return call(token, 'POST', '/v1/agent/report', { inventory: inventoryOf(host), statuses });
}

async function desired(token: string, host: string, query = ''): Promise<Reply<DesiredState & ErrorBody>> {
  return call(token, 'GET', `/v1/agent/desired?host=${host}${query}`);
}

async function networkNames(token: string): Promise<string[]> {
  return (await call<Network[]>(token, 'GET', '/v1/networks')).body.map((n) => n.name).sort();
}

/** Fleet: host-a with both PFs on physnet fabric; host-b with ens1f0 on edge and ens2f0 on bw. */
before(async () => {
  h = await startApi({ version: '9.9.9' });
  await expectStatus(call(h.admin, 'POST', '/v1/tenants', { name: 'alpha' }), 201);
  await expectStatus(call(h.admin, 'POST', '/v1/tenants', { name: 'beta' }), 201);
  tokens.operator = await newToken('operator');
  tokens.alpha = await newToken('tenant:alpha');
  tokens.beta = await newToken('tenant:beta');
  tokens.agentA = await newToken('agent:host-a');
  tokens.agentB = await newToken('agent:host-b');
  // host-a reports first and gets its policy after; host-b the other way round: both must end up labelled.
  await expectStatus(report(tokens.agentA, 'host-a'), 200);
  await expectStatus(call(tokens.operator, 'PUT', '/v1/hosts/host-a/policy', { document: policy([['fabric', 'ens1f0', 'fabric'], ['fabric2', 'ens2f0', 'fabric']]) }), 200);
  await expectStatus(call(h.admin, 'PUT', '/v1/hosts/host-b/policy', { document: policy([['edge', 'ens1f0', 'edge'], ['bw', 'ens2f0', 'bw']]) }), 200);
  await expectStatus(report(tokens.agentB, 'host-b'), 200);
  await expectStatus(call(tokens.operator, 'POST', '/v1/networks', { name: 'alpha-a', tenant: 'alpha', physnet: 'fabric', vlan: 100 }), 201);
});

after(async () => {
  await h.close();
});

describe('api: authentication and public routes', () => {
  it('refuses a missing, malformed or unknown token with 401', async () => {
    await expectStatus(call(null, 'GET', '/v1/networks'), 401, 'UNAUTHENTICATED');
    await expectStatus(call('vfl_not-a-real-token', 'GET', '/v1/networks'), 401, 'UNAUTHENTICATED');
    const basic = await fetch(`${h.base}/v1/networks`, { headers: { authorization: `Basic ${h.admin}` } });
    assert.equal(basic.status, 401);
  });

  it('serves /healthz, /openapi.json and /metrics without a token', async () => {
    assert.deepEqual((await expectStatus(call<{ ok: boolean }>(null, 'GET', '/healthz'), 200)).body, { ok: true });
    const doc = (await expectStatus(call<{ openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } }>(null, 'GET', '/openapi.json'), 200)).body;
    assert.match(doc.openapi, /^3\./);
    for (const path of ['/v1/networks', '/v1/networks/{name}', '/v1/allocations', '/v1/agent/desired', '/v1/hosts/{name}/policy']) assert.ok(doc.paths[path], path);
    for (const schema of ['Network', 'Allocation', 'HostRecord', 'ApiError']) assert.ok(doc.components.schemas[schema], schema);
    const metrics = await expectStatus(call(null, 'GET', '/metrics'), 200);
    assert.match(metrics.text, /^vfleet_hosts\{state="ready"\} 2$/m);
    assert.match(metrics.text, /^vfleet_vfs\{host="host-a",pf="ens1f0",state="free"\} \d+$/m);
    assert.match(metrics.text, /^vfleet_pf_link_speed_mbps\{host="host-b",pf="ens2f0"\} 100000$/m);
    assert.match(metrics.text, /^vfleet_http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} 1$/m);
  });

  it('serves the built console under /ui/, its listed files only, without a token', async () => {
    const page = await expectStatus(call(null, 'GET', '/ui/'), 200);
    assert.match(page.type ?? '', /^text\/html/);
    assert.match(page.text, /vfleet/);
    // A page's own URL gets the same document; the browser routes it.
    assert.equal((await expectStatus(call(null, 'GET', '/ui/hosts/host-a'), 200)).text, page.text);
    // `/` redirects there (fetch follows it).
    assert.equal((await expectStatus(call(null, 'GET', '/'), 200)).text, page.text);
    const script = /src="\/ui\/assets\/([^"]+\.js)"/.exec(page.text)?.[1];
    assert.ok(script, 'index.html loads a script from /ui/assets/');
    assert.match((await expectStatus(call(null, 'GET', `/ui/assets/${script}`), 200)).type ?? '', /^text\/javascript/);
    await expectStatus(call(null, 'GET', '/ui/assets/..%2f..%2fpackage.json'), 404);
    await expectStatus(call(null, 'GET', '/ui/assets/../../package.json'), 404);
  });

  it('tells any token its role in /v1/info', async () => {
    const info = (await expectStatus(call<{ role: string; version: string; controllerHost: string }>(tokens.alpha, 'GET', '/v1/info'), 200)).body;
    assert.deepEqual(info, { version: '9.9.9', controllerHost: 'ctl-1', role: 'tenant:alpha', hostBackend: 'none', demo: false });
    assert.equal((await call<{ role: string }>(tokens.agentA, 'GET', '/v1/info')).body.role, 'agent:host-a');
  });
});

describe('api: roles', () => {
  it('tenants: admin creates and deletes; staff see all; a tenant sees itself; agents nothing', async () => {
    const names = async (token: string) => (await call<Array<{ name: string }>>(token, 'GET', '/v1/tenants')).body.map((t) => t.name).sort();
    assert.deepEqual(await names(h.admin), ['alpha', 'beta']);
    assert.deepEqual(await names(tokens.operator), ['alpha', 'beta']);
    assert.deepEqual(await names(tokens.alpha), ['alpha']);
    await expectStatus(call(tokens.agentA, 'GET', '/v1/tenants'), 403, 'FORBIDDEN');
    await expectStatus(call(tokens.operator, 'POST', '/v1/tenants', { name: 'gamma' }), 403, 'FORBIDDEN');
    await expectStatus(call(tokens.alpha, 'POST', '/v1/tenants', { name: 'gamma' }), 403, 'FORBIDDEN');
    await expectStatus(call(h.admin, 'POST', '/v1/tenants', { name: 'gamma' }), 201);
    await expectStatus(call(h.admin, 'POST', '/v1/tenants', { name: 'gamma' }), 409, 'CONFLICT');
    await expectStatus(call(tokens.operator, 'DELETE', '/v1/tenants/gamma'), 403, 'FORBIDDEN');
    await expectStatus(call(h.admin, 'DELETE', '/v1/tenants/gamma'), 204);
    await expectStatus(call(h.admin, 'DELETE', '/v1/tenants/gamma'), 404, 'NOT_FOUND');
  });

  it('physnets: staff read, only admin changes; created by node policies', async () => {
    const list = (await expectStatus(call<Array<{ name: string }>>(tokens.operator, 'GET', '/v1/physnets'), 200)).body;
    assert.deepEqual(list.map((p) => p.name).sort(), ['bw', 'edge', 'fabric']);
    await expectStatus(call(tokens.alpha, 'GET', '/v1/physnets'), 403, 'FORBIDDEN');
    await expectStatus(call(tokens.agentA, 'GET', '/v1/physnets'), 403, 'FORBIDDEN');
    await expectStatus(call(tokens.operator, 'PUT', '/v1/physnets/fabric', { accountingOnly: true }), 403, 'FORBIDDEN');
    const put = await expectStatus(call<{ name: string; accountingOnly: boolean }>(h.admin, 'PUT', '/v1/physnets/fabric', { accountingOnly: false }), 200);
    assert.deepEqual(put.body, { name: 'fabric', accountingOnly: false, groupsAccountingOnly: false, tenantVlans: [] });
  });

  it('networks: a tenant sees and changes only its own; anyone else’s is 404', async () => {
    assert.deepEqual(await networkNames(tokens.alpha), ['alpha-a']);
    assert.deepEqual(await networkNames(tokens.beta), []);
    await expectStatus(call(tokens.beta, 'GET', '/v1/networks/alpha-a'), 404, 'NOT_FOUND');
    await expectStatus(call(tokens.beta, 'DELETE', '/v1/networks/alpha-a'), 404, 'NOT_FOUND');
    await expectStatus(call(tokens.beta, 'POST', '/v1/networks', { name: 'sneaky', tenant: 'alpha', physnet: 'fabric', vlan: 150 }), 404, 'NOT_FOUND');
    assert.equal((await expectStatus(call<Network>(tokens.operator, 'GET', '/v1/networks/alpha-a'), 200)).body.tenant, 'alpha');
    await expectStatus(call(tokens.agentA, 'GET', '/v1/networks'), 403, 'FORBIDDEN');
    await expectStatus(call(tokens.operator, 'POST', '/v1/networks', { name: 'alpha-tmp', tenant: 'alpha', physnet: 'fabric', vlan: 101 }), 201);
    await expectStatus(call(tokens.alpha, 'DELETE', '/v1/networks/alpha-tmp'), 204);
  });

  it('hosts and policies: staff only; tenants and agents get 403', async () => {
    const hosts = (await expectStatus(call<HostSummary[]>(tokens.operator, 'GET', '/v1/hosts'), 200)).body;
    assert.deepEqual(hosts.map((x) => [x.name, x.state]).sort(), [['host-a', 'ready'], ['host-b', 'ready']]);
    const hostA = (await expectStatus(call<HostRecord>(h.admin, 'GET', '/v1/hosts/host-a'), 200)).body;
    assert.deepEqual(Object.values(hostA.physnets), ['fabric', 'fabric']);
    const pol = (await expectStatus(call<{ host: string; document: string }>(tokens.operator, 'GET', '/v1/hosts/host-b/policy'), 200)).body;
    assert.match(pol.document, /physnet: edge/);
    for (const path of ['/v1/hosts', '/v1/hosts/host-a', '/v1/hosts/host-a/policy']) {
      await expectStatus(call(tokens.alpha, 'GET', path), 403, 'FORBIDDEN');
      await expectStatus(call(tokens.agentA, 'GET', path), 403, 'FORBIDDEN');
    }
    await expectStatus(call(tokens.alpha, 'PUT', '/v1/hosts/host-a/policy', { document: 'policies: []' }), 403, 'FORBIDDEN');
    await expectStatus(call(tokens.operator, 'PUT', '/v1/hosts/host-a/policy', { document: 'policies: [{name: x}]' }), 400, 'INVALID_ARGUMENT');
  });

  it('events and the isolation audit: staff only', async () => {
    await expectStatus(call(tokens.operator, 'GET', '/v1/events?limit=5'), 200);
    const audit = (await expectStatus(call<{ violations: unknown[]; segments: unknown[] }>(tokens.operator, 'GET', '/v1/audit/isolation'), 200)).body;
    assert.deepEqual(audit.violations, []);
    for (const token of [tokens.alpha, tokens.agentA]) {
      await expectStatus(call(token, 'GET', '/v1/events'), 403, 'FORBIDDEN');
      await expectStatus(call(token, 'GET', '/v1/audit/isolation'), 403, 'FORBIDDEN');
    }
  });

  it('tokens: admin only; secrets are never listed', async () => {
    for (const token of [tokens.operator, tokens.alpha, tokens.agentA]) {
      await expectStatus(call(token, 'GET', '/v1/tokens'), 403, 'FORBIDDEN');
      await expectStatus(call(token, 'POST', '/v1/tokens', { role: 'admin' }), 403, 'FORBIDDEN');
    }
    const list = (await expectStatus(call<Array<Record<string, unknown>>>(h.admin, 'GET', '/v1/tokens'), 200)).body;
    assert.ok(list.length >= 6);
    for (const t of list) assert.deepEqual(Object.keys(t).sort(), ['createdAt', 'id', 'role']);
    await expectStatus(call(h.admin, 'POST', '/v1/tokens', { role: 'root' }), 400, 'INVALID_ARGUMENT');
    const temp = (await expectStatus(call<{ id: string; token: string }>(h.admin, 'POST', '/v1/tokens', { role: 'operator' }), 201)).body;
    await expectStatus(call(temp.token, 'GET', '/v1/hosts'), 200);
    await expectStatus(call(h.admin, 'DELETE', `/v1/tokens/${temp.id}`), 204);
    await expectStatus(call(temp.token, 'GET', '/v1/hosts'), 401, 'UNAUTHENTICATED');
  });

  it('agents: report and read desired state only for their own host', async () => {
    await expectStatus(report(tokens.agentA, 'host-b'), 403, 'FORBIDDEN');
    await expectStatus(report(h.admin, 'host-a'), 403, 'FORBIDDEN');
    await expectStatus(report(tokens.alpha, 'host-a'), 403, 'FORBIDDEN');
    await expectStatus(desired(tokens.agentA, 'host-b'), 403, 'FORBIDDEN');
    await expectStatus(desired(tokens.operator, 'host-a'), 403, 'FORBIDDEN');
    const own = (await expectStatus(desired(tokens.agentA, 'host-a'), 200)).body;
    assert.equal(own.host, 'host-a');
    assert.equal(own.policies.length, 1);
  });

  it('agents: a report is checked against the inventory schema', async () => {
    const inventory = inventoryOf('host-a');
    inventory.pfs[0]!.pciAddress = '../../etc';
    await expectStatus(call(tokens.agentA, 'POST', '/v1/agent/report', { inventory }), 400, 'INVALID_ARGUMENT');
    await expectStatus(call(tokens.agentA, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a'), statuses: [{ id: 'x', state: 'bogus' }] }), 400, 'INVALID_ARGUMENT');
  });
});

describe('api: network validation', () => {
  it('refuses VLAN 4095 with 400 naming the field, and stores nothing', async () => {
    const before = await networkNames(h.admin);
    const r = await expectStatus(call(h.admin, 'POST', '/v1/networks', { name: 'bad-vlan', tenant: 'alpha', physnet: 'fabric', vlan: 4095 }), 400, 'INVALID_ARGUMENT');
    assert.match(r.body.error.message, /vlan/);
    assert.deepEqual(await networkNames(h.admin), before);
  });

  it('refuses wrong types, unknown fields and bad names with 400', async () => {
    const base = { name: 'n-x', tenant: 'alpha', physnet: 'fabric', vlan: 110 };
    await expectStatus(call(h.admin, 'POST', '/v1/networks', { ...base, vlan: '110' }), 400, 'INVALID_ARGUMENT');
    await expectStatus(call(h.admin, 'POST', '/v1/networks', { ...base, qos: 8 }), 400, 'INVALID_ARGUMENT');
    const unknown = await expectStatus(call(h.admin, 'POST', '/v1/networks', { ...base, colour: 'red' }), 400, 'INVALID_ARGUMENT');
    assert.match(unknown.body.error.message, /colour/);
    await expectStatus(call(h.admin, 'POST', '/v1/networks', { ...base, name: 'Not_A_Name' }), 400, 'INVALID_ARGUMENT');
    await expectStatus(call(h.admin, 'POST', '/v1/networks', { ...base, minTxRateMbps: 2000, maxTxRateMbps: 1000 }), 400, 'INVALID_ARGUMENT');
    const raw = await fetch(`${h.base}/v1/networks`, { method: 'POST', headers: { authorization: `Bearer ${h.admin}`, 'content-type': 'application/json' }, body: '{"name":' });
    assert.equal(raw.status, 400);
    assert.equal(((await raw.json()) as ErrorBody).error.code, 'INVALID_ARGUMENT');
  });

  it('404 for an unknown physnet or tenant; 403 for privileged settings; 409 for another tenant’s VLAN', async () => {
    await expectStatus(call(h.admin, 'POST', '/v1/networks', { name: 'n1', tenant: 'alpha', physnet: 'nowhere', vlan: 120 }), 404, 'NOT_FOUND');
    await expectStatus(call(h.admin, 'POST', '/v1/networks', { name: 'n1', tenant: 'nobody', physnet: 'fabric', vlan: 120 }), 404, 'NOT_FOUND');
    await expectStatus(call(tokens.operator, 'POST', '/v1/networks', { name: 'n1', tenant: 'alpha', physnet: 'fabric', vlan: 120, trust: true }), 403, 'FORBIDDEN');
    await expectStatus(call(tokens.operator, 'POST', '/v1/networks', { name: 'n1', tenant: 'alpha', physnet: 'fabric', vlan: 120, spoofChk: false }), 403, 'FORBIDDEN');
    await expectStatus(call(tokens.operator, 'POST', '/v1/networks', { name: 'n1', tenant: 'alpha', physnet: 'fabric', vlan: 0 }), 403, 'FORBIDDEN');
    await expectStatus(call(tokens.operator, 'POST', '/v1/networks', { name: 'beta-steal', tenant: 'beta', physnet: 'fabric', vlan: 100 }), 409, 'CONFLICT');
    await expectStatus(call(tokens.operator, 'POST', '/v1/networks', { name: 'alpha-a', tenant: 'alpha', physnet: 'fabric', vlan: 130 }), 409, 'CONFLICT');
    assert.deepEqual(await networkNames(tokens.beta), []);
  });
});

describe('api: allocation lifecycle', () => {
  let a: Allocation;

  it('creates a pending allocation with its placement (201)', async () => {
    a = (await expectStatus(allocate(tokens.alpha, 'alpha-a', 'vnf1'), 201)).body;
    assert.equal(a.state, 'pending');
    assert.equal(a.host, 'host-a');
    assert.match(a.pf, /^ens[12]f0$/);
    assert.equal(typeof a.vfIndex, 'number');
    assert.match(a.pciAddress, /^0000:1[01]:00\.[1-7]$/);
    assert.match(a.mac, /^02:5f:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
    assert.equal(a.vlan, 100);
    assert.equal(a.tenant, 'alpha');
  });

  it('hides it from other tenants (404) and agents (403)', async () => {
    await expectStatus(call(tokens.beta, 'GET', `/v1/allocations/${a.id}`), 404, 'NOT_FOUND');
    await expectStatus(call(tokens.beta, 'DELETE', `/v1/allocations/${a.id}`), 404, 'NOT_FOUND');
    await expectStatus(allocate(tokens.beta, 'alpha-a', 'steal'), 404, 'NOT_FOUND');
    assert.deepEqual((await call<Allocation[]>(tokens.beta, 'GET', '/v1/allocations')).body, []);
    await expectStatus(call(tokens.agentA, 'GET', `/v1/allocations/${a.id}`), 403, 'FORBIDDEN');
    const mine = (await call<Allocation[]>(tokens.alpha, 'GET', '/v1/allocations?network=alpha-a')).body;
    assert.deepEqual(mine.map((x) => x.id), [a.id]);
    await expectStatus(call(tokens.operator, 'GET', `/v1/allocations/${a.id}`), 200);
  });

  it('appears in its host agent’s desired state with the network’s VF config', async () => {
    const state = (await expectStatus(desired(tokens.agentA, 'host-a'), 200)).body;
    const entry = state.allocations.find((x) => x.id === a.id);
    assert.ok(entry, 'allocation in desired state');
    assert.equal(entry.state, 'pending');
    assert.equal(entry.pciAddress, a.pciAddress);
    assert.equal(entry.config.vlan, 100);
    assert.equal(entry.config.mac, a.mac);
    assert.deepEqual((await desired(tokens.agentB, 'host-b')).body.allocations, []);
  });

  it('goes configured, releasing and released as the agent reports', async () => {
    await expectStatus(report(tokens.agentA, 'host-a', [{ id: a.id, state: 'configured' }]), 200);
    assert.equal((await call<Allocation>(tokens.alpha, 'GET', `/v1/allocations/${a.id}`)).body.state, 'configured');
    const releasing = await expectStatus(call<Allocation>(tokens.alpha, 'DELETE', `/v1/allocations/${a.id}`), 200);
    assert.equal(releasing.body.state, 'releasing');
    assert.equal((await desired(tokens.agentA, 'host-a')).body.allocations.find((x) => x.id === a.id)?.state, 'releasing');
    await expectStatus(report(tokens.agentA, 'host-a', [{ id: a.id, state: 'released' }]), 200);
    assert.equal((await call<Allocation>(tokens.alpha, 'GET', `/v1/allocations/${a.id}`)).body.state, 'released');
    assert.deepEqual((await desired(tokens.agentA, 'host-a')).body.allocations, []);
  });

  it('records who did what, with before and after, in the audit log', async () => {
    const events = (await expectStatus(call<AuditEvent[]>(tokens.operator, 'GET', `/v1/events?object=allocation/${a.id}`), 200)).body;
    assert.deepEqual(events.map((e) => e.action), ['allocation.create', 'allocation.configured', 'allocation.releasing', 'allocation.released']);
    assert.match(events[0]!.actor, /^tenant:alpha\//);
    assert.equal(events[0]!.before, null);
    assert.equal((events[0]!.after as Allocation).id, a.id);
    assert.equal(events[1]!.actor, 'agent:host-a');
    assert.deepEqual(events[1]!.before, { state: 'pending' });
    assert.deepEqual(events[3]!.after, { state: 'released', reason: null });
    const network = (await call<AuditEvent[]>(h.admin, 'GET', '/v1/events?object=network/alpha-a')).body;
    assert.equal(network[0]!.action, 'network.create');
    assert.equal((network[0]!.after as Network).vlan, 100);
  });
});

describe('api: capacity under concurrency', () => {
  /** Fire two allocations at once; return their statuses (sorted) and the refusal. */
  async function race(network: string): Promise<{ statuses: number[]; refused: ErrorBody | undefined }> {
    const replies = await Promise.all([allocate(tokens.beta, network, 'race-1'), allocate(tokens.beta, network, 'race-2')]);
    return { statuses: replies.map((r) => r.status).sort(), refused: replies.find((r) => r.status === 409)?.body };
  }

  it('the last free VF on a physnet goes to exactly one of two simultaneous requests', async () => {
    await expectStatus(call(tokens.operator, 'POST', '/v1/networks', { name: 'beta-edge', tenant: 'beta', physnet: 'edge', vlan: 200 }), 201);
    for (const name of ['w1', 'w2', 'w3']) await expectStatus(allocate(tokens.beta, 'beta-edge', name), 201);
    const { statuses, refused } = await race('beta-edge');
    assert.deepEqual(statuses, [201, 409]);
    assert.equal(refused?.error.code, 'NO_CAPACITY');
    const held = (await call<Allocation[]>(tokens.beta, 'GET', '/v1/allocations?network=beta-edge')).body;
    assert.equal(new Set(held.map((x) => x.vfIndex)).size, 4);
  });

  it('the last bandwidth guarantee on a PF goes to exactly one of two simultaneous requests', async () => {
    // 40 Gbps guarantees on a 100 Gbps PF: two fit, a third does not.
    await expectStatus(call(tokens.operator, 'POST', '/v1/networks', { name: 'beta-bw', tenant: 'beta', physnet: 'bw', vlan: 300, minTxRateMbps: 40_000 }), 201);
    await expectStatus(allocate(tokens.beta, 'beta-bw', 'g1'), 201);
    const { statuses, refused } = await race('beta-bw');
    assert.deepEqual(statuses, [201, 409]);
    assert.equal(refused?.error.code, 'NO_CAPACITY');
    const metrics = (await call(null, 'GET', '/metrics')).text;
    assert.match(metrics, /^vfleet_pf_committed_min_rate_mbps\{host="host-b",pf="ens2f0"\} 80000$/m);
    // The third request's refusal is counted by its reason: no candidate PF had the headroom.
    assert.match(metrics, /^vfleet_scheduler_refusals_total\{reason="headroom"\} [1-9]\d*$/m);
    assert.match(metrics, /^vfleet_vfs\{host="host-b",pf="ens1f0",state="free"\} 0$/m);
    assert.match(metrics, /^vfleet_vfs\{host="host-b",pf="ens1f0",state="allocated"\} 4$/m);
    assert.match(metrics, /^vfleet_allocations\{state="pending"\} 6$/m);
  });
});

describe('api: agent long poll', () => {
  it('answers as soon as an allocation for the host is created', async () => {
    const { revision } = (await desired(tokens.agentB, 'host-b')).body;
    const started = Date.now();
    const poll = desired(tokens.agentB, 'host-b', `&after=${encodeURIComponent(revision)}&wait=30`);
    const early = await Promise.race([poll.then(() => 'answered'), sleep(200).then(() => 'waiting')]);
    assert.equal(early, 'waiting', 'the poll waits while nothing changes');
    await expectStatus(call(tokens.operator, 'POST', '/v1/networks', { name: 'beta-plain', tenant: 'beta', physnet: 'bw', vlan: 301 }), 201);
    const created = (await expectStatus(allocate(tokens.beta, 'beta-plain', 'p1'), 201)).body;
    const answer = await expectStatus(poll, 200);
    assert.ok(Date.now() - started < 5000, 'answered promptly');
    assert.notEqual(answer.body.revision, revision);
    assert.ok(answer.body.allocations.some((x) => x.id === created.id));
  });

  it('answers at once when `after` is not the current revision', async () => {
    const started = Date.now();
    await expectStatus(desired(tokens.agentB, 'host-b', '&after=stale.0&wait=30'), 200);
    assert.ok(Date.now() - started < 2000);
  });
});

describe('api: container attachments (CNI)', () => {
  let node = '';
  const attach = (extra: Record<string, unknown> = {}) => ({ kind: 'container', netns: '/var/run/netns/pod-1', ifname: 'net1', cniNetwork: 'fabric-a', ...extra });
  const create = (workload: string, attachment: object, token = node) =>
    call<Allocation & ErrorBody>(token, 'POST', '/v1/allocations', { network: 'alpha-a', workload: { kind: 'container', name: workload }, attach: attachment });
  const held = async (workload: string) => (await call<Allocation[]>(h.admin, 'GET', `/v1/allocations?workload=${workload}`)).body;

  before(async () => {
    node = await newToken('node:host-a');
  });

  it('stores the CNI network with the attachment and returns it', async () => {
    const a = (await expectStatus(create('pod-store', attach()), 201)).body;
    assert.equal(a.host, 'host-a');
    assert.deepEqual(a.attachment, { kind: 'container', netns: '/var/run/netns/pod-1', ifname: 'net1', hostIfName: null, ips: [], cniNetwork: 'fabric-a' });
    assert.deepEqual((await call<Allocation>(node, 'GET', `/v1/allocations/${a.id}`)).body.attachment, a.attachment);
  });

  it('an identical create returns the existing allocation with 200, also when two race', async () => {
    const first = (await expectStatus(create('pod-same', attach()), 201)).body;
    const again = await expectStatus(create('pod-same', attach()), 200);
    assert.equal(again.body.id, first.id);
    const raced = await Promise.all([create('pod-race', attach()), create('pod-race', attach())]);
    assert.deepEqual(raced.map((r) => r.status).sort(), [200, 201]);
    assert.equal(raced[0]!.body.id, raced[1]!.body.id);
    assert.equal((await held('pod-race')).length, 1);
    assert.equal((await held('pod-same')).length, 1);
  });

  it('the same interface of the workload held otherwise is a 409 naming the allocation, and nothing is stored', async () => {
    const a = (await expectStatus(create('pod-other', attach()), 201)).body;
    for (const other of [attach({ cniNetwork: 'fabric-b' }), attach({ netns: '/var/run/netns/pod-2' }), attach({ cniNetwork: undefined })]) {
      const refused = await expectStatus(create('pod-other', other), 409, 'CONFLICT');
      assert.match(refused.body.error.message, new RegExp(`already allocation ${a.id}`));
    }
    // Another interface of the same workload is another attachment.
    await expectStatus(create('pod-other', attach({ ifname: 'net2', cniNetwork: 'fabric-b' })), 201);
    assert.deepEqual((await held('pod-other')).map((x) => (x.attachment as { ifname: string }).ifname).sort(), ['net1', 'net2']);
  });

  it('refuses a malformed cniNetwork with 400 naming the field, storing nothing', async () => {
    for (const bad of ['-starts-with-dash', 'has/slash', 'x'.repeat(254), '', 7]) {
      const r = await expectStatus(create('pod-bad', attach({ cniNetwork: bad })), 400, 'INVALID_ARGUMENT');
      assert.match(r.body.error.message, /cniNetwork/);
    }
    assert.deepEqual(await held('pod-bad'), []);
  });

  it('capacity: a node asks for its own host only; staff for any; others are refused', async () => {
    const own = (await expectStatus(call<{ hostState: string; freeVfs: number }>(node, 'GET', '/v1/networks/alpha-a/capacity?host=host-a'), 200)).body;
    assert.equal(own.hostState, 'ready');
    // Eight VFs on host-a's fabric PFs, less the five the tests above hold.
    assert.equal(own.freeVfs, 3);
    await expectStatus(create('pod-cap', attach()), 201);
    assert.equal((await call<{ freeVfs: number }>(tokens.operator, 'GET', '/v1/networks/alpha-a/capacity?host=host-a')).body.freeVfs, 2);
    await expectStatus(call(node, 'GET', '/v1/networks/alpha-a/capacity?host=host-b'), 403, 'FORBIDDEN');
    await expectStatus(call(tokens.alpha, 'GET', '/v1/networks/alpha-a/capacity?host=host-a'), 403, 'FORBIDDEN');
    await expectStatus(call(tokens.operator, 'GET', '/v1/networks/alpha-a/capacity?host=host-q'), 404, 'NOT_FOUND');
    await expectStatus(call(tokens.operator, 'GET', '/v1/networks/alpha-a/capacity'), 400, 'INVALID_ARGUMENT');
  });
});

describe('api: shutdown', () => {
  /** A fresh server with one agent whose long poll is pending on it. */
  async function withPendingPoll(signal?: AbortSignal): Promise<{ own: ApiHarness; poll: Promise<Response> }> {
    const own = await startApi();
    const agent = (await fetchJson<{ token: string }>(own, own.admin, 'POST', '/v1/tokens', { role: 'agent:host-z' })).token;
    await fetchJson(own, agent, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-z') });
    const { revision } = await fetchJson<DesiredState>(own, agent, 'GET', '/v1/agent/desired?host=host-z');
    const url = `${own.base}/v1/agent/desired?host=host-z&wait=60&after=${encodeURIComponent(revision)}`;
    const poll = fetch(url, { headers: { authorization: `Bearer ${agent}` }, signal });
    await sleep(100);
    return { own, poll };
  }

  async function timedClose(own: ApiHarness): Promise<number> {
    const started = Date.now();
    await own.app.close();
    return Date.now() - started;
  }

  it('closing the server answers a pending long poll at once', async () => {
    const { own, poll } = await withPendingPoll();
    try {
      const ms = await timedClose(own);
      assert.ok(ms < 1000, `close took ${ms} ms`);
      assert.equal((await poll).status, 200);
    } finally {
      await own.close();
    }
  });

  it('a long poll its client abandoned does not hold up closing', async () => {
    const abort = new AbortController();
    const { own, poll } = await withPendingPoll(abort.signal);
    try {
      abort.abort();
      await assert.rejects(poll, { name: 'AbortError' });
      const ms = await timedClose(own);
      assert.ok(ms < 5000, `close took ${ms} ms`);
    } finally {
      await own.close();
    }
  });
});

async function fetchJson<T = unknown>(own: ApiHarness, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(own.base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status}`);
  return (await res.json()) as T;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
