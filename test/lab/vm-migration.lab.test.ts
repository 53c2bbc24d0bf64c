// Lab suite (needs root and the SR-IOV lab, 2 PFs; slow, 11 min in the lab: its own run):
// a real VM that holds a VF, live-migrated with QEMU's virtio-net failover.
// Inside the lab guest a tiny nested guest runs under QEMU (TCG): the lab's
// kernel, a busybox initramfs with virtio_net, net_failover and igbvf, 192 MB,
// a QMP socket. vfleet prepared its VFs (vfio-pci, the admin MAC).
//
// One guest, three QEMU processes, two migrations:
//   1. G0 (the virtio standby only) → A: a virtio-only migration, the baseline;
//      A was started as a hypervisor would, with the source VF as vfio-pci and
//      failover_pair_id, so QEMU plugs it once the guest runs there.
//   2. A → B (-incoming, the standby only) with the failover primary: QEMU
//      unplugs the VF first (wait-unplug), migrates, and the destination VF is
//      hot-plugged into B with the same MAC and pairing.
// QEMU's own downtime of each is printed, and their ratio. Pings through
// nested emulation take seconds, so they would measure nothing.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Allocation } from '../../src/domain/types.js';
import { sriovctl } from '../helpers/cli.js';
import { eventually, startDaemon, type Daemon } from '../helpers/daemon.js';
import { labPfs, rawVfs } from './lab-host.js';
import { insmodLab } from './lab-modules.js';
import { buildInitramfs, deviceIds, migrateByHand, NestedVm, PRIMARY_BUS, Qmp, type MigrateInfo } from './nested-vm.js';

const driverOf = (pci: string) => execFileSync('readlink', [`/sys/bus/pci/devices/${pci}/driver`], { encoding: 'utf8' }).trim().split('/').pop();
const IGBVF_PROBE = /Intel\(R\) 82576 Virtual Function/g;
const probes = (console: string) => console.match(IGBVF_PROBE)?.length ?? 0;
const BOOT_MS = 15 * 60_000;

