// Migrating a VM: the controller gives the source host's agent a `migrate`
// task and, once it succeeded, the destination's agent a `plug` task; with
// the hook, an orchestrator calls prepare and complete instead.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { HookHypervisor } from '../../src/controller/hook-hypervisor.js';
import { ADMIN, MigrationLab } from '../helpers/migration-lab.js';

const MIGRATED = { statuses: ['setup', 'wait-unplug', 'active', 'completed'], downtimeMs: 78, totalMs: 2700 };

describe('migrating a VM', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open()));
  afterEach(() => lab.close());

  it('through QMP: migrate on the source host, then plug at the destination, then release the source', async () => {
    const source = await lab.vm('vm1', true);
    const short = source.id.slice(0, 8);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' });
    const dest = await lab.allocation(m.to!.allocation);
    assert.deepEqual(dest.attachment, { kind: 'vm', vm: 'vm1', failover: true, devices: { primary: `hostdev-${short}`, standby: `net-${short}` } });
    assert.deepEqual((await lab.desired('host-a')).tasks, [], 'nothing to run before the destination is prepared');

    await lab.report('host-b', [{ id: dest.id, state: 'configured' }]);
    const [migrate] = (await lab.desired('host-a')).tasks;
    assert.deepEqual(migrate, {
      id: `${m.id}:migrate:host-a`,
      migration: m.id,
      hypervisor: 'qemu',
      op: 'migrate',
      request: { vm: 'vm1', destination: 'tcp:198.18.0.2:4444', sourceDevice: `hostdev-${short}` },
    });
    assert.deepEqual((await lab.desired('host-b')).tasks, [], 'no plug before the VM moved: the MAC is never on two VFs');
    // The same task, under the same id, until its result is seen.
    assert.deepEqual((await lab.desired('host-a')).tasks, [migrate]);

    // A result for another host's task, or an unknown one, changes nothing.
    await lab.report('host-b', [], [{ id: migrate!.id, ok: true, detail: 'not mine', result: MIGRATED }]);
    assert.deepEqual((await lab.desired('host-a')).tasks, [migrate]);

    await lab.report('host-a', [], [{ id: migrate!.id, ok: true, detail: 'completed', result: MIGRATED }]);
    assert.deepEqual((await lab.desired('host-a')).tasks, []);
    const [plug] = (await lab.desired('host-b')).tasks;
    assert.deepEqual(plug, {
      id: `${m.id}:plug:host-b`,
      migration: m.id,
      hypervisor: 'qemu',
      op: 'plug',
      request: { vm: 'vm1', pciAddress: dest.pciAddress, device: `hostdev-${short}`, mac: source.mac, failoverPairId: `net-${short}`, vlan: 100 },
    });
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).downtimeMs, 78);

    await lab.report('host-b', [], [{ id: plug!.id, ok: true, detail: 'plugged' }]);
    assert.equal((await lab.allocation(dest.id)).state, 'attached');
    assert.equal((await lab.allocation(source.id)).state, 'releasing');
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).step, 'release');
    await lab.report('host-a', [{ id: source.id, state: 'released' }]);
    const done = await lab.control.migrations.get(ADMIN, m.id);
    assert.equal(done.state, 'completed');
    assert.deepEqual(done.tasks!.map((t) => `${t.op}@${t.host}:${t.outcome}`), ['migrate@host-a:ok', 'plug@host-b:ok']);
    assert.equal((await lab.allocation(dest.id)).migration, null);
  });

  it('through libvirt: to the destination host libvirtd, with libvirt aliases, and the ids kept on a second move', async () => {
    const source = await lab.vm('vm1', true);
    const short = source.id.slice(0, 8);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'libvirt' });
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    const [migrate] = (await lab.desired('host-a')).tasks;
    assert.deepEqual(migrate!.request, { vm: 'vm1', destination: 'qemu+ssh://host-b/system', sourceDevice: `ua-sriov-${short}` });
    await lab.report('host-a', [], [{ id: migrate!.id, ok: true, detail: 'done' }]);
    await lab.report('host-b', [], [{ id: `${m.id}:plug:host-b`, ok: true, detail: 'done' }]);
    await lab.report('host-a', [{ id: source.id, state: 'released' }]);
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).state, 'completed');

    // Back again: the devices are the first allocation's, not named from the new one's id.
    const back = await lab.control.migrations.start(ADMIN, { allocation: m.to!.allocation, to: { host: 'host-a', pf: null }, hypervisor: 'libvirt', migrateUri: 'qemu+tls://host-a/system' });
    await lab.report('host-a', [{ id: back.to!.allocation, state: 'configured' }]);
    const [again] = (await lab.desired('host-b')).tasks;
    assert.deepEqual(again!.request, { vm: 'vm1', destination: 'qemu+tls://host-a/system', sourceDevice: `ua-sriov-${short}` });
  });

  it('through the hook: prepare waits for the destination and gives its XML, complete releases the source', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'hook' });
    const early = await lab.control.migrations.prepare(ADMIN, m.id, 0);
    assert.equal(early.hostdevXml, null, 'not prepared yet');
    const prepared = lab.control.migrations.prepare(ADMIN, m.id, 30_000);
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    const ready = await prepared;
    assert.equal(ready.migration.step, 'switch');
    assert.match(ready.hostdevXml!, new RegExp(`<mac address=["']${source.mac}["']`));
    assert.match(ready.hostdevXml!, new RegExp(`<alias name=["']ua-sriov-${source.id.slice(0, 8)}["']`), 'the VM keeps the device ids of its first allocation');
    assert.deepEqual((await lab.desired('host-a')).tasks, [], 'the orchestrator moves the VM, no agent task');

    const hypervisor = new HookHypervisor(lab.control.hook);
    const moving = hypervisor.migrate({ vm: 'vm1', destination: 'host-b', sourceDevice: 'hostdev-x' });
    const completed = await lab.control.migrations.complete(ADMIN, m.id);
    assert.equal(completed.step, 'release');
    assert.deepEqual((await moving).statuses, ['wait-orchestrator', 'completed']);
    assert.equal((await lab.allocation(m.to!.allocation)).state, 'attached');
    await lab.report('host-a', [{ id: source.id, state: 'released' }]);
    assert.equal((await lab.control.migrations.complete(ADMIN, m.id)).state, 'completed', 'complete again: idempotent');
  });

  it('moves a VM without a standby when its VF is bound to a vfio migration driver: its state goes along, nothing is plugged', async () => {
    for (const host of ['host-a', 'host-b']) {
      const inv = lab.inventories.get(host)!;
      for (const pf of inv.pfs) for (const vf of pf.vfs) vf.driver = 'mlx5_vfio_pci';
      await lab.report(host);
    }
    const source = await lab.vm('vm2', false);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'unix:/run/vfleet/qmp/vm2.migrate' });
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.report('host-a', [], [{ id: `${m.id}:migrate:host-a`, ok: true, detail: 'completed' }]);
    assert.deepEqual((await lab.desired('host-b')).tasks, []);
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).step, 'release');
    assert.equal((await lab.allocation(m.to!.allocation)).state, 'attached');
    assert.equal((await lab.allocation(source.id)).state, 'releasing');
  });
});
