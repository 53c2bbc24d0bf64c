// A controller restarted (a new ControlPlane on the same SQLite file) in the
// middle of a migration goes on from the step it recorded last: agents are
// told the same step and the same task ids, and their reports finish it.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ADMIN, MigrationLab } from '../helpers/migration-lab.js';

describe('resuming migrations after a controller restart', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open()));
  afterEach(() => lab.close());

  it('mid-prepare and mid-switch of a container: the same steps, then completed', async () => {
    const source = await lab.container('web');
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-a', pf: null } });
    await lab.reopen();
    assert.equal((await lab.desiredOf('host-a', m.to!.allocation))!.migration!.step, 'prepare');
    assert.equal(lab.ctx.macs.isUsed(source.mac), true);
    await lab.report('host-a', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.reopen();
    assert.equal((await lab.desiredOf('host-a', source.id))!.migration!.step, 'switch');
    await lab.report('host-a', [{ id: m.to!.allocation, state: 'attached', hostIfName: 'ens2v0' }]);
    await lab.reopen();
    assert.equal((await lab.allocation(source.id)).state, 'releasing');
    await lab.report('host-a', [{ id: source.id, state: 'released' }]);
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).state, 'completed');
    // The scheduler the reopened controller rebuilt holds the destination's VF, not the source's.
    const next = await lab.control.allocations.create(ADMIN, { network: 'red', host: 'host-a', pciAddress: source.pciAddress, workload: { kind: 'container', name: 'next' } });
    assert.equal(next.pciAddress, source.pciAddress);
  });

  it('mid-switch of a VM ("kill -9" with the migrate task out): the same task id, and its result is taken', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' });
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    const before = (await lab.desired('host-a')).tasks;
    await lab.reopen();
    assert.deepEqual((await lab.desired('host-a')).tasks, before);
    await lab.report('host-a', [], [{ id: before[0]!.id, ok: true, detail: 'completed (found done)' }]);
    await lab.reopen();
    const [plug] = (await lab.desired('host-b')).tasks;
    assert.equal(plug!.id, `${m.id}:plug:host-b`);
    await lab.report('host-b', [], [{ id: plug!.id, ok: true, detail: 'plugged' }]);
    await lab.reopen();
    await lab.report('host-a', [{ id: source.id, state: 'released' }]);
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).state, 'completed');
  });

  it('a rollback, and a release, that ended while the controller was down are finished on open', async () => {
    const source = await lab.container('web');
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-a', pf: null } });
    await lab.control.migrations.abort(ADMIN, m.id);
    // The agent's report is applied, but the controller dies before the migration hears of it.
    await lab.control.allocations.applyStatus('host-a', [{ id: m.to!.allocation, state: 'released' }]);
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).state, 'rolling-back');
    await lab.reopen();
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).state, 'aborted');

    const again = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-a', pf: null } });
    await lab.report('host-a', [{ id: again.to!.allocation, state: 'configured' }]);
    await lab.report('host-a', [{ id: again.to!.allocation, state: 'attached', hostIfName: 'ens2v0' }]);
    await lab.control.allocations.applyStatus('host-a', [{ id: source.id, state: 'released' }]);
    await lab.reopen();
    assert.equal((await lab.control.migrations.get(ADMIN, again.id)).state, 'completed');
    assert.equal((await lab.allocation(again.to!.allocation)).migration, null);
    assert.equal(lab.ctx.macs.isUsed(source.mac), true, 'the reopened MAC pool knows the destination holds it');
  });
});
