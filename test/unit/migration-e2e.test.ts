// Live migration end to end: the controller's workflow (SQLite), real agents
// (agent.ts over InProcessLink) on simulated hosts, the QMP adapter against
// test/support/qmp-server.ts. Nothing plays the other side by hand: the test
// only starts migrations and drains, and breaks things.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { HookHypervisor } from '../../src/controller/hook-hypervisor.js';
import type { Allocation, Migration } from '../../src/domain/types.js';
import { KernelError, type HostPorts } from '../../src/host/ports.js';
import { QmpHypervisor } from '../../src/hypervisor/qmp-hypervisor.js';
import { buildServer } from '../../src/api/server.js';
import { SriovHost } from '../../src/host/configurator.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost, loadSimState, updateSimState } from '../../src/sim/state.js';
import { remoteCli } from '../helpers/cli.js';
import { api, eventually, startDaemon, type Daemon } from '../helpers/daemon.js';
import { hookedNetns } from '../helpers/migration-host.js';
import { ADMIN, MigrationWorld } from '../helpers/migration-world.js';
import { QmpNetwork, type FakeQemu } from '../support/qmp-server.js';

const SCRUBBED = { mac: '00:00:00:00:00:00', vlan: 0, maxTxRateMbps: 0, spoofChk: true, trust: false };

let w: MigrationWorld;
let qemu: QmpNetwork | null = null;
afterEach(async () => {
  await qemu?.close();
  qemu = null;
  await w?.close();
});

/** The most VFs ever up at once with `mac` (in the host or a namespace), sampled after every namespace change. */
class MacWatch {
  most = 0;
  mac: string | null = null;
  constructor(private readonly file: string) {}
  async live(): Promise<number> {
    const state = await loadSimState(this.file);
    const vfs = state.pfs.flatMap((p) => p.vfs);
    return vfs.filter((v) => (v.netdev !== null || v.netns) && v.netdevUp && (v.netdevMac ?? v.mac) === this.mac).length;
  }
  wrap = (ports: HostPorts): HostPorts =>
    hookedNetns(ports, async (_m, call) => {
      const r = await call();
      if (this.mac) this.most = Math.max(this.most, await this.live());
      return r;
    });
}

const vfAddress = async (file: string, pf: string, vf: number) => (await w.sim(file).pf(pf)).vfs[vf]!.pciAddress;

async function container(name: string, host: string, pciAddress: string): Promise<Allocation> {
  const ns = await w.namespace(name);
  const a = await w.control.allocations.create(ADMIN, { network: 'blue', host, pciAddress, workload: { kind: 'container', name }, attach: { kind: 'container', netns: ns, ifname: 'net1' } });
  return w.state(a.id, 'attached');
}

/** The VF links in a container's namespace. */
async function nsLinks(file: string, a: Allocation) {
  const ns = a.attachment?.kind === 'container' ? a.attachment.netns : '';
  return (await w.sim(file).ports.netns.links(ns)).filter((l) => l.pciAddress !== null);
}

/** Each MAC is held by one allocation, except a running migration's two ends; no VF is held twice. */
async function assertHeldOnce(): Promise<void> {
  const holding = (await w.store.tx.listAllocations()).filter((a) => ['pending', 'configured', 'attached', 'releasing'].includes(a.state));
  const byMac = new Map<string, Allocation[]>();
  for (const a of holding) byMac.set(a.mac, [...(byMac.get(a.mac) ?? []), a]);
  for (const [mac, held] of byMac) assert.equal(held.length, 1, `MAC ${mac} held by ${held.map((a) => `${a.id}:${a.state}`).join(', ')}`);
  const vfs = holding.map((a) => `${a.host}/${a.pciAddress}`);
  assert.equal(new Set(vfs).size, vfs.length, 'no VF is held twice');
}

async function assertRehomed(file: string, before: Allocation, m: Migration, watch: MacWatch): Promise<void> {
  assert.equal(m.state, 'completed', `${m.reason} ${JSON.stringify(m.history)}`);
  const source = await w.control.allocations.get(ADMIN, before.id);
  const dest = await w.control.allocations.get(ADMIN, m.to!.allocation);
  assert.equal(source.state, 'released');
  assert.equal(dest.state, 'attached');
  assert.deepEqual([source.migration, dest.migration], [null, null]);
  assert.equal(dest.mac, before.mac);
  const links = await nsLinks(file, before);
  assert.equal(links.length, 1, `one VF in the namespace: ${JSON.stringify(links)}`);
  const ips = before.attachment?.kind === 'container' ? before.attachment.ips : [];
  assert.deepEqual([links[0]!.ifname, links[0]!.mac, links[0]!.addresses, links[0]!.up, links[0]!.pciAddress], ['net1', before.mac, ips, true, m.to!.pciAddress]);
  const old = await w.vf(file, before.pciAddress);
  assert.deepEqual({ mac: old.mac, vlan: old.vlan, maxTxRateMbps: old.maxTxRateMbps, spoofChk: old.spoofChk, trust: old.trust }, SCRUBBED, 'the old VF is scrubbed');
  assert.ok(old.netdev, 'the old VF is back in the host namespace');
  assert.equal(watch.most, 1, 'the MAC was never up on two VFs at once');
  await assertHeldOnce();
}