describe('a VM with a VF, live-migrated through QEMU failover (nested guest)', () => {
  let dir: string;
  let daemon: Daemon;
  let env: NodeJS.ProcessEnv;
  let pfs: string[];
  const vms: NestedVm[] = [];
  const qmps: Qmp[] = [];
  const ctl = async (...args: string[]) => {
    const r = await sriovctl(['--server', daemon.url, ...args], env);
    assert.equal(r.code, 0, `sriovctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const start = async (spec: Omit<Parameters<typeof NestedVm.start>[0], 'dir'>) => {
    const vm = NestedVm.start({ dir, ...spec });
    vms.push(vm);
    const qmp = await Qmp.connect(vm.qmpPath).catch((err: Error) => {
      throw new Error(`${spec.name}: no QMP (${err.message}); QEMU said: ${vm.errors()}`);
    });
    qmps.push(qmp);
    return { vm, qmp };
  };

  before(async () => {
    pfs = await labPfs();
    assert.ok(pfs.length >= 2, 'this suite needs 2 PFs (lab.sh --pfs 2)');
    insmodLab('vfio_iommu_type1');
    dir = await mkdtemp(join(tmpdir(), 'vfleet-lab-'));
    daemon = await startDaemon([
      '--data-dir', dir, '--listen', '127.0.0.1:0', '--host', 'linux', '--hostname', 'lab-host',
      '--heartbeat-interval', '1', '--resync-interval', '3', '--log-level', 'info',
    ]);
    env = { SRIOV_TOKEN: (await readFile(join(dir, 'admin.token'), 'utf8')).trim() };
    const policy = join(dir, 'policy.yaml');
    await writeFile(policy, `policies:\n  - name: lab\n    selector: { drivers: [igb] }\n    numVfs: 2\n    physnet: lab\n`);
    await ctl('host', 'apply', '-f', policy);
    await eventually('2 VFs on each PF', 90_000, async () => (pfs.every((pf) => rawVfs(pf).length === 2) ? true : undefined));
    await ctl('tenant', 'create', 'vm');
    await ctl('network', 'create', 'vm-net', '--tenant', 'vm', '--physnet', 'lab', '--vlan', '100');
  });

  after(async () => {
    for (const q of qmps) q.close();
    for (const vm of vms) await vm.kill();
    await daemon?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('unplugs the source VF (wait-unplug), migrates, hot-plugs the destination VF; prints QEMU downtime beside a virtio-only migration', async (t) => {
    // The two VFs vfleet prepared: vfio-pci, each alone in its IOMMU group, on different PFs (one group).
    const attachVm = async () => JSON.parse(await ctl('attach', 'vm', '--network', 'vm-net', '--vm', 'nested', '--workload', 'nested', '--group', 'mig', '--failover', '-o', 'json')) as Allocation;
    const src = await attachVm();
    const dst = await attachVm();
    assert.notEqual(src.pf, dst.pf);
    for (const a of [src, dst]) {
      assert.equal(driverOf(a.pciAddress), 'vfio-pci');
      assert.deepEqual(readdirSync(`/sys/bus/pci/devices/${a.pciAddress}/iommu_group/devices`), [a.pciAddress], `${a.pciAddress} is alone in its IOMMU group`);
    }

    const ids = deviceIds(src.id);
    const initrd = await buildInitramfs(dir);
    const t0 = Date.now();
    const g0 = await start({ name: 'g0', initrd, ids, mac: src.mac });
    await g0.vm.waitConsole('the nested guest to boot', BOOT_MS, (c) => c.includes('nested: ready'));
    t.diagnostic(`nested guest booted in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

    // 1. The baseline: virtio only. A is the hypervisor's start of the VM with the source VF.
    const a = await start({ name: 'a', initrd, ids, mac: src.mac, vfPci: src.pciAddress, incoming: `unix:${join(dir, 'a.mig')}` });
    const virtioOnly = await migrateByHand(g0.qmp, `unix:${join(dir, 'a.mig')}`);
    t.diagnostic(`virtio-only migration: ${virtioOnly.statuses.join(' → ')}; ${JSON.stringify(virtioOnly.info)}`);
    assert.equal(virtioOnly.info.status, 'completed');
    assert.ok(!virtioOnly.statuses.includes('wait-unplug'));
    await g0.vm.kill();
    await a.vm.waitConsole('igbvf to probe the source VF in the nested guest on A', 300_000, (c) => probes(c) >= 1);

    // 2. With the failover primary.
    const b = await start({ name: 'b', initrd, ids, mac: src.mac, incoming: `unix:${join(dir, 'b.mig')}` });
    const failover = await migrateByHand(a.qmp, `unix:${join(dir, 'b.mig')}`);
    t.diagnostic(`failover migration: ${failover.statuses.join(' → ')}; ${JSON.stringify(failover.info)}`);
    assert.equal(failover.info.status, 'completed');
    assert.ok(failover.statuses.includes('wait-unplug'), `QEMU unplugged the VF before migrating: ${failover.statuses.join(' → ')}`);
    assert.ok(a.qmp.events.some((e) => e.event === 'UNPLUG_PRIMARY' && (e.data as { 'device-id'?: string })['device-id'] === ids.primary), `UNPLUG_PRIMARY for the source VF: ${JSON.stringify(a.qmp.events)}`);
    // The destination VF, only now: the MAC was never on two plugged VFs at once.
    await b.qmp.execute('device_add', { driver: 'vfio-pci', host: dst.pciAddress, id: ids.primary, bus: PRIMARY_BUS, failover_pair_id: ids.standby });
    await b.vm.waitConsole('igbvf to probe the destination VF in the nested guest on B', 300_000, (c) => probes(c) >= 1);
    report(t, virtioOnly.info, failover.info);

    // The source VF back to the kernel, scrubbed.
    await a.vm.kill();
    const released = JSON.parse(await ctl('detach', src.id, '--timeout', '300', '-o', 'json')) as Allocation;
    assert.equal(released.state, 'released');
    assert.equal(driverOf(src.pciAddress), 'igbvf');
    const vf = rawVfs(src.pf).find((v) => v.vf === src.vfIndex)!;
    assert.notEqual(vf.address, src.mac);
    assert.equal(vf.vlan_list?.[0]?.vlan ?? 0, 0);
  });
});

function report(t: { diagnostic(m: string): void }, virtioOnly: MigrateInfo, failover: MigrateInfo): void {
  const ratio = virtioOnly.downtime ? (failover.downtime ?? NaN) / virtioOnly.downtime : NaN;
  const line =
    `QEMU downtime: failover ${failover.downtime} ms (total ${failover['total-time']} ms), ` +
    `virtio-only ${virtioOnly.downtime} ms (total ${virtioOnly['total-time']} ms): ratio ${ratio.toFixed(2)}`;
  t.diagnostic(line);
  console.log(`LAB RESULT vm-migration: ${line}`);
}
