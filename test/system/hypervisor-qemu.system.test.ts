/**
 * The QMP adapter against real QEMU (Debian: qemu-system-x86; `.ci/run`
 * installs it): two `qemu-system-x86_64 -M q35 -nodefaults -S` processes, a
 * virtio-net standby with failover=on and an emulated e1000e as its failover
 * primary (failover_pair_id is a property of any PCI device; there is no VF
 * here to hand to vfio-pci), the destination started with `-incoming`.
 *
 * There is no guest: it never negotiates VIRTIO_NET_F_STANDBY, so QEMU keeps
 * the primary hidden (it accepts device_add and creates nothing), and
 * nothing answers a PCI unplug. So the contract runs without its guest cases,
 * and the cases below say what real QEMU does in their place. The nested-guest
 * lab suite covers wait-unplug and the hot-plug into a running guest.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import type { PlugRequest } from '../../src/hypervisor/hypervisor.js';
import { QmpClient } from '../../src/hypervisor/qmp-client.js';
import { QmpHypervisor } from '../../src/hypervisor/qmp-hypervisor.js';
import { commandWorks } from '../../src/vm/command.js';
import { hypervisorContract, type HypervisorWorld } from '../contract/hypervisor.contract.js';

const VM = 'vm1';
const PRIMARY = { device: 'hostdev-0a1b2c3d', pciAddress: '0000:3b:02.0', mac: '02:5f:00:00:00:07', standby: 'net-0a1b2c3d' };
const QEMU = 'qemu-system-x86_64';
/** The e1000e stands in for the VF; no ROM, so source and destination have the same RAM blocks. */
const deviceFor = (req: PlugRequest) => ({ driver: 'e1000e', mac: req.mac, romfile: '' });

function qemuArgs(socket: string, extra: string[]): string[] {
  return [
    '-M', 'q35', '-nodefaults', '-S', '-display', 'none', '-m', '64',
    '-qmp', `unix:${socket},server=on,wait=off`,
    '-device', 'pcie-root-port,id=rp1,bus=pcie.0,chassis=1',
    '-device', 'pcie-root-port,id=rp2,bus=pcie.0,chassis=2',
    '-netdev', 'hubport,id=hostnet0,hubid=0',
    '-device', `virtio-net-pci,netdev=hostnet0,id=${PRIMARY.standby},mac=${PRIMARY.mac},failover=on,bus=rp1`,
    ...extra,
  ];
}

