// The agent's migration rules (DesiredAllocation.migration in controller/desired-state.ts), driven by hand-built desired states
// on a simulated igb host: a destination is configured and never attached, a container destination at `switch` is re-homed,
// a VM destination at `switch` stays configured, and a source at `switch` or later is left alone until its release.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { standbyName } from '../../src/agent/rehome.js';
import { Reconciler } from '../../src/agent/reconciler.js';
import type { DesiredAllocation } from '../../src/controller/desired-state.js';
import { SriovHost } from '../../src/host/configurator.js';
import { KernelError } from '../../src/host/ports.js';
import { MAC, containerAllocation, desiredState, hookedNetns, migration, migrationHost, type MigrationHost } from '../helpers/migration-host.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-reconcile-migration-'));
});
after(() => rm(dir, { recursive: true, force: true }));

interface Moving extends MigrationHost {
  r: Reconciler;
  src: DesiredAllocation;
  /** The source VF's netdev name in the host, before its attach. */
  srcHostName: string;
}

/** A container attached on PF 0 vf 0 through the reconciler, as a plain allocation. */
async function attachedSource(): Promise<Moving> {
  const h = await migrationHost(dir);
  const r = new Reconciler(h.host);
  const srcHostName = h.pfs[0].vfs[0]!.netdev!;
  const pending = containerAllocation('src', h.pfs[0], 0, h.netns, { state: 'pending' });
  const { statuses } = await r.reconcile(desiredState([pending]));
  assert.deepEqual(statuses, [{ id: 'src', state: 'attached', hostIfName: srcHostName }]);
  const src = { ...pending, state: 'attached' as const, attachment: { ...pending.attachment!, hostIfName: srcHostName } } as DesiredAllocation;
  return { ...h, r, src, srcHostName };
}

const source = (m: Moving, step: 'prepare' | 'switch' | 'release', over: Partial<DesiredAllocation> = {}): DesiredAllocation => ({ ...m.src, migration: migration('source', step, 'dst'), ...over });
const destination = (m: Moving, step: 'prepare' | 'switch', state: 'pending' | 'configured'): DesiredAllocation =>
  containerAllocation('dst', m.pfs[1], 0, m.netns, { state, migration: migration('destination', step, 'src') });

const linkOf = async (m: MigrationHost, pciAddress: string) => (await m.ports.netns.links(m.netns)).find((l) => l.pciAddress === pciAddress);

