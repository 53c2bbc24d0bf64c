/**
 * One contract for every Hypervisor: QMP (against test/support/qmp-server.ts
 * and, in the system suite, real QEMU), libvirt (virsh), and the
 * controller's hook. A fixture builds a fresh world per case: a running VM
 * on a source host with a VF as the failover primary of a virtio standby,
 * a destination ready to receive it, and an adapter on each side.
 *
 * To add an implementation, write a fixture and call
 * `hypervisorContract(fixture)` from a test file.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import type { Hypervisor } from '../../src/hypervisor/hypervisor.js';

export interface HypervisorWorld {
  /** The adapter on the host the VM runs on, and on the destination host. */
  source: Hypervisor;
  destination: Hypervisor;
  vm: string;
  /** What `migrate` is given as `destination`. */
  migrateTo: string;
  /** The source VF as the VM started with it, and its standby. */
  primary: { device: string; pciAddress: string; mac: string; standby: string };
  /** A VF prepared for the VM on the destination (bound to vfio-pci). */
  destinationVf: string;
  /** The device ids the VM has on one side (its NICs; no buses); none where it no longer runs. */
  devices(side: 'source' | 'destination'): Promise<string[]>;
  /** Makes the next migration fail as a broken connection would. */
  breakNextMigration(): Promise<void>;
  close(): Promise<void>;
}

export interface HypervisorFixture {
  name: string;
  /**
   * The VM has a guest that negotiated failover and answers PCI unplug
   * requests. Without one (QEMU with -S) a failover primary stays hidden
   * and nothing is unplugged: the plug and unplug cases need a guest.
   */
  guest: boolean;
  /**
   * The adapter reports QEMU's own migration statuses (`wait-unplug`, ...).
   * virsh does not: it says only that the migration ran and finished.
   */
  qemuStatuses: boolean;
  world(): Promise<HypervisorWorld>;
}

const code = (c: string) => (e: unknown) => {
  assert.ok(e instanceof SriovError, String(e));
  assert.equal(e.code, c, e.message);
  return true;
};

async function inWorld(fixture: HypervisorFixture, test: (w: HypervisorWorld) => Promise<void>): Promise<void> {
  const w = await fixture.world();
  try {
    await test(w);
  } finally {
    await w.close();
  }
}

const plugRequest = (w: HypervisorWorld) => ({ vm: w.vm, pciAddress: w.destinationVf, device: w.primary.device, mac: w.primary.mac, failoverPairId: w.primary.standby });
const migrateRequest = (w: HypervisorWorld) => ({ vm: w.vm, destination: w.migrateTo, sourceDevice: w.primary.device });

