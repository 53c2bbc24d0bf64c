// The agent's request path is incremental: an attach or a release applies that
// allocation alone, on the model of the host the agent keeps, without reading
// the inventory or looking at other allocations; the whole-host pass (asked
// for, or periodic) still repairs drift. A simulated host with every port
// call recorded; the whole-host period is long, so only requests drive passes.
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
import type { HostPorts } from '../../src/host/ports.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { eventually } from '../helpers/daemon.js';

const ADMIN: Actor = { id: 'test', role: 'admin' };
const HOST = 'sim-a';
const policyFor = (driver: string) => `policies:\n  - name: fabric\n    selector: { drivers: [${driver}] }\n    numVfs: 4\n    physnet: fabric\n`;

/** Every call of every port method, with its arguments, in order. */
function recorded(ports: HostPorts, calls: Array<{ port: string; method: string; args: unknown[] }>): void {
  for (const port of ['sysfs', 'links', 'drivers', 'devlink', 'netns'] as const) {
    const target = ports[port] as unknown as Record<string, unknown>;
    const methods = [...Object.keys(target), ...Object.getOwnPropertyNames(Object.getPrototypeOf(target))];
    for (const method of methods.filter((m) => m !== 'constructor' && typeof target[m] === 'function')) {
      const fn = target[method] as (...args: unknown[]) => unknown;
      target[method] = (...args: unknown[]) => {
        calls.push({ port, method, args });
        return fn.apply(target, args);
      };
    }
  }
}

