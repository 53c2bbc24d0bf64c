/**
 * An agent's report is checked against the allocation as its transaction
 * reads it: an `attached` read before a DELETE moved the allocation to
 * releasing does not move it back (its VF would never be released), and
 * two reports of one host apply side by side.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Allocation } from '../../src/domain/types.js';
import { makeHost } from '../helpers/inventory.js';
import { expectStatus, policyOf, startApi, type ApiHarness, type ErrorBody } from '../helpers/api-harness.js';

const HOST = 'host-1';

describe('agent status reports racing other changes', () => {
  let h: ApiHarness;
  let alpha: string;
  const allocate = (name: string) => h.call<Allocation & ErrorBody>(alpha, 'POST', '/v1/allocations', { network: 'blue', workload: { kind: 'vm', name } });
  const stateOf = async (id: string) => (await h.call<Allocation>(h.admin, 'GET', `/v1/allocations/${id}`)).body.state;

  before(async () => {
    h = await startApi();
    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'alpha' }), 201);
    alpha = await h.token('tenant:alpha');
    await h.control.hosts.report({ id: 'local', role: 'admin' }, makeHost({ name: HOST, pfs: 1, vfs: 4, physnet: null }).inventory);
    await expectStatus(h.call(h.admin, 'PUT', `/v1/hosts/${HOST}/policy`, { document: policyOf([['f', 'ens1f0', 'fabric']], 4) }), 200);
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'blue', tenant: 'alpha', physnet: 'fabric', vlan: 100 }), 201);
  });
  after(() => h.close());

  it('an `attached` read before a DELETE does not undo the release', async () => {
    const a = (await expectStatus(allocate('vm1'), 201)).body;
    const tx = h.store.tx;
    const read = tx.getAllocation;
    let raced = false;
    // The DELETE lands after the report's first read of the allocation, before its transaction.
    tx.getAllocation = async (id: string) => {
      const found = await read.call(tx, id);
      if (!raced && id === a.id) {
        raced = true;
        await expectStatus(h.call(alpha, 'DELETE', `/v1/allocations/${a.id}`), 200);
      }
      return found;
    };
    try {
      await h.control.allocations.applyStatus(HOST, [{ id: a.id, state: 'attached' }]);
    } finally {
      tx.getAllocation = read;
    }
    assert.ok(raced);
    assert.equal(await stateOf(a.id), 'releasing');
    const actions = (await h.store.tx.listEvents()).filter((e) => e.object === `allocation/${a.id}`).map((e) => e.action);
    assert.deepEqual(actions, ['allocation.create', 'allocation.releasing']);
  });

  it('applies several reports of one host, each once', async () => {
    const [b, c] = [(await expectStatus(allocate('vm2'), 201)).body, (await expectStatus(allocate('vm3'), 201)).body];
    const report = [{ id: b.id, state: 'attached' as const }, { id: c.id, state: 'configured' as const }];
    await Promise.all([h.control.allocations.applyStatus(HOST, report), h.control.allocations.applyStatus(HOST, report)]);
    assert.deepEqual([await stateOf(b.id), await stateOf(c.id)], ['attached', 'configured']);
    const events = (await h.store.tx.listEvents()).filter((e) => e.object === `allocation/${b.id}` || e.object === `allocation/${c.id}`).map((e) => e.action);
    assert.deepEqual(events.sort(), ['allocation.attached', 'allocation.configured', 'allocation.create', 'allocation.create']);
  });
});