export function hypervisorContract(fixture: HypervisorFixture): void {
  describe(`Hypervisor contract: ${fixture.name}`, () => {
    it('migrates the VM and reports the statuses it went through, ending completed', () =>
      inWorld(fixture, async (w) => {
        const seen: string[] = [];
        const result = await w.source.migrate(migrateRequest(w), (s) => seen.push(s));
        assert.equal(result.statuses.at(-1), 'completed');
        assert.deepEqual(seen, result.statuses);
        assert.equal(new Set(result.statuses).size, result.statuses.length, `each status once: ${result.statuses.join(' → ')}`);
        assert.ok(result.downtimeMs === null || result.downtimeMs >= 0);
        assert.ok((await w.devices('destination')).includes(w.primary.standby), 'the standby moved with the VM');
        // Nothing of the VM stays on the source (libvirt ends that QEMU, so does the QMP adapter): its VF can be unbound and scrubbed.
        assert.deepEqual(await w.devices('source'), []);
        if (fixture.guest) {
          // The failover primary is unplugged by the hypervisor before the VM moves, and does not go with it.
          assert.ok(!(await w.devices('destination')).includes(w.primary.device));
        }
        if (fixture.guest && fixture.qemuStatuses) {
          const i = result.statuses.indexOf('wait-unplug');
          assert.ok(i >= 0 && i < result.statuses.indexOf('active'), `wait-unplug before active: ${result.statuses.join(' → ')}`);
        }
      }));

    it('migrate again after it completed reports completed and does not migrate twice', () =>
      inWorld(fixture, async (w) => {
        await w.source.migrate(migrateRequest(w));
        await w.breakNextMigration(); // a second migration would fail
        const again = await w.source.migrate(migrateRequest(w));
        assert.equal(again.statuses.at(-1), 'completed');
      }));

    it('a failed migration rejects, naming the VM, and the VM stays on the source', () =>
      inWorld(fixture, async (w) => {
        await w.breakNextMigration();
        await assert.rejects(w.source.migrate(migrateRequest(w)), (e: unknown) => {
          assert.ok(e instanceof SriovError && e.code === 'HOST_ERROR', String(e));
          assert.ok(e.message.includes(w.vm), e.message);
          return true;
        });
        assert.ok((await w.devices('source')).includes(w.primary.standby));
      }));

    it('refuses bad input before touching the VM', () =>
      inWorld(fixture, async (w) => {
        const before = await w.devices('source');
        const m = migrateRequest(w);
        await assert.rejects(w.source.migrate({ ...m, vm: '../etc/passwd' }), code('INVALID_ARGUMENT'));
        await assert.rejects(w.source.migrate({ ...m, destination: '-o ProxyCommand=x' }), code('INVALID_ARGUMENT'));
        await assert.rejects(w.source.migrate({ ...m, sourceDevice: 'a,b=c' }), code('INVALID_ARGUMENT'));
        const p = plugRequest(w);
        await assert.rejects(w.source.plug({ ...p, pciAddress: '0000:3b:02.0,x-y=1' }), code('INVALID_ARGUMENT'));
        await assert.rejects(w.source.plug({ ...p, device: 'id,driver=e1000' }), code('INVALID_ARGUMENT'));
        await assert.rejects(w.source.plug({ ...p, mac: '01:00:5e:00:00:01' }), code('INVALID_ARGUMENT'));
        await assert.rejects(w.source.plug({ ...p, failoverPairId: '' }), code('INVALID_ARGUMENT'));
        await assert.rejects(w.source.unplug({ vm: 'a/b', device: w.primary.device }), code('INVALID_ARGUMENT'));
        assert.deepEqual(await w.devices('source'), before);
      }));

    it('a VM that is not on this host is NOT_FOUND', () =>
      inWorld(fixture, async (w) => {
        await assert.rejects(w.source.migrate({ ...migrateRequest(w), vm: 'no-such-vm' }), code('NOT_FOUND'));
        await assert.rejects(w.source.unplug({ vm: 'no-such-vm', device: w.primary.device }), code('NOT_FOUND'));
      }));

    if (!fixture.guest) return;

    it('plugs the destination VF as the failover primary after the migration, once however often asked', () =>
      inWorld(fixture, async (w) => {
        await w.source.migrate(migrateRequest(w));
        await w.destination.plug(plugRequest(w));
        await w.destination.plug(plugRequest(w)); // a re-run finds it there
        const devices = await w.devices('destination');
        assert.equal(devices.filter((d) => d === w.primary.device).length, 1);
      }));

    it('refuses to plug a VF whose standby is missing, and plugs nothing', () =>
      inWorld(fixture, async (w) => {
        await w.source.migrate(migrateRequest(w));
        await assert.rejects(w.destination.plug({ ...plugRequest(w), failoverPairId: `${w.primary.standby}-missing` }), code('NOT_FOUND'));
        assert.ok(!(await w.devices('destination')).includes(w.primary.device));
      }));

    it('unplugs a device and waits until the guest let go; unplugging an absent one is done', () =>
      inWorld(fixture, async (w) => {
        await w.source.unplug({ vm: w.vm, device: w.primary.device });
        assert.ok(!(await w.devices('source')).includes(w.primary.device));
        await w.source.unplug({ vm: w.vm, device: w.primary.device });
        assert.ok((await w.devices('source')).includes(w.primary.standby), 'the standby stays');
      }));

    it('puts the source VF back after an unplug (the rollback)', () =>
      inWorld(fixture, async (w) => {
        await w.source.unplug({ vm: w.vm, device: w.primary.device });
        await w.source.plug({ ...plugRequest(w), pciAddress: w.primary.pciAddress });
        assert.ok((await w.devices('source')).includes(w.primary.device));
      }));
  });
}