describe('the agent during a container migration', () => {
  it('prepare: the destination VF is configured (same MAC, VLAN, kernel driver) and reported configured, but stays in the host', async () => {
    const m = await attachedSource();
    const { statuses } = await m.r.reconcile(desiredState([source(m, 'prepare'), destination(m, 'prepare', 'pending')]));
    assert.deepEqual(statuses, [{ id: 'dst', state: 'configured' }]);
    const vf = (await m.host.pf(m.pfs[1].name)).vfs[0]!;
    assert.deepEqual([vf.mac, vf.vlan, vf.driver], [MAC, 100, 'igbvf']);
    assert.ok(vf.netdev, 'its netdev is still in the host');
    assert.equal(await linkOf(m, vf.pciAddress), undefined, 'not in the namespace');
    assert.deepEqual([(await linkOf(m, m.src.pciAddress))?.ifname, (await linkOf(m, m.src.pciAddress))?.up], ['net1', true], 'the workload is still on the source');
  });

  it('switch: the destination takes the workload over (incremental pass) and is reported attached; the source is not reported', async () => {
    const m = await attachedSource();
    await m.r.reconcile(desiredState([source(m, 'prepare'), destination(m, 'prepare', 'pending')]));
    const hostName = (await m.ports.sysfs.readVf(m.pfs[1].vfs[0]!.pciAddress)).netdevs[0];
    const { statuses } = await m.r.apply(desiredState([source(m, 'switch'), destination(m, 'switch', 'configured')], { revision: '2' }));
    assert.deepEqual(statuses, [{ id: 'dst', state: 'attached', hostIfName: hostName }]);
    const fresh = await linkOf(m, m.pfs[1].vfs[0]!.pciAddress);
    assert.deepEqual([fresh?.ifname, fresh?.mac, fresh?.up], ['net1', MAC, true]);
    const old = await linkOf(m, m.src.pciAddress);
    assert.deepEqual([old?.ifname, old?.up], [standbyName(m.src.pciAddress), false]);
  });

  it('switch: the source is left alone by a whole pass (no re-attach, no drift repair), unlike at prepare', async () => {
    const m = await attachedSource();
    const drift = () => m.host.setVfSettings(m.pfs[0].name, [{ vf: 0, settings: { vlan: 200 } }]);
    const vlan = async () => (await m.host.pf(m.pfs[0].name)).vfs[0]!.vlan;
    // At prepare the workload is still on the source: drift there is repaired, as for any allocation.
    await drift();
    const repaired = await m.r.reconcile(desiredState([source(m, 'prepare'), destination(m, 'prepare', 'pending')]));
    assert.ok(repaired.events.some((e) => e.action === 'drift.repaired' && e.object === 'allocation/src'));
    assert.equal(await vlan(), 100);
    await m.r.reconcile(desiredState([source(m, 'switch'), destination(m, 'switch', 'configured')], { resync: 1 }));
    const attachedDst = { ...destination(m, 'switch', 'configured'), state: 'attached' as const };
    // The same drift on a source at switch, as an operator's `ip link set PF vf 0 vlan 200` would make it.
    await drift();
    const left = await m.r.reconcile(desiredState([source(m, 'switch'), attachedDst], { resync: 2 }));
    assert.deepEqual([left.statuses, left.events], [[], []]);
    assert.equal(await vlan(), 200, 'no drift repair on a source at switch');
    const old = await linkOf(m, m.src.pciAddress);
    assert.deepEqual([old?.ifname, old?.up], [standbyName(m.src.pciAddress), false], 'not re-attached as net1');
  });

  it('switch: a source whose namespace vanished is not collected as an orphan', async () => {
    const m = await attachedSource();
    await rm(m.netns);
    const { statuses } = await m.r.reconcile(desiredState([source(m, 'switch')], { orphanGraceMs: 0 }));
    assert.deepEqual(statuses, []);
    assert.equal((await m.host.pf(m.pfs[0].name)).vfs[0]!.mac, MAC, 'its VF keeps the tenant MAC until its release');
    // Without the migration the same leftover is collected at once (grace 0).
    const plain = await m.r.reconcile(desiredState([m.src], { orphanGraceMs: 0, resync: 1 }));
    assert.deepEqual(plain.statuses.map((s) => s.state), ['released']);
  });

  it('release: the source’s normal release finds its old VF in the namespace by PCI address, moves it out and scrubs it', async () => {
    const m = await attachedSource();
    await m.r.reconcile(desiredState([source(m, 'prepare'), destination(m, 'prepare', 'pending')]));
    await m.r.reconcile(desiredState([source(m, 'switch'), destination(m, 'switch', 'configured')]));
    const attachedDst = { ...destination(m, 'switch', 'configured'), state: 'attached' as const };
    const { statuses } = await m.r.reconcile(desiredState([source(m, 'release', { state: 'releasing' }), attachedDst], { resync: 1 }));
    assert.deepEqual(statuses, [{ id: 'src', state: 'released' }]);
    const vf = (await m.host.pf(m.pfs[0].name)).vfs[0]!;
    // igb's VF driver picks a random MAC of its own once the admin MAC is cleared: only the tenant's must be gone.
    assert.deepEqual([vf.mac === MAC, vf.vlan, vf.netdev], [false, 0, m.srcHostName]);
    assert.notEqual((await m.ports.sysfs.readNetdev(m.srcHostName))?.mac, MAC, 'no tenant MAC on its netdev');
    const links = await m.ports.netns.links(m.netns);
    assert.deepEqual(links.map((l) => [l.ifname, l.pciAddress, l.up]), [['lo', null, false], ['net1', m.pfs[1].vfs[0]!.pciAddress, true]], 'the workload keeps the new VF');
  });

  it('a re-home the kernel refuses is reported failed once the old VF is back; one whose restore failed too is retried, and finishes', async () => {
    const m = await attachedSource();
    await m.r.reconcile(desiredState([source(m, 'prepare'), destination(m, 'prepare', 'pending')]));
    const switching = desiredState([source(m, 'switch'), destination(m, 'switch', 'configured')], { resync: 1 });
    const refusing = (alsoRestore: boolean) =>
      new SriovHost(
        hookedNetns(m.ports, async (method, call, args) => {
          const newOne = method === 'configure' && (await linkOf(m, m.pfs[1].vfs[0]!.pciAddress))?.ifname === (args[1] as { ifname: string }).ifname;
          if (newOne || (alsoRestore && method === 'renameIn' && args[2] === 'net1' && args[1] !== standbyName(m.pfs[1].vfs[0]!.pciAddress))) {
            throw new KernelError('EIO', method, `${method}: refused`);
          }
          return call();
        }),
      );
    const failed = await new Reconciler(refusing(false)).reconcile(switching);
    assert.deepEqual(failed.statuses.map((s) => [s.id, s.state]), [['dst', 'failed']]);
    assert.match(failed.statuses[0]!.reason ?? '', /is back as net1/);
    assert.deepEqual([(await linkOf(m, m.src.pciAddress))?.ifname, (await linkOf(m, m.src.pciAddress))?.up], ['net1', true], 'the workload is on its old VF');
    const stuck = await new Reconciler(refusing(true)).reconcile(switching);
    assert.deepEqual(stuck.statuses, [], 'nothing reported while the workload has no interface: the next pass tries again');
    const done = await m.r.reconcile({ ...switching, resync: 3 });
    assert.deepEqual(done.statuses.map((s) => [s.id, s.state]), [['dst', 'attached']]);
    assert.deepEqual([(await linkOf(m, m.pfs[1].vfs[0]!.pciAddress))?.ifname, (await linkOf(m, m.pfs[1].vfs[0]!.pciAddress))?.up], ['net1', true]);
  });
});

