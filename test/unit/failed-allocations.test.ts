/** A failed allocation is cleared by DELETE: released at once, its reason kept, its (already freed) VF untouched. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Allocation, AuditEvent } from '../../src/domain/types.js';
import { makeHost } from '../helpers/inventory.js';
import { expectStatus, policyOf, startApi, type ApiHarness, type ErrorBody } from '../helpers/api-harness.js';

const HOST = 'host-1';

describe('DELETE of a failed allocation', () => {
  let h: ApiHarness;
  let alpha: string;
  const allocate = (body: Record<string, unknown> = {}) =>
    h.call<Allocation & ErrorBody>(alpha, 'POST', '/v1/allocations', { network: 'blue', workload: { kind: 'vm', name: 'vm1' }, ...body });
  const fail = (id: string, reason: string) => h.control.allocations.applyStatus(HOST, [{ id, state: 'failed', reason }]);

  before(async () => {
    h = await startApi();
    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'alpha' }), 201);
    alpha = await h.token('tenant:alpha');
    await h.control.hosts.report({ id: 'local', role: 'admin' }, makeHost({ name: HOST, pfs: 1, vfs: 2, physnet: null }).inventory);
    await expectStatus(h.call(h.admin, 'PUT', `/v1/hosts/${HOST}/policy`, { document: policyOf([['f', 'ens1f0', 'fabric']], 2) }), 200);
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'blue', tenant: 'alpha', physnet: 'fabric', vlan: 100 }), 201);
  });
  after(() => h.close());

  it('clears it to released with the reason kept; a second DELETE returns it unchanged', async () => {
    const a = (await expectStatus(allocate(), 201)).body;
    await fail(a.id, 'nsenter: cannot open /var/run/netns/gone');
    const seqBefore = (await h.store.tx.listEvents()).at(-1)!.seq;
    const cleared = (await expectStatus(h.call<Allocation>(alpha, 'DELETE', `/v1/allocations/${a.id}`), 200)).body;
    assert.equal(cleared.state, 'released');
    // The host's words are kept for staff; the tenant is told only that the host had a problem.
    assert.doesNotMatch(cleared.reason ?? '', /nsenter|netns/);
    assert.equal((await h.call<Allocation>(h.admin, 'GET', `/v1/allocations/${a.id}`)).body.reason, 'nsenter: cannot open /var/run/netns/gone');
    const again = (await expectStatus(h.call<Allocation>(alpha, 'DELETE', `/v1/allocations/${a.id}`), 200)).body;
    assert.deepEqual(again, cleared);
    const events = (await h.store.tx.listEvents({ afterSeq: seqBefore })) as AuditEvent[];
    assert.deepEqual(events.map((e) => [e.action, e.object]), [['allocation.released', `allocation/${a.id}`]]);
  });

  it('never hands the host anything, and does not free a VF another allocation took since', async () => {
    const a = (await expectStatus(allocate({ host: HOST }), 201)).body;
    await fail(a.id, 'VF refused the MAC');
    // The failure freed the VF; pin it for a new allocation.
    const b = (await expectStatus(allocate({ host: HOST, pciAddress: a.pciAddress }), 201)).body;
    await expectStatus(h.call(alpha, 'DELETE', `/v1/allocations/${a.id}`), 200);
    const desired = await h.control.hosts.desired({ id: 'local', role: 'admin' }, HOST);
    assert.deepEqual(desired.allocations.map((x) => x.id), [b.id], 'the cleared allocation is not sent to the agent');
    // Still held by b: a third allocation pinned to it is refused.
    await expectStatus(allocate({ host: HOST, pciAddress: a.pciAddress }), 409, 'NO_CAPACITY');
    assert.equal((await h.call<Allocation>(alpha, 'GET', `/v1/allocations/${b.id}`)).body.state, 'pending');
  });
});