/** ice resets its VF for a new admin MAC; igb's VF driver is reloaded, which makes a new netdev. */
for (const profile of ['ice', 'igb'] as const) describe(`incremental agent on a simulated ${profile} host`, { timeout: 60_000 }, () => {
  let dir: string;
  let store: Store;
  let control: ControlPlane;
  let host: SriovHost;
  let agent: Agent;
  const calls: Array<{ port: string; method: string; args: unknown[] }> = [];
  const ns = (name: string) => join(dir, `ns-${name}`);
  const state = (id: string, want: string) =>
    eventually(`allocation ${id} ${want}`, 10_000, async () => {
      const a = await control.allocations.get(ADMIN, id);
      return a.state === want ? a : undefined;
    });
  const attach = async (name: string) => {
    await writeFile(ns(name), '');
    const created = await control.allocations.create(ADMIN, {
      network: 'blue',
      workload: { kind: 'container', name },
      attach: { kind: 'container', netns: ns(name), ifname: 'net1' },
    });
    return state(created.id, 'attached');
  };
  /** Calls that read the whole host: listing the PFs starts every inventory (and every lookup of a PF by name). */
  const inventoryReads = () => calls.filter((c) => c.method === 'listSriovPfs').length;
  /** Calls that name `a`'s VF, its namespace, or its netdev. */
  const touching = (a: Allocation) => {
    const marks = [a.pciAddress, ns(a.workload.name), a.attachment?.kind === 'container' ? a.attachment.hostIfName : null].filter((m): m is string => !!m);
    return calls.filter((c) => c.args.some((arg) => marks.some((m) => JSON.stringify(arg).includes(JSON.stringify(m)))));
  };
  const vlanOf = async (a: Allocation) => (await host.pf(a.pfPciAddress)).vfs[a.vfIndex]!.vlan;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-incremental-'));
    await initSimHost(join(dir, 'host.json'), { profile, pfs: 2, hostname: HOST });
    const ports = createSimPorts(join(dir, 'host.json'));
    calls.length = 0;
    recorded(ports, calls);
    host = new SriovHost(ports);
    store = await openSqliteStore(join(dir, 'data'));
    control = await ControlPlane.open(store, { orphanGraceMs: 60_000 });
    agent = new Agent(host, new InProcessLink(control, { id: 'local', role: `agent:${HOST}` }), { heartbeatMs: 100, resyncMs: 600_000 });
    agent.start();
    await control.hosts.putPolicy(ADMIN, HOST, policyFor(profile));
    await eventually('VFs reported', 10_000, async () => ((await control.hosts.get(ADMIN, HOST)).inventory.pfs.every((pf) => pf.numVfs === 4) ? true : undefined));
    await control.networks.createTenant(ADMIN, 'blue');
    await control.networks.createNetwork(ADMIN, { name: 'blue', tenant: 'blue', physnet: 'fabric', vlan: 100, ipam: { cidr: '198.18.0.0/24' } });
  });

  afterEach(async () => {
    await agent.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('an attach reads no inventory and touches no other allocation', async () => {
    const first = await attach('pod-a');
    calls.length = 0;
    const second = await attach('pod-b');
    assert.equal(inventoryReads(), 0, 'no inventory on the request path');
    assert.deepEqual(touching(first), [], 'nothing about pod-a was looked at');
    assert.ok(touching(second).some((c) => c.port === 'netns' && c.method === 'attach'), 'pod-b was attached');
    assert.equal(calls.filter((c) => c.port === 'netns' && c.method === 'exists').length, 0, 'no separate namespace probe');
  });

  it('a release reads no inventory and touches no other allocation, and still verifies the scrub', async () => {
    const first = await attach('pod-a');
    const second = await attach('pod-b');
    calls.length = 0;
    await control.allocations.delete(ADMIN, second.id);
    await state(second.id, 'released');
    assert.equal(inventoryReads(), 0);
    assert.deepEqual(touching(first), []);
    const scrub = calls.find((c) => c.method === 'applyVfOps');
    assert.deepEqual(scrub?.args[2], { readBack: true }, 'the scrub was read back');
    const vf = (await host.pf(second.pfPciAddress)).vfs[second.vfIndex]!;
    assert.deepEqual([vf.vlan, vf.mac === second.mac], [0, false]);
    if (profile === 'ice') assert.equal(calls.filter((c) => c.port === 'drivers').length, 0, 'no driver reload: the simulated ice resets the VF itself');
    assert.notEqual((await host.ports.sysfs.readNetdev(vf.netdev!))?.mac, second.mac, 'nor is the tenant MAC left on its netdev');
  });

  it('a release after a whole pass, which read the host while the netdev was in the container, scrubs it all', async () => {
    const a = await attach('pod-a');
    calls.length = 0;
    await control.hosts.reconcile(ADMIN, HOST);
    await eventually('the whole pass ran', 10_000, async () => (calls.some((c) => c.method === 'listSriovPfs') ? true : undefined));
    await control.allocations.delete(ADMIN, a.id);
    await state(a.id, 'released');
    const vf = (await host.pf(a.pfPciAddress)).vfs[a.vfIndex]!;
    assert.notEqual((await host.ports.sysfs.readNetdev(vf.netdev!))?.mac, a.mac, 'no tenant MAC on its netdev');
  });

  it('drift is left to the whole-host pass, which repairs it when asked', async () => {
    const first = await attach('pod-a');
    // Behind the agent's back, as an operator's `ip link set ... vf N vlan 200` would.
    await new SriovHost(createSimPorts(join(dir, 'host.json'))).setVfSettings(first.pfPciAddress, [{ vf: first.vfIndex, settings: { vlan: 200 } }]);
    await attach('pod-b');
    assert.equal(await vlanOf(first), 200, 'the attach of pod-b did not look at pod-a');
    calls.length = 0;
    await control.hosts.reconcile(ADMIN, HOST);
    await eventually('drift repaired', 10_000, async () => ((await vlanOf(first)) === 100 ? true : undefined));
    assert.ok(inventoryReads() > 0, 'the whole-host pass read the inventory');
    assert.ok((await control.events(ADMIN)).some((e) => e.action === 'drift.repaired' && e.object.includes(first.id)));
  });

  it("a trusted VF's own MAC is the workload's: the whole pass repairs its VLAN, not its MAC, and the release still scrubs it", async () => {
    await control.networks.createNetwork(ADMIN, { name: 'trusted', tenant: 'blue', physnet: 'fabric', vlan: 300, trust: true });
    await writeFile(ns('pod-t'), '');
    const created = await control.allocations.create(ADMIN, { network: 'trusted', workload: { kind: 'container', name: 'pod-t' }, attach: { kind: 'container', netns: ns('pod-t'), ifname: 'net1' } });
    const a = await state(created.id, 'attached');
    // A chained `tuning` with `mac` on a trusted VF: the PF then records the VF's own MAC. And an operator's VLAN change.
    const chainMac = '02:5f:00:00:77:01';
    await new SriovHost(createSimPorts(join(dir, 'host.json'))).setVfSettings(a.pfPciAddress, [{ vf: a.vfIndex, settings: { mac: chainMac, vlan: 200 } }]);
    await control.hosts.reconcile(ADMIN, HOST);
    await eventually('VLAN repaired', 10_000, async () => ((await vlanOf(a)) === 300 ? true : undefined));
    assert.equal((await host.pf(a.pfPciAddress)).vfs[a.vfIndex]!.mac, chainMac, 'the MAC the trusted VF took stays');
    await control.allocations.delete(ADMIN, a.id);
    await state(a.id, 'released');
    const vf = (await host.pf(a.pfPciAddress)).vfs[a.vfIndex]!;
    assert.ok(![chainMac, a.mac].includes(vf.mac), `scrubbed, not ${vf.mac}`);
  });
});