describe('the agent after a rolled-back container migration', () => {
  it('puts a source that stood by back in service as net1, once the destination’s release has freed the name', async () => {
    const m = await attachedSource();
    await m.r.reconcile(desiredState([source(m, 'prepare'), destination(m, 'prepare', 'pending')]));
    const newPci = m.pfs[1].vfs[0]!.pciAddress;
    // A re-home that stopped with the old VF down under its standby name and the new one up as net1 (a crash right after step 4).
    const { statuses } = await m.r.reconcile(desiredState([source(m, 'switch'), destination(m, 'switch', 'configured')]));
    assert.deepEqual(statuses.map((s) => s.state), ['attached']);
    // The controller rolls back: the destination is released, the source is a plain allocation again. Sources come first here,
    // so the first pass finds net1 still taken and waits; the release frees it and the next pass reinstates the source.
    const rollback = desiredState([m.src, { ...destination(m, 'switch', 'configured'), state: 'releasing', migration: null }], { resync: 1 });
    const first = await m.r.reconcile(rollback);
    assert.deepEqual(first.statuses, [{ id: 'dst', state: 'released' }]);
    assert.deepEqual([(await linkOf(m, m.src.pciAddress))?.ifname, (await linkOf(m, newPci))?.ifname], [standbyName(m.src.pciAddress), undefined]);
    const second = await m.r.reconcile(desiredState([m.src], { resync: 2 }));
    assert.deepEqual(second.events.map((e) => [e.action, e.object]), [['allocation.recovered', 'allocation/src']]);
    const back = await linkOf(m, m.src.pciAddress);
    assert.deepEqual(back, { ifname: 'net1', pciAddress: m.src.pciAddress, mac: MAC, mtu: 1400, up: true, addresses: ['198.18.40.10/24'] });
    const third = await m.r.reconcile(desiredState([m.src], { resync: 3 }));
    assert.deepEqual([third.statuses, third.events], [[], []], 'and then nothing more to do');
  });
});

describe('the agent during a VM migration', () => {
  const vmAllocation = (m: MigrationHost, state: 'pending' | 'configured', step: 'prepare' | 'switch' | null): DesiredAllocation =>
    containerAllocation('vm-dst', m.pfs[1], 1, m.netns, {
      state,
      attachment: { kind: 'vm', vm: 'guest1', failover: true },
      mtu: null,
      routes: [],
      migration: step ? migration('destination', step, 'vm-src') : null,
    });

  it('the destination is bound to vfio-pci and reported configured at prepare, and stays configured at switch', async () => {
    const m = await migrationHost(dir);
    const r = new Reconciler(m.host);
    const prepared = await r.reconcile(desiredState([vmAllocation(m, 'pending', 'prepare')]));
    assert.deepEqual(prepared.statuses, [{ id: 'vm-dst', state: 'configured' }]);
    const vf = (await m.host.pf(m.pfs[1].name)).vfs[1]!;
    assert.deepEqual([vf.driver, vf.mac, vf.vlan], ['vfio-pci', MAC, 100]);
    const switched = await r.reconcile(desiredState([vmAllocation(m, 'configured', 'switch')], { resync: 1 }));
    assert.deepEqual(switched.statuses, [], 'not attached: the hypervisor tasks plug it');
    // A plain VM allocation is reported attached at once: the migration is what holds this one back.
    const plain = await new Reconciler(m.host).reconcile(desiredState([vmAllocation(m, 'pending', null)]));
    assert.deepEqual(plain.statuses, [{ id: 'vm-dst', state: 'attached' }]);
  });
});