describe('migration end to end: containers', { timeout: 60_000 }, () => {
  it('re-homes a container between two PFs of one host, make-before-break', async () => {
    w = await MigrationWorld.open();
    const file = await w.kernel('host-a');
    const watch = new MacWatch(file);
    await w.startAgent({ name: 'host-a', file, wrap: watch.wrap });
    await w.provision('host-a');
    await w.network();
    const a = await container('pod-a', 'host-a', await vfAddress(file, 'ens1f0', 0));
    watch.mac = a.mac;
    const m = await w.control.migrations.start(ADMIN, { allocation: a.id, to: { host: 'host-a', pf: 'ens1f1' } });
    assert.equal(m.to?.pf, 'ens1f1');
    await assertRehomed(file, a, await w.ended(m.id), watch);
  });

  it('re-homes a container between two agents splitting one kernel with --pfs (same bootId)', async () => {
    w = await MigrationWorld.open();
    const file = await w.kernel('lab');
    const watch = new MacWatch(file);
    await w.startAgent({ name: 'host-a', file, pfs: 'ens1f0', wrap: watch.wrap });
    await w.startAgent({ name: 'host-b', file, pfs: 'ens1f1', wrap: watch.wrap });
    await w.provision('host-a');
    await w.provision('host-b');
    await w.network();
    const [ha, hb] = [await w.control.hosts.get(ADMIN, 'host-a'), await w.control.hosts.get(ADMIN, 'host-b')];
    assert.deepEqual([ha.inventory.pfs.map((p) => p.name), hb.inventory.pfs.map((p) => p.name)], [['ens1f0'], ['ens1f1']]);
    assert.ok(ha.inventory.bootId && ha.inventory.bootId === hb.inventory.bootId, 'one kernel');
    const a = await container('pod-b', 'host-a', await vfAddress(file, 'ens1f0', 1));
    watch.mac = a.mac;
    const m = await w.control.migrations.start(ADMIN, { allocation: a.id, to: { host: 'host-b', pf: null } });
    assert.deepEqual([m.to?.host, m.to?.pf], ['host-b', 'ens1f1']);
    await assertRehomed(file, a, await w.ended(m.id), watch);
  });
});

interface VmWorld {
  fileA: string;
  fileB: string;
  src: FakeQemu;
  dst: FakeQemu;
  vm: Allocation;
  migrateUri: string;
  devices: { primary: string; standby: string };
}

/**
 * host-a and host-b (two kernels), each agent with the QMP adapter over its
 * own QMP directory. VM vm1 runs on host-a with its VF (allocated by vfleet)
 * as the failover primary of a virtio standby; a destination QEMU waits with
 * -incoming and the standby only, as the issue's lab starts them.
 */
