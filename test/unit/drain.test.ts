// The drain executor on the real controller (SQLite store) over an in-test
// Migrations (test/helpers/fake-migrations.ts): it checks every move first and
// changes nothing when one cannot go, drains the PF, then starts the
// migrations a bounded number at a time, and a re-run follows what already
// moves instead of starting it twice.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ControlPlane } from '../../src/controller/control-plane.js';
import { DrainService, type DrainReport } from '../../src/controller/drain.js';
import type { Actor } from '../../src/domain/actor.js';
import { SriovError } from '../../src/host/errors.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { policyOf } from '../helpers/api-harness.js';
import { FakeMigrations } from '../helpers/fake-migrations.js';
import { makeHost } from '../helpers/inventory.js';
import { refusal } from '../helpers/refusal.js';

const ADMIN: Actor = { id: 'test', role: 'admin' };
const OPERATOR: Actor = { id: 'op', role: 'operator' };
const PF0 = '0000:10:00.0';
const vf = (pf: 0 | 1, index: number) => `0000:1${pf}:00.${index + 1}`;
const agent = (host: string): Actor => ({ id: `agent-${host}`, role: `agent:${host}` });

describe('drain executor', { timeout: 60_000 }, () => {
  let dir: string;
  let store: Store;
  let control: ControlPlane;
  let fake: FakeMigrations;

  const service = (concurrency = 2) => new DrainService(control.ctx, control.drains, fake, { concurrency, waitMs: 5_000 });
  const drainedPfs = async () => (await store.tx.getHost('host-a'))!.drainedPfs;
  const events = async (action: string) => (await control.events(ADMIN, { limit: 100_000 })).filter((e) => e.action === action);
  const container = (name: string, index: number) =>
    control.allocations.create(ADMIN, { network: 'red', workload: { kind: 'container', name }, host: 'host-a', pciAddress: vf(0, index) });
  const ids = (r: DrainReport) => r.moves.map((m) => m.migration);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-drain-exec-'));
    store = await openSqliteStore(dir);
    control = await ControlPlane.open(store);
    for (const host of ['host-a', 'host-b']) {
      await control.hosts.report(agent(host), makeHost({ name: host, pfs: 2, vfs: 4, driver: 'ice', linkSpeedMbps: 10_000 }).inventory);
      await control.hosts.putPolicy(ADMIN, host, policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
    }
    await control.networks.createTenant(ADMIN, 'acme');
    await control.networks.createNetwork(ADMIN, { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100 });
    fake = new FakeMigrations(store);
  });

  afterEach(async () => {
    control.shutdown();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('plans a dry run through the service’s own checks and changes nothing', async () => {
    const held = [await container('pod-1', 0), await container('pod-2', 1)];
    const report = await service().drain(OPERATOR, { host: 'host-a', pf: 'ens1f0', dryRun: true });
    assert.equal(report.state, 'planned');
    assert.equal(report.dryRun, true);
    assert.deepEqual(
      report.moves.map((m) => [m.allocation, m.to, m.migration, m.refusal]).sort(),
      held.map((a) => [a.id, { host: 'host-a', pf: 'ens2f0' }, null, null]).sort(),
    );
    assert.equal(fake.dryRuns, 2, 'each move checked by the migration service');
    assert.deepEqual([fake.started, await drainedPfs(), await events('pf.drain')], [[], [], []]);
  });

  it('refuses the whole drain, nothing changed, when one move cannot go', async () => {
    const pod = await container('pod-1', 0);
    const vm = await control.allocations.create(ADMIN, {
      network: 'red',
      workload: { kind: 'vm', name: 'vm-1' },
      host: 'host-a',
      pciAddress: vf(0, 1),
      attach: { kind: 'vm', vm: 'vm-1', failover: false },
    });
    // What only the migration service knows: the VF's driver and the standby.
    fake.refuse = (req) =>
      req.allocation === vm.id ? new SriovError('INVALID_ARGUMENT', 'VM vm-1 has no failover standby, and its VF driver iavf is not a vfio migration driver') : null;
    const err = await refusal(service().drain(ADMIN, { host: 'host-a', pf: 'ens1f0', hypervisor: 'libvirt' }), 'NO_CAPACITY');
    assert.equal(
      err.message,
      `drain of host-a/ens1f0 refused, nothing changed: 1 of 2 allocations cannot move: ${vm.id.slice(0, 8)} (vm vm-1): ` +
        'VM vm-1 has no failover standby, and its VF driver iavf is not a vfio migration driver',
    );
    assert.equal(err.details.nothingChanged, true);
    assert.deepEqual([fake.started, await drainedPfs(), await events('pf.drain')], [[], [], []]);

    // The dry run shows the same, as a plan.
    const dry = await service().drain(ADMIN, { host: 'host-a', pf: 'ens1f0', hypervisor: 'libvirt', dryRun: true });
    assert.equal(dry.state, 'refused');
    const byId = Object.fromEntries(dry.moves.map((m) => [m.allocation, [m.to, m.refusal === null]]));
    assert.deepEqual(byId, { [pod.id]: [{ host: 'host-a', pf: 'ens2f0' }, true], [vm.id]: [{ host: 'host-b', pf: 'ens1f0' }, false] });

    // Nowhere to go at all: the planner's reason, before the service is asked.
    fake.refuse = () => null;
    for (let i = 0; i < 4; i++) await control.allocations.create(ADMIN, { network: 'red', workload: { kind: 'container', name: `fill-${i}` }, host: 'host-a', pciAddress: vf(1, i) });
    const full = await refusal(service().drain(ADMIN, { host: 'host-a', pf: 'ens1f0', hypervisor: 'libvirt' }), 'NO_CAPACITY');
    assert.match(full.message, new RegExp(`cannot move: ${pod.id.slice(0, 8)} \\(container pod-1\\): container pod-1 can only move to another PF of host-a .* are full`));
    assert.deepEqual([fake.started, await drainedPfs()], [[], []]);
  });

  it('drains the PF, then runs the migrations at most `concurrency` at a time to the end', async () => {
    await Promise.all([container('pod-1', 0), container('pod-2', 1), container('pod-3', 2)]);
    const drains = service(2);
    const report = await drains.drain(OPERATOR, { host: 'host-a', pf: 'ens1f0' });
    const held = report.moves.map((m) => ({ id: m.allocation }));
    assert.equal(report.state, 'running');
    assert.deepEqual(ids(report), ['mig-1', 'mig-2', null], 'two started, the third waits for a slot');
    assert.deepEqual(await drainedPfs(), [PF0], 'the PF takes nothing new while it empties');
    assert.equal((await events('pf.drain')).length, 1);
    assert.deepEqual(fake.started[0], { allocation: held[0]!.id, to: { host: 'host-a', pf: 'ens2f0' }, drain: 'host-a/ens1f0' });

    const third = fake.nextStart();
    fake.finish('mig-1');
    await third;
    assert.equal(fake.started.length, 3);
    assert.equal(fake.started[2]!.allocation, held[2]!.id);
    fake.finish('mig-2');
    fake.finish('mig-3');
    const end = (await drains.settled('host-a/ens1f0'))!;
    assert.equal(end.state, 'completed');
    assert.deepEqual(ids(end), ['mig-1', 'mig-2', 'mig-3']);
    assert.deepEqual(Object.values(end.progress).map((p) => p.state), ['completed', 'completed', 'completed']);
    assert.equal(fake.maxRunning, 2);
  });

  it('is idempotent: a re-run joins the running drain, and after a restart follows what already moves', async () => {
    const held = [await container('pod-1', 0), await container('pod-2', 1), await container('pod-3', 2)];
    const first = service(1);
    const started = await first.drain(ADMIN, { host: 'host-a', pf: 'ens1f0' });
    assert.deepEqual(ids(started), ['mig-1', null, null]);
    const again = await first.drain(ADMIN, { host: 'host-a', pf: 'ens1f0' });
    assert.deepEqual([again.state, ids(again), fake.started.length], ['running', ['mig-1', null, null], 1]);

    // A restarted controller: a new service, the migration still running.
    first.shutdown();
    const second = service(1);
    const resumed = await second.drain(ADMIN, { host: 'host-a', pf: 'ens1f0' });
    assert.deepEqual(ids(resumed), ['mig-1', null, null], 'mig-1 followed, not started again');
    assert.equal(fake.started.length, 1);
    assert.equal(fake.dryRuns, 3 + 2, 'the re-run checks only the moves not yet under way');

    for (const id of ['mig-1', 'mig-2']) {
      const next = fake.nextStart();
      fake.finish(id);
      await next;
    }
    fake.finish('mig-3');
    const end = (await second.settled('host-a/ens1f0'))!;
    assert.equal(end.state, 'completed');
    assert.deepEqual(fake.started.map((r) => r.allocation).sort(), held.map((a) => a.id).sort(), 'each allocation started once');
  });

  it('records a migration refused or failed at run time, goes on with the rest, and ends failed', async () => {
    await Promise.all([container('pod-1', 0), container('pod-2', 1), container('pod-3', 2)]);
    // The second move's start is refused once the drain runs (its dry run passed); the third is started meanwhile by hand.
    const refused = { id: '' };
    fake.refuse = (req) => (!req.dryRun && req.allocation === refused.id ? new SriovError('NO_CAPACITY', 'host-a/ens2f0 was drained meanwhile') : null);
    const drains = service(1);
    const held = (await drains.drain(ADMIN, { host: 'host-a', pf: 'ens1f0' })).moves.map((m) => ({ id: m.allocation }));
    refused.id = held[1]!.id;
    const byHand = await fake.start(ADMIN, { allocation: held[2]!.id, to: { host: 'host-b', pf: null } });
    const followed = fake.waitedOn(byHand.id);
    fake.finish('mig-1', 'failed', 'the destination VF vanished');
    await followed;
    fake.finish(byHand.id);
    const end = (await drains.settled('host-a/ens1f0'))!;
    assert.equal(end.state, 'failed');
    assert.deepEqual(
      end.moves.map((m) => [m.migration, m.refusal]),
      [
        ['mig-1', null],
        [null, 'host-a/ens2f0 was drained meanwhile'],
        [byHand.id, null],
      ],
    );
    assert.deepEqual(end.progress['mig-1'], { state: 'failed', step: 'prepare', reason: 'the destination VF vanished' });
    assert.equal(fake.started.length, 2, 'the one started by hand was followed, not started twice');
  });

  it('is staff only and refuses bad input before anything', async () => {
    await container('pod-1', 0);
    await refusal(service().drain({ id: 't', role: 'tenant:acme' }, { host: 'host-a' }), 'FORBIDDEN');
    await refusal(service().drain(ADMIN, { host: 'host-a', pf: '../ens1f0' }), 'INVALID_ARGUMENT');
    await refusal(service().drain(ADMIN, { host: 'host-a', hypervisor: 'xen' as never }), 'INVALID_ARGUMENT');
    await refusal(service().drain(ADMIN, { host: 'Host_A' }), 'INVALID_ARGUMENT');
    await refusal(service().drain(ADMIN, { host: 'host-z' }), 'NOT_FOUND');
    assert.deepEqual([fake.started, fake.dryRuns, await drainedPfs()], [[], 0, []]);
  });
});
