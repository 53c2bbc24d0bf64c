// Attach/detach end to end on a simulated host: the real controller (SQLite
// store) and the real agent in process; namespaces are files, as the
// simulated host models them.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import { InProcessLink } from '../../src/agent/link.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { Actor } from '../../src/domain/actor.js';
import type { Allocation } from '../../src/domain/types.js';
import { SriovHost } from '../../src/host/configurator.js';
import { SriovError } from '../../src/host/errors.js';
import { KernelError } from '../../src/host/ports.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost, updateSimState } from '../../src/sim/state.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { eventually } from '../helpers/daemon.js';

const ADMIN: Actor = { id: 'test', role: 'admin' };
const HOST = 'sim-a';
const POLICY = `policies:\n  - name: fabric\n    selector: { drivers: [ice] }\n    numVfs: 4\n    physnet: fabric\n`;

describe('attach and detach on a simulated host', { timeout: 60_000 }, () => {
  let dir: string;
  let store: Store;
  let control: ControlPlane;
  let host: SriovHost;
  let agent: Agent | null = null;
  const binds: string[] = [];
  /** While set, moving a netdev out of a namespace fails with this message (EBUSY), as a kernel that refuses can. */
  let detachFailure: string | null = null;
  let detachCalls = 0;
  const ns = (name: string) => join(dir, `ns-${name}`);
  /** The namespace's PCI links: the VFs in it (not `lo`). */
  const vfLinks = async (name: string) => (await host.ports.netns.links(ns(name))).filter((l) => l.pciAddress !== null);

  const startAgent = () => {
    agent = new Agent(host, new InProcessLink(control, { id: 'local', role: `agent:${HOST}` }), { heartbeatMs: 100, resyncMs: 200 });
    agent.start();
  };
  const stopAgent = async () => {
    await agent?.stop();
    agent = null;
  };
  const state = (id: string, want: string) =>
    eventually(`allocation ${id} ${want}`, 10_000, async () => {
      const a = await control.allocations.get(ADMIN, id);
      return a.state === want ? a : undefined;
    });
  const vf = async (a: Allocation) => (await host.pf(a.pfPciAddress)).vfs[a.vfIndex]!;
  const attachContainer = async (name: string, extra: { ips?: string[]; ifname?: string; network?: string } = {}) => {
    await writeFile(ns(name), '');
    return control.allocations.create(ADMIN, {
      network: extra.network ?? 'blue',
      workload: { kind: 'container', name },
      attach: { kind: 'container', netns: ns(name), ifname: extra.ifname ?? 'net1', ips: extra.ips },
    });
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-attach-'));
    await initSimHost(join(dir, 'host.json'), { profile: 'ice', pfs: 1, hostname: HOST });
    const ports = createSimPorts(join(dir, 'host.json'));
    binds.length = 0;
    // Every driver bind, by PCI address: a reconcile that rebinds a held VF tears its workload's device down.
    const bind = ports.drivers.bind.bind(ports.drivers);
    ports.drivers.bind = async (pci, driver) => {
      binds.push(pci);
      return bind(pci, driver);
    };
    detachFailure = null;
    detachCalls = 0;
    const detach = ports.netns.detach.bind(ports.netns);
    ports.netns.detach = async (nsPath, ifname, hostName) => {
      detachCalls++;
      if (detachFailure) throw new KernelError('EBUSY', `detach ${ifname} from ${nsPath}`, `detach ${ifname} from ${nsPath}: ${detachFailure}`);
      return detach(nsPath, ifname, hostName);
    };
    host = new SriovHost(ports);
    store = await openSqliteStore(join(dir, 'data'));
    control = await ControlPlane.open(store, { orphanGraceMs: 300 });
    startAgent();
    await control.hosts.putPolicy(ADMIN, HOST, POLICY);
    // The scheduler knows the VFs once the agent has reported them, not when the host has them.
    await eventually('4 VFs reported', 10_000, async () => ((await control.hosts.get(ADMIN, HOST)).inventory.pfs[0]!.numVfs === 4 ? true : undefined));
    await control.networks.createTenant(ADMIN, 'blue');
    await control.networks.createNetwork(ADMIN, {
      name: 'blue', tenant: 'blue', physnet: 'fabric', vlan: 100, maxTxRateMbps: 500, mtu: 9000,
      ipam: { cidr: '198.18.0.0/24', rangeStart: '198.18.0.10', rangeEnd: '198.18.0.12', gateway: '198.18.0.1', routes: [{ dst: 'default', gw: '198.18.0.1' }] },
    });
  });

  afterEach(async () => {
    await stopAgent();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('moves the VF into the namespace, configured, with an address from the pool; detach restores and scrubs it', async () => {
    const created = await attachContainer('pod-a');
    const a = await state(created.id, 'attached');
    assert.deepEqual(a.attachment?.kind === 'container' && a.attachment.ips, ['198.18.0.10/24']);
    const [link] = await vfLinks('pod-a');
    assert.equal(link!.ifname, 'net1');
    assert.equal(link!.mac, a.mac);
    assert.equal(link!.mtu, 9000);
    assert.deepEqual(link!.addresses, ['198.18.0.10/24']);
    assert.equal((await vf(a)).vlan, 100);
    const hostIfName = a.attachment?.kind === 'container' ? a.attachment.hostIfName : null;
    assert.ok(hostIfName, 'the original netdev name is recorded');
    assert.deepEqual((await vf(a)).netdev, null, 'gone from the host namespace');

    await control.allocations.delete(ADMIN, a.id);
    await state(a.id, 'released');
    const back = await vf(a);
    assert.equal(back.netdev, hostIfName);
    assert.deepEqual([back.vlan, back.maxTxRateMbps, back.spoofChk, back.trust, back.mac], [0, 0, true, false, '00:00:00:00:00:00']);
    assert.deepEqual(await vfLinks('pod-a'), []);
    assert.deepEqual(await store.tx.listLeases('blue'), [], 'the address is released');
    await control.allocations.delete(ADMIN, a.id);
    assert.equal((await control.allocations.get(ADMIN, a.id)).state, 'released', 'detach is idempotent');
  });

  it('refuses an address outside the pool or in use, and an exhausted pool, storing nothing', async () => {
    const first = await state((await attachContainer('pod-a', { ips: ['198.18.0.11/24'] })).id, 'attached');
    for (const [ips, code] of [[['198.18.0.50/24'], 'INVALID_ARGUMENT'], [['198.18.0.11/24'], 'CONFLICT'], [['198.18.0.1/24'], 'INVALID_ARGUMENT']] as const) {
      await assert.rejects(attachContainer('pod-x', { ips: [...ips] }), (e: unknown) => e instanceof SriovError && e.code === code);
    }
    await state((await attachContainer('pod-b')).id, 'attached');
    await state((await attachContainer('pod-c')).id, 'attached');
    await assert.rejects(attachContainer('pod-d'), /exhausted/);
    const holding = await store.tx.listAllocations({ holding: true });
    assert.equal(holding.length, 3);
    assert.deepEqual(await store.tx.listLeases('blue'), ['198.18.0.10', '198.18.0.11', '198.18.0.12']);
    assert.ok(first);
  });

  it('rolls back a failed attach: ifname taken in the namespace → failed, VF scrubbed and free', async () => {
    const first = await state((await attachContainer('pod-a')).id, 'attached');
    await stopAgent();
    // A second attachment into the same namespace under the same name cannot be placed there.
    const clash = await control.allocations.create(ADMIN, { network: 'blue', workload: { kind: 'container', name: 'pod-a2' }, attach: { kind: 'container', netns: ns('pod-a'), ifname: 'net1' } });
    startAgent();
    const failed = await state(clash.id, 'failed');
    assert.match(failed.reason ?? '', /EEXIST|exists|taken/i);
    const v = await vf(failed);
    assert.deepEqual([v.vlan, v.mac, v.maxTxRateMbps], [0, '00:00:00:00:00:00', 0]);
    assert.ok(v.netdev, 'the VF netdev is back in the host');
    assert.equal((await vfLinks('pod-a')).length, 1, 'the existing interface is untouched');
    assert.equal((await state(first.id, 'attached')).state, 'attached');
  });

  it('collects an attachment whose namespace vanished, after the grace period', async () => {
    const a = await state((await attachContainer('pod-gone')).id, 'attached');
    await rm(ns('pod-gone'));
    const released = await state(a.id, 'released');
    assert.match(released.reason ?? '', /namespace vanished/);
    const v = await vf(a);
    assert.deepEqual([v.vlan, v.mac], [0, '00:00:00:00:00:00']);
    const events = await control.events(ADMIN);
    assert.ok(events.some((e) => e.action === 'orphan.scrubbed'));
  });

  it('scrubs a configured VF nobody holds, after the grace period', async () => {
    const pf = (await host.inventory()).pfs[0]!;
    await host.ports.links.applyVfOps(pf.name, [{ vf: 3, field: 'vlan', vlan: 700, qos: 0, vlanProto: '802.1Q' }, { vf: 3, field: 'trust', on: true }]);
    await eventually('VF 3 scrubbed', 10_000, async () => {
      const v = (await host.pf(pf.name)).vfs[3]!;
      return v.vlan === 0 && v.trust === false ? true : undefined;
    });
  });

  it('repairs drift and records it', async () => {
    const a = await state((await attachContainer('pod-a')).id, 'attached');
    await host.ports.links.applyVfOps(a.pf, [{ vf: a.vfIndex, field: 'vlan', vlan: 999, qos: 0, vlanProto: '802.1Q' }]);
    await eventually('VLAN 100 again', 10_000, async () => ((await vf(a)).vlan === 100 ? true : undefined));
    // The agent repairs the VF first and reports after: the event is recorded once that report is taken.
    await eventually('drift.repaired recorded', 10_000, async () => ((await control.events(ADMIN)).some((e) => e.action === 'drift.repaired' && e.object.includes(a.id)) ? true : undefined));
  });

  it('recovers after the VFs vanish (sriov_numvfs=0): re-created, re-configured, moved back in', async () => {
    const a = await state((await attachContainer('pod-a')).id, 'attached');
    await host.ports.sysfs.writeNumVfs(a.pfPciAddress, 0);
    await eventually('attachment back', 10_000, async () => {
      const links = await vfLinks('pod-a');
      return links.length === 1 && (await vf(a)).vlan === 100 ? true : undefined;
    });
    assert.equal((await control.allocations.get(ADMIN, a.id)).state, 'attached');
  });

  it('finishes an attach and a detach that a crashed agent left halfway', async () => {
    await stopAgent();
    const pending = await attachContainer('pod-a');
    // The agent "crashed" after configuring the VF but before moving it: run the first step by hand.
    await host.setVfSettings(pending.pfPciAddress, [{ vf: pending.vfIndex, settings: { mac: pending.mac, vlan: 100 } }]);
    startAgent();
    const a = await state(pending.id, 'attached');
    await stopAgent();
    await control.allocations.delete(ADMIN, a.id);
    startAgent();
    await state(a.id, 'released');
    assert.deepEqual(await vfLinks('pod-a'), []);
  });

  it('a late detach of an allocation whose VF went to someone else touches nothing', async () => {
    const a = await state((await attachContainer('pod-a', { ips: ['198.18.0.10/24'] })).id, 'attached');
    await control.allocations.delete(ADMIN, a.id);
    await state(a.id, 'released');
    const b = await state((await attachContainer('pod-b')).id, 'attached');
    assert.equal(b.pciAddress, a.pciAddress, 'the VF was reused');
    await control.allocations.delete(ADMIN, a.id);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await control.allocations.get(ADMIN, b.id)).state, 'attached');
    assert.equal((await vf(b)).vlan, 100);
    assert.equal((await vfLinks('pod-b')).length, 1);
  });

  it('attaches a VM: vfio-pci, and back to the kernel driver on detach', async () => {
    const created = await control.allocations.create(ADMIN, { network: 'blue', workload: { kind: 'vm', name: 'guest-1' }, attach: { kind: 'vm', vm: 'guest-1', failover: true } });
    const a = await state(created.id, 'attached');
    assert.equal((await vf(a)).driver, 'vfio-pci');
    // The node policy binds its VFs to the kernel driver; it must leave a held VF alone.
    const before = binds.filter((p) => p === a.pciAddress).length;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(binds.filter((p) => p === a.pciAddress).length, before, 'later reconciles do not rebind the VM VF');
    assert.equal((await vf(a)).driver, 'vfio-pci');
    await control.allocations.delete(ADMIN, a.id);
    await state(a.id, 'released');
    assert.equal((await vf(a)).driver, 'iavf');
  });

  it('detaches four containers whose VFs all came up as the same host name, in another order: all scrubbed and freed, under predictable names', async () => {
    // A host without the udev rule (the lab guest): a VF driver rebind (igb's reload for the admin MAC on
    // attach) makes a new netdev under the first free ethN, so each VF takes the eth0 the previous one left
    // for its container. The simulated ice needs no reload: the free VFs are rebound here before each attach,
    // in index order, so the first (the one the pack policy picks) comes up as eth0.
    await updateSimState(join(dir, 'host.json'), (s) => {
      s.vfNetdevNames = 'kernel';
    });
    const rebindFreeVfs = async () => {
      for (const v of (await host.inventory()).pfs[0]!.vfs) if (v.netdev && v.driver) await host.ports.drivers.bind(v.pciAddress, v.driver);
    };
    await control.networks.createNetwork(ADMIN, {
      name: 'green', tenant: 'blue', physnet: 'fabric', vlan: 200, maxTxRateMbps: 500,
      ipam: { cidr: '198.18.1.0/24', rangeStart: '198.18.1.10', rangeEnd: '198.18.1.20', gateway: '198.18.1.1' },
    });
    const pods = ['pod-1', 'pod-2', 'pod-3', 'pod-4'];
    const attached: Allocation[] = [];
    for (const pod of pods) {
      await rebindFreeVfs();
      attached.push(await state((await attachContainer(pod, { network: 'green' })).id, 'attached'));
    }
    const hostIfName = (a: Allocation) => (a.attachment?.kind === 'container' ? a.attachment.hostIfName : null);
    assert.deepEqual(attached.map(hostIfName), ['eth0', 'eth0', 'eth0', 'eth0'], 'the lab bug: all four remember eth0');

    const order = [2, 0, 3, 1];
    for (const i of order) {
      await control.allocations.delete(ADMIN, attached[i]!.id);
      await state(attached[i]!.id, 'released');
    }
    const pf = (await host.inventory()).pfs[0]!;
    for (const [i, a] of attached.entries()) {
      const v = pf.vfs[a.vfIndex]!;
      assert.notEqual(v.mac, a.mac, `${pods[i]}: the tenant's MAC is gone`);
      assert.deepEqual([v.vlan, v.maxTxRateMbps, v.spoofChk, v.trust], [0, 0, true, false], `${pods[i]}: scrubbed`);
      assert.deepEqual(await vfLinks(pods[i]!), [], `${pods[i]}: no VF netdev left in the namespace`);
    }
    // The first one back gets eth0 again; the others, finding it taken, their PF's name plus v<index>, as systemd names VFs.
    const names = order.map((i) => pf.vfs[attached[i]!.vfIndex]!.netdev);
    assert.deepEqual(names, ['eth0', ...order.slice(1).map((i) => `${pf.name}v${attached[i]!.vfIndex}`)]);
    assert.deepEqual(await store.tx.listAllocations({ holding: true }), [], 'nothing holds a VF');
  });

  it('a release that cannot move the netdev out stays releasing, says why once, keeps the VF from the next tenant, and finishes later', async () => {
    const a = await state((await attachContainer('pod-a')).id, 'attached');
    detachFailure = 'RTNETLINK answers: Device or resource busy';
    await control.allocations.delete(ADMIN, a.id);
    const stuck = await eventually('a stuck reason', 10_000, async () => {
      const now = await control.allocations.get(ADMIN, a.id);
      return now.state === 'releasing' && now.reason ? now : undefined;
    });
    assert.match(stuck.reason!, /^stuck: .*Device or resource busy.*; retrying$/);
    // Retried, with backoff, but said once in the audit log.
    const calls = detachCalls;
    await eventually('two more attempts', 10_000, async () => (detachCalls >= calls + 2 ? true : undefined));
    const said = (await control.events(ADMIN)).filter((e) => e.action === 'allocation.stuck' && e.object === `allocation/${a.id}`);
    assert.equal(said.length, 1, 'one audit entry per distinct reason');
    assert.equal((await control.allocations.get(ADMIN, a.id)).state, 'releasing');
    // The tenant still holds the netdev: its VLAN and MAC stay (clearing them would put it on the untagged network).
    const held = await vf(a);
    assert.deepEqual([held.vlan, held.mac, held.trust, held.spoofChk], [100, a.mac, false, true]);
    assert.equal((await vfLinks('pod-a')).length, 1);
    assert.deepEqual((await store.tx.listAllocations({ holding: true })).map((h) => h.id), [a.id], 'the VF is not free for the next tenant');

    detachFailure = null;
    await state(a.id, 'released');
    const v = await vf(a);
    assert.deepEqual([v.vlan, v.maxTxRateMbps, v.mac], [0, 0, '00:00:00:00:00:00']);
    assert.deepEqual(await vfLinks('pod-a'), []);
  });
});