async function vmWorld(opts: { stepMs?: number } = {}): Promise<VmWorld> {
  w = await MigrationWorld.open();
  const [fileA, fileB] = [await w.kernel('host-a'), await w.kernel('host-b')];
  const [qmpA, qmpB] = [join(w.dir, 'qmp-a'), join(w.dir, 'qmp-b')];
  await mkdir(qmpA);
  await mkdir(qmpB);
  const fast = { pollMs: 5, unplugTimeoutMs: 3_000, migrateTimeoutMs: 10_000 };
  await w.startAgent({ name: 'host-a', file: fileA, hypervisors: { qemu: new QmpHypervisor({ qmpDir: qmpA, ...fast }) } });
  await w.startAgent({ name: 'host-b', file: fileB, hypervisors: { qemu: new QmpHypervisor({ qmpDir: qmpB, ...fast }) } });
  await w.provision('host-a');
  await w.provision('host-b');
  await w.network();
  const created = await w.control.allocations.create(ADMIN, { network: 'blue', host: 'host-a', workload: { kind: 'vm', name: 'vm1' }, attach: { kind: 'vm', vm: 'vm1', failover: true } });
  const vm = await w.state(created.id, 'attached');
  const short = vm.id.slice(0, 8);
  const devices = { primary: `hostdev-${short}`, standby: `net-${short}` };
  const allVfs = async (file: string) => (await w.sim(file).inventory()).pfs.flatMap((p) => p.vfs.map((v) => v.pciAddress));
  qemu = new QmpNetwork();
  const migrateUri = `unix:${join(w.dir, 'vm1.incoming')}`;
  const standby = { driver: 'virtio-net-pci', id: devices.standby, bus: 'rp1', mac: vm.mac, failover: 'on', netdev: 'hostnet0' };
  const src = await qemu.start({
    socket: join(qmpA, 'vm1.qmp'),
    rootPorts: ['rp1', 'rp2'],
    devices: [standby, { driver: 'vfio-pci', id: devices.primary, bus: 'rp2', host: vm.pciAddress, failover_pair_id: devices.standby }],
    vfioDevices: await allVfs(fileA),
    stepMs: opts.stepMs,
  });
  const dst = await qemu.start({ socket: join(qmpB, 'vm1.qmp'), rootPorts: ['rp1', 'rp2'], devices: [standby], incoming: migrateUri, vfioDevices: await allVfs(fileB), stepMs: opts.stepMs });
  return { fileA, fileB, src, dst, vm, migrateUri, devices };
}

describe('migration end to end: a VM through the QMP adapter', { timeout: 60_000 }, () => {
  it('migrates, plugs the destination VF with the standby pairing, and scrubs and frees the source', async () => {
    const v = await vmWorld();
    const m = await w.control.migrations.start(ADMIN, { allocation: v.vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: v.migrateUri });
    const done = await w.ended(m.id);
    assert.equal(done.state, 'completed', `${done.reason} ${JSON.stringify(done.history)}`);
    assert.ok(typeof done.downtimeMs === 'number' && done.downtimeMs >= 0, `downtime recorded: ${done.downtimeMs}`);
    assert.deepEqual(
      done.tasks?.map((t) => [t.id, t.outcome]),
      [[`${m.id}:migrate:host-a`, 'ok'], [`${m.id}:plug:host-b`, 'ok']],
    );
    const add = v.dst.commands.find((c) => c.execute === 'device_add');
    assert.deepEqual(add?.arguments, { driver: 'vfio-pci', host: done.to!.pciAddress, id: v.devices.primary, bus: 'rp2', failover_pair_id: v.devices.standby });
    assert.equal(v.dst.runState, 'running');
    assert.ok(v.src.commands.some((c) => c.execute === 'migrate'));
    const dest = await w.control.allocations.get(ADMIN, done.to!.allocation);
    const source = await w.control.allocations.get(ADMIN, v.vm.id);
    assert.deepEqual([source.state, dest.state, dest.mac], ['released', 'attached', v.vm.mac]);
    const destVf = await w.vf(v.fileB, done.to!.pciAddress);
    assert.deepEqual([destVf.mac, destVf.vlan, destVf.driver], [v.vm.mac, 100, 'vfio-pci']);
    const old = await w.vf(v.fileA, v.vm.pciAddress);
    assert.deepEqual({ mac: old.mac, vlan: old.vlan, maxTxRateMbps: old.maxTxRateMbps, spoofChk: old.spoofChk, trust: old.trust }, SCRUBBED);
    assert.notEqual(old.driver, 'vfio-pci', 'the source VF is rebound to its netdev driver');
    await assertHeldOnce();
  });
});


