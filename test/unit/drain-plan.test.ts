// The drain planner on synthetic hosts: where each allocation on a drained
// PF or host goes, with the moves before it counted, and the refusal when one
// has nowhere to go. Pure: nothing but the plan comes out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planDrain, type DrainSnapshot, type DrainTarget } from '../../src/controller/drain-plan.js';
import type { Allocation, HostRecord, Migration, Network, Physnet, Tenant } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import { makeAllocation, makeHost, makeNetwork, pfPci } from '../helpers/inventory.js';

const DATACENTRE: Physnet = { name: 'datacentre', accountingOnly: false, tenantVlans: [] };
const NET = makeNetwork();

/** VF `vf` (below 7) of PF `pf` on `host`, as makeHost numbers them. */
function on(host: string, pf: number, vf: number, numaNode = 0) {
  return { host, pf: `ens${pf + 1}f0`, pfPciAddress: pfPci(pf), vfIndex: vf, pciAddress: `0000:${(0x10 + pf).toString(16)}:00.${vf + 1}`, numaNode };
}

let seq = 0;
function holding(where: ReturnType<typeof on>, kind: 'container' | 'vm', name: string, fields: Partial<Allocation> = {}, network: Network = NET): Allocation {
  seq++;
  const attachment: Allocation['attachment'] = kind === 'vm' ? { kind: 'vm', vm: name, failover: true } : { kind: 'container', netns: `/var/run/netns/${name}`, ifname: 'net1', hostIfName: null, ips: [] };
  const at = `2024-01-01T00:00:${String(seq % 60).padStart(2, '0')}.000Z`;
  return makeAllocation(where, network, { kind, name }, { id: `id-${name}`, mac: `02:5f:00:00:00:${seq.toString(16).padStart(2, '0')}`, attachment, createdAt: at, ...fields });
}

function snapshot(hosts: HostRecord[], allocations: Allocation[], extra: Partial<DrainSnapshot> = {}): DrainSnapshot {
  return { hosts, allocations, physnets: [DATACENTRE], networks: [NET], tenants: [], migrations: [], ...extra };
}

const target = (host: string, pf: string | null, fields: Partial<DrainTarget> = {}): DrainTarget => ({ host, pf, ...fields });
const dest = (plan: ReturnType<typeof planDrain>) => Object.fromEntries(plan.moves.map((m) => [m.workload.name, m.to ? `${m.to.host}/${m.to.pf}` : `refused: ${m.refusal}`]));

