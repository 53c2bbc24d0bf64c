// The migration API over HTTP: start, list, show (long poll), abort, the
// hook's prepare and complete, and the agent's side (desired state carrying
// the migration and tasks, task results in the report).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DesiredState } from '../../src/controller/desired-state.js';
import type { Allocation, Migration } from '../../src/domain/types.js';
import { expectStatus, inventoryOf, policyOf, startApi, type ApiHarness } from '../helpers/api-harness.js';

describe('migrations API', { timeout: 60_000 }, () => {
  let h: ApiHarness;
  const agents: Record<string, string> = {};
  let tenant: string;
  let operator: string;

  const report = (host: string, body: object) => expectStatus(h.call(agents[host]!, 'POST', '/v1/agent/report', { inventory: inventoryOf(host, host === 'host-a' ? 1 : 2), ...body }), 200);
  const desired = async (host: string) => (await expectStatus(h.call<DesiredState>(agents[host]!, 'GET', `/v1/agent/desired?host=${host}`), 200)).body;
  const vm = async (name: string) => {
    const a = (await expectStatus(h.call<Allocation>(h.admin, 'POST', '/v1/allocations', { network: 'red', host: 'host-a', workload: { kind: 'vm', name }, attach: { kind: 'vm', vm: name, failover: true } }), 201)).body;
    await report('host-a', { statuses: [{ id: a.id, state: 'attached' }] });
    return a;
  };

  before(async () => {
    h = await startApi();
    for (const host of ['host-a', 'host-b']) {
      agents[host] = await h.token(`agent:${host}`);
      await report(host, {});
      await expectStatus(h.call(h.admin, 'PUT', `/v1/hosts/${host}/policy`, { document: policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]) }), 200);
    }
    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'acme' }), 201);
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100 }), 201);
    tenant = await h.token('tenant:acme');
    operator = await h.token('operator');
  });
  after(() => h.close());

  it('moves a VM through QMP tasks given in the desired state and results in the report', async () => {
    const a = await vm('vm1');
    const start = { allocation: a.id, to: { host: 'host-b' }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' };
    const plan = (await expectStatus(h.call<Migration>(operator, 'POST', '/v1/migrations', { ...start, dryRun: true }), 200)).body;
    assert.equal(plan.id, 'dry-run');
    const m = (await expectStatus(h.call<Migration>(operator, 'POST', '/v1/migrations', start), 201)).body;
    assert.equal(m.step, 'prepare');
    await expectStatus(h.call(operator, 'POST', '/v1/migrations', start), 409, 'CONFLICT');

    const onB = (await desired('host-b')).allocations.find((x) => x.id === m.to!.allocation)!;
    assert.deepEqual(onB.migration, { id: m.id, role: 'destination', step: 'prepare', peer: a.id });
    await report('host-b', { statuses: [{ id: m.to!.allocation, state: 'configured' }] });
    const [task] = (await desired('host-a')).tasks;
    assert.equal(task!.op, 'migrate');
    assert.deepEqual(task!.request, { vm: 'vm1', destination: 'tcp:198.18.0.2:4444', sourceDevice: `hostdev-${a.id.slice(0, 8)}` });

    const waiting = h.call<Migration>(tenant, 'GET', `/v1/migrations/${m.id}?wait=30`);
    await report('host-a', { results: [{ id: task!.id, ok: true, detail: 'completed', result: { statuses: ['active', 'completed'], downtimeMs: 61, totalMs: 900 } }] });
    const [plug] = (await desired('host-b')).tasks;
    await report('host-b', { results: [{ id: plug!.id, ok: true, detail: 'plugged' }] });
    await report('host-a', { statuses: [{ id: a.id, state: 'released' }] });
    const done = (await expectStatus(waiting, 200)).body;
    assert.deepEqual([done.state, done.downtimeMs], ['completed', 61]);

    const listed = (await expectStatus(h.call<Migration[]>(tenant, 'GET', '/v1/migrations?state=completed'), 200)).body;
    assert.deepEqual(listed.map((x) => x.id), [m.id]);
    const moved = (await expectStatus(h.call<Allocation>(h.admin, 'GET', `/v1/allocations/${m.to!.allocation}`), 200)).body;
    assert.deepEqual([moved.state, moved.migration, moved.mac], ['attached', null, a.mac]);
  });

  it('drives the hook: prepare answers with the hostdev XML, complete releases the source; abort rolls another back', async () => {
    const a = await vm('vm2');
    const m = (await expectStatus(h.call<Migration>(h.admin, 'POST', '/v1/migrations', { allocation: a.id, to: { host: 'host-b', pf: 'ens2f0' }, hypervisor: 'hook' }), 201)).body;
    const prepared = h.call<{ migration: Migration; hostdevXml: string }>(operator, 'POST', `/v1/migrations/${m.id}/prepare?wait=30`);
    await report('host-b', { statuses: [{ id: m.to!.allocation, state: 'configured' }] });
    const ready = (await expectStatus(prepared, 200)).body;
    assert.match(ready.hostdevXml, /<interface type=.hostdev./);
    const completed = (await expectStatus(h.call<Migration>(operator, 'POST', `/v1/migrations/${m.id}/complete`), 200)).body;
    assert.equal(completed.step, 'release');

    const b = await vm('vm3');
    const n = (await expectStatus(h.call<Migration>(h.admin, 'POST', '/v1/migrations', { allocation: b.id, to: { host: 'host-b' }, hypervisor: 'hook' }), 201)).body;
    await expectStatus(h.call(tenant, 'POST', `/v1/migrations/${n.id}/abort`), 403, 'FORBIDDEN');
    const aborting = (await expectStatus(h.call<Migration>(operator, 'POST', `/v1/migrations/${n.id}/abort`), 200)).body;
    assert.equal(aborting.state, 'rolling-back');
    await expectStatus(h.call(operator, 'GET', '/v1/migrations/nope?wait=99'), 400, 'INVALID_ARGUMENT');
    await expectStatus(h.call(operator, 'GET', '/v1/migrations/nope'), 404, 'NOT_FOUND');
    await expectStatus(h.call(operator, 'POST', '/v1/migrations', { allocation: b.id, to: { host: 'host-b' }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:1', extra: 1 }), 400);
  });
});