describe('migration end to end: a VM through the hook', { timeout: 60_000 }, () => {
  it('the orchestrator waits on prepare, moves the VM itself, calls complete; the agents do the rest', async () => {
    w = await MigrationWorld.open();
    const [fileA, fileB] = [await w.kernel('host-a'), await w.kernel('host-b')];
    await w.startAgent({ name: 'host-a', file: fileA });
    await w.startAgent({ name: 'host-b', file: fileB });
    await w.provision('host-a');
    await w.provision('host-b');
    await w.network();
    const created = await w.control.allocations.create(ADMIN, { network: 'blue', host: 'host-a', workload: { kind: 'vm', name: 'vm3' }, attach: { kind: 'vm', vm: 'vm3', failover: true } });
    const vm = await w.state(created.id, 'attached');
    const m = await w.control.migrations.start(ADMIN, { allocation: vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'hook' });
    const ready = await w.control.migrations.prepare(ADMIN, m.id, 10_000);
    assert.equal(ready.migration.step, 'switch');
    assert.match(ready.hostdevXml ?? '', new RegExp(`<mac address=["']${vm.mac}["']`));
    const destVf = await w.vf(fileB, m.to!.pciAddress);
    assert.deepEqual([destVf.mac, destVf.vlan, destVf.driver], [vm.mac, 100, 'vfio-pci'], 'prepared: configured and bound for the VM');
    // The orchestrator moves the VM and plugs the VF; its hypervisor view says so.
    const hook = new HookHypervisor(w.control.hook);
    const moving = hook.migrate({ vm: 'vm3', destination: 'host-b', sourceDevice: `ua-sriov-${vm.id.slice(0, 8)}` });
    await w.control.migrations.complete(ADMIN, m.id);
    assert.equal((await moving).statuses.at(-1), 'completed');
    const done = await w.ended(m.id);
    assert.equal(done.state, 'completed', `${done.reason}`);
    assert.equal((await w.control.allocations.get(ADMIN, done.to!.allocation)).state, 'attached');
    assert.equal((await w.control.allocations.get(ADMIN, vm.id)).state, 'released');
    assert.equal((await w.vf(fileA, vm.pciAddress)).mac, SCRUBBED.mac);
    await assertHeldOnce();
  });
});

describe('drain end to end', { timeout: 60_000 }, () => {
  it('POST /v1/drains empties a PF, then its VF count changes with the other PF\'s workload untouched', async () => {
    w = await MigrationWorld.open();
    const file = await w.kernel('host-a');
    await w.startAgent({ name: 'host-a', file });
    await w.provision('host-a');
    await w.network();
    const admin = (await readFile(await w.control.tokens.bootstrapAdmin(w.dir), 'utf8')).trim();
    const app = await buildServer({ control: w.control, controllerHost: 'ctl-1', version: 'test' });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const call = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
        const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${admin}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
        return { status: res.status, body: (await res.json()) as T };
      };
      const moving = await container('pod-m', 'host-a', await vfAddress(file, 'ens1f0', 0));
      const stays = await container('pod-s', 'host-a', await vfAddress(file, 'ens1f1', 0));
      const staysLinks = await nsLinks(file, stays);

      const dry = await call<{ state: string; moves: Array<{ to: { pf: string } | null }> }>('POST', '/v1/drains', { host: 'host-a', pf: 'ens1f0', dryRun: true });
      assert.equal(dry.status, 200);
      assert.deepEqual([dry.body.state, dry.body.moves.map((m) => m.to?.pf)], ['planned', ['ens1f1']]);
      assert.equal((await w.control.migrations.list(ADMIN)).length, 0, 'a dry run starts nothing');

      const started = await call<{ state: string; moves: Array<{ migration: string | null }> }>('POST', '/v1/drains', { host: 'host-a', pf: 'ens1f0' });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const [id] = started.body.moves.map((m) => m.migration);
      assert.ok(id, 'the move started a migration');
      const m = await w.ended(id);
      assert.equal(m.state, 'completed', `${m.reason}`);
      const moved = await w.control.allocations.get(ADMIN, m.to!.allocation);
      assert.deepEqual([moved.pf, moved.state, moved.mac], ['ens1f1', 'attached', moving.mac]);
      assert.deepEqual((await nsLinks(file, moving)).map((l) => [l.ifname, l.mac, l.pciAddress]), [['net1', moving.mac, moved.pciAddress]]);

      const policy = (n: number) => ({
        document: `policies:\n  - name: port0\n    selector: { pfNames: [ens1f0] }\n    numVfs: ${n}\n    physnet: fabric\n  - name: port1\n    selector: { pfNames: [ens1f1] }\n    numVfs: 4\n    physnet: fabric\n`,
      });
      const put = await call('PUT', '/v1/hosts/host-a/policy', policy(8));
      assert.equal(put.status, 200, JSON.stringify(put.body));
      await eventually('8 VFs on ens1f0', 10_000, async () => ((await w.sim(file).pf('ens1f0')).numVfs === 8 ? true : undefined));
      await new Promise((r) => setTimeout(r, 500)); // a few agent passes after the change
      assert.deepEqual(await nsLinks(file, stays), staysLinks, 'the other PF\'s workload is untouched');
      assert.deepEqual(await nsLinks(file, moving), (await nsLinks(file, moving)).filter((l) => l.pciAddress === moved.pciAddress));
      assert.equal((await w.control.allocations.get(ADMIN, stays.id)).state, 'attached');
      assert.equal((await w.control.allocations.get(ADMIN, moved.id)).state, 'attached');
      assert.equal((await w.control.hosts.get(ADMIN, 'host-a')).inventory.pfs.find((p) => p.name === 'ens1f0')?.numVfs, 8);
      await assertHeldOnce();
    } finally {
      await app.close();
    }
  });
});