describe('drain planner: where each allocation goes', () => {
  it('moves a container to another PF of its host, and a VM to another host first', () => {
    const hosts = [makeHost({ name: 'host-a', vfs: 4 }), makeHost({ name: 'host-b', vfs: 4 })];
    const c = holding(on('host-a', 0, 0), 'container', 'pod-1');
    const v = holding(on('host-a', 0, 1), 'vm', 'vm-1');
    const plan = planDrain(snapshot(hosts, [c, v]), target('host-a', 'ens1f0', { hypervisor: 'libvirt' }));
    assert.equal(plan.id, 'host-a/ens1f0');
    assert.deepEqual(plan.pfs, ['ens1f0']);
    assert.deepEqual(dest(plan), { 'pod-1': 'host-a/ens2f0', 'vm-1': 'host-b/ens1f0' });
    assert.deepEqual(plan.moves.map((m) => m.hypervisor), [null, 'libvirt'], 'a hypervisor for the VM only');
    assert.ok(plan.moves.every((m) => m.migration === null && m.refusal === null));
  });

  it('moves a VM to another PF of its own host only when the hypervisor can migrate within a host', () => {
    // host-b's one PF on the physnet is full.
    const hosts = [makeHost({ name: 'host-a', vfs: 2 }), makeHost({ name: 'host-b', pfs: 1, vfs: 1 })];
    const full = holding(on('host-b', 0, 0), 'container', 'other');
    const v = holding(on('host-a', 0, 0), 'vm', 'vm-1');
    const hook = planDrain(snapshot(hosts, [full, v]), target('host-a', 'ens1f0', { hypervisor: 'hook' }));
    assert.deepEqual(dest(hook), { 'vm-1': 'host-a/ens2f0' });
    const libvirt = planDrain(snapshot(hosts, [full, v]), target('host-a', 'ens1f0', { hypervisor: 'libvirt' }));
    assert.match(libvirt.moves[0]!.refusal!, /^VM vm-1 has nowhere to go: on other hosts: cannot place a VF of network net1: all 1 candidate PFs .* are full; libvirt does not migrate a VM to its own host$/);
    assert.equal(libvirt.moves[0]!.to, null);
  });

  it('counts the moves planned before each one: VFs and bandwidth', () => {
    // ens2f0 has one free VF: the first container takes it, the second has nowhere to go.
    const hosts = [makeHost({ name: 'host-a', vfs: 2 })];
    const taken = holding(on('host-a', 1, 0), 'container', 'stays');
    const plan = planDrain(snapshot(hosts, [taken, holding(on('host-a', 0, 0), 'container', 'pod-1'), holding(on('host-a', 0, 1), 'container', 'pod-2')]), target('host-a', 'ens1f0'));
    assert.equal(dest(plan)['pod-1'], 'host-a/ens2f0');
    const why = plan.moves[1]!.refusal!;
    assert.match(why, /^container pod-2 can only move to another PF of host-a \(no other host reports its bootId\), and none fits: cannot place a VF of network net1: all 1 candidate PFs on physnet datacentre with device type netdevice on host host-a are full; host-a\/ens1f0 is being drained$/);
    assert.doesNotMatch(why, /undrain host-a\/ens1f0/, 'no advice to undrain the PF being drained');

    // 6 Gbit/s guaranteed each on 10 Gbit/s links: ens2f0 takes one of the two.
    const gold = makeNetwork({ name: 'gold', vlan: 200, minTxRateMbps: 6000 });
    const fast = [makeHost({ name: 'host-a', vfs: 4, linkSpeedMbps: 10_000 })];
    const a1 = holding(on('host-a', 0, 0), 'container', 'g-1', {}, gold);
    const a2 = holding(on('host-a', 0, 1), 'container', 'g-2', {}, gold);
    const bw = planDrain({ ...snapshot(fast, [a1, a2]), networks: [gold] }, target('host-a', 'ens1f0'));
    assert.equal(dest(bw)['g-1'], 'host-a/ens2f0');
    assert.match(bw.moves[1]!.refusal!, /guarantee of 6000 Mbps does not fit: best headroom is 4000 Mbps on host-a\/ens2f0/);
  });

  it('counts a group tenant\'s share on the PF a move goes to, once per PF, and refuses the move where it does not fit', () => {
    // 10 Gbit/s links; the physnet accounts groups (the synthetic PFs have no rate nodes).
    const physnets = [{ ...DATACENTRE, groupsAccountingOnly: true }];
    const group = (name: string, pfMinTxRateMbps: number): Tenant => ({ id: `t-${name}`, name, pfMinTxRateMbps, pfMaxTxRateMbps: null, createdAt: '2024-01-01T00:00:00.000Z' });
    const red = makeNetwork({ name: 'red-net', tenant: 'red', vlan: 300 });
    const teal = makeNetwork({ name: 'teal-net', tenant: 'teal', vlan: 301 });
    const gold = makeNetwork({ name: 'gold', vlan: 200, minTxRateMbps: 5000 });
    const networks = [red, teal, gold];
    const tenants = [group('red', 6000), group('teal', 6000)];
    const fast = (pfs: number) => [makeHost({ name: 'host-a', pfs, vfs: 4, linkSpeedMbps: 10_000 })];

    // ens2f0 has 5000 Mbps of headroom: red's VFs, without a guarantee of their own, need its share of 6000 there.
    const refused = planDrain(
      snapshot(fast(2), [holding(on('host-a', 1, 0), 'container', 'g-1', {}, gold), holding(on('host-a', 0, 0), 'container', 'r-1', {}, red)], { physnets, networks, tenants }),
      target('host-a', 'ens1f0'),
    );
    assert.match(refused.moves[0]!.refusal!, /^container r-1 can only move to another PF of host-a .*, and none fits: cannot place a VF of network red-net: the share of tenant red's bandwidth group \(share 6000 Mbps, no cap\) does not fit: best headroom is 5000 Mbps on host-a\/ens2f0/);

    // ens2f0 has room for one share: red's two VFs go there (its share counted once), teal's after them does not fit; ens3f0 is full.
    const plan = planDrain(
      snapshot(
        fast(3),
        [
          holding(on('host-a', 1, 0), 'container', 'g-1', { minTxRateMbps: 3000 }, gold),
          holding(on('host-a', 2, 0), 'container', 'g-2', { minTxRateMbps: 10_000 }, gold),
          holding(on('host-a', 0, 0), 'container', 'r-1', {}, red),
          holding(on('host-a', 0, 1), 'container', 'r-2', {}, red),
          holding(on('host-a', 0, 2), 'container', 't-1', {}, teal),
        ],
        { physnets, networks, tenants },
      ),
      target('host-a', 'ens1f0'),
    );
    assert.equal(dest(plan)['r-1'], 'host-a/ens2f0');
    assert.equal(dest(plan)['r-2'], 'host-a/ens2f0');
    assert.match(dest(plan)['t-1']!, /the share of tenant teal's bandwidth group \(share 6000 Mbps, no cap\) does not fit: best headroom is 1000 Mbps on host-a\/ens2f0/);
  });

  it('keeps a redundancy group on different PFs, and a container on its NUMA node when it can', () => {
    const hosts = [makeHost({ name: 'host-a', pfs: 4, vfs: 4, numaNodes: 2 })];
    // ens1f0, ens2f0 on node 0; ens3f0, ens4f0 on node 1. The pair's other half is on ens2f0.
    const pair = holding(on('host-a', 1, 0), 'container', 'upf', { group: 'red', id: 'id-upf-b' });
    const moved = holding(on('host-a', 0, 0), 'container', 'upf', { group: 'red', id: 'id-upf-a' });
    const plan = planDrain(snapshot(hosts, [pair, moved]), target('host-a', 'ens1f0'));
    assert.equal(plan.moves.length, 1);
    assert.equal(plan.moves[0]!.to!.pf, 'ens3f0', 'not beside its pair on ens2f0; node 1 is the only other choice');

    // Packing alone would pick the fuller ens3f0; the container's node 0 comes first.
    const fuller = holding(on('host-a', 2, 0, 1), 'container', 'other');
    const numa = planDrain(snapshot(hosts, [fuller, holding(on('host-a', 0, 1), 'container', 'pod-1')]), target('host-a', 'ens1f0'));
    assert.deepEqual(dest(numa), { 'pod-1': 'host-a/ens2f0' });
  });

  it('drains a host: a container goes only to a host on the same kernel (bootId)', () => {
    const a = makeHost({ name: 'host-a', vfs: 2 });
    const b = makeHost({ name: 'host-b', vfs: 2 });
    const c = makeHost({ name: 'host-c', vfs: 2 });
    const pod = holding(on('host-a', 1, 0), 'container', 'pod-1');
    const alone = planDrain(snapshot([a, b, c], [pod]), target('host-a', null));
    assert.equal(alone.id, 'host-a');
    assert.deepEqual(alone.pfs, ['ens1f0', 'ens2f0']);
    assert.match(alone.moves[0]!.refusal!, /^container pod-1 can only move to another PF of host-a \(no other host reports its bootId\), and none fits: .*host-a\/ens1f0, host-a\/ens2f0 are drained/);

    a.inventory.bootId = 'boot-1';
    c.inventory.bootId = 'boot-1';
    b.inventory.bootId = 'boot-2';
    const shared = planDrain(snapshot([a, b, c], [pod]), target('host-a', null));
    assert.deepEqual(dest(shared), { 'pod-1': 'host-c/ens1f0' });
  });

  it('refuses a VM with no hypervisor given, and two VMs through one QMP URI', () => {
    const hosts = [makeHost({ name: 'host-a', vfs: 4 }), makeHost({ name: 'host-b', vfs: 4 })];
    const vms = [holding(on('host-a', 0, 0), 'vm', 'vm-1'), holding(on('host-a', 0, 1), 'vm', 'vm-2')];
    const none = planDrain(snapshot(hosts, vms), target('host-a', 'ens1f0'));
    assert.equal(none.moves[0]!.refusal, 'VM vm-1 needs a hypervisor to migrate: give --hypervisor libvirt, qemu or hook');
    const qemu = planDrain(snapshot(hosts, vms), target('host-a', 'ens1f0', { hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' }));
    assert.ok(qemu.moves.every((m) => /^--hypervisor qemu migrates to the one QEMU that --migrate-uri names, and this drain moves 2 VMs/.test(m.refusal ?? '')));
    const one = planDrain(snapshot(hosts, vms.slice(0, 1)), target('host-a', 'ens1f0', { hypervisor: 'qemu', migrateUri: 'unix:/run/vfleet/in.sock' }));
    assert.deepEqual(dest(one), { 'vm-1': 'host-a/ens2f0' }, 'a unix: URI is a socket on this host');
    // On one kernel split between agents (--pfs), the socket reaches the other agent's host too: it goes there first.
    const split = [makeHost({ name: 'host-a', pfs: 1, vfs: 4 }), makeHost({ name: 'host-b', pfs: 1, vfs: 4 }), makeHost({ name: 'host-c', vfs: 4 })];
    split[0]!.inventory.bootId = 'boot-1';
    split[1]!.inventory.bootId = 'boot-1';
    split[2]!.inventory.bootId = 'boot-2';
    const kernel = planDrain(snapshot(split, vms.slice(0, 1)), target('host-a', null, { hypervisor: 'qemu', migrateUri: 'unix:/run/vfleet/in.sock' }));
    assert.deepEqual(dest(kernel), { 'vm-1': 'host-b/ens1f0' }, 'host-b is on the same kernel; host-c is not');
  });

  it('follows what a migration already moves, leaves what is releasing, and refuses an arriving destination', () => {
    const hosts = [makeHost({ name: 'host-a', vfs: 4 })];
    const moving = holding(on('host-a', 0, 0), 'container', 'moving');
    const destination = holding(on('host-a', 1, 0), 'container', 'moving', { id: 'id-moving-dest', mac: moving.mac, migration: { id: 'mig-1', role: 'destination' } });
    const leaving = holding(on('host-a', 0, 1), 'container', 'leaving', { state: 'releasing' });
    const fresh = holding(on('host-a', 0, 2), 'container', 'fresh');
    const mig = migration('mig-1', moving, { host: 'host-a', pf: 'ens2f0' });
    const plan = planDrain(snapshot(hosts, [moving, destination, leaving, fresh], { migrations: [mig] }), target('host-a', 'ens1f0'));
    assert.deepEqual(plan.releasing, [leaving.id]);
    assert.deepEqual(
      plan.moves.map((m) => [m.allocation, m.to && `${m.to.host}/${m.to.pf}`, m.migration]),
      [
        [moving.id, 'host-a/ens2f0', 'mig-1'],
        [fresh.id, 'host-a/ens2f0', null],
      ],
    );
    // The destination itself, if its PF were drained, could not be moved yet.
    const reverse = planDrain(snapshot(hosts, [moving, destination], { migrations: [mig] }), target('host-a', 'ens2f0'));
    assert.match(reverse.moves[0]!.refusal!, /^it is arriving by migration mig-1 onto a PF being drained; wait for that migration to end \(or abort it\), then drain again$/);
  });

  it('refuses an unknown host or PF and an unreachable host, planning nothing', () => {
    const hosts = [makeHost({ name: 'host-a' }), makeHost({ name: 'host-b', state: 'unreachable' })];
    assert.throws(() => planDrain(snapshot(hosts, []), target('host-z', null)), (e: unknown) => e instanceof SriovError && e.code === 'NOT_FOUND' && /host host-z is not known; the hosts are: host-a, host-b/.test(e.message));
    assert.throws(() => planDrain(snapshot(hosts, []), target('host-a', 'ens9f0')), (e: unknown) => e instanceof SriovError && e.code === 'NOT_FOUND' && /PF ens9f0 is not in host host-a's last report; its PFs: ens1f0 \(0000:10:00.0\), ens2f0/.test(e.message));
    assert.throws(() => planDrain(snapshot(hosts, []), target('host-b', null)), (e: unknown) => e instanceof SriovError && e.code === 'CONFLICT' && /host host-b is unreachable/.test(e.message));
    const byPci = planDrain(snapshot(hosts, []), target('host-a', '0000:11:00.0'));
    assert.deepEqual([byPci.id, byPci.moves], ['host-a/ens2f0', []]);
  });
});

function migration(id: string, from: Allocation, to: { host: string; pf: string }): Migration {
  const end = (a: Pick<Allocation, 'host' | 'pf' | 'pfPciAddress' | 'vfIndex' | 'pciAddress'>, allocation: string) => ({ host: a.host, pf: a.pf, pfPciAddress: a.pfPciAddress, vfIndex: a.vfIndex, pciAddress: a.pciAddress, allocation });
  return {
    id,
    workload: from.workload,
    tenant: from.tenant,
    network: from.network,
    mac: from.mac,
    from: end(from, from.id),
    to: end({ ...to, pfPciAddress: pfPci(1), vfIndex: 0, pciAddress: '0000:11:00.1' }, 'id-moving-dest'),
    requested: { host: to.host, pf: null },
    hypervisor: null,
    migrateUri: null,
    drain: null,
    state: 'running',
    step: 'prepare',
    history: [],
    downtimeMs: null,
    reason: null,
    createdAt: from.createdAt,
    updatedAt: from.createdAt,
  };
}
