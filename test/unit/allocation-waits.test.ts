// Waiting for an allocation's state (GET /v1/allocations/:id?wait=S&while=...):
// the waiting module on its own, then the route against a real controller.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AllocationWaits, parseWaitQuery } from '../../src/controller/allocation-waits.js';
import type { Allocation, AllocationState } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import { expectStatus, inventoryOf, newToken, POLICY_FABRIC, startApi, type ApiHarness } from '../helpers/api-harness.js';

describe('the waiting module', () => {
  /** An allocation whose state the test sets; `afterRead(n)` resolves once the waiter has read it n times. */
  const stub = (initial: AllocationState) => {
    const s = { state: initial, reads: 0 };
    const pending = new Map<number, () => void>();
    const read = async () => {
      s.reads++;
      pending.get(s.reads)?.();
      return { id: 'a1', state: s.state } as Allocation;
    };
    const afterRead = (n: number) => new Promise<void>((resolve) => pending.set(n, resolve));
    return { s, read, afterRead };
  };

  it('answers at once when the state is already not in while', async () => {
    const { s, read } = stub('attached');
    const a = await new AllocationWaits().waitWhile(read, { waitMs: 60_000, states: ['pending', 'configured'] });
    assert.equal(a.state, 'attached');
    assert.equal(s.reads, 1);
  });

  it('is woken by wake(id) only, and waits on through a change within while', async () => {
    const waits = new AllocationWaits();
    const { s, read, afterRead } = stub('pending');
    const answer = waits.waitWhile(read, { waitMs: 60_000, states: ['pending', 'configured'] });
    // Read 2 is made once armed: from then on a wake is not missed.
    await afterRead(2);
    waits.wake('another-allocation');
    s.state = 'configured';
    const rearmed = afterRead(4);
    waits.wake('a1');
    await rearmed;
    assert.equal(s.reads, 4, 'woken once, then armed again');
    s.state = 'attached';
    waits.wake('a1');
    assert.equal((await answer).state, 'attached');
    assert.equal(s.reads, 5);
  });

  it('times out with the state it has then; without while it waits for any change', async () => {
    const { read } = stub('releasing');
    const a = await new AllocationWaits().waitWhile(read, { waitMs: 1, states: null });
    assert.equal(a.state, 'releasing');
  });

  it('validates wait and while with one-line refusals', () => {
    assert.equal(parseWaitQuery({}), null);
    assert.deepEqual(parseWaitQuery({ wait: '30', while: 'pending,configured' }), { waitMs: 30_000, states: ['pending', 'configured'] });
    assert.deepEqual(parseWaitQuery({ wait: '1' }), { waitMs: 1000, states: null });
    const refusals: Array<[Record<string, string>, RegExp]> = [
      [{ wait: '0' }, /wait must be whole seconds 1-60, got "0"/],
      [{ wait: '61' }, /wait must be whole seconds 1-60, got "61"/],
      [{ wait: '1.5' }, /wait must be whole seconds 1-60/],
      [{ wait: '-1' }, /wait must be whole seconds 1-60/],
      [{ wait: '5', while: 'pending,bogus' }, /while names an unknown allocation state "bogus"; states are pending, configured/],
      [{ wait: '5', while: '' }, /unknown allocation state ""/],
      [{ while: 'pending' }, /while needs wait=S/],
    ];
    for (const [q, message] of refusals) {
      assert.throws(() => parseWaitQuery(q), (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT' && message.test(e.message) && !e.message.includes('\n'));
    }
  });
});

describe('GET /v1/allocations/:id?wait=S&while=...', () => {
  let h: ApiHarness;
  const tok: Record<string, string> = {};
  let alloc: Allocation;

  before(async () => {
    h = await startApi();
    for (const name of ['alpha', 'bravo']) await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name }), 201);
    tok.alpha = (await newToken(h, 'tenant:alpha')).token;
    tok.bravo = (await newToken(h, 'tenant:bravo')).token;
    tok.agent = (await newToken(h, 'agent:host-a')).token;
    await expectStatus(h.call(tok.agent, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a') }), 200);
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-a/policy', { document: POLICY_FABRIC }), 200);
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'alpha-net', tenant: 'alpha', physnet: 'fabric', vlan: 3801 }), 201);
    alloc = (await expectStatus(h.call<Allocation>(tok.alpha!, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'container', name: 'w1' } }), 201)).body;
  });

  after(() => h.close());

  const url = (query: string) => `/v1/allocations/${alloc.id}?${query}`;

  it('times out with the current state', async () => {
    const r = await expectStatus(h.call<Allocation>(tok.alpha!, 'GET', url('wait=1&while=pending')), 200);
    assert.equal(r.body.state, 'pending');
  });

  it('answers when the agent reports the allocation out of the waited states', async () => {
    const answer = h.call<Allocation>(tok.alpha!, 'GET', url('wait=30&while=pending'));
    await expectStatus(h.call(tok.agent!, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a'), statuses: [{ id: alloc.id, state: 'configured' }] }), 200);
    const r = await expectStatus(answer, 200);
    assert.equal(r.body.state, 'configured');
  });

  it('answers when a release starts', async () => {
    const answer = h.call<Allocation>(tok.alpha!, 'GET', url('wait=30&while=configured'));
    await expectStatus(h.call(tok.alpha!, 'DELETE', `/v1/allocations/${alloc.id}`), 200);
    assert.equal((await expectStatus(answer, 200)).body.state, 'releasing');
  });

  it('404 for an unknown id, and for another tenant’s allocation', async () => {
    await expectStatus(h.call(tok.alpha!, 'GET', '/v1/allocations/00000000-0000-4000-8000-000000000000?wait=1&while=pending'), 404, 'NOT_FOUND');
    // Tenant bravo neither waits on alpha's allocation nor learns its state.
    const r = await expectStatus(h.call(tok.bravo!, 'GET', url('wait=1&while=releasing')), 404, 'NOT_FOUND');
    assert.ok(!r.text.includes('"state"'));
  });

  it('refuses a bad wait or while in one line, naming the field', async () => {
    for (const [query, words] of [
      ['wait=0&while=pending', 'wait must be whole seconds 1-60'],
      ['wait=abc', 'wait must be whole seconds 1-60'],
      ['wait=5&while=pending,nope', 'unknown allocation state "nope"'],
      ['while=pending', 'while needs wait'],
      ['wait=5&until=attached', 'unknown field "until"'],
    ] as const) {
      const r = await expectStatus(h.call(tok.alpha!, 'GET', url(query)), 400, 'INVALID_ARGUMENT');
      assert.ok(r.body.error.message.includes(words), `${query}: ${r.body.error.message}`);
      assert.ok(!r.body.error.message.includes('\n'));
    }
  });
});
