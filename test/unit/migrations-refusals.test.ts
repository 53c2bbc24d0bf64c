// Every request the migration service refuses: a clear error naming what to
// do, and the store exactly as it was (allocations, migrations, audit log,
// address leases). And who may do what.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { MigrationRequest } from '../../src/controller/migration-request.js';
import type { Allocation } from '../../src/domain/types.js';
import { policyOf } from '../helpers/api-harness.js';
import { ADMIN, agent, MigrationLab, OTHER_TENANT, TENANT } from '../helpers/migration-lab.js';
import { refusal } from '../helpers/refusal.js';

describe('refused migrations change nothing', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  let web: Allocation;
  let vm: Allocation;
  beforeEach(async () => {
    lab = await MigrationLab.open();
    web = await lab.container('web');
    vm = await lab.vm('vm1', true);
  });
  afterEach(() => lab.close());

  /** Refused with `code` and a message matching `message`, and nothing in the store changed. */
  async function refused(req: Partial<MigrationRequest>, code: string, message: RegExp) {
    const before = await lab.snapshot();
    const err = await refusal(lab.control.migrations.start(ADMIN, req as MigrationRequest), code);
    assert.match(err.message, message);
    assert.equal(await lab.snapshot(), before, `${err.message}: nothing changed`);
  }

  it('an unknown allocation, or one that holds no VF', async () => {
    await refused({ allocation: '4d6f1b5e-0000-4000-8000-000000000000', to: { host: 'host-a', pf: null } }, 'NOT_FOUND', /allocation 4d6f1b5e-.* not found/);
    const gone = await lab.control.allocations.delete(ADMIN, (await lab.container('gone')).id);
    await lab.report('host-a', [{ id: gone.id, state: 'released' }]);
    await refused({ allocation: gone.id, to: { host: 'host-a', pf: null } }, 'CONFLICT', /is released: it holds no VF to move/);
    await refused({ to: { host: 'host-a', pf: null } }, 'INVALID_ARGUMENT', /allocation: the id .* is required/);
  });

  it('a destination that is the source, an unknown host or PF, an unreachable host', async () => {
    await refused({ allocation: web.id, to: { host: 'host-a', pf: 'ens1f0' } }, 'INVALID_ARGUMENT', /host-a\/ens1f0 is where allocation .* already is; name another PF or host/);
    await refused({ allocation: web.id, to: { host: 'host-z', pf: null } }, 'NOT_FOUND', /host host-z is not known; the hosts are: host-a, host-b/);
    await refused({ allocation: web.id, to: { host: 'host-a', pf: 'ens9f0' } }, 'NOT_FOUND', /PF ens9f0 is not in host host-a's last report; its PFs: ens1f0, ens2f0/);
    await refused({ allocation: web.id, to: { host: 'Bad Host', pf: null } }, 'INVALID_ARGUMENT', /host name must be a lower-case DNS name/);
    await lab.report('host-a');
    await lab.control.hosts.sweep(Date.now() + 10 * 60_000);
    await refused({ allocation: vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'hook' }, 'NO_CAPACITY', /host host-b is unreachable/);
  });

  it('a network the destination does not carry', async () => {
    await lab.control.hosts.putPolicy(ADMIN, 'host-b', policyOf([['other', 'ens1f0, ens2f0', 'storage']]));
    await refused({ allocation: vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'hook' }, 'NO_CAPACITY', /host host-b has no PF on physnet fabric, which network red needs/);
  });

  it('a container to another host (another kernel), and hypervisor options that do not fit the workload', async () => {
    await refused({ allocation: web.id, to: { host: 'host-b', pf: null } }, 'INVALID_ARGUMENT', /moves only between PFs of its own host host-a .*same bootId.*use --to host-a\/<pf>/);
    await refused({ allocation: web.id, to: { host: 'host-a', pf: null }, hypervisor: 'qemu' }, 'INVALID_ARGUMENT', /a container's: it moves without a hypervisor/);
    await refused({ allocation: vm.id, to: { host: 'host-b', pf: null } }, 'INVALID_ARGUMENT', /say who moves it with --hypervisor libvirt, qemu or hook/);
    await refused({ allocation: vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'xen' as never }, 'INVALID_ARGUMENT', /hypervisor must be one of libvirt, qemu, hook/);
  });

  it('a VM without a failover standby whose VF has no vfio migration driver', async () => {
    const bare = await lab.vm('vm2', false);
    await refused({ allocation: bare.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' }, 'UNSUPPORTED', /VM vm2 has no failover standby .* bound to iavf, not a vfio migration driver \(mlx5_vfio_pci/);
  });

  it('a malformed migrate URI', async () => {
    const qemu = (migrateUri?: string) => ({ allocation: vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu' as const, migrateUri });
    for (const uri of ['tcp:300.1.1.1:4444', 'tcp:198.18.0.2:0', 'tcp:198.18.0.2:4444;reboot', 'unix:relative/path', 'unix:/run/../etc/x', 'exec:cat', 'tcp:[::1]:4444']) {
      await refused(qemu(uri), 'INVALID_ARGUMENT', /migrateUri .* is not `tcp:<IPv4>:<port>`/);
    }
    await refused(qemu(), 'INVALID_ARGUMENT', /migrateUri is required with --hypervisor qemu/);
    const libvirt = { allocation: vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'libvirt' as const };
    for (const uri of ['ssh://host-b', 'qemu+ssh://host-b/session', 'qemu+ext://host-b/system?command=/bin/sh', 'qemu+ssh://user@host-b/system']) {
      await refused({ ...libvirt, migrateUri: uri }, 'INVALID_ARGUMENT', /is not a libvirt URI like qemu\+ssh:\/\/host-b\/system/);
    }
    await refused({ allocation: vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'hook', migrateUri: 'tcp:198.18.0.2:4444' }, 'INVALID_ARGUMENT', /with hook, the orchestrator moves the VM/);
  });

  it('nothing fits on the destination: the reason, and the best alternative', async () => {
    for (let i = 0; i < 4; i++) await lab.control.allocations.create(ADMIN, { network: 'red', host: 'host-a', pciAddress: `0000:11:00.${i + 1}`, workload: { kind: 'container', name: `fill${i}` } });
    await refused({ allocation: web.id, to: { host: 'host-a', pf: 'ens2f0' } }, 'NO_CAPACITY', /cannot migrate allocation .* to host-a: .*full; no other PF or host would fit either/);
    await refused({ allocation: vm.id, to: { host: 'host-a', pf: null }, hypervisor: 'hook' }, 'NO_CAPACITY', /full; host-b\/ens1f0 would fit \(--to host-b\/ens1f0\)$/);
  });

  it('a second migration of one allocation, also when both start at once', async () => {
    const m = await lab.control.migrations.start(ADMIN, { allocation: web.id, to: { host: 'host-a', pf: null } });
    await refused({ allocation: web.id, to: { host: 'host-a', pf: null } }, 'CONFLICT', new RegExp(`already migrating \\(migration ${m.id}, as its source\\)`));
    await refused({ allocation: m.to!.allocation, to: { host: 'host-a', pf: 'ens1f0' } }, 'CONFLICT', /already migrating .* as its destination/);
    const [one, two] = await Promise.allSettled([
      lab.control.migrations.start(ADMIN, { allocation: vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'hook' }),
      lab.control.migrations.start(ADMIN, { allocation: vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'hook' }),
    ]);
    assert.deepEqual([one.status, two.status].sort(), ['fulfilled', 'rejected']);
    assert.equal((await lab.store.tx.listMigrations({ allocation: vm.id })).length, 1);
  });

  it('a migrating allocation cannot be released under it', async () => {
    const m = await lab.control.migrations.start(ADMIN, { allocation: web.id, to: { host: 'host-a', pf: null } });
    const err = await refusal(lab.control.allocations.delete(ADMIN, web.id), 'CONFLICT');
    assert.match(err.message, new RegExp(`source of migration ${m.id}; abort the migration`));
  });
});

describe('who may migrate', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open()));
  afterEach(() => lab.close());

  it('staff start and abort; a tenant lists and shows only its own tenant’s; agents none', async () => {
    const web = await lab.container('web');
    const start = { allocation: web.id, to: { host: 'host-a', pf: null } };
    await refusal(lab.control.migrations.start(TENANT, start), 'FORBIDDEN');
    const m = await lab.control.migrations.start(ADMIN, start);
    await refusal(lab.control.migrations.abort(TENANT, m.id), 'FORBIDDEN');
    assert.deepEqual((await lab.control.migrations.list(TENANT)).map((x) => x.id), [m.id]);
    assert.equal((await lab.control.migrations.get(TENANT, m.id)).id, m.id);
    assert.deepEqual(await lab.control.migrations.list(OTHER_TENANT), []);
    await refusal(lab.control.migrations.get(OTHER_TENANT, m.id), 'NOT_FOUND');
    await refusal(lab.control.migrations.list(agent('host-a')), 'FORBIDDEN');
    assert.deepEqual((await lab.control.migrations.list(ADMIN, { state: 'running', host: 'host-a' })).map((x) => x.id), [m.id]);
    assert.deepEqual(await lab.control.migrations.list(ADMIN, { state: 'completed' }), []);
    await refusal(lab.control.migrations.list(ADMIN, { state: 'sideways' as never }), 'INVALID_ARGUMENT');
  });
});

describe('the store’s MAC rule', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open()));
  afterEach(() => lab.close());

  it('lets only a migration’s own destination share its source’s MAC', async () => {
    const web = await lab.container('web');
    const m = await lab.control.migrations.start(ADMIN, { allocation: web.id, to: { host: 'host-a', pf: null } });
    const dest = await lab.allocation(m.to!.allocation);
    const twin = { ...dest, id: '5e1f0000-0000-4000-8000-000000000001', vfIndex: 3, pciAddress: '0000:11:00.4', createdAt: dest.createdAt };
    await refusal(lab.store.tx.insertAllocation({ ...twin, migration: null }), 'CONFLICT');
    await refusal(lab.store.tx.insertAllocation({ ...twin, migration: { id: 'another', role: 'destination' } }), 'CONFLICT');
    await refusal(lab.store.tx.insertAllocation(twin), 'CONFLICT');
    // Clearing the source's mark while its destination holds the MAC would leave two plain holders.
    await refusal(lab.store.tx.setAllocationMigration(web.id, null, dest.createdAt), 'CONFLICT');
  });
});
