// POST /v1/drains over HTTP: staff only, strict body, 200 for a dry run and
// 202 once running, and a refusal that changed nothing. The migration service
// is the in-test one (test/helpers/fake-migrations.ts), under a drainer put
// where the control plane keeps its own (control.drainer) before the first request.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DrainService, type DrainReport } from '../../src/controller/drain.js';
import type { Actor } from '../../src/domain/actor.js';
import { expectStatus, policyOf, startApi, type ApiHarness } from '../helpers/api-harness.js';
import { FakeMigrations } from '../helpers/fake-migrations.js';
import { makeHost } from '../helpers/inventory.js';

const ADMIN: Actor = { id: 'test', role: 'admin' };
const vf = (pf: 0 | 1, index: number) => `0000:1${pf}:00.${index + 1}`;

describe('POST /v1/drains', { timeout: 60_000 }, () => {
  let h: ApiHarness;
  let fake: FakeMigrations;
  let operator: string;
  let tenant: string;

  before(async () => {
    h = await startApi();
    const { control } = h;
    await control.hosts.report({ id: 'agent', role: 'agent:host-a' }, makeHost({ name: 'host-a', pfs: 2, vfs: 4, driver: 'ice', linkSpeedMbps: 10_000 }).inventory);
    await control.hosts.putPolicy(ADMIN, 'host-a', policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
    await control.networks.createTenant(ADMIN, 'acme');
    await control.networks.createNetwork(ADMIN, { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100 });
    await control.allocations.create(ADMIN, { network: 'red', workload: { kind: 'container', name: 'pod-1' }, host: 'host-a', pciAddress: vf(0, 0) });
    operator = await h.token('operator');
    tenant = await h.token('tenant:acme');
    fake = new FakeMigrations(h.store);
    Object.assign(h.control, { drainer: new DrainService(control.ctx, control.drains, fake) });
  });

  after(async () => h.close());

  it('is staff only and refuses a bad body before anything', async () => {
    await expectStatus(h.call(tenant, 'POST', '/v1/drains', { host: 'host-a' }), 403, 'FORBIDDEN');
    await expectStatus(h.call(operator, 'POST', '/v1/drains', { host: 'host-a', force: true }), 400, 'INVALID_ARGUMENT');
    await expectStatus(h.call(operator, 'POST', '/v1/drains', { host: 'host-a', hypervisor: 'xen' }), 400, 'INVALID_ARGUMENT');
    await expectStatus(h.call(operator, 'POST', '/v1/drains', { host: 'host-a', pf: 'a/b' }), 400, 'INVALID_ARGUMENT');
    await expectStatus(h.call(operator, 'POST', '/v1/drains', { host: 'host-z' }), 404, 'NOT_FOUND');
    assert.deepEqual([fake.started.length, fake.dryRuns], [0, 0]);
  });

  it('answers a dry run with the plan (200), then runs it (202)', async () => {
    const dry = await expectStatus(h.call<DrainReport>(operator, 'POST', '/v1/drains', { host: 'host-a', pf: 'ens1f0', dryRun: true }), 200);
    assert.equal(dry.body.state, 'planned');
    assert.deepEqual(dry.body.moves.map((m) => [m.workload.name, m.to, m.migration]), [['pod-1', { host: 'host-a', pf: 'ens2f0' }, null]]);
    assert.deepEqual((await h.store.tx.getHost('host-a'))!.drainedPfs, []);

    const run = await expectStatus(h.call<DrainReport>(operator, 'POST', '/v1/drains', { host: 'host-a', pf: 'ens1f0' }), 202);
    assert.deepEqual([run.body.id, run.body.state, run.body.moves[0]!.migration], ['host-a/ens1f0', 'running', 'mig-1']);
    assert.deepEqual(run.body.progress, { 'mig-1': { state: 'running', step: 'prepare', reason: null } });
    assert.deepEqual((await h.store.tx.getHost('host-a'))!.drainedPfs, ['0000:10:00.0']);
    fake.finish('mig-1');
  });

  it('refuses with the reason (409) when a move has nowhere to go', async () => {
    // The whole host: pod-1 has no other PF of its kernel to go to.
    const r = await expectStatus(h.call(operator, 'POST', '/v1/drains', { host: 'host-a' }), 409, 'NO_CAPACITY');
    assert.match(r.body.error.message, /^drain of host-a refused, nothing changed: 1 of 1 allocation cannot move: .*\(container pod-1\): container pod-1 can only move to another PF of host-a \(no other host reports its bootId\)/);
    assert.deepEqual((await h.store.tx.getHost('host-a'))!.drainedPfs, ['0000:10:00.0'], 'ens2f0 not drained');
  });
});
