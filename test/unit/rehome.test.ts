// A container's re-home onto another VF (agent/rehome.ts) on a simulated igb host: make-before-break, resumable after a crash at any
// point, and a failure puts the old interface back.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { containerAttachment } from '../../src/agent/container.js';
import { RehomeFailed, rehome, standbyName } from '../../src/agent/rehome.js';
import type { DesiredAllocation } from '../../src/controller/desired-state.js';
import { SriovHost } from '../../src/host/configurator.js';
import { KernelError, type HostPorts } from '../../src/host/ports.js';
import { setSimCable } from '../../src/sim/cable.js';
import { IPS, MAC, ROUTES, containerAllocation, hookedNetns, migration, migrationHost, simRoutes, type MigrationHost } from '../helpers/migration-host.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-rehome-'));
});
after(() => rm(dir, { recursive: true, force: true }));

interface Setup extends MigrationHost {
  oldPci: string;
  newPci: string;
  /** The new VF's netdev name in the host before the re-home. */
  newHostName: string;
  dest: DesiredAllocation;
}

/** The old VF (PF 0 vf 0) attached in the namespace as net1; the new one (PF 1 vf 0) configured with the same MAC, in the host. */
async function setup(): Promise<Setup> {
  const h = await migrationHost(dir);
  const [pf0, pf1] = h.pfs;
  await h.ports.netns.attach(pf0.vfs[0]!.netdev!, h.netns, { ifname: 'net1', mac: MAC, mtu: 1400, addresses: IPS, routes: ROUTES });
  await h.host.setVfSettings(pf1.name, [{ vf: 0, settings: { mac: MAC, vlan: 100 } }]);
  const newHostName = (await h.ports.sysfs.readVf(pf1.vfs[0]!.pciAddress)).netdevs[0]!;
  const dest = containerAllocation('dst', pf1, 0, h.netns, { state: 'configured', migration: migration('destination', 'switch', 'src') });
  return { ...h, oldPci: pf0.vfs[0]!.pciAddress, newPci: pf1.vfs[0]!.pciAddress, newHostName, dest };
}

const at = (a: DesiredAllocation) => containerAttachment(a)!;

/** What a finished re-home leaves: the new VF is net1, configured, up and announcing; the old one is down under its standby name. */
async function assertRehomed(s: Setup): Promise<void> {
  const links = await s.ports.netns.links(s.netns);
  const fresh = links.find((l) => l.pciAddress === s.newPci);
  const old = links.find((l) => l.pciAddress === s.oldPci);
  assert.deepEqual(fresh, { ifname: 'net1', pciAddress: s.newPci, mac: MAC, mtu: 1400, up: true, addresses: IPS });
  assert.deepEqual([old?.ifname, old?.up], [standbyName(s.oldPci), false], 'the old VF waits, down, for its release');
  assert.deepEqual(await simRoutes(s.file, s.newPci), ROUTES);
  assert.equal(await s.ports.netns.readSysctl(s.netns, 'net1', 'arp_notify'), 1);
  assert.equal(await s.ports.netns.readSysctl(s.netns, 'net1', 'ndisc_notify'), 1);
  assert.deepEqual((await s.ports.sysfs.readVf(s.newPci)).netdevs, [], 'the new VF left the host');
}

/** How many links in the namespace carry the workload's MAC and are up. */
async function liveCopies(ports: HostPorts, netns: string): Promise<number> {
  return (await ports.netns.links(netns)).filter((l) => l.mac === MAC && l.up).length;
}

