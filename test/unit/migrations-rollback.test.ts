// A migration that fails, or is aborted, before its switch completed rolls
// back: the destination is released (its bandwidth given back), the source
// keeps its workload (a VM's VF plugged back); after the switch it rolls
// forward instead.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Migration } from '../../src/domain/types.js';
import { ADMIN, MigrationLab, OPERATOR } from '../helpers/migration-lab.js';
import { refusal } from '../helpers/refusal.js';

describe('rolling a migration back', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open({ minTxRateMbps: 4_000 })));
  afterEach(() => lab.close());

  const get = (m: Migration) => lab.control.migrations.get(ADMIN, m.id);
  /** The destination's agent scrubs and frees it, as a release does. */
  const released = (m: Migration) => lab.report(m.to!.host, [{ id: m.to!.allocation, state: 'released' }]);

  it('when the destination VF fails to configure: the destination is gone, the source is plain again', async () => {
    const source = await lab.container('web');
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-a', pf: 'ens2f0' } });
    await lab.report('host-a', [{ id: m.to!.allocation, state: 'failed', reason: 'VF 0000:11:00.1 vanished' }]);
    const failed = await get(m);
    assert.equal(failed.state, 'failed');
    assert.match(failed.reason!, /destination VF host-a\/ens2f0 VF 0000:11:00\.1 is failed \(VF 0000:11:00\.1 vanished\)/);
    const after = await lab.allocation(source.id);
    assert.deepEqual([after.state, after.migration], ['attached', null]);
    assert.equal(lab.ctx.macs.isUsed(source.mac), true, 'the source still holds its MAC');
    assert.equal((await lab.desiredOf('host-a', source.id))!.migration, null);
  });

  it('when the hypervisor migration fails: the source VF is plugged back, the destination released and its bandwidth given back', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: 'ens1f0' }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' });
    // 10 Gb/s link, 4 Gb/s guarantees: ens1f0 of host-b now has room for one more, not two.
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.report('host-a', [], [{ id: `${m.id}:migrate:host-a`, ok: false, detail: 'HOST_ERROR: migration failed: Connection refused' }]);
    const rolling = await get(m);
    assert.equal(rolling.state, 'rolling-back');
    assert.equal((await lab.allocation(m.to!.allocation)).state, 'releasing');
    const [back] = (await lab.desired('host-a')).tasks;
    assert.deepEqual(back, {
      id: `${m.id}:plug-back:host-a`,
      migration: m.id,
      hypervisor: 'qemu',
      op: 'plug',
      request: { vm: 'vm1', pciAddress: source.pciAddress, device: `hostdev-${source.id.slice(0, 8)}`, mac: source.mac, failoverPairId: `net-${source.id.slice(0, 8)}`, vlan: 100 },
    });
    assert.equal((await lab.desiredOf('host-a', source.id))!.migration, null, 'the source is a plain allocation again');
    await released(m);
    assert.equal((await get(m)).state, 'rolling-back', 'until the VF is plugged back');
    await lab.report('host-a', [], [{ id: back!.id, ok: true, detail: 'plugged' }]);
    const failed = await get(m);
    assert.equal(failed.state, 'failed');
    assert.match(failed.reason!, /the qemu migration failed: HOST_ERROR: migration failed: Connection refused/);
    assert.equal((await lab.allocation(source.id)).migration, null);

    // The destination's 4 Gb/s went back to ens1f0 of host-b: two more guarantees fit there.
    for (const name of ['x', 'y']) {
      const a = await lab.control.allocations.create(ADMIN, { network: 'red', host: 'host-b', workload: { kind: 'container', name } });
      assert.equal(a.pf, 'ens1f0');
    }
  });

  it('holds the destination bandwidth while it runs: a third guarantee does not fit on that PF', async () => {
    const source = await lab.vm('vm1', true);
    await lab.control.allocations.create(ADMIN, { network: 'red', host: 'host-b', pciAddress: '0000:10:00.1', workload: { kind: 'container', name: 'x' } });
    await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: 'ens1f0' }, hypervisor: 'hook' });
    const full = await refusal(lab.control.allocations.create(ADMIN, { network: 'red', host: 'host-b', pciAddress: '0000:10:00.3', workload: { kind: 'container', name: 'y' } }), 'NO_CAPACITY');
    assert.match(full.message, /guarantee of 4000 Mbps does not fit: its headroom is 2000 Mbps/);
  });

  it('on abort before the switch: aborted, with who aborted it; abort again changes nothing', async () => {
    const source = await lab.container('web');
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-a', pf: 'ens2f0' } });
    await lab.report('host-a', [{ id: m.to!.allocation, state: 'configured' }]);
    const aborting = await lab.control.migrations.abort(OPERATOR, m.id);
    assert.equal(aborting.state, 'rolling-back');
    assert.equal((await lab.allocation(m.to!.allocation)).state, 'releasing');
    await released(m);
    const aborted = await get(m);
    assert.deepEqual([aborted.state, aborted.reason], ['aborted', 'aborted by operator/op']);
    assert.equal((await lab.control.migrations.abort(ADMIN, m.id)).state, 'aborted');
    assert.deepEqual((await lab.allocation(source.id)).migration, null);
  });

  it('on abort through the hook: the orchestrator hears it, the destination is released', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'hook' });
    const heard = lab.control.hook.outcome('vm1');
    await lab.control.migrations.abort(ADMIN, m.id);
    assert.deepEqual(await heard, { ok: false, reason: 'aborted by admin/test' });
    await released(m);
    assert.equal((await get(m)).state, 'aborted');
  });

  it('refuses an abort while the hypervisor migrates, and rolls forward once the VM moved', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' });
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    const busy = await refusal(lab.control.migrations.abort(ADMIN, m.id), 'CONFLICT');
    assert.match(busy.message, /qemu is migrating VM vm1 now .*abort after it ends, or let it finish/);
    await lab.report('host-a', [], [{ id: `${m.id}:migrate:host-a`, ok: true, detail: 'completed' }]);
    const late = await lab.control.migrations.abort(ADMIN, m.id);
    assert.equal(late.state, 'running');
    assert.match(late.history.at(-1)!.detail, /already moved: the migration finishes instead/);
    // A plug failure after the move rolls forward too: the source is released, the destination kept.
    await lab.report('host-b', [], [{ id: `${m.id}:plug:host-b`, ok: false, detail: 'HOST_ERROR: device_add failed' }]);
    assert.equal((await lab.allocation(source.id)).state, 'releasing');
    await lab.report('host-a', [{ id: source.id, state: 'released' }]);
    const done = await get(m);
    assert.equal(done.state, 'completed');
    assert.match(done.reason!, /plugging host-b\/ens1f0 VF .* failed: HOST_ERROR: device_add failed; plug it again or release it/);
    assert.equal((await lab.allocation(m.to!.allocation)).state, 'attached');
  });

  it('when the destination agent dies mid-prepare: rolled back by the sweep; the destination is scrubbed once the agent is back', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'hook' });
    await lab.control.hosts.sweep();
    assert.equal((await get(m)).state, 'running', 'while the destination host reports, it waits');
    await lab.control.hosts.sweep(Date.now() + 60_000);
    const rolling = await get(m);
    assert.equal(rolling.state, 'rolling-back');
    assert.match(rolling.reason!, /destination host host-b stopped reporting while preparing/);
    assert.equal((await lab.desiredOf('host-a', source.id))!.migration, null, 'the source is plain again at once');
    assert.equal((await lab.allocation(m.to!.allocation)).state, 'releasing');
    await released(m);
    assert.equal((await get(m)).state, 'failed');
  });

  it('when the container re-home fails at the destination: the source keeps the workload', async () => {
    const source = await lab.container('web');
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-a', pf: 'ens2f0' } });
    await lab.report('host-a', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.report('host-a', [{ id: m.to!.allocation, state: 'failed', reason: 'rename failed' }]);
    assert.equal((await get(m)).state, 'failed');
    assert.deepEqual([(await lab.allocation(source.id)).state, (await lab.allocation(source.id)).migration], ['attached', null]);
  });
});