/**
 * One host; a container on ens1f0 migrating to ens1f1, whose VFs vanish
 * (sriov_numvfs lowered under the agent) just as the agent configures the
 * destination. `staysGone`: the PF then refuses new VFs (EBUSY, as a PF in
 * reset does), so the agent's policy cannot bring them back.
 */
async function vanishing(staysGone: boolean) {
  w = await MigrationWorld.open();
  const file = await w.kernel('host-a');
  const watch = new MacWatch(file);
  let vanish = false;
  let gone = false;
  const wrap = (ports: HostPorts): HostPorts => {
    const watched = watch.wrap(ports);
    return {
      ...watched,
      sysfs: {
        ...ports.sysfs,
        writeNumVfs: async (pci, n) => {
          if (gone && n > 0 && pci === (await ports.sysfs.pciAddressOfNetdev('ens1f1'))) throw new KernelError('EBUSY', `sriov_numvfs=${n}`, `write ${pci}/sriov_numvfs: Device or resource busy`);
          return ports.sysfs.writeNumVfs(pci, n);
        },
      },
      links: {
        ...ports.links,
        applyVfOps: async (pf, ops, opts) => {
          if (vanish && pf === 'ens1f1') {
            vanish = false;
            gone = staysGone;
            await updateSimState(file, (s) => {
              const p = s.pfs.find((x) => x.name === 'ens1f1')!;
              p.numVfs = 0;
              p.vfs = [];
            });
          }
          return ports.links.applyVfOps(pf, ops, opts);
        },
      },
    };
  };
  await w.startAgent({ name: 'host-a', file, wrap });
  await w.provision('host-a');
  await w.network();
  const a = await container('pod-v', 'host-a', await vfAddress(file, 'ens1f0', 0));
  const before = await nsLinks(file, a);
  watch.mac = a.mac;
  vanish = true;
  const m = await w.control.migrations.start(ADMIN, { allocation: a.id, to: { host: 'host-a', pf: 'ens1f1' } });
  return { file, a, before, m, watch };
}

