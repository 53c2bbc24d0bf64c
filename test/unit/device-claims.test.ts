// Device-plugin claims and the device view, on the real controller (SQLite
// store): claims made by a host's agent, bound by the pod's CNI ADD
// (createOrFind with the VF's PCI address), released by the sweep when no ADD
// comes; the view's long poll; and the migration that adds claims to a store.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import { InProcessLink } from '../../src/agent/link.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { DeviceClaimRequest } from '../../src/controller/device-view.js';
import type { Actor } from '../../src/domain/actor.js';
import { SriovHost } from '../../src/host/configurator.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import Database from 'better-sqlite3';
import { MIGRATIONS, openSqliteStore, SCHEMA_VERSION } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { makeHost, makeNetwork } from '../helpers/inventory.js';
import { policyOf } from '../helpers/api-harness.js';
import { eventually } from '../helpers/daemon.js';
import { writeOldStore } from '../helpers/old-schema.js';
import { refusal } from '../helpers/refusal.js';

const HOST = 'host-a';
const ADMIN: Actor = { id: 'test', role: 'admin' };
const AGENT: Actor = { id: 'agent-tok', role: `agent:${HOST}` };
const NODE: Actor = { id: 'node-tok', role: `node:${HOST}` };
/** VFs 0-3 of ens1f0 (0000:10:00.0) and ens2f0 (0000:11:00.0). */
const vf = (pf: 0 | 1, index: number) => `0000:1${pf}:00.${index + 1}`;
const RED: DeviceClaimRequest = { host: HOST, resource: 'vfleet.io/red', network: 'red', pciAddresses: [vf(0, 0), vf(1, 0)] };

