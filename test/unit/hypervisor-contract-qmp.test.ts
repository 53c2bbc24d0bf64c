/**
 * The QMP adapter against test/support/qmp-server.ts (QEMU's protocol, a
 * guest that negotiated failover), through the Hypervisor contract, and
 * what only QMP has: one client at a time, QEMU's errors, a guest that
 * never lets go.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { QmpClient, QmpError } from '../../src/hypervisor/qmp-client.js';
import { QmpHypervisor } from '../../src/hypervisor/qmp-hypervisor.js';
import { hypervisorContract, type HypervisorWorld } from '../contract/hypervisor.contract.js';
import { QmpNetwork, type FakeQemu, type FakeVmOptions } from '../support/qmp-server.js';

const VM = 'vm1';
const PRIMARY = { device: 'hostdev-0a1b2c3d', pciAddress: '0000:3b:02.0', mac: '02:5f:00:00:00:07', standby: 'net-0a1b2c3d' };
const DEST_VF = '0000:3b:12.0';

interface FakeWorld extends HypervisorWorld {
  src: FakeQemu;
  dst: FakeQemu;
}

async function fakeWorld(vmOpts: Partial<FakeVmOptions> = {}): Promise<FakeWorld> {
  const root = await mkdtemp(join(tmpdir(), 'qmp-'));
  const [srcDir, dstDir] = [join(root, 'a'), join(root, 'b')];
  await Promise.all([srcDir, dstDir].map((d) => import('node:fs/promises').then((fs) => fs.mkdir(d))));
  const network = new QmpNetwork();
  const migrateTo = `unix:${join(root, 'incoming.sock')}`;
  const standby = { driver: 'virtio-net-pci', id: PRIMARY.standby, bus: 'rp1', mac: PRIMARY.mac, failover: 'on', netdev: 'hostnet0' };
  const src = await network.start({
    socket: join(srcDir, `${VM}.qmp`),
    rootPorts: ['rp1', 'rp2'],
    devices: [standby, { driver: 'vfio-pci', id: PRIMARY.device, bus: 'rp2', host: PRIMARY.pciAddress, failover_pair_id: PRIMARY.standby }],
    vfioDevices: [PRIMARY.pciAddress],
    ...vmOpts,
  });
  const dst = await network.start({ socket: join(dstDir, `${VM}.qmp`), rootPorts: ['rp1', 'rp2'], devices: [standby], incoming: migrateTo, vfioDevices: [DEST_VF], ...vmOpts });
  const fast = { pollMs: 5, unplugTimeoutMs: 2_000, migrateTimeoutMs: 5_000 };
  return {
    src,
    dst,
    source: new QmpHypervisor({ qmpDir: srcDir, ...fast }),
    destination: new QmpHypervisor({ qmpDir: dstDir, ...fast }),
    vm: VM,
    migrateTo,
    primary: PRIMARY,
    destinationVf: DEST_VF,
    devices: async (side) => (side === 'source' ? src : dst).deviceIds(),
    breakNextMigration: async () => {
      src.failNextMigration = 'Unable to write to socket: Broken pipe';
    },
    close: async () => {
      await network.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

hypervisorContract({ name: 'QMP (simulated QEMU)', guest: true, qemuStatuses: true, world: () => fakeWorld() });

async function withWorld(test: (w: FakeWorld) => Promise<void>, vmOpts: Partial<FakeVmOptions> = {}): Promise<void> {
  const w = await fakeWorld(vmOpts);
  try {
    await test(w);
  } finally {
    await w.close();
  }
}

describe('QMP adapter', () => {
  it('speaks QMP as QEMU expects: capabilities first, device_add with failover_pair_id into a free root port', () =>
    withWorld(async (w) => {
      await w.source.migrate({ vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device });
      await w.destination.plug({ vm: VM, pciAddress: DEST_VF, device: PRIMARY.device, mac: PRIMARY.mac, failoverPairId: PRIMARY.standby });
      const add = w.dst.commands.find((c) => c.execute === 'device_add');
      assert.deepEqual(add?.arguments, { driver: 'vfio-pci', host: DEST_VF, id: PRIMARY.device, bus: 'rp2', failover_pair_id: PRIMARY.standby });
      assert.deepEqual(
        w.src.commands.map((c) => c.execute).filter((c) => c.startsWith('migrate')),
        ['migrate-set-capabilities', 'migrate'],
      );
    }));

  it('QEMU refuses a command before qmp_capabilities, and names an unknown one', async () => {
    await withWorld(async (w) => {
      const net = await import('node:net');
      const raw = net.connect(w.src.opts.socket);
      const lines: string[] = [];
      raw.setEncoding('utf8');
      raw.on('data', (d: string) => lines.push(...d.split('\r\n').filter(Boolean)));
      await new Promise((r) => raw.once('connect', r));
      raw.write('{"execute":"query-status","id":1}\n');
      while (lines.length < 2) await new Promise((r) => setTimeout(r, 5));
      raw.destroy();
      assert.match(lines[0]!, /"QMP"/);
      assert.deepEqual(JSON.parse(lines[1]!), { error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" }, id: 1 });
      const qmp = await QmpClient.connect(w.src.opts.socket);
      await assert.rejects(qmp.execute('no-such-command'), (e: unknown) => e instanceof QmpError && e.errorClass === 'CommandNotFound');
      qmp.close();
    });
  });

  it('a VF whose MAC is not its standby\'s is refused: net_failover pairs by MAC', () =>
    withWorld(async (w) => {
      await w.source.unplug({ vm: VM, device: PRIMARY.device });
      await assert.rejects(
        w.source.plug({ vm: VM, pciAddress: PRIMARY.pciAddress, device: PRIMARY.device, mac: '02:5f:00:00:00:99', failoverPairId: PRIMARY.standby }),
        (e: unknown) => e instanceof SriovError && e.code === 'CONFLICT' && /pairs by MAC/.test(e.message),
      );
      assert.deepEqual(w.src.deviceIds(), [PRIMARY.standby]);
    }));

  it("passes on QEMU's refusal of a VF that is not bound to vfio-pci", () =>
    withWorld(async (w) => {
      await w.source.migrate({ vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device });
      await assert.rejects(
        w.destination.plug({ vm: VM, pciAddress: '0000:3b:13.0', device: PRIMARY.device, mac: PRIMARY.mac, failoverPairId: PRIMARY.standby }),
        (e: unknown) => e instanceof SriovError && e.code === 'NOT_FOUND' && /no such host device/.test(e.message),
      );
    }));

  it('a guest that never lets go: unplug times out naming the device, migrate is cancelled in wait-unplug', () =>
    withWorld(
      async (w) => {
        const stuck = new QmpHypervisor({ qmpDir: join(w.src.opts.socket, '..'), pollMs: 5, unplugTimeoutMs: 300, migrateTimeoutMs: 300 });
        await assert.rejects(stuck.migrate({ vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device }), (e: unknown) => {
          assert.ok(e instanceof SriovError && e.code === 'TIMEOUT', String(e));
          assert.match(e.message, /stuck in wait-unplug/);
          return true;
        });
        assert.equal(w.src.migration.status, 'cancelled');
        await assert.rejects(stuck.unplug({ vm: VM, device: PRIMARY.device }), (e: unknown) => e instanceof SriovError && e.code === 'TIMEOUT' && e.message.includes(PRIMARY.device));
        // Asked again, it waits on the first request instead of failing on QEMU's "already in the process of unplug".
        w.src.guestUnplugs = true;
        const pending = stuck.unplug({ vm: VM, device: PRIMARY.device });
        setTimeout(() => void w.src.devices.delete(PRIMARY.device), 20);
        await pending;
      },
      { guestUnplugs: false },
    ));

  it('resumes following a migration already under way instead of starting another', () =>
    withWorld(async (w) => {
      const first = w.source.migrate({ vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device });
      const again = new QmpHypervisor({ qmpDir: join(w.src.opts.socket, '..'), pollMs: 5 });
      const [a, b] = await Promise.all([first, again.migrate({ vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device })]);
      assert.equal(a.statuses.at(-1), 'completed');
      assert.equal(b.statuses.at(-1), 'completed');
      assert.equal(w.src.commands.filter((c) => c.execute === 'migrate').length, 1);
    }));

  it('migrates a VM that arrived by migration onward, although its query-migrate says completed (the incoming one)', () =>
    withWorld(async (w) => {
      await w.source.migrate({ vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device });
      await assert.rejects(w.destination.migrate({ vm: VM, destination: 'unix:/run/vfleet/none.sock', sourceDevice: PRIMARY.device }), (e: unknown) => e instanceof SriovError && e.code === 'HOST_ERROR');
      const third = join(w.src.opts.socket, '..', '..', 'c');
      await mkdir(third);
      const back = `unix:${join(third, 'in.sock')}`;
      const c = await w.dst.network.start({ socket: join(third, `${VM}.qmp`), rootPorts: ['rp1', 'rp2'], devices: [{ driver: 'virtio-net-pci', id: PRIMARY.standby, bus: 'rp1', mac: PRIMARY.mac, failover: 'on' }], incoming: back });
      await assert.rejects(new QmpHypervisor({ qmpDir: third }).migrate({ vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device }), (e: unknown) => e instanceof SriovError && e.code === 'CONFLICT');
      const result = await w.destination.migrate({ vm: VM, destination: back, sourceDevice: PRIMARY.device });
      assert.deepEqual(result.statuses, ['setup', 'active', 'device', 'completed']);
      assert.equal(c.runState, 'running');
    }));

  it('ends the source QEMU once the VM left, after recording it; an agent restarted after that finds the record', () =>
    withWorld(async (w) => {
      const request = { vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device };
      const first = await w.source.migrate(request);
      assert.ok(w.src.exited, 'quit: a QEMU in postmigrate would keep the VF open');
      const qmpDir = join(w.src.opts.socket, '..');
      const record = JSON.parse(await readFile(join(qmpDir, `${VM}.migrated`), 'utf8')) as { destination: string };
      assert.equal(record.destination, w.migrateTo);
      const seen: string[] = [];
      const restarted = await new QmpHypervisor({ qmpDir }).migrate(request, (s) => seen.push(s));
      assert.deepEqual(restarted, first);
      assert.deepEqual(seen, first.statuses);
      // A record of a migration elsewhere says nothing about this one: the VM is not here.
      await assert.rejects(w.source.migrate({ ...request, destination: 'unix:/run/vfleet/elsewhere.sock' }), (e: unknown) => e instanceof SriovError && e.code === 'NOT_FOUND');
    }));

  it('a re-run that finds QEMU still in postmigrate quits it and reports the migration once', () =>
    withWorld(async (w) => {
      const request = { vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device };
      // The first agent died between completed and quit.
      const qmp = await QmpClient.connect(w.src.opts.socket);
      await qmp.execute('migrate', { uri: w.migrateTo });
      while (w.src.migration.status !== 'completed') await new Promise((r) => setTimeout(r, 5));
      qmp.close();
      const result = await w.source.migrate(request);
      assert.equal(result.statuses.at(-1), 'completed');
      assert.ok(w.src.exited);
      assert.equal(w.src.commands.filter((c) => c.execute === 'migrate').length, 1);
    }));

  it('never follows a link left at the record\'s name: writes beside it, and does not read through it', () =>
    withWorld(async (w) => {
      const qmpDir = join(w.src.opts.socket, '..');
      const victim = join(qmpDir, '..', 'victim');
      await writeFile(victim, 'untouched\n');
      await symlink(victim, join(qmpDir, `${VM}.migrated`));
      await w.source.migrate({ vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device });
      assert.equal(await readFile(victim, 'utf8'), 'untouched\n');
      assert.ok((await lstat(join(qmpDir, `${VM}.migrated`))).isFile(), 'the link was replaced by the record');
      await rm(join(qmpDir, `${VM}.migrated`));
      await writeFile(victim, JSON.stringify({ vm: VM, destination: 'unix:/x.sock', result: { statuses: ['completed'] } }));
      await symlink(victim, join(qmpDir, `${VM}.migrated`));
      await assert.rejects(w.source.migrate({ vm: VM, destination: 'unix:/x.sock', sourceDevice: PRIMARY.device }), (e: unknown) => e instanceof SriovError && e.code === 'NOT_FOUND');
    }));

  it('refuses a QMP socket path longer than a unix socket takes, naming the option', async () => {
    const h = new QmpHypervisor({ qmpDir: `/run/${'x'.repeat(120)}` });
    await assert.rejects(h.unplug({ vm: VM, device: PRIMARY.device }), (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT' && /--qmp-dir/.test(e.message));
  });
});