describe('migration end to end: faults', { timeout: 60_000 }, () => {
  it('the destination agent stops mid-prepare: the sweep rolls back; when it returns it frees the destination', async () => {
    w = await MigrationWorld.open();
    const file = await w.kernel('lab');
    await w.startAgent({ name: 'host-a', file, pfs: 'ens1f0' });
    await w.startAgent({ name: 'host-b', file, pfs: 'ens1f1' });
    await w.provision('host-a');
    await w.provision('host-b');
    await w.network();
    const a = await container('pod-f', 'host-a', await vfAddress(file, 'ens1f0', 0));
    const before = await nsLinks(file, a);
    await w.stopAgent('host-b');
    const m = await w.control.migrations.start(ADMIN, { allocation: a.id, to: { host: 'host-b', pf: null } });
    await eventually('host-b unreachable', 10_000, async () => ((await w.control.hosts.sweep()).includes('host-b') ? true : undefined));
    // Rolling back waits for the destination's scrub: until then its VF still carries the MAC.
    const rolling = await eventually('rolling back', 10_000, async () => {
      const x = await w.control.migrations.get(ADMIN, m.id);
      return x.state === 'rolling-back' ? x : undefined;
    });
    assert.match(rolling.reason ?? '', /stopped reporting/);
    assert.equal((await w.control.allocations.get(ADMIN, m.to!.allocation)).state, 'releasing');
    await w.startAgent(w.specs.get('host-b')!);
    const done = await w.ended(m.id);
    assert.equal(done.state, 'failed');
    await w.state(done.to!.allocation, 'released');
    const source = await w.control.allocations.get(ADMIN, a.id);
    assert.deepEqual([source.state, source.migration], ['attached', null]);
    assert.deepEqual(await nsLinks(file, a), before, 'the workload never moved');
    const dest = await w.vf(file, done.to!.pciAddress);
    assert.equal(dest.mac, SCRUBBED.mac, 'the destination VF is scrubbed');
    await assertHeldOnce();
  });

  it('the controller restarts mid-switch: the migration resumes with the same task ids, migrating once', async () => {
    const v = await vmWorld({ stepMs: 150 });
    const m = await w.control.migrations.start(ADMIN, { allocation: v.vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: v.migrateUri });
    await eventually('the VM migrating', 10_000, async () => (v.src.commands.some((c) => c.execute === 'migrate') ? true : undefined));
    assert.equal((await w.control.migrations.get(ADMIN, m.id)).step, 'switch');
    await w.reopen();
    const done = await w.ended(m.id);
    assert.equal(done.state, 'completed', `${done.reason} ${JSON.stringify(done.history)}`);
    assert.deepEqual(
      done.tasks?.map((t) => [t.id, t.outcome]),
      [[`${m.id}:migrate:host-a`, 'ok'], [`${m.id}:plug:host-b`, 'ok']],
    );
    assert.equal(v.src.commands.filter((c) => c.execute === 'migrate').length, 1, 'migrated once');
    assert.equal(v.dst.commands.filter((c) => c.execute === 'device_add').length, 1, 'plugged once');
    assert.equal((await w.control.allocations.get(ADMIN, v.vm.id)).state, 'released');
    await assertHeldOnce();
  });

  it('the source agent restarts mid-migration: the new agent runs the task again, and QEMU says it is done', async () => {
    const v = await vmWorld({ stepMs: 150 });
    const m = await w.control.migrations.start(ADMIN, { allocation: v.vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: v.migrateUri });
    await eventually('the VM migrating', 10_000, async () => (v.src.commands.some((c) => c.execute === 'migrate') ? true : undefined));
    await w.stopAgent('host-a');
    await w.startAgent(w.specs.get('host-a')!);
    const done = await w.ended(m.id);
    assert.equal(done.state, 'completed', `${done.reason} ${JSON.stringify(done.history)}`);
    assert.equal(v.src.commands.filter((c) => c.execute === 'migrate').length, 1, 'migrated once');
    assert.equal((await w.control.allocations.get(ADMIN, v.vm.id)).state, 'released');
    await assertHeldOnce();
  });

  it('the controller restarts mid-switch of a container re-home on two --pfs agents: it resumes and completes', async () => {
    w = await MigrationWorld.open();
    const file = await w.kernel('lab');
    const watch = new MacWatch(file);
    let paused: (() => void) | null = null;
    let gate: Promise<void> | null = null;
    // host-b's agent stops between taking the old VF down and bringing the new one up, until the controller is back.
    const wrap = (ports: HostPorts) =>
      watch.wrap(
        hookedNetns(ports, async (method, call) => {
          if (method === 'configure' && gate === null) {
            gate = new Promise<void>((r) => (paused = r));
            await gate;
          }
          return call();
        }),
      );
    await w.startAgent({ name: 'host-a', file, pfs: 'ens1f0', wrap: watch.wrap });
    await w.startAgent({ name: 'host-b', file, pfs: 'ens1f1', wrap });
    await w.provision('host-a');
    await w.provision('host-b');
    await w.network();
    const a = await container('pod-r', 'host-a', await vfAddress(file, 'ens1f0', 0));
    watch.mac = a.mac;
    const m = await w.control.migrations.start(ADMIN, { allocation: a.id, to: { host: 'host-b', pf: null } });
    await eventually('the re-home under way', 10_000, async () => (paused ? true : undefined));
    assert.equal((await w.control.migrations.get(ADMIN, m.id)).step, 'switch');
    await w.reopen();
    paused!();
    await assertRehomed(file, a, await w.ended(m.id), watch);
  });

  it('an abort while the destination prepares rolls back with real agents', async () => {
    w = await MigrationWorld.open();
    const file = await w.kernel('host-a');
    await w.startAgent({ name: 'host-a', file });
    await w.provision('host-a');
    await w.network();
    const a = await container('pod-x', 'host-a', await vfAddress(file, 'ens1f0', 0));
    const before = await nsLinks(file, a);
    await w.stopAgent('host-a'); // so the abort comes before the prepare
    const m = await w.control.migrations.start(ADMIN, { allocation: a.id, to: { host: 'host-a', pf: 'ens1f1' } });
    const aborted = await w.control.migrations.abort(ADMIN, m.id);
    assert.equal(aborted.state, 'rolling-back');
    await w.startAgent(w.specs.get('host-a')!);
    const done = await w.ended(m.id);
    assert.deepEqual([done.state, done.reason], ['aborted', 'aborted by admin/test']);
    assert.deepEqual(await nsLinks(file, a), before);
    assert.equal((await w.control.allocations.get(ADMIN, a.id)).state, 'attached');
    assert.equal((await w.vf(file, m.to!.pciAddress)).mac, SCRUBBED.mac);
    await assertHeldOnce();
  });

  it('the hypervisor\'s migration fails: rolled back, the source VF plugged back, the destination freed', async () => {
    const v = await vmWorld();
    v.src.failNextMigration = 'Unable to write to socket: Broken pipe';
    const m = await w.control.migrations.start(ADMIN, { allocation: v.vm.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: v.migrateUri });
    const done = await w.ended(m.id);
    assert.equal(done.state, 'failed');
    assert.match(done.reason ?? '', /Broken pipe/);
    assert.deepEqual(done.tasks?.map((t) => [t.id, t.outcome]), [[`${m.id}:migrate:host-a`, 'failed'], [`${m.id}:plug-back:host-a`, 'ok']]);
    assert.ok(v.src.deviceIds().includes(v.devices.primary), 'the source VF is back in the VM');
    assert.equal(v.src.runState, 'running');
    await w.state(done.to!.allocation, 'released');
    const source = await w.control.allocations.get(ADMIN, v.vm.id);
    assert.deepEqual([source.state, source.migration], ['attached', null]);
    assert.equal((await w.vf(v.fileA, v.vm.pciAddress)).mac, v.vm.mac);
    assert.equal((await w.vf(v.fileB, done.to!.pciAddress)).mac, SCRUBBED.mac);
    await assertHeldOnce();
  });

  it('the destination VF vanishes mid-prepare and stays gone: rolled back, the workload stays where it was', async () => {
    const { file, a, before, m } = await vanishing(true);
    const done = await w.ended(m.id);
    assert.equal(done.state, 'failed', JSON.stringify(done.history));
    assert.match(done.reason ?? '', /no longer exists/);
    const source = await w.control.allocations.get(ADMIN, a.id);
    assert.deepEqual([source.state, source.migration], ['attached', null]);
    assert.deepEqual(await nsLinks(file, a), before, 'the workload never moved');
    assert.equal((await w.control.allocations.get(ADMIN, done.to!.allocation)).state, 'failed');
    await assertHeldOnce();
  });

  it('the destination VF vanishes mid-prepare and the policy brings it back: the migration resumes and completes', async () => {
    const { file, a, m, watch } = await vanishing(false);
    const done = await w.ended(m.id);
    await assertRehomed(file, a, done, watch);
  });
});

