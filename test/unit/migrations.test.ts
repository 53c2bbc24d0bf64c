// The migration workflow on the real controller (SQLite store), each step
// driven the way agents drive it: the test reports as each host's agent
// and reads what each agent is told (its desired state).
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ADMIN, MigrationLab, OPERATOR } from '../helpers/migration-lab.js';

describe('migrating a container between PFs of its host', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open()));
  afterEach(() => lab.close());

  it('reserves a destination with the same MAC, then prepares, switches and releases as the agents report', async () => {
    const source = await lab.container('web');
    const m = await lab.control.migrations.start(OPERATOR, { allocation: source.id, to: { host: 'host-a', pf: null } });
    assert.equal(m.state, 'running');
    assert.equal(m.step, 'prepare');
    assert.equal(m.hypervisor, null);
    assert.equal(m.to!.pf, 'ens2f0', 'the scheduler picks another PF than the source');

    // reserve: the destination holds a VF of ens2f0 with the same MAC, workload, network, tenant and attachment.
    const dest = await lab.allocation(m.to!.allocation);
    assert.equal(dest.state, 'pending');
    assert.equal(dest.mac, source.mac);
    assert.deepEqual([dest.workload, dest.network, dest.tenant], [source.workload, source.network, source.tenant]);
    assert.deepEqual(dest.attachment, { ...source.attachment, hostIfName: null });
    assert.deepEqual(dest.migration, { id: m.id, role: 'destination' });
    assert.deepEqual((await lab.allocation(source.id)).migration, { id: m.id, role: 'source' });

    // prepare: the destination agent is told to configure it, the source's agent sees the migration too.
    assert.deepEqual((await lab.desiredOf('host-a', dest.id))!.migration, { id: m.id, role: 'destination', step: 'prepare', peer: source.id });
    assert.deepEqual((await lab.desiredOf('host-a', source.id))!.migration, { id: m.id, role: 'source', step: 'prepare', peer: dest.id });
    await lab.report('host-a', [{ id: dest.id, state: 'configured' }]);
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).step, 'switch');
    assert.equal((await lab.desiredOf('host-a', dest.id))!.migration!.step, 'switch');
    assert.deepEqual((await lab.desired('host-a')).tasks, [], 'a container needs no hypervisor');

    // switch: the agent re-homes the workload and reports the destination attached; the source is released.
    await lab.report('host-a', [{ id: dest.id, state: 'attached', hostIfName: 'ens2v0' }]);
    const switched = await lab.control.migrations.get(ADMIN, m.id);
    assert.equal(switched.step, 'release');
    assert.equal((await lab.allocation(source.id)).state, 'releasing');
    assert.equal((await lab.allocation(dest.id)).state, 'attached');

    // release: the source's agent scrubs the old VF and reports it released; the migration completes.
    await lab.report('host-a', [{ id: source.id, state: 'released' }]);
    const done = await lab.control.migrations.get(ADMIN, m.id);
    assert.equal(done.state, 'completed');
    assert.equal(done.step, 'done');
    assert.deepEqual(done.history.map((e) => `${e.step}:${e.outcome}`), [
      'reserve:done', 'prepare:started', 'prepare:done', 'switch:started', 'switch:done', 'release:started', 'release:done', 'done:done',
    ]);
    const after = await lab.allocation(dest.id);
    assert.equal(after.migration, null);
    assert.equal((await lab.allocation(source.id)).migration, null);
    assert.equal(lab.ctx.macs.isUsed(source.mac), true, 'the MAC stays in use: the destination holds it');
    const ips = source.attachment?.kind === 'container' ? source.attachment.ips : [];
    assert.deepEqual(await lab.store.tx.listLeases('red'), ips.map((ip) => ip.split('/')[0]), 'the address passed to the destination');
    assert.equal(ips.length, 1);

    // Each step is an audit event of the migration.
    const actions = (await lab.control.events(ADMIN, { object: `migration/${m.id}` })).map((e) => e.action);
    assert.deepEqual(actions, ['migration.reserve', 'migration.prepare', 'migration.switch', 'migration.switch', 'migration.release', 'migration.release', 'migration.done']);
  });

  it('the isolation audit takes the MAC on both ends of a migration for what it is, and still flags any other duplicate', async () => {
    const source = await lab.container('web');
    const other = await lab.container('db');
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-a', pf: 'ens2f0' } });
    const inventory = lab.inventories.get('host-a')!;
    const vfAt = (pci: string) => inventory.pfs.flatMap((pf) => pf.vfs).find((vf) => vf.pciAddress === pci)!;
    vfAt(source.pciAddress).mac = source.mac;
    vfAt(m.to!.pciAddress).mac = source.mac;
    await lab.report('host-a', [{ id: m.to!.allocation, state: 'configured' }]);
    const duplicates = async () => (await lab.control.auditIsolation(ADMIN)).violations.filter((v) => v.kind === 'duplicate-mac');
    assert.deepEqual(await duplicates(), []);
    vfAt(other.pciAddress).mac = source.mac;
    await lab.report('host-a');
    assert.equal((await duplicates()).length, 1, 'a third VF with the MAC is a finding');
  });

  it('answers a long poll once the migration ended', async () => {
    const source = await lab.container('web');
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id.slice(0, 8), to: { host: 'host-a', pf: 'ens2f0' } });
    const waiting = lab.control.migrations.wait(ADMIN, m.id, 30_000);
    await lab.report('host-a', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.report('host-a', [{ id: m.to!.allocation, state: 'attached', hostIfName: 'ens2v0' }]);
    await lab.report('host-a', [{ id: source.id, state: 'released' }]);
    assert.equal((await waiting).state, 'completed');
  });

  it('moves a container to another agent of the same kernel (the same bootId)', async () => {
    await lab.close();
    lab = await MigrationLab.open({ sharedBootId: '0d6c4b1e-0000-4000-8000-000000000001' });
    const source = await lab.container('web');
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: 'ens2f0' } });
    assert.deepEqual([m.to!.host, m.to!.pf], ['host-b', 'ens2f0']);
    assert.deepEqual((await lab.desiredOf('host-b', m.to!.allocation))!.migration, { id: m.id, role: 'destination', step: 'prepare', peer: source.id });
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'attached', hostIfName: 'ens2v0' }]);
    assert.equal((await lab.allocation(source.id)).state, 'releasing');
    await lab.report('host-a', [{ id: source.id, state: 'released' }]);
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).state, 'completed');
  });

  it('plans without changing anything on a dry run', async () => {
    const source = await lab.container('web');
    const before = await lab.snapshot();
    const plan = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-a', pf: null }, dryRun: true });
    assert.equal(plan.id, 'dry-run');
    assert.equal(plan.to!.pf, 'ens2f0');
    assert.equal(await lab.snapshot(), before);
  });
});