/** Starts QEMU and waits for its monitor socket to answer. */
async function startQemu(socket: string, extra: string[]): Promise<ChildProcess> {
  const child = spawn(QEMU, qemuArgs(socket, extra), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`QEMU exited ${child.exitCode}: ${stderr}`);
    const qmp = await QmpClient.connect(socket, { timeoutMs: 5_000 }).catch(() => null);
    if (qmp) {
      qmp.close();
      return child;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`QEMU's monitor ${socket} did not answer: ${stderr}`);
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** The VM's devices as QEMU lists them (/machine/peripheral), root ports left out. */
async function peripherals(socket: string): Promise<string[]> {
  const qmp = await QmpClient.connect(socket).catch((e: unknown) => {
    if (e instanceof SriovError && e.code === 'NOT_FOUND') return null; // QEMU exited: it holds nothing
    throw e;
  });
  if (!qmp) return [];
  try {
    const children = await qmp.execute<Array<{ name: string; type: string }>>('qom-list', { path: '/machine/peripheral' });
    return children.filter((c) => c.type.startsWith('child<') && c.type !== 'child<pcie-root-port>').map((c) => c.name);
  } finally {
    qmp.close();
  }
}

interface QemuWorld extends HypervisorWorld {
  sockets: { source: string; destination: string };
}

async function qemuWorld(): Promise<QemuWorld> {
  const root = await mkdtemp(join(tmpdir(), 'qemu-'));
  const [srcDir, dstDir] = [join(root, 'a'), join(root, 'b')];
  await mkdir(srcDir);
  await mkdir(dstDir);
  const sockets = { source: join(srcDir, `${VM}.qmp`), destination: join(dstDir, `${VM}.qmp`) };
  const migrateTo = `unix:${join(root, 'incoming.sock')}`;
  const primary = `e1000e,id=${PRIMARY.device},mac=${PRIMARY.mac},failover_pair_id=${PRIMARY.standby},bus=rp2,romfile=`;
  const src = await startQemu(sockets.source, ['-device', primary]);
  const dst = await startQemu(sockets.destination, ['-incoming', migrateTo]).catch(async (e: unknown) => {
    await stop(src);
    throw e;
  });
  const opts = { pollMs: 20, deviceFor, unplugTimeoutMs: 1_500 };
  return {
    sockets,
    source: new QmpHypervisor({ qmpDir: srcDir, ...opts }),
    destination: new QmpHypervisor({ qmpDir: dstDir, ...opts }),
    vm: VM,
    migrateTo,
    primary: PRIMARY,
    destinationVf: '0000:3b:12.0',
    devices: (side) => peripherals(sockets[side]),
    // With no QEMU listening there, the source's connection fails: the migration fails.
    breakNextMigration: () => stop(dst),
    close: async () => {
      await Promise.all([stop(src), stop(dst)]);
      await rm(root, { recursive: true, force: true });
    },
  };
}

before(async () => {
  assert.ok(await commandWorks(QEMU, ['--version']), `${QEMU} is required for this suite: apt-get install -y --no-install-recommends qemu-system-x86`);
});

hypervisorContract({ name: 'QMP (real QEMU, no guest)', guest: false, qemuStatuses: true, world: qemuWorld });

describe('real QEMU without a guest', { timeout: 120_000 }, () => {
  const inWorld = async (test: (w: QemuWorld) => Promise<void>) => {
    const w = await qemuWorld();
    try {
      await test(w);
    } finally {
      await w.close();
    }
  };

  it('migrates with QEMU\'s statuses and downtime; the hidden primary causes no wait-unplug', () =>
    inWorld(async (w) => {
      const result = await w.source.migrate({ vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device });
      console.log(`real QEMU: ${result.statuses.join(' → ')}; downtime ${result.downtimeMs} ms, total ${result.totalMs} ms`);
      assert.deepEqual(result.statuses.slice(0, 2), ['setup', 'active']);
      assert.equal(result.statuses.at(-1), 'completed');
      assert.ok(!result.statuses.includes('wait-unplug'));
      assert.equal(typeof result.downtimeMs, 'number');
      assert.equal(typeof result.totalMs, 'number');
      const qmp = await QmpClient.connect(w.sockets.destination);
      // The incoming side is done; the VM keeps the source's run state (never started: -S, prelaunch).
      assert.equal((await qmp.execute<{ status: string }>('query-status')).status, 'prelaunch');
      // Its query-migrate now says completed, for the incoming migration: not a sign that it migrated out.
      assert.equal((await qmp.execute<{ status: string }>('query-migrate')).status, 'completed');
      qmp.close();
      const nowhere = `unix:${join(w.sockets.destination, '..', 'nowhere.sock')}`;
      await assert.rejects(w.destination.migrate({ vm: VM, destination: nowhere, sourceDevice: PRIMARY.device }), (e: unknown) => {
        assert.ok(e instanceof SriovError && e.code === 'HOST_ERROR', String(e));
        assert.match(e.message, /Failed to connect/);
        return true;
      });
    }));

  it('a failover primary is accepted and kept hidden; the same plug again is accepted; a second primary is refused', () =>
    inWorld(async (w) => {
      await w.source.migrate({ vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device });
      const plug = { vm: VM, pciAddress: '0000:3b:12.0', device: PRIMARY.device, mac: PRIMARY.mac, failoverPairId: PRIMARY.standby };
      await w.destination.plug(plug);
      await w.destination.plug(plug);
      assert.deepEqual(await w.devices('destination'), [PRIMARY.standby]);
      await assert.rejects(w.destination.plug({ ...plug, device: 'hostdev-99999999' }), (e: unknown) => {
        assert.ok(e instanceof SriovError && e.code === 'CONFLICT', String(e));
        assert.match(e.message, /Cannot attach more than one primary device to 'net-0a1b2c3d'/);
        return true;
      });
      await w.destination.unplug({ vm: VM, device: PRIMARY.device }); // nothing to unplug: done
    }));

  it('a device without a failover pair goes into the free root port; its unplug waits for a guest that is not there', () =>
    inWorld(async (w) => {
      await w.source.migrate({ vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device });
      await w.destination.plug({ vm: VM, pciAddress: '0000:3b:12.0', device: 'hostdev-99999999', mac: '02:5f:00:00:00:09', failoverPairId: null });
      assert.deepEqual((await w.devices('destination')).sort(), ['hostdev-99999999', PRIMARY.standby]);
      for (let i = 0; i < 2; i++) {
        // The second time QEMU answers "already in the process of unplug"; the adapter waits on the first request.
        await assert.rejects(w.destination.unplug({ vm: VM, device: 'hostdev-99999999' }), (e: unknown) => e instanceof SriovError && e.code === 'TIMEOUT' && /guest's consent/.test(e.message));
      }
      assert.ok((await w.devices('destination')).includes('hostdev-99999999'));
    }));

  it("a standby whose MAC is not the VF's is refused before device_add", () =>
    inWorld(async (w) => {
      await w.source.migrate({ vm: VM, destination: w.migrateTo, sourceDevice: PRIMARY.device });
      await assert.rejects(
        w.destination.plug({ vm: VM, pciAddress: '0000:3b:12.0', device: PRIMARY.device, mac: '02:5f:00:00:00:99', failoverPairId: PRIMARY.standby }),
        (e: unknown) => e instanceof SriovError && e.code === 'CONFLICT',
      );
    }));
});