describe('migration end to end: daemons', { timeout: 120_000 }, () => {
  it('sriovctl drain of a host moves a container and a VM to the other --pfs agent of the same kernel', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-mig-daemons-'));
    const daemons: Daemon[] = [];
    const net = new QmpNetwork();
    try {
      const file = join(dir, 'lab.json');
      await initSimHost(file, { profile: 'ice', pfs: 2, hostname: 'lab' });
      const controller = await startDaemon(['--data-dir', join(dir, 'ctl'), '--listen', '127.0.0.1:0', '--no-agent', '--log-level', 'info']);
      daemons.push(controller);
      const adminTokenFile = join(dir, 'ctl', 'admin.token');
      const admin = (await readFile(adminTokenFile, 'utf8')).trim();
      const call = <T>(method: string, path: string, body?: unknown) => api<T>(controller.url, admin, method, path, body);
      const { ok, json } = remoteCli(() => ({ env: { HOME: dir, SRIOV_SERVER: controller.url, SRIOV_TOKEN: '', SRIOV_CONFIG: '' }, adminTokenFile }));
      const qmp = { 'host-a': join(dir, 'qmp-a'), 'host-b': join(dir, 'qmp-b') };
      for (const [host, pf] of [['host-a', 'ens1f0'], ['host-b', 'ens1f1']] as const) {
        await mkdir(qmp[host]);
        const token = (await call<{ token: string }>('POST', '/v1/tokens', { role: `agent:${host}` })).body.token;
        daemons.push(
          await startDaemon([
            'agent', '--server', controller.url, '--token', token, '--host', `sim:${file}`, '--hostname', host, '--pfs', pf,
            '--hypervisor', 'qemu', '--qmp-dir', qmp[host], '--heartbeat-interval', '1', '--log-level', 'info',
          ]),
        );
      }
      const policy = join(dir, 'policy.yaml');
      await writeFile(policy, 'policies:\n  - name: fabric\n    selector: { drivers: [ice] }\n    numVfs: 4\n    physnet: fabric\n');
      for (const host of ['host-a', 'host-b']) {
        await eventually(`${host} registered`, 20_000, async () => ((await call('GET', `/v1/hosts/${host}`)).status === 200 ? true : undefined));
        await ok(['host', 'apply', '-f', policy, '--host', host]);
      }
      await eventually('4 VFs on both', 30_000, async () => {
        const hosts = (await call<Array<{ pfs: Array<{ vfs: { total: number } }> }>>('GET', '/v1/hosts')).body;
        return hosts.length === 2 && hosts.every((h) => h.pfs.every((p) => p.vfs.total === 4)) ? true : undefined;
      });
      await ok(['tenant', 'create', 'blue']);
      await ok(['network', 'create', 'blue', '--tenant', 'blue', '--physnet', 'fabric', '--vlan', '100']);
      const waitState = (id: string, state: string) =>
        eventually(`allocation ${id} ${state}`, 20_000, async () => {
          const r = await call<Allocation>('GET', `/v1/allocations/${id}`);
          return r.body.state === state ? r.body : undefined;
        });

      const ns = join(dir, 'pod-d');
      await writeFile(ns, '');
      const pod = await call<Allocation>('POST', '/v1/allocations', { network: 'blue', host: 'host-a', workload: { kind: 'container', name: 'pod-d' }, attach: { kind: 'container', netns: ns, ifname: 'net1', ips: ['198.18.9.5/24'] } });
      assert.equal(pod.status, 201, JSON.stringify(pod.body));
      const podBefore = await waitState(pod.body.id, 'attached');
      const vmr = await call<Allocation>('POST', '/v1/allocations', { network: 'blue', host: 'host-a', workload: { kind: 'vm', name: 'vm2' }, attach: { kind: 'vm', vm: 'vm2', failover: true } });
      assert.equal(vmr.status, 201, JSON.stringify(vmr.body));
      const vm = await waitState(vmr.body.id, 'attached');
      const short = vm.id.slice(0, 8);
      const incoming = `unix:${join(dir, 'vm2.in')}`;
      const vfs = (await new SriovHost(createSimPorts(file)).inventory()).pfs.flatMap((p) => p.vfs.map((v) => v.pciAddress));
      const standby = { driver: 'virtio-net-pci', id: `net-${short}`, bus: 'rp1', mac: vm.mac, failover: 'on', netdev: 'hostnet0' };
      const src = await net.start({ socket: join(qmp['host-a'], 'vm2.qmp'), rootPorts: ['rp1', 'rp2'], devices: [standby, { driver: 'vfio-pci', id: `hostdev-${short}`, bus: 'rp2', host: vm.pciAddress, failover_pair_id: standby.id }], vfioDevices: vfs });
      const dst = await net.start({ socket: join(qmp['host-b'], 'vm2.qmp'), rootPorts: ['rp1', 'rp2'], devices: [standby], incoming, vfioDevices: vfs });

      const report = await json<{ state: string; moves: Array<{ allocation: string; migration: string | null; to: { host: string } | null }> }>(['drain', 'host-a', '--hypervisor', 'qemu', '--migrate-uri', incoming]);
      assert.equal(report.moves.length, 2, JSON.stringify(report));
      assert.ok(report.moves.every((m) => m.to?.host === 'host-b' && m.migration), JSON.stringify(report.moves));
      const ended = await eventually('both migrations ended', 60_000, async () => {
        const ms = await json<Migration[]>(['migrations', 'list']);
        return ms.length === 2 && ms.every((m) => m.state !== 'running' && m.state !== 'rolling-back') ? ms : undefined;
      });
      for (const m of ended) assert.equal(m.state, 'completed', `${m.workload.name}: ${m.reason}`);
      const podMig = ended.find((m) => m.workload.kind === 'container')!;
      const vmMig = ended.find((m) => m.workload.kind === 'vm')!;
      const links = (await new SriovHost(createSimPorts(file)).ports.netns.links(ns)).filter((l) => l.pciAddress !== null);
      assert.deepEqual(links.map((l) => [l.ifname, l.mac, l.addresses, l.pciAddress]), [['net1', podBefore.mac, ['198.18.9.5/24'], podMig.to!.pciAddress]]);
      assert.ok(typeof vmMig.downtimeMs === 'number', 'QEMU\'s downtime recorded');
      assert.deepEqual(dst.deviceIds().sort(), [`hostdev-${short}`, `net-${short}`]);
      assert.ok(!src.deviceIds().includes(`hostdev-${short}`));
      for (const m of ended) assert.equal((await call<Allocation>('GET', `/v1/allocations/${m.from.allocation}`)).body.state, 'released');
      const inv = await new SriovHost(createSimPorts(file)).inventory();
      for (const m of ended) assert.equal(inv.pfs.flatMap((p) => p.vfs).find((v) => v.pciAddress === m.from.pciAddress)?.mac, SCRUBBED.mac, `${m.from.pciAddress} scrubbed`);
      const drained = await ok(['drain', 'host-a', '--dry-run']);
      assert.match(drained, /0 allocations to move/);
    } finally {
      await Promise.all(daemons.map((d) => d.kill()));
      await net.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