describe('container re-home, make-before-break', () => {
  it('moves the new VF in, takes the old one down, then brings the new one up as net1', async () => {
    const s = await setup();
    const order: string[] = [];
    let most = 0;
    const ports = hookedNetns(s.ports, async (method, call) => {
      order.push(method);
      const result = await call();
      most = Math.max(most, await liveCopies(s.ports, s.netns));
      return result;
    });
    const result = await rehome(new SriovHost(ports), s.dest, at(s.dest), { oldPciAddress: s.oldPci });
    assert.deepEqual(result, { movedFrom: s.newHostName, announced: true });
    await assertRehomed(s);
    assert.equal(most, 1, 'the MAC was never up on two VFs at once');
    assert.deepEqual(order, ['moveIn', 'writeSysctl', 'writeSysctl', 'setDown', 'renameIn', 'renameIn', 'configure', 'announce']);
  });

  it('a new VF without carrier still takes the workload over, and says it could not announce it', async () => {
    const s = await setup();
    await setSimCable(s.file, s.pfs[1].name, 'down');
    const result = await rehome(s.host, s.dest, at(s.dest), { oldPciAddress: s.oldPci });
    assert.deepEqual(result, { movedFrom: s.newHostName, announced: false });
    await assertRehomed(s);
  });

  it('finds the old VF by its name when the source is another agent’s (no PCI address given)', async () => {
    const s = await setup();
    await rehome(s.host, s.dest, at(s.dest));
    await assertRehomed(s);
  });

  it('running it again when it is done changes nothing and moves nothing', async () => {
    const s = await setup();
    await rehome(s.host, s.dest, at(s.dest), { oldPciAddress: s.oldPci });
    const before = await s.ports.netns.links(s.netns);
    assert.deepEqual(await rehome(s.host, s.dest, at(s.dest), { oldPciAddress: s.oldPci }), { movedFrom: null, announced: true });
    assert.deepEqual(await s.ports.netns.links(s.netns), before);
    await assertRehomed(s);
  });

  for (const when of ['before', 'after'] as const) {
    it(`an agent that dies ${when} any one step is finished by the next run, with never two live copies of the MAC`, async () => {
      for (let k = 0; k < 7; k++) {
        const s = await setup();
        let calls = 0;
        let dead = false;
        let most = 0;
        const dying = hookedNetns(s.ports, async (_method, call) => {
          if (dead) throw new Error('the agent is dead');
          const n = calls++;
          if (n === k && when === 'before') {
            dead = true;
            throw new Error('the agent died');
          }
          const result = await call();
          most = Math.max(most, await liveCopies(s.ports, s.netns));
          if (n === k) {
            dead = true;
            throw new Error('the agent died');
          }
          return result;
        });
        await assert.rejects(rehome(new SriovHost(dying), s.dest, at(s.dest), { oldPciAddress: s.oldPci }));
        assert.ok(most <= 1, `died ${when} step ${k}: two live copies`);
        const counting = hookedNetns(s.ports, async (_m, call) => {
          const result = await call();
          most = Math.max(most, await liveCopies(s.ports, s.netns));
          return result;
        });
        // The restarted agent knows the source when it is its own, and not when it is another agent's: both finish.
        await rehome(new SriovHost(counting), s.dest, at(s.dest), k % 2 ? { oldPciAddress: s.oldPci } : {});
        await assertRehomed(s);
        assert.equal(most, 1, `died ${when} step ${k}: two live copies on the rerun`);
      }
    });
  }

  it('a refusal while bringing the new VF up puts the old one back as net1, and a retry then finishes', async () => {
    const s = await setup();
    let refused = false;
    const refusing = hookedNetns(s.ports, async (method, call) => {
      if (method === 'configure' && !refused) {
        refused = true;
        throw new KernelError('EIO', 'configure', 'configure net1: the read-back shows down');
      }
      return call();
    });
    const err = await rehome(new SriovHost(refusing), s.dest, at(s.dest), { oldPciAddress: s.oldPci }).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RehomeFailed && err.restored, String(err));
    assert.match(err.message, /the old VF .* is back as net1/);
    const links = await s.ports.netns.links(s.netns);
    assert.deepEqual(links.find((l) => l.pciAddress === s.oldPci), { ifname: 'net1', pciAddress: s.oldPci, mac: MAC, mtu: 1400, up: true, addresses: IPS });
    assert.deepEqual(await simRoutes(s.file, s.oldPci), ROUTES, 'its routes are back');
    const fresh = links.find((l) => l.pciAddress === s.newPci);
    assert.deepEqual([fresh?.ifname, fresh?.up], [standbyName(s.newPci), false], 'the new VF waits down for the rollback');
    await rehome(s.host, s.dest, at(s.dest), { oldPciAddress: s.oldPci });
    await assertRehomed(s);
  });

  it('a namespace that is gone ends it with nothing to restore', async () => {
    const s = await setup();
    await rm(s.netns);
    const err = await rehome(s.host, s.dest, at(s.dest)).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RehomeFailed && err.restored, String(err));
    assert.match(err.message, /is gone/);
    assert.deepEqual((await s.ports.sysfs.readVf(s.newPci)).netdevs, [s.newHostName], 'the new VF stayed in the host');
  });

  it('a new VF without a netdev (bound to vfio-pci) is refused before the old one is touched', async () => {
    const s = await setup();
    await s.host.bindVf(s.pfs[1].name, 0, 'vfio-pci');
    await assert.rejects(rehome(s.host, s.dest, at(s.dest)), (e: unknown) => e instanceof RehomeFailed && e.restored && /no netdev/.test(e.message));
    const old = (await s.ports.netns.links(s.netns)).find((l) => l.pciAddress === s.oldPci);
    assert.deepEqual([old?.ifname, old?.up], ['net1', true]);
  });
});