describe('the driver reload for an admin MAC, by capability', () => {
  /** A simulated PF of `profile` with 2 VFs bound to their driver, its SriovHost, and the binds it is asked for. */
  const setup = async (profile: 'igb' | 'ice') => {
    const dir = await mkdtemp(join(tmpdir(), `vfleet-reload-${profile}-`));
    await initSimHost(join(dir, 'host.json'), { profile, pfs: 1, hostname: HOST });
    const ports = createSimPorts(join(dir, 'host.json'));
    const host = new SriovHost(ports);
    const pf = (await host.inventory()).pfs[0]!;
    await host.setNumVfs(pf.pciAddress, 2, { deviceType: 'netdevice' });
    const binds: string[] = [];
    const bind = ports.drivers.bind.bind(ports.drivers);
    ports.drivers.bind = async (pci, driver) => {
      binds.push(pci);
      return bind(pci, driver);
    };
    return { dir, host, pf: await host.pf(pf.pciAddress), binds };
  };
  const MAC = { mac: '02:5f:00:00:0c:01' };

  for (const [profile, reloads] of [['igb', true], ['ice', false]] as const) {
    it(`${profile}: ${reloads ? 'reloads the VF driver' : 'no reload (the PF resets the VF)'} for a new admin MAC; the netdev ends with it`, async () => {
      const t = await setup(profile);
      try {
        const { pf } = await t.host.applyVfSettings(t.pf, [{ vf: 0, settings: MAC }]);
        assert.deepEqual(t.binds, reloads ? [t.pf.vfs[0]!.pciAddress] : []);
        const netdev = pf.vfs[0]!.netdev!;
        assert.equal((await t.host.ports.sysfs.readNetdev(netdev))?.mac, MAC.mac, 'the model names the netdev, which carries the admin MAC');
      } finally {
        await rm(t.dir, { recursive: true, force: true });
      }
    });
  }

  it('igb: a reload even when the caller sets the MAC on the netdev (igbvf is refused it in the lab)', async () => {
    const t = await setup('igb');
    try {
      await t.host.applyVfSettings(t.pf, [{ vf: 1, settings: MAC }], { macOnNetdev: true });
      assert.deepEqual(t.binds, [t.pf.vfs[1]!.pciAddress]);
    } finally {
      await rm(t.dir, { recursive: true, force: true });
    }
  });
});
