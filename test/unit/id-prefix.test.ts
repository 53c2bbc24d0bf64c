/** Allocation ids may be shortened to a unique prefix of 4 or more hex digits, wherever one is taken. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Allocation } from '../../src/domain/types.js';
import { makeAllocation, makeNetwork, pfPci } from '../helpers/inventory.js';
import { expectStatus, startApi, type ApiHarness, type ErrorBody } from '../helpers/api-harness.js';

const placement = { host: 'host-1', pf: 'ens1f0', pfPciAddress: pfPci(0), vfIndex: 0, pciAddress: '0000:10:00.1', numaNode: 0 };

/** Released records (they hold no VF), with ids chosen to share prefixes. */
const RECORDS: Array<[id: string, tenant: string]> = [
  ['abcd1111-0000-4000-8000-000000000001', 'alpha'],
  ['abcd2222-0000-4000-8000-000000000002', 'alpha'],
  ['abcd3333-0000-4000-8000-000000000003', 'beta'],
  ['beef0000-0000-4000-8000-000000000004', 'beta'],
];

describe('allocation id prefixes', () => {
  let h: ApiHarness;
  const t = { alpha: '', beta: '', agent: '', node1: '', node2: '' };
  const get = (token: string, id: string) => h.call<Allocation & ErrorBody>(token, 'GET', `/v1/allocations/${id}`);

  before(async () => {
    h = await startApi();
    for (const name of ['alpha', 'beta']) await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name }), 201);
    t.alpha = await h.token('tenant:alpha');
    t.beta = await h.token('tenant:beta');
    t.agent = await h.token('agent:host-1');
    t.node1 = await h.token('node:host-1');
    t.node2 = await h.token('node:host-2');
    for (const [id, tenant] of RECORDS) {
      const network = makeNetwork({ name: `${tenant}-net`, tenant });
      await h.store.tx.insertAllocation(makeAllocation(placement, network, { kind: 'vm', name: id.slice(0, 4) }, { id, state: 'released', mac: `02:00:00:00:00:0${id.at(-1)}`, attachment: { kind: 'vm', vm: 'vm1', failover: false } }));
    }
  });
  after(() => h.close());

  it('the store finds a prefix by a range on the id, within a tenant when asked', async () => {
    assert.equal((await h.store.tx.findAllocationByIdPrefix('abcd')).count, 3);
    assert.equal((await h.store.tx.findAllocationByIdPrefix('abcd', 'alpha')).count, 2);
    assert.equal((await h.store.tx.findAllocationByIdPrefix('abcd3', 'beta')).allocation?.id, RECORDS[2]![0]);
    assert.deepEqual(await h.store.tx.findAllocationByIdPrefix('abcd3', 'alpha'), { count: 0, allocation: null });
    assert.deepEqual(await h.store.tx.findAllocationByIdPrefix('%'), { count: 0, allocation: null }, 'no LIKE wildcards');
  });

  it('a unique prefix resolves for GET, DELETE and vm-config', async () => {
    assert.equal((await expectStatus(get(h.admin, 'beef'), 200)).body.id, RECORDS[3]![0]);
    assert.equal((await expectStatus(get(t.alpha, 'abcd1'), 200)).body.id, RECORDS[0]![0]);
    assert.equal((await expectStatus(get(t.alpha, 'ABCD1111'), 200)).body.id, RECORDS[0]![0], 'upper case too');
    assert.equal((await expectStatus(get(t.alpha, 'abcd1111-0000'), 200)).body.id, RECORDS[0]![0]);
    const deleted = await expectStatus(h.call<Allocation>(t.alpha, 'DELETE', '/v1/allocations/abcd2'), 200);
    assert.deepEqual([deleted.body.id, deleted.body.state], [RECORDS[1]![0], 'released']);
    const vm = await expectStatus(h.call<{ libvirtXml: string }>(h.admin, 'GET', '/v1/allocations/beef/vm-config'), 200);
    assert.match(vm.body.libvirtXml, /<hostdev|<interface/);
  });

  it('an ambiguous prefix is 400 saying how many match and asking for more', async () => {
    const r = await expectStatus(get(h.admin, 'abcd'), 400, 'INVALID_ARGUMENT');
    assert.match(r.body.error.message, /allocation id abcd is the start of 3 allocations' ids; give more of it/);
    await expectStatus(h.call(h.admin, 'DELETE', '/v1/allocations/abcd'), 400, 'INVALID_ARGUMENT');
  });

  it('a tenant resolves among its own only: counts and matches say nothing of others', async () => {
    assert.match((await expectStatus(get(t.alpha, 'abcd'), 400)).body.error.message, /start of 2 allocations/);
    await expectStatus(get(t.alpha, 'abcd3'), 404, 'NOT_FOUND');
    await expectStatus(get(t.alpha, 'beef'), 404, 'NOT_FOUND');
    await expectStatus(h.call(t.alpha, 'DELETE', '/v1/allocations/beef'), 404, 'NOT_FOUND');
    assert.equal((await expectStatus(get(t.beta, 'abcd'), 200)).body.id, RECORDS[2]![0], 'unique among beta’s own');
    await expectStatus(get(t.agent, 'beef'), 403, 'FORBIDDEN');
  });

  it('a node resolves among its own host’s only: another host’s count is not told', async () => {
    assert.match((await expectStatus(get(t.node1, 'abcd'), 400)).body.error.message, /start of 3 allocations/);
    const other = await expectStatus(get(t.node2, 'abcd'), 404, 'NOT_FOUND');
    assert.doesNotMatch(other.body.error.message, /\d allocations/);
    await expectStatus(h.call(t.node2, 'DELETE', '/v1/allocations/abcd'), 404, 'NOT_FOUND');
    assert.equal((await h.store.tx.findAllocationByIdPrefix('abcd', undefined, 'host-2')).count, 0);
  });

  it('fewer than 4 hex digits, or anything but hex and -, is no prefix', async () => {
    for (const id of ['abc', 'b', 'beeg', 'be%25', 'be_f']) await expectStatus(get(h.admin, id), 404, 'NOT_FOUND');
  });
});
