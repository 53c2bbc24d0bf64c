/** Tenant VLAN ranges of a physnet: parsing, and what each role may do with VLANs through the API. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chooseVlan, formatVlanRanges, parseVlanRanges } from '../../src/domain/vlan-ranges.js';
import type { Network, Physnet } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import { makeHost } from '../helpers/inventory.js';
import { expectStatus, policyOf, startApi, type ApiHarness, type ErrorBody } from '../helpers/api-harness.js';

describe('tenant VLAN ranges: parsing', () => {
  it('reads ranges and single VLANs, sorted; none is no ranges', () => {
    assert.deepEqual(parseVlanRanges('2100-2199,1000-1999'), [{ from: 1000, to: 1999 }, { from: 2100, to: 2199 }]);
    assert.deepEqual(parseVlanRanges('3000'), [{ from: 3000, to: 3000 }]);
    assert.deepEqual(parseVlanRanges('none'), []);
    assert.equal(formatVlanRanges([{ from: 1000, to: 1999 }, { from: 3000, to: 3000 }]), '1000-1999,3000');
  });

  for (const [text, message] of [
    ['0-10', /between 1 and 4094/],
    ['4000-4095', /between 1 and 4094/],
    ['20-10', /runs backwards/],
    ['100-200,150-300', /100-200 and 150-300 overlap/],
    ['100-200,200', /overlap/],
    ['1000-', /ranges like 1000-1999/],
    ['a-b', /ranges like/],
    ['', /ranges like/],
    ['0x10-0x20', /ranges like/],
  ] as const) {
    it(`refuses "${text}"`, () => {
      assert.throws(() => parseVlanRanges(text), (err: SriovError) => err.code === 'INVALID_ARGUMENT' && message.test(err.message));
    });
  }

  const physnet: Physnet = { name: 'fabric', accountingOnly: false, tenantVlans: [{ from: 10, to: 11 }, { from: 20, to: 20 }] };
  it('gives the lowest VLAN of the ranges no network uses', () => {
    assert.equal(chooseVlan(undefined, { role: 'tenant:a' }, physnet, new Set(), 'n'), 10);
    assert.equal(chooseVlan(undefined, { role: 'tenant:a' }, physnet, new Set([10, 11]), 'n'), 20);
    assert.throws(() => chooseVlan(undefined, { role: 'tenant:a' }, physnet, new Set([10, 11, 20]), 'n'), /NO_CAPACITY|every tenant VLAN of physnet fabric \(10-11,20\)/);
  });
});

/** host-1: ens1f0 on physnet fabric, ens2f0 on physnet bare (no ranges). */
describe('tenant VLAN ranges: API', () => {
  let h: ApiHarness;
  const t = { operator: '', alpha: '', beta: '' };
  const create = (token: string, body: Record<string, unknown>) => h.call<Network & ErrorBody>(token, 'POST', '/v1/networks', body);

  before(async () => {
    h = await startApi();
    for (const name of ['alpha', 'beta']) await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name }), 201);
    t.operator = await h.token('operator');
    t.alpha = await h.token('tenant:alpha');
    t.beta = await h.token('tenant:beta');
    await h.control.hosts.report({ id: 'local', role: 'admin' }, makeHost({ name: 'host-1', pfs: 2, vfs: 4, physnet: null }).inventory);
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-1/policy', { document: policyOf([['f', 'ens1f0', 'fabric'], ['b', 'ens2f0', 'bare']]) }), 200);
  });
  after(() => h.close());

  it('only an admin sets ranges; PUT is partial and checks the ranges', async () => {
    await expectStatus(h.call(t.operator, 'PUT', '/v1/physnets/fabric', { tenantVlans: [{ from: 1000, to: 1001 }] }), 403, 'FORBIDDEN');
    await expectStatus(h.call(h.admin, 'PUT', '/v1/physnets/fabric', { accountingOnly: true }), 200);
    const put = await expectStatus(h.call(h.admin, 'PUT', '/v1/physnets/fabric', { tenantVlans: [{ from: 1100, to: 1100 }, { from: 1000, to: 1001 }] }), 200);
    assert.deepEqual(put.body, { name: 'fabric', accountingOnly: true, groupsAccountingOnly: false, tenantVlans: [{ from: 1000, to: 1001 }, { from: 1100, to: 1100 }] });
    const overlap = await expectStatus(h.call(h.admin, 'PUT', '/v1/physnets/fabric', { tenantVlans: [{ from: 1, to: 10 }, { from: 5, to: 20 }] }), 400, 'INVALID_ARGUMENT');
    assert.match((overlap.body as ErrorBody).error.message, /overlap/);
    await expectStatus(h.call(h.admin, 'PUT', '/v1/physnets/fabric', { tenantVlans: [{ from: 10, to: 5 }] }), 400, 'INVALID_ARGUMENT');
    await expectStatus(h.call(h.admin, 'PUT', '/v1/physnets/fabric', { tenantVlans: [{ from: 0, to: 5 }] }), 400, 'INVALID_ARGUMENT');
    await expectStatus(h.call(h.admin, 'PUT', '/v1/physnets/fabric', {}), 400, 'INVALID_ARGUMENT');
    const list = (await h.call<Physnet[]>(t.operator, 'GET', '/v1/physnets')).body;
    assert.deepEqual(list.find((p) => p.name === 'fabric'), put.body, 'the refused changes changed nothing');
  });

  it('a tenant network without a VLAN gets the next free one of the ranges, never one in use', async () => {
    const first = await expectStatus(create(t.alpha, { name: 'a1', tenant: 'alpha', physnet: 'fabric' }), 201);
    assert.equal(first.body.vlan, 1000);
    const second = await expectStatus(create(t.beta, { name: 'b1', tenant: 'beta', physnet: 'fabric' }), 201);
    assert.equal(second.body.vlan, 1001);
    // An operator took 1100 by hand; a tenant's own second network does not share its first's VLAN either.
    await expectStatus(create(t.operator, { name: 'ops', tenant: 'alpha', physnet: 'fabric', vlan: 1100 }), 201);
    const exhausted = await expectStatus(create(t.alpha, { name: 'a2', tenant: 'alpha', physnet: 'fabric' }), 409, 'NO_CAPACITY');
    assert.match(exhausted.body.error.message, /every tenant VLAN of physnet fabric \(1000-1001,1100\) is in use/);
    await expectStatus(h.call(t.alpha, 'DELETE', '/v1/networks/a1'), 204);
    assert.equal((await expectStatus(create(t.alpha, { name: 'a2', tenant: 'alpha', physnet: 'fabric' }), 201)).body.vlan, 1000);
  });

  it('a tenant may not pick a VLAN, inside the ranges or out: 403 saying who may', async () => {
    for (const vlan of [1001, 1500, 200]) {
      const r = await expectStatus(create(t.beta, { name: 'b2', tenant: 'beta', physnet: 'fabric', vlan }), 403, 'FORBIDDEN');
      assert.match(r.body.error.message, /only an admin or operator may pick a VLAN/);
    }
  });

  it('operators and admins pick any VLAN, inside the ranges or not', async () => {
    assert.equal((await expectStatus(create(t.operator, { name: 'op-out', tenant: 'beta', physnet: 'fabric', vlan: 200 }), 201)).body.vlan, 200);
    assert.equal((await expectStatus(create(h.admin, { name: 'ad-out', tenant: 'beta', physnet: 'fabric', vlan: 201 }), 201)).body.vlan, 201);
    // Staff without a VLAN get one from the ranges too.
    await expectStatus(h.call(h.admin, 'PUT', '/v1/physnets/fabric', { tenantVlans: [{ from: 1000, to: 1010 }] }), 200);
    assert.equal((await expectStatus(create(t.operator, { name: 'op-auto', tenant: 'beta', physnet: 'fabric' }), 201)).body.vlan, 1002);
  });

  it('no ranges and no VLAN: 400 saying what an admin must set', async () => {
    const r = await expectStatus(create(t.alpha, { name: 'a3', tenant: 'alpha', physnet: 'bare' }), 400, 'INVALID_ARGUMENT');
    assert.match(r.body.error.message, /physnet bare has no tenant VLAN ranges.*physnet set bare --tenant-vlans/);
    await expectStatus(create(t.operator, { name: 'a3', tenant: 'alpha', physnet: 'bare' }), 400, 'INVALID_ARGUMENT');
    await expectStatus(h.call(h.admin, 'PUT', '/v1/physnets/fabric', { tenantVlans: [] }), 200);
    await expectStatus(create(t.alpha, { name: 'a3', tenant: 'alpha', physnet: 'fabric' }), 400, 'INVALID_ARGUMENT');
  });
});