describe('device claims and the device view', { timeout: 60_000 }, () => {
  let dir: string;
  let store: Store;
  let control: ControlPlane;

  const holding = () => store.tx.listAllocations({ holding: true });
  const eventCount = async () => (await control.events(ADMIN, { limit: 100_000 })).length;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-claims-'));
    store = await openSqliteStore(dir);
    control = await ControlPlane.open(store);
    // Two ice PFs (enforcing min_tx_rate) of 10 Gb/s, four VFs each, on physnet fabric.
    await control.hosts.report(AGENT, makeHost({ name: HOST, pfs: 2, vfs: 4, driver: 'ice', linkSpeedMbps: 10_000 }).inventory);
    await control.hosts.putPolicy(ADMIN, HOST, policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
    await control.networks.createTenant(ADMIN, 'acme');
    await control.networks.createNetwork(ADMIN, { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100, ipam: { cidr: '198.18.0.0/24', gateway: '198.18.0.1' } });
    await control.networks.createNetwork(ADMIN, { name: 'blue', tenant: 'acme', physnet: 'fabric', vlan: 101 });
    await control.networks.createNetwork(ADMIN, { name: 'gold', tenant: 'acme', physnet: 'fabric', vlan: 102, minTxRateMbps: 4000 });
  });

  afterEach(async () => {
    control.shutdown();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  describe('claim', () => {
    it('makes one pending claim per VF, pinned, with its own MAC, in one audited transaction; others carry no claim', async () => {
      const before = await eventCount();
      const claims = await control.devices.claim(AGENT, RED);
      assert.deepEqual(claims.map((a) => [a.pciAddress, a.pf, a.host, a.state, a.network, a.attachment]), [
        [vf(0, 0), 'ens1f0', HOST, 'pending', 'red', null],
        [vf(1, 0), 'ens2f0', HOST, 'pending', 'red', null],
      ]);
      for (const a of claims) {
        assert.deepEqual(a.deviceClaim, { resource: 'vfleet.io/red' });
        assert.equal(a.workload.kind, 'container');
        assert.match(a.workload.name, /^kubelet-red-[0-9a-f]{8}$/);
        assert.deepEqual(await store.tx.getAllocation(a.id), a, 'stored as returned');
      }
      assert.equal(claims[0]!.workload.name, claims[1]!.workload.name, 'one container, one name');
      assert.notEqual(claims[0]!.mac, claims[1]!.mac);
      const events = (await control.events(ADMIN, { limit: 100_000 })).slice(before);
      assert.deepEqual(events.map((e) => [e.action, e.object, e.actor]), claims.map((a) => ['allocation.claim', `allocation/${a.id}`, 'agent:host-a/agent-tok']));

      const plain = await control.allocations.create(ADMIN, { network: 'red', workload: { kind: 'container', name: 'pod-x' } });
      assert.equal(plain.deviceClaim, null);
      assert.equal((await store.tx.getAllocation(plain.id))!.deviceClaim, null);
    });

    it('answers a retried claim with the same allocations, and adds only what is new', async () => {
      const first = await control.devices.claim(AGENT, RED);
      const before = await eventCount();
      const again = await control.devices.claim(AGENT, RED);
      assert.deepEqual(again.map((a) => a.id), first.map((a) => a.id));
      assert.deepEqual(again.map((a) => a.createdAt), first.map((a) => a.createdAt));
      assert.equal(await eventCount(), before, 'no new claim, no audit event');
      const more = await control.devices.claim(AGENT, { ...RED, pciAddresses: [vf(1, 0), vf(0, 1)] });
      assert.equal(more[0]!.id, first[1]!.id);
      assert.equal(more[1]!.pciAddress, vf(0, 1));
      assert.equal((await holding()).length, 3);
    });

    it('refuses a VF held otherwise as busy, naming the holder', async () => {
      const held = await control.allocations.create(ADMIN, { network: 'red', host: HOST, pciAddress: vf(0, 0), workload: { kind: 'container', name: 'pod-x' } });
      const busy = await refusal(control.devices.claim(AGENT, RED), 'BUSY');
      assert.equal(busy.message, `VF ${vf(0, 0)} on ${HOST} is held by allocation ${held.id} (container pod-x)`);
      // Claimed as another resource, or for another network: busy too.
      await control.devices.claim(AGENT, { ...RED, pciAddresses: [vf(0, 2)] });
      assert.match((await refusal(control.devices.claim(AGENT, { ...RED, resource: 'vfleet.io/red-x', pciAddresses: [vf(0, 2)] }), 'BUSY')).message, /claimed as vfleet\.io\/red for network red/);
      await refusal(control.devices.claim(AGENT, { ...RED, network: 'blue', pciAddresses: [vf(0, 2)] }), 'BUSY');
    });

    it('refuses a guarantee the PF has no headroom for, naming the PF and its headroom, and claims nothing', async () => {
      const gold = { host: HOST, resource: 'vfleet.io/gold', network: 'gold', pciAddresses: [vf(0, 0), vf(0, 1), vf(0, 2)] };
      const before = await eventCount();
      const full = await refusal(control.devices.claim(AGENT, gold), 'NO_CAPACITY');
      assert.match(full.message, /PF host-a\/ens1f0/);
      assert.match(full.message, /guarantee of 4000 Mbps does not fit: its headroom is 2000 Mbps/);
      assert.equal(full.details.data?.headroomMbps, 2000);
      assert.deepEqual(await holding(), []);
      assert.equal(await eventCount(), before);
      // Nothing was kept in memory either: two fit, on the same PF.
      assert.equal((await control.devices.claim(AGENT, { ...gold, pciAddresses: [vf(0, 0), vf(0, 1)] })).length, 2);
    });

    it('is all or nothing: a busy VF after a free one leaves the free one free', async () => {
      await control.allocations.create(ADMIN, { network: 'red', host: HOST, pciAddress: vf(1, 0), workload: { kind: 'container', name: 'pod-x' } });
      await refusal(control.devices.claim(AGENT, RED), 'BUSY');
      assert.deepEqual((await holding()).map((a) => a.pciAddress), [vf(1, 0)]);
      const claimed = await control.devices.claim(AGENT, { ...RED, pciAddresses: [vf(0, 0)] });
      assert.equal(claimed[0]!.pciAddress, vf(0, 0));
    });

    it('is for the host’s own agent and staff only', async () => {
      const other: Actor = { id: 'b', role: 'agent:host-b' };
      assert.match((await refusal(control.devices.claim(other, RED), 'FORBIDDEN')).message, /agent:host-b may not claim VFs on host host-a/);
      await refusal(control.devices.claim({ id: 't', role: 'tenant:acme' }, RED), 'FORBIDDEN');
      await refusal(control.devices.claim(NODE, RED), 'FORBIDDEN');
      await refusal(control.devices.view(other, HOST), 'FORBIDDEN');
      await refusal(control.devices.view({ id: 't', role: 'tenant:acme' }, HOST), 'FORBIDDEN');
      assert.deepEqual(await holding(), []);
      assert.equal((await control.devices.claim({ id: 'op', role: 'operator' }, RED)).length, 2);
    });

    it('refuses bad input, changing nothing', async () => {
      const bad: Array<[Partial<Record<keyof DeviceClaimRequest, unknown>>, RegExp]> = [
        [{ host: 'Host_A' }, /host name/],
        [{ resource: 'red' }, /resource must be <prefix>\/<name>/],
        [{ resource: 'vfleet.io/-red' }, /resource must be/],
        [{ resource: 'Vfleet.io/red' }, /resource must be/],
        [{ resource: 7 }, /resource must be/],
        // What the kubelet refuses from a device plugin (and the pool file refuses): never stored as a claim's resource.
        [{ resource: 'kubernetes.io/red' }, /kubernetes\.io is reserved by Kubernetes/],
        [{ resource: 'nic.kubernetes.io/red' }, /nic\.kubernetes\.io is reserved by Kubernetes/],
        [{ resource: 'requests.vfleet.io/red' }, /requests\.vfleet\.io starts with "requests\."/],
        [{ network: 'Red' }, /network name/],
        [{ pciAddresses: [] }, /1-64 VF PCI addresses, got 0/],
        [{ pciAddresses: Array.from({ length: 65 }, (_, i) => `0000:20:${i.toString(16).padStart(2, '0')}.0`) }, /got 65/],
        [{ pciAddresses: 'x' }, /1-64 VF PCI addresses/],
        [{ pciAddresses: ['0000:10:00.1', 'nope'] }, /not a PCI address/],
        [{ pciAddresses: [5] }, /must be strings/],
        [{ pciAddresses: [vf(0, 0), vf(0, 0).toUpperCase()] }, /lists VF 0000:10:00.1 twice/],
      ];
      const before = await eventCount();
      for (const [change, message] of bad) {
        const e = await refusal(control.devices.claim(AGENT, { ...RED, ...change } as DeviceClaimRequest), 'INVALID_ARGUMENT');
        assert.match(e.message, message);
      }
      await refusal(control.devices.claim(AGENT, { ...RED, network: 'green' }), 'NOT_FOUND');
      await refusal(control.devices.claim(AGENT, { ...RED, pciAddresses: [vf(0, 0), '0000:99:00.1'] }), 'NOT_FOUND');
      assert.deepEqual(await holding(), []);
      assert.equal(await eventCount(), before);
    });
  });

  // A long poll waits 30 s; these tests time out after 20 s, so one that is not woken by the change fails.
  const WOKEN = { timeout: 20_000 };

  describe('view', () => {
    it('lists the host’s PFs, the networks on their physnets, holders and claims, under a content revision', async () => {
      await control.networks.putPhysnet(ADMIN, 'elsewhere', {});
      await control.networks.createNetwork(ADMIN, { name: 'far', tenant: 'acme', physnet: 'elsewhere', vlan: 5 });
      const [claim] = await control.devices.claim(AGENT, { ...RED, pciAddresses: [vf(0, 0)] });
      const view = await control.devices.view(AGENT, HOST);
      assert.equal(view.host, HOST);
      assert.deepEqual(view.physnets, { '0000:10:00.0': 'fabric', '0000:11:00.0': 'fabric' });
      assert.deepEqual(view.networks.map((n) => [n.name, n.minTxRateMbps]), [['blue', 0], ['gold', 4000], ['red', 0]]);
      assert.deepEqual(view.accountingOnly, []);
      assert.equal(view.bandwidthRatio, 1);
      assert.deepEqual(view.allocations, [
        { id: claim!.id, network: 'red', state: 'pending', pfPciAddress: '0000:10:00.0', vfIndex: 0, pciAddress: vf(0, 0), minTxRateMbps: 0, deviceClaim: { resource: 'vfleet.io/red' }, bound: false },
      ]);
      assert.equal((await control.devices.view(ADMIN, HOST)).revision, view.revision, 'same content, same revision');
      // A network on a physnet this host does not have is not in its view: the revision stays.
      await control.networks.createNetwork(ADMIN, { name: 'far2', tenant: 'acme', physnet: 'elsewhere', vlan: 6 });
      assert.equal((await control.devices.view(AGENT, HOST, view.revision, 100)).revision, view.revision);
    });

    it('wakes a long poll when an allocation on the host changes', WOKEN, async () => {
      const { revision } = await control.devices.view(AGENT, HOST);
      const polled = control.devices.view(AGENT, HOST, revision, 30_000);
      const [claim] = await control.devices.claim(AGENT, { ...RED, pciAddresses: [vf(1, 1)] });
      const view = await polled;
      assert.notEqual(view.revision, revision);
      assert.deepEqual(view.allocations.map((a) => a.id), [claim!.id]);
      // The agent's report (configured) changes it again.
      const next = control.devices.view(AGENT, HOST, view.revision, 30_000);
      await control.hosts.report(AGENT, (await control.hosts.get(ADMIN, HOST)).inventory, [{ id: claim!.id, state: 'configured' }]);
      assert.equal((await next).allocations[0]!.state, 'configured');
    });

    it('wakes a long poll when a network is created on the host’s physnet, and when a physnet changes', WOKEN, async () => {
      const { revision } = await control.devices.view(AGENT, HOST);
      const polled = control.devices.view(AGENT, HOST, revision, 30_000);
      await control.networks.createNetwork(ADMIN, { name: 'late', tenant: 'acme', physnet: 'fabric', vlan: 300, minTxRateMbps: 100 });
      const view = await polled;
      assert.notEqual(view.revision, revision);
      assert.ok(view.networks.some((n) => n.name === 'late'));

      const accounting = control.devices.view(AGENT, HOST, view.revision, 30_000);
      await control.networks.putPhysnet(ADMIN, 'fabric', { accountingOnly: true });
      assert.deepEqual((await accounting).accountingOnly, ['fabric']);

      const { revision: r3 } = await control.devices.view(AGENT, HOST);
      const deleted = control.devices.view(AGENT, HOST, r3, 30_000);
      await control.networks.deleteNetwork(ADMIN, 'late');
      assert.ok(!(await deleted).networks.some((n) => n.name === 'late'));
    });

    it('wakes a long poll when the host’s node policy moves a PF to another physnet', WOKEN, async () => {
      const { revision } = await control.devices.view(AGENT, HOST);
      const polled = control.devices.view(AGENT, HOST, revision, 30_000);
      await control.hosts.putPolicy(ADMIN, HOST, policyOf([['fabric', 'ens1f0', 'fabric'], ['edge', 'ens2f0', 'edge']]));
      const view = await polled;
      assert.deepEqual(view.physnets, { '0000:10:00.0': 'fabric', '0000:11:00.0': 'edge' });
    });

    it('lists a failed allocation whose VF nobody holds, until it is cleared', WOKEN, async () => {
      const a = await control.allocations.create(ADMIN, { network: 'red', host: HOST, pciAddress: vf(0, 3), workload: { kind: 'container', name: 'pod-f' } });
      await control.hosts.report(AGENT, (await control.hosts.get(ADMIN, HOST)).inventory, [{ id: a.id, state: 'failed', reason: 'boom' }]);
      const view = await control.devices.view(AGENT, HOST);
      assert.deepEqual(view.allocations.map((x) => [x.id, x.state]), [[a.id, 'failed']]);
      const polled = control.devices.view(AGENT, HOST, view.revision, 30_000);
      await control.allocations.delete(ADMIN, a.id);
      assert.deepEqual((await polled).allocations, []);
    });
  });

  describe('binding by the CNI ADD', () => {
    const add = (network: string, pciAddress: string, container = 'ctr-1') =>
      control.allocations.createOrFind(NODE, {
        network,
        host: HOST,
        pciAddress,
        workload: { kind: 'container', name: container },
        attach: { kind: 'container', netns: `/var/run/netns/${container}`, ifname: 'net1', cniNetwork: 'red-attach' },
      });

    it('binds the claim on the VF: the pod’s name and attachment with an address, state kept; a retried ADD finds it', async () => {
      const [claim] = await control.devices.claim(AGENT, { ...RED, pciAddresses: [vf(0, 0)] });
      await control.hosts.report(AGENT, (await control.hosts.get(ADMIN, HOST)).inventory, [{ id: claim!.id, state: 'configured' }]);
      const { allocation, created } = await add('red', vf(0, 0));
      assert.equal(created, true);
      assert.equal(allocation.id, claim!.id);
      assert.deepEqual(allocation.workload, { kind: 'container', name: 'ctr-1' });
      assert.equal(allocation.state, 'configured');
      assert.equal(allocation.mac, claim!.mac);
      assert.deepEqual(allocation.deviceClaim, { resource: 'vfleet.io/red' });
      assert.deepEqual(allocation.attachment, { kind: 'container', netns: '/var/run/netns/ctr-1', ifname: 'net1', hostIfName: null, ips: ['198.18.0.2/24'], cniNetwork: 'red-attach' });
      assert.deepEqual(await store.tx.listLeases('red'), ['198.18.0.2']);
      assert.ok((await control.events(ADMIN)).some((e) => e.action === 'allocation.bind' && e.object === `allocation/${claim!.id}`));
      assert.equal((await holding()).length, 1, 'no second allocation');
      assert.equal((await control.devices.view(AGENT, HOST)).allocations[0]!.bound, true);

      const retried = await add('red', vf(0, 0));
      assert.deepEqual([retried.created, retried.allocation.id], [false, claim!.id]);
      // Bound, the VF is the pod's: another pod's ADD naming it is refused, and so is a new claim on it.
      await refusal(add('red', vf(0, 0), 'ctr-2'), 'NO_CAPACITY');
      await refusal(control.devices.claim(AGENT, { ...RED, pciAddresses: [vf(0, 0)] }), 'BUSY');
    });

    it('refuses an ADD for another network on a claimed VF, naming the claim’s resource and network', async () => {
      const [claim] = await control.devices.claim(AGENT, { ...RED, pciAddresses: [vf(0, 0)] });
      const before = await eventCount();
      const e = await refusal(add('blue', vf(0, 0)), 'CONFLICT');
      assert.match(e.message, /as vfleet\.io\/red, claimed for network red/);
      assert.match(e.message, /not for network blue/);
      assert.deepEqual(await store.tx.getAllocation(claim!.id), claim);
      assert.equal(await eventCount(), before);
    });

    it('refuses a retried ADD of the interface naming another VF than the one it has: never answers with a VF the kubelet did not give', async () => {
      const [first, second] = await control.devices.claim(AGENT, RED);
      await add('red', first!.pciAddress);
      const before = await eventCount();
      const e = await refusal(add('red', second!.pciAddress), 'CONFLICT');
      assert.match(e.message, new RegExp(`VF ${first!.pciAddress} and ${second!.pciAddress}`));
      assert.deepEqual(await store.tx.getAllocation(second!.id), second, 'the other claim is left as it was');
      assert.equal(await eventCount(), before);
    });
  });

  describe('stale claims', () => {
    it('are released by the periodic sweep after the grace period, with an audit event; bound ones stay', async () => {
      const [stale, bound] = await control.devices.claim(AGENT, RED);
      await control.allocations.createOrFind(NODE, {
        network: 'red', host: HOST, pciAddress: bound!.pciAddress, workload: { kind: 'container', name: 'ctr-1' },
        attach: { kind: 'container', netns: '/var/run/netns/ctr-1', ifname: 'net1' },
      });
      // Within the grace period (10 min by default): nothing.
      await control.hosts.sweep(Date.now() + 60_000);
      assert.equal((await store.tx.getAllocation(stale!.id))!.state, 'pending');
      // The daemon's sweep (hosts.sweep) past the grace period.
      await control.hosts.sweep(Date.now() + 11 * 60_000);
      const released = (await store.tx.getAllocation(stale!.id))!;
      assert.equal(released.state, 'releasing');
      assert.match(released.reason ?? '', /device claim of vfleet\.io\/red not bound by a CNI ADD within 600 s/);
      const event = (await control.events(ADMIN, { object: `allocation/${stale!.id}` })).find((e) => e.action === 'allocation.releasing');
      assert.equal(event?.actor, 'controller');
      assert.equal((await store.tx.getAllocation(bound!.id))!.state, 'pending', 'bound: the pod has it');
      assert.deepEqual(await control.devices.sweep(Date.now() + 60 * 60_000), [], 'released once');
    });

    it('a claim the kubelet hands out again (a new pod after one that never reached its ADD) gets its grace from then on', async () => {
      const [first] = await control.devices.claim(AGENT, { ...RED, pciAddresses: [vf(0, 0)] });
      const later = new Date(Date.parse(first!.updatedAt) + 9 * 60_000);
      const realNow = control.ctx.now;
      control.ctx.now = () => later.toISOString();
      try {
        await control.devices.claim(AGENT, { ...RED, pciAddresses: [vf(0, 0)] });
      } finally {
        control.ctx.now = realNow;
      }
      // 11 min after the first Allocate, 2 after the second: kept.
      assert.deepEqual(await control.devices.sweep(Date.parse(first!.updatedAt) + 11 * 60_000), []);
      assert.equal((await store.tx.getAllocation(first!.id))!.state, 'pending');
      assert.deepEqual(await control.devices.sweep(later.getTime() + 11 * 60_000), [first!.id]);
    });
  });
});

describe('the claims migration', () => {
  it('opens a store of the previous schema: existing allocations carry no claim, new ones can', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-claims-migrate-'));
    try {
      const mine = MIGRATIONS.findIndex((m) => m.includes('ADD COLUMN claim_resource'));
      // Later migrations (drained PFs) run on top; the claims one must be there.
      assert.ok(mine > 0 && mine < SCHEMA_VERSION);
      writeOldStore(dir, mine);
      const store = await openSqliteStore(dir);
      try {
        // old-1's network: an allocation holding a VF needs its own.
        await store.tx.putNetwork(makeNetwork({ name: 'red', tenant: 'acme' }));
        const old = (await store.tx.getAllocation('old-1'))!;
        assert.equal(old.deviceClaim, null);
        assert.equal(old.workload.name, 'pod-a');
        await store.tx.insertAllocation({ ...old, id: 'new-1', vfIndex: 1, pciAddress: '0000:10:00.2', mac: '02:5f:00:00:00:02', state: 'pending', deviceClaim: { resource: 'vfleet.io/red' } });
        assert.deepEqual((await store.tx.listAllocations({ unboundClaim: true })).map((a) => [a.id, a.deviceClaim]), [['new-1', { resource: 'vfleet.io/red' }]]);
        const bound = await store.tx.bindClaim('new-1', 'ctr-9', { kind: 'container', netns: '/var/run/netns/x', ifname: 'net1', hostIfName: null, ips: [] }, 'y');
        assert.deepEqual([bound?.workload.name, bound?.state, bound?.updatedAt], ['ctr-9', 'pending', 'y']);
        assert.equal(await store.tx.bindClaim('new-1', 'ctr-10', { kind: 'container', netns: '/x', ifname: 'net1', hostIfName: null, ips: [] }, 'z'), null, 'bound once');
        assert.equal(await store.tx.bindClaim('old-1', 'ctr-10', { kind: 'container', netns: '/x', ifname: 'net1', hostIfName: null, ips: [] }, 'z'), null, 'not a claim');
      } finally {
        await store.close();
      }
      const raw = new Database(join(dir, 'vfleet.db'));
      try {
        assert.equal(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      } finally {
        raw.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a claim end to end on a simulated host', { timeout: 60_000 }, () => {
  const SIM = 'sim-a';
  const SIM_ADMIN: Actor = { id: 'test', role: 'admin' };
  let dir: string;
  let store: Store;
  let control: ControlPlane;
  let host: SriovHost;
  let agent: Agent;
  let link: InProcessLink;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-claims-sim-'));
    await initSimHost(join(dir, 'host.json'), { profile: 'ice', pfs: 1, hostname: SIM });
    host = new SriovHost(createSimPorts(join(dir, 'host.json')));
    store = await openSqliteStore(join(dir, 'data'));
    control = await ControlPlane.open(store);
    link = new InProcessLink(control, { id: 'local', role: `agent:${SIM}` });
    agent = new Agent(host, link, { heartbeatMs: 100, resyncMs: 200 });
    agent.start();
    await control.hosts.putPolicy(SIM_ADMIN, SIM, `policies:\n  - name: fabric\n    selector: { drivers: [ice] }\n    numVfs: 4\n    physnet: fabric\n`);
    await eventually('4 VFs reported', 10_000, async () => ((await control.hosts.get(SIM_ADMIN, SIM)).inventory.pfs[0]!.numVfs === 4 ? true : undefined));
    await control.networks.createTenant(SIM_ADMIN, 'acme');
    await control.networks.createNetwork(SIM_ADMIN, { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100, maxTxRateMbps: 500, ipam: { cidr: '198.18.0.0/24', gateway: '198.18.0.1' } });
  });

  afterEach(async () => {
    await agent.stop();
    control.shutdown();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const state = (id: string, want: string) =>
    eventually(`allocation ${id} ${want}`, 10_000, async () => {
      const a = await store.tx.getAllocation(id);
      return a?.state === want ? a : undefined;
    });

  it('claim → the agent configures the VF → the ADD naming it binds the claim → that VF is in the namespace', async () => {
    const pf = (await control.hosts.get(SIM_ADMIN, SIM)).inventory.pfs[0]!;
    const pci = pf.vfs[2]!.pciAddress;
    const view = await link.devices(SIM, undefined, 0);
    assert.deepEqual(view.physnets, { [pf.pciAddress]: 'fabric' });
    const [claim] = await link.claimDevices({ host: SIM, resource: 'vfleet.io/red', network: 'red', pciAddresses: [pci] });
    const configured = await state(claim!.id, 'configured');
    assert.equal(configured.attachment, null);
    assert.deepEqual([(await host.pf(pf.pciAddress)).vfs[2]!.vlan, (await host.pf(pf.pciAddress)).vfs[2]!.maxTxRateMbps], [100, 500]);

    const netns = join(dir, 'ns-pod-a');
    await writeFile(netns, '');
    const node: Actor = { id: 'node-tok', role: `node:${SIM}` };
    const { allocation, created } = await control.allocations.createOrFind(node, {
      network: 'red', host: SIM, pciAddress: pci, workload: { kind: 'container', name: 'ctr-a' }, attach: { kind: 'container', netns, ifname: 'net1', cniNetwork: 'red' },
    });
    assert.deepEqual([created, allocation.id], [true, claim!.id]);
    const attached = await state(claim!.id, 'attached');
    const links = (await host.ports.netns.links(netns)).filter((l) => l.pciAddress !== null);
    assert.deepEqual(links.map((l) => [l.pciAddress, l.ifname, l.mac]), [[pci, 'net1', claim!.mac]]);
    assert.deepEqual(links[0]!.addresses, ['198.18.0.2/24']);
    assert.equal((await host.pf(pf.pciAddress)).vfs[2]!.maxTxRateMbps, 500);
    assert.deepEqual(attached.deviceClaim, { resource: 'vfleet.io/red' });
    const bound = (await link.devices(SIM, undefined, 0)).allocations.find((a) => a.id === claim!.id);
    assert.deepEqual([bound?.state, bound?.bound], ['attached', true]);
  });
});
