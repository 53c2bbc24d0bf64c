/**
 * What the console's administration pages need from the API: every
 * validation refusal names its `field`, networks change in place (PUT) unless
 * the change would move allocations holding them, and the audit log streams
 * live as Server-Sent Events with resume and a clean end at shutdown.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Allocation, AuditEvent, Network } from '../../src/domain/types.js';
import { makeHost } from '../helpers/inventory.js';
import { expectStatus, policyOf, startApi, type ApiHarness } from '../helpers/api-harness.js';
import { sriovctl } from '../helpers/cli.js';

interface FieldError {
  error: { code: string; message: string; field?: string };
}

describe('API: the field a validation error names', () => {
  let h: ApiHarness;
  before(async () => {
    h = await startApi();
    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'alpha' }), 201);
    await h.control.hosts.report({ id: 'local', role: 'admin' }, makeHost({ name: 'host-1', pfs: 1, vfs: 4, linkSpeedMbps: 10_000, physnet: null }).inventory);
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-1/policy', { document: policyOf([['f', 'ens1f0', 'fabric']]) }), 200);
  });
  after(() => h.close());

  const net = (extra: Record<string, unknown>) => ({ name: 'n1', tenant: 'alpha', physnet: 'fabric', vlan: 100, ...extra });
  const cases: Array<[what: string, method: string, path: string, body: unknown, field: string | undefined]> = [
    ['a VLAN above 4094 (schema)', 'POST', '/v1/networks', net({ vlan: 5000 }), 'vlan'],
    ['a missing field names the field', 'POST', '/v1/networks', { name: 'n1', tenant: 'alpha' }, 'physnet'],
    ['an unknown field names it', 'POST', '/v1/networks', net({ colour: 'red' }), 'colour'],
    ['a nested field is dotted', 'POST', '/v1/networks', net({ ipam: { cidr: 'nope' } }), 'ipam.cidr'],
    ['an array item', 'PUT', '/v1/physnets/fabric', { tenantVlans: [{ from: 0, to: 9 }] }, 'tenantVlans.0.from'],
    ['a query parameter', 'GET', '/v1/networks?limit=abc', undefined, 'limit'],
    ['min rate above max (domain)', 'POST', '/v1/networks', net({ minTxRateMbps: 500, maxTxRateMbps: 100 }), 'minTxRateMbps'],
    ['qos without a VLAN (domain)', 'POST', '/v1/networks', net({ vlan: 0, qos: 3 }), 'qos'],
    ['no VLAN and no tenant ranges (domain)', 'POST', '/v1/networks', net({ vlan: undefined }), 'vlan'],
    ['ranges that overlap (domain)', 'PUT', '/v1/physnets/fabric', { tenantVlans: [{ from: 10, to: 20 }, { from: 15, to: 30 }] }, 'tenantVlans'],
    ['a body that is not an object names none', 'POST', '/v1/networks', [], undefined],
  ];
  for (const [what, method, path, body, field] of cases) {
    it(what, async () => {
      const r = await expectStatus(h.call<FieldError>(h.admin, method, path, body), 400, 'INVALID_ARGUMENT');
      assert.equal(r.body.error.field, field, r.text);
    });
  }

  it('a rate above the link is a 400 at its field too', async () => {
    const r = await expectStatus(h.call<FieldError>(h.admin, 'POST', '/v1/networks', net({ maxTxRateMbps: 20_000 })), 400, 'OUT_OF_RANGE');
    assert.equal(r.body.error.field, 'maxTxRateMbps');
  });
});

describe('API: PUT /v1/networks/:name', () => {
  let h: ApiHarness;
  let alpha: string;
  let beta: string;
  let operator: string;
  let held: Allocation;
  before(async () => {
    h = await startApi();
    for (const name of ['alpha', 'beta']) await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name }), 201);
    alpha = await h.token('tenant:alpha');
    beta = await h.token('tenant:beta');
    operator = await h.token('operator');
    await h.control.hosts.report({ id: 'local', role: 'admin' }, makeHost({ name: 'host-1', pfs: 1, vfs: 4, linkSpeedMbps: 10_000, physnet: null }).inventory);
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-1/policy', { document: policyOf([['f', 'ens1f0', 'fabric']]) }), 200);
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'blue', tenant: 'alpha', physnet: 'fabric', vlan: 100 }), 201);
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'idle', tenant: 'alpha', physnet: 'fabric', vlan: 200 }), 201);
    held = (await expectStatus(h.call<Allocation>(alpha, 'POST', '/v1/allocations', { network: 'blue', workload: { kind: 'vm', name: 'vm-1' } }), 201)).body;
  });
  after(() => h.close());

  it('changes the rate limit of a network in use, keeps the rest, and records who did it', async () => {
    const r = await expectStatus(h.call<Network>(alpha, 'PUT', '/v1/networks/blue', { maxTxRateMbps: 900, qos: 2 }), 200);
    assert.equal(r.body.maxTxRateMbps, 900);
    assert.equal(r.body.qos, 2);
    assert.equal(r.body.vlan, 100);
    assert.equal(r.body.tenant, 'alpha');
    const got = await expectStatus(h.call<Network>(h.admin, 'GET', '/v1/networks/blue'), 200);
    assert.equal(got.body.maxTxRateMbps, 900);
    const events = await expectStatus(h.call<AuditEvent[]>(h.admin, 'GET', '/v1/events?object=network/blue'), 200);
    const update = events.body.find((e) => e.action === 'network.update');
    assert.ok(update, JSON.stringify(events.body.map((e) => e.action)));
    assert.equal((update.before as Network).maxTxRateMbps, 0);
    assert.equal((update.after as Network).maxTxRateMbps, 900);
    assert.match(update.actor, /^tenant:alpha\//);
  });

  it('refuses a VLAN change while allocations hold it, naming them, and changes nothing', async () => {
    const r = await expectStatus(h.call<FieldError>(operator, 'PUT', '/v1/networks/blue', { vlan: 101, maxTxRateMbps: 1 }), 409, 'CONFLICT');
    assert.match(r.body.error.message, /network blue: vlan cannot change while 1 allocation holds its VFs/);
    assert.ok(r.body.error.message.includes(held.id) && r.body.error.message.includes('vm vm-1'), r.body.error.message);
    assert.equal(r.body.error.message.split('\n').length, 1);
    const got = await expectStatus(h.call<Network>(h.admin, 'GET', '/v1/networks/blue'), 200);
    assert.equal(got.body.vlan, 100);
    assert.equal(got.body.maxTxRateMbps, 900);
  });

  it('lets staff move a network no allocation holds to another VLAN', async () => {
    const r = await expectStatus(h.call<Network>(operator, 'PUT', '/v1/networks/idle', { vlan: 201, minTxRateMbps: 100 }), 200);
    assert.equal(r.body.vlan, 201);
    assert.equal(r.body.minTxRateMbps, 100);
  });

  it('keeps the rules of POST: a tenant picks no VLAN, admin-only settings stay admin-only', async () => {
    const vlan = await expectStatus(h.call<FieldError>(alpha, 'PUT', '/v1/networks/idle', { vlan: 250 }), 403, 'FORBIDDEN');
    assert.equal(vlan.body.error.field, 'vlan');
    await expectStatus(h.call(alpha, 'PUT', '/v1/networks/idle', { trust: true }), 403, 'FORBIDDEN');
    await expectStatus(h.call(operator, 'PUT', '/v1/networks/idle', { spoofChk: false }), 403, 'FORBIDDEN');
    // An admin's grant does not stop the tenant from changing something else.
    await expectStatus(h.call(h.admin, 'PUT', '/v1/networks/idle', { trust: true }), 200);
    await expectStatus(h.call(alpha, 'PUT', '/v1/networks/idle', { maxTxRateMbps: 500 }), 200);
  });

  it("hides another tenant's network, and refuses what cannot change", async () => {
    await expectStatus(h.call(beta, 'PUT', '/v1/networks/blue', { qos: 1 }), 404, 'NOT_FOUND');
    const empty = await expectStatus(h.call<FieldError>(h.admin, 'PUT', '/v1/networks/blue', {}), 400, 'INVALID_ARGUMENT');
    assert.match(empty.body.error.message, /the fields to change/);
    const tenant = await expectStatus(h.call<FieldError>(h.admin, 'PUT', '/v1/networks/blue', { tenant: 'beta' }), 400, 'INVALID_ARGUMENT');
    assert.equal(tenant.body.error.field, 'tenant');
    const bad = await expectStatus(h.call<FieldError>(h.admin, 'PUT', '/v1/networks/blue', { mtu: 20 }), 400, 'INVALID_ARGUMENT');
    assert.equal(bad.body.error.field, 'mtu');
    await expectStatus(h.call(h.admin, 'PUT', '/v1/networks/nope', { qos: 1 }), 404, 'NOT_FOUND');
  });

  it('sriovctl network set sends only the settings given', async () => {
    const env = { HOME: h.dir, SRIOV_SERVER: h.base, SRIOV_TOKEN: h.admin, SRIOV_CONFIG: '' };
    const r = await sriovctl(['network', 'set', 'blue', '--max-tx-rate', '700', '--spoofchk', 'on', '-o', 'json'], env);
    assert.equal(r.code, 0, r.stderr);
    const n = JSON.parse(r.stdout) as Network;
    assert.equal(n.maxTxRateMbps, 700);
    assert.equal(n.qos, 2);
    const refused = await sriovctl(['network', 'set', 'blue', '--vlan', '300'], env);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /vlan cannot change while 1 allocation holds its VFs/);
    const nothing = await sriovctl(['network', 'set', 'blue'], env);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /needs at least one setting/);
  });
});
