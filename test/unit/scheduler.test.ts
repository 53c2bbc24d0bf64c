import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Allocation, HostRecord, Network, Physnet } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import { Scheduler, type Placement, type PlacementRequest, type SchedulerOptions } from '../../src/scheduler/index.js';
import { makeAllocation, makeHost, makeNetwork, pfPci } from '../helpers/inventory.js';
import { NaiveScheduler } from '../helpers/naive-scheduler.js';

const DATACENTRE: Physnet = { name: 'datacentre', accountingOnly: false, tenantVlans: [] };
const VM = { kind: 'vm' as const, name: 'vnf1' };

function scheduler(hosts: HostRecord[], opts: SchedulerOptions = {}, physnets: Physnet[] = [DATACENTRE]): Scheduler {
  const s = new Scheduler(opts);
  s.load(hosts, [], physnets);
  return s;
}

function request(network: Network, fields: Partial<PlacementRequest> = {}): PlacementRequest {
  return { network, workload: VM, ...fields };
}

/** choose + reserve, as the service does; returns the stored allocation. */
function allocate(s: Scheduler, req: PlacementRequest): Allocation {
  const a = makeAllocation(s.choose(req), req.network, req.workload, { group: req.group ?? null });
  s.reserve(a);
  return a;
}

const where = (p: Placement | Allocation) => `${p.host}/${p.pf}/${p.vfIndex}`;

function refused(fn: () => unknown, code: string, message?: RegExp): SriovError {
  let caught: unknown;
  assert.throws(fn, (e: unknown) => {
    caught = e;
    return e instanceof SriovError && e.code === code && (!message || message.test(e.message));
  });
  return caught as SriovError;
}

describe('scheduler: candidates', () => {
  it('matches physnet and device type; an absent device type is netdevice', () => {
    const host = makeHost({ name: 'h1', pfs: 3, pf: { 1: { physnet: 'fabric' }, 2: { deviceType: 'vfio-pci' } } });
    const s = scheduler([host]);
    assert.equal(s.choose(request(makeNetwork())).pfPciAddress, pfPci(0));
    assert.equal(s.choose(request(makeNetwork({ physnet: 'fabric' }))).pfPciAddress, pfPci(1));
    assert.equal(s.choose(request(makeNetwork({ deviceType: 'vfio-pci' }))).pfPciAddress, pfPci(2));
  });

  it('refuses with NO_CAPACITY naming the physnet and device type when no PF matches', () => {
    const s = scheduler([makeHost({ name: 'h1' })]);
    const e = refused(() => s.choose(request(makeNetwork({ physnet: 'storage' }))), 'NO_CAPACITY', /no PF on physnet storage with device type netdevice/);
    assert.equal(e.exitCode, 2);
  });

  it('never schedules a PF without a physnet', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 1, physnet: null })]);
    refused(() => s.choose(request(makeNetwork())), 'NO_CAPACITY', /no PF on physnet datacentre/);
  });

  it('chooses the lowest free VF that the inventory lists', () => {
    const host = makeHost({ name: 'h1', pfs: 1, vfs: 4 });
    host.inventory.pfs[0]!.vfs.splice(0, 1);
    const s = scheduler([host]);
    const first = allocate(s, request(makeNetwork()));
    assert.equal(first.vfIndex, 1);
    assert.equal(first.pciAddress, host.inventory.pfs[0]!.vfs[0]!.pciAddress);
    assert.equal(allocate(s, request(makeNetwork())).vfIndex, 2);
  });

  it('two controllers starting at their own point of a PF pick different VFs, each in a run that wraps, until the PF is full', () => {
    const hosts = [makeHost({ name: 'h1', pfs: 1, vfs: 8 })];
    const [a, b] = [scheduler(hosts, { vfStart: 0.25 }), scheduler(hosts, { vfStart: 0.75 })];
    const net = makeNetwork();
    const picked = { a: [] as number[], b: [] as number[] };
    for (let i = 0; i < 4; i++) {
      const [x, y] = [allocate(a, request(net)), allocate(b, request(net))];
      picked.a.push(x.vfIndex);
      picked.b.push(y.vfIndex);
      // Each learns the other's (as the store's watch tells a controller).
      a.reserve(y);
      b.reserve(x);
    }
    assert.deepEqual(picked, { a: [2, 3, 4, 5], b: [6, 7, 0, 1] });
    refused(() => a.choose(request(net)), 'NO_CAPACITY');
    assert.throws(() => new Scheduler({ vfStart: 1 }), /VF start must be a fraction in \[0, 1\), got 1/);
  });

  it('reports all candidate PFs full', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 2, vfs: 1 })]);
    allocate(s, request(makeNetwork()));
    allocate(s, request(makeNetwork()));
    refused(() => s.choose(request(makeNetwork())), 'NO_CAPACITY', /all 2 candidate PFs .* are full/);
  });

  it('pins to a host, and refuses an unknown one with NOT_FOUND', () => {
    const s = scheduler([makeHost({ name: 'h1' }), makeHost({ name: 'h2' })]);
    assert.equal(s.choose(request(makeNetwork(), { host: 'h2' })).host, 'h2');
    refused(() => s.choose(request(makeNetwork(), { host: 'h9' })), 'NOT_FOUND');
  });
});

describe('scheduler: policy', () => {
  const fleet = () => [makeHost({ name: 'h2', pfs: 2, vfs: 4 }), makeHost({ name: 'h1', pfs: 2, vfs: 4 })];

  it('pack fills the most used PF first', () => {
    const s = scheduler(fleet());
    const placed = [1, 2, 3, 4, 5].map(() => where(allocate(s, request(makeNetwork()))));
    assert.deepEqual(placed, ['h1/ens1f0/0', 'h1/ens1f0/1', 'h1/ens1f0/2', 'h1/ens1f0/3', 'h1/ens2f0/0']);
  });

  it('spread picks the PF with the most free VFs, ties by host then PCI address', () => {
    const s = scheduler(fleet(), { policy: 'spread' });
    const placed = [1, 2, 3, 4, 5].map(() => where(allocate(s, request(makeNetwork()))));
    assert.deepEqual(placed, ['h1/ens1f0/0', 'h1/ens2f0/0', 'h2/ens1f0/0', 'h2/ens2f0/0', 'h1/ens1f0/1']);
  });

  it('a request policy overrides the default', () => {
    const s = scheduler(fleet());
    allocate(s, request(makeNetwork()));
    assert.equal(where(s.choose(request(makeNetwork(), { policy: 'spread' }))), 'h1/ens2f0/0');
    assert.equal(where(s.choose(request(makeNetwork()))), 'h1/ens1f0/1');
  });

  it('pack on a pinned host also prefers the most used PF', () => {
    const s = scheduler(fleet());
    allocate(s, request(makeNetwork(), { host: 'h2', policy: 'spread' }));
    allocate(s, request(makeNetwork(), { host: 'h2', policy: 'spread' }));
    allocate(s, request(makeNetwork(), { host: 'h2', policy: 'spread' }));
    assert.equal(where(s.choose(request(makeNetwork(), { host: 'h2' }))), 'h2/ens1f0/2');
  });
});

describe('scheduler: NUMA', () => {
  const host = () => makeHost({ name: 'h1', pfs: 2, vfs: 1, numaNodes: 2 });

  it('required: only PFs on that node', () => {
    const s = scheduler([host()]);
    const p = s.choose(request(makeNetwork(), { numaNode: 1, numaPolicy: 'required' }));
    assert.deepEqual([p.pfPciAddress, p.numaNode], [pfPci(1), 1]);
    refused(() => s.choose(request(makeNetwork(), { numaNode: 2 })), 'NO_CAPACITY', /NUMA node 2/);
  });

  it('required is the default and refuses once the node is full', () => {
    const s = scheduler([host()]);
    allocate(s, request(makeNetwork(), { numaNode: 1 }));
    refused(() => s.choose(request(makeNetwork(), { numaNode: 1 })), 'NO_CAPACITY', /full/);
  });

  it('preferred: that node first, else any', () => {
    const s = scheduler([host()]);
    assert.equal(allocate(s, request(makeNetwork(), { numaNode: 1, numaPolicy: 'preferred' })).pfPciAddress, pfPci(1));
    const fallback = s.choose(request(makeNetwork(), { numaNode: 1, numaPolicy: 'preferred' }));
    assert.deepEqual([fallback.pfPciAddress, fallback.numaNode], [pfPci(0), 0]);
  });
});

describe('scheduler: redundancy groups', () => {
  it('members of a group go to different PFs', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 2, vfs: 8 })]);
    const a = allocate(s, request(makeNetwork(), { group: 'ha' }));
    const b = allocate(s, request(makeNetwork(), { group: 'ha' }));
    assert.notEqual(a.pfPciAddress, b.pfPciAddress);
    refused(() => s.choose(request(makeNetwork(), { group: 'ha' })), 'NO_CAPACITY', /redundancy group "ha" of vm vnf1 already uses all 2/);
    // Other workloads, other groups and ungrouped requests are not constrained.
    assert.equal(s.choose(request(makeNetwork(), { workload: { kind: 'vm', name: 'vnf2' }, group: 'ha' })).pfPciAddress, pfPci(0));
    assert.equal(s.choose(request(makeNetwork(), { group: 'other' })).pfPciAddress, pfPci(0));
  });

  it('across hosts, members go to different hosts', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 2 }), makeHost({ name: 'h2', pfs: 2 })]);
    const a = allocate(s, request(makeNetwork(), { group: 'ha', groupAcrossHosts: true }));
    const b = allocate(s, request(makeNetwork(), { group: 'ha', groupAcrossHosts: true }));
    assert.deepEqual([a.host, b.host], ['h1', 'h2']);
    refused(() => s.choose(request(makeNetwork(), { group: 'ha', groupAcrossHosts: true })), 'NO_CAPACITY', /the hosts of all/);
  });

  it('releasing a member frees its PF for the group', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 1 })]);
    const a = allocate(s, request(makeNetwork(), { group: 'ha' }));
    refused(() => s.choose(request(makeNetwork(), { group: 'ha' })), 'NO_CAPACITY');
    assert.equal(s.release(a), true);
    assert.equal(s.choose(request(makeNetwork(), { group: 'ha' })).host, 'h1');
  });
});

describe('scheduler: bandwidth admission', () => {
  const gbps = (n: number) => makeNetwork({ minTxRateMbps: n * 1000 });

  it('admits guarantees up to the link speed', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 1, linkSpeedMbps: 10_000 })]);
    allocate(s, request(gbps(6)));
    allocate(s, request(gbps(4)));
    const e = refused(() => s.choose(request(gbps(1))), 'NO_CAPACITY', /guarantee of 1000 Mbps does not fit: best headroom is 0 Mbps on h1\/ens1f0/);
    assert.equal(e.details.data?.headroomMbps, 0);
  });

  it('goes to the PF with room and reports the best headroom when none has enough', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 2, linkSpeedMbps: 10_000 })]);
    allocate(s, request(gbps(8)));
    allocate(s, request(gbps(7)));
    assert.equal(s.choose(request(gbps(3))).pfPciAddress, pfPci(1));
    const e = refused(() => s.choose(request(gbps(4))), 'NO_CAPACITY', /best headroom is 3000 Mbps on h1\/ens2f0/);
    assert.equal(e.details.data?.headroomMbps, 3000);
    assert.deepEqual(e.details.data?.bestPf, { host: 'h1', pf: 'ens2f0', pfPciAddress: pfPci(1) });
  });

  it('scales capacity by the configured ratio', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 1, linkSpeedMbps: 10_000 })], { bandwidthRatio: 1.5 });
    allocate(s, request(gbps(10)));
    allocate(s, request(gbps(5)));
    refused(() => s.choose(request(gbps(1))), 'NO_CAPACITY', /best headroom is 0 Mbps/);
    assert.throws(() => new Scheduler({ bandwidthRatio: 0 }), /bandwidth ratio/);
  });

  it('gives guarantees only to drivers that enforce min_tx_rate', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 3, drivers: ['ixgbe', 'i40e', 'igb'] })]);
    refused(() => s.choose(request(gbps(1))), 'NO_CAPACITY', /drivers of the 3 candidate PFs \(i40e, igb, ixgbe\) do not enforce min_tx_rate/);
    assert.equal(s.choose(request(makeNetwork())).pfPciAddress, pfPci(0));
  });

  it('prefers an enforcing PF over a fuller non-enforcing one for a guarantee', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 2, drivers: ['ixgbe', 'mlx5_core'] })]);
    allocate(s, request(makeNetwork()));
    assert.equal(s.choose(request(gbps(1))).pfPciAddress, pfPci(1));
  });

  it('lets non-enforcing drivers carry guarantees on an accountingOnly physnet', () => {
    const physnets = [{ name: 'datacentre', accountingOnly: true, tenantVlans: [] }];
    const s = scheduler([makeHost({ name: 'h1', pfs: 1, driver: 'ixgbe', linkSpeedMbps: 10_000 })], {}, physnets);
    allocate(s, request(gbps(10)));
    refused(() => s.choose(request(gbps(1))), 'NO_CAPACITY', /best headroom is 0 Mbps/);
  });

  it('admits no guarantee on a PF of unknown link speed', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 1, linkSpeedMbps: null })]);
    refused(() => s.choose(request(gbps(1))), 'NO_CAPACITY', /needs a known link speed/);
    assert.equal(s.choose(request(makeNetwork())).host, 'h1');
  });

  it('gives back the bandwidth of a VF the inventory no longer lists', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 1, vfs: 3, linkSpeedMbps: 10_000 })]);
    allocate(s, request(gbps(5)));
    const gone = allocate(s, request(gbps(5)));
    refused(() => s.choose(request(gbps(1))), 'NO_CAPACITY', /best headroom is 0 Mbps/);
    const shrunk = makeHost({ name: 'h1', pfs: 1, vfs: 3, linkSpeedMbps: 10_000 });
    shrunk.inventory.pfs[0]!.vfs.splice(gone.vfIndex, 1);
    s.loadHost(shrunk);
    refused(() => s.choose(request(gbps(1))), 'NO_CAPACITY', /best headroom is 0 Mbps/);
    s.release(gone);
    assert.equal(s.choose(request(gbps(5))).vfIndex, 2);
  });

  it('gives bandwidth back on release', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 1, linkSpeedMbps: 10_000 })]);
    const a = allocate(s, request(gbps(10)));
    refused(() => s.choose(request(gbps(1))), 'NO_CAPACITY');
    s.release(a);
    assert.equal(s.choose(request(gbps(10))).host, 'h1');
  });
});

describe('scheduler: host state', () => {
  it('excludes unreachable hosts until they are ready again', () => {
    const s = scheduler([makeHost({ name: 'h1' }), makeHost({ name: 'h2' })]);
    assert.equal(s.setHostState('h1', 'unreachable'), true);
    assert.equal(s.choose(request(makeNetwork())).host, 'h2');
    s.setHostState('h2', 'unreachable');
    refused(() => s.choose(request(makeNetwork())), 'NO_CAPACITY', /unreachable hosts/);
    s.setHostState('h1', 'ready');
    assert.equal(s.choose(request(makeNetwork())).host, 'h1');
  });

  it('skips hosts loaded unreachable and hosts removed', () => {
    const s = scheduler([makeHost({ name: 'h1', state: 'unreachable' }), makeHost({ name: 'h2' }), makeHost({ name: 'h3' })]);
    assert.equal(s.choose(request(makeNetwork())).host, 'h2');
    assert.equal(s.removeHost('h2'), true);
    assert.equal(s.choose(request(makeNetwork())).host, 'h3');
    assert.equal(s.removeHost('h2'), false);
  });

  it('keeps holdings when a host re-reports its inventory', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 1, vfs: 2 })]);
    allocate(s, request(makeNetwork()));
    s.loadHost(makeHost({ name: 'h1', pfs: 1, vfs: 2 }));
    assert.equal(s.choose(request(makeNetwork())).vfIndex, 1);
  });
});

describe('scheduler: drained PFs', () => {
  const drained = (spec: Parameters<typeof makeHost>[0], pfs: number[]): HostRecord => ({ ...makeHost(spec), drainedPfs: pfs.map(pfPci) });

  it('a drained PF takes no new allocation; the VFs it holds stay held; undrain gives it back', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 2, vfs: 2 })]);
    const net = makeNetwork();
    const held = allocate(s, request(net));
    assert.equal(held.pf, 'ens1f0', 'pack: the first PF');
    assert.equal(s.setDrained('h1', [pfPci(0)]), true);
    assert.equal(s.choose(request(net)).pf, 'ens2f0', 'pack would fill ens1f0; it is drained');
    assert.equal(s.choose(request(net, { host: 'h1' })).pf, 'ens2f0', 'the same on a pinned host');
    assert.equal(s.freeVfs(net, 'h1')?.freeVfs, 2, 'only ens2f0 counts');
    // Its holding is untouched: after an undrain its VF is still taken, until released.
    s.setDrained('h1', [pfPci(0)]);
    s.setDrained('h1', []);
    assert.equal(where(s.choose(request(net))), 'h1/ens1f0/1');
    assert.equal(s.release(held), true);
    assert.equal(where(s.choose(request(net))), 'h1/ens1f0/0');
    assert.equal(s.setDrained('nope', []), false);
  });

  it('refuses naming the drained PF and the command that undrains it', () => {
    const s = scheduler([drained({ name: 'h1', pfs: 1 }, [0])]);
    const err = refused(() => s.choose(request(makeNetwork())), 'NO_CAPACITY');
    assert.equal(
      err.message,
      'cannot place a VF of network net1: no PF on physnet datacentre with device type netdevice takes new allocations: h1/ens1f0 is drained (sriovctl pf undrain h1/ens1f0)',
    );
    assert.equal(err.details.nothingChanged, true);
  });

  it('names every drained PF beside another reason, and counts past three', () => {
    const s = scheduler([drained({ name: 'h1', pfs: 5, vfs: 1 }, [0, 1, 2, 3])]);
    allocate(s, request(makeNetwork()));
    const err = refused(() => s.choose(request(makeNetwork())), 'NO_CAPACITY');
    assert.match(err.message, /all 1 candidate PFs on physnet datacentre with device type netdevice are full; h1\/ens1f0, h1\/ens2f0, h1\/ens3f0 and 1 more are drained \(sriovctl pf undrain <host>\/<pf> for each\)$/);
    assert.equal(err.details.data?.drainedPfs, 4);
  });

  it('refuses a pinned VF on a drained PF, saying so, before saying it is held', () => {
    const host = drained({ name: 'h1', pfs: 1, vfs: 2 }, [0]);
    const s = new Scheduler();
    const net = makeNetwork();
    const holder = makeAllocation({ host: 'h1', pf: 'ens1f0', pfPciAddress: pfPci(0), vfIndex: 0, pciAddress: host.inventory.pfs[0]!.vfs[0]!.pciAddress, numaNode: 0 }, net, VM);
    s.load([host], [holder], [DATACENTRE]);
    for (const vf of host.inventory.pfs[0]!.vfs) {
      const err = refused(() => s.choose(request(net, { host: 'h1', pciAddress: vf.pciAddress })), 'NO_CAPACITY');
      assert.equal(err.message, `VF h1/${vf.pciAddress} is on PF ens1f0: h1/ens1f0 is drained (sriovctl pf undrain h1/ens1f0)`);
    }
    s.setDrained('h1', []);
    assert.equal(s.choose(request(net, { host: 'h1', pciAddress: host.inventory.pfs[0]!.vfs[1]!.pciAddress })).vfIndex, 1);
  });

  it('a rebuild decides nothing until it commits: the index in use stays whole while the hosts are added, then is replaced at once', () => {
    const net = makeNetwork();
    const s = scheduler([makeHost({ name: 'h1', pfs: 1, vfs: 2 })]);
    const held = makeHost({ name: 'h2', pfs: 1, vfs: 2 });
    const holder = makeAllocation({ host: 'h2', pf: 'ens1f0', pfPciAddress: pfPci(0), vfIndex: 0, pciAddress: held.inventory.pfs[0]!.vfs[0]!.pciAddress, numaNode: 0 }, net, VM);
    const rebuild = s.rebuild([holder], [DATACENTRE]);
    rebuild.addHost(held);
    assert.equal(s.choose(request(net)).host, 'h1', 'the old index until the commit');
    rebuild.commit();
    assert.deepEqual([...s.hosts()].map((h) => h.name), ['h2']);
    assert.equal(where(s.choose(request(net))), 'h2/ens1f0/1', 'the holding read before the hosts holds its VF');
  });

  it('CONFLICT when the PF was drained between choose and reserve', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 1 })]);
    const p = s.choose(request(makeNetwork()));
    s.setDrained('h1', [pfPci(0)]);
    refused(() => s.reserve(makeAllocation(p, makeNetwork(), VM)), 'CONFLICT', /h1\/ens1f0 was drained meanwhile/);
  });

  it('takes drained PFs from the records it loads, and keeps a drain when the host re-reports', () => {
    const s = scheduler([drained({ name: 'h1', pfs: 2 }, [0])]);
    assert.equal(s.choose(request(makeNetwork())).pf, 'ens2f0');
    s.setDrained('h1', [pfPci(1)]);
    // A report read before the drain, loaded after it, must not undo it.
    s.loadHost(makeHost({ name: 'h1', pfs: 2 }));
    assert.equal(s.choose(request(makeNetwork())).pf, 'ens1f0');
    // An unreachable host that comes back keeps its drained PFs out.
    s.setHostState('h1', 'unreachable');
    s.setHostState('h1', 'ready');
    assert.equal(s.choose(request(makeNetwork())).pf, 'ens1f0');
    // A host removed and loaded again is new to the index: its record says.
    s.removeHost('h1');
    s.loadHost(drained({ name: 'h1', pfs: 2 }, [0]));
    assert.equal(s.choose(request(makeNetwork())).pf, 'ens2f0');
  });
});

describe('scheduler: reserve and release', () => {
  it('load takes holding allocations only', () => {
    const host = makeHost({ name: 'h1', pfs: 1, vfs: 4 });
    const net = makeNetwork();
    const at = (vfIndex: number, state: Allocation['state']) =>
      makeAllocation({ host: 'h1', pf: 'ens1f0', pfPciAddress: pfPci(0), vfIndex, pciAddress: '', numaNode: 0 }, net, VM, { state });
    const s = new Scheduler();
    s.load([host], [at(0, 'released'), at(1, 'attached'), at(2, 'failed')], [DATACENTRE]);
    assert.equal(s.choose(request(net)).vfIndex, 0);
    allocate(s, request(net));
    assert.equal(s.choose(request(net)).vfIndex, 2);
  });

  it('choose does not mutate; reserve holds; release frees', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 1, vfs: 2 })]);
    const net = makeNetwork();
    assert.deepEqual(s.choose(request(net)), s.choose(request(net)));
    const a = allocate(s, request(net));
    assert.equal(s.choose(request(net)).vfIndex, 1);
    assert.equal(s.release(a), true);
    assert.equal(s.release(a), false);
    assert.equal(s.choose(request(net)).vfIndex, 0);
  });

  it('CONFLICT when the VF was taken between choose and reserve', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 1 })]);
    const net = makeNetwork();
    const p = s.choose(request(net));
    const first = makeAllocation(p, net, VM);
    s.reserve(first);
    refused(() => s.reserve(makeAllocation(p, net, VM)), 'CONFLICT', new RegExp(`held by allocation ${first.id}`));
    refused(() => s.reserve(first), 'CONFLICT', /already reserved/);
  });

  it('CONFLICT when the guarantee or group slot went meanwhile, or the VF left the inventory', () => {
    const s = scheduler([makeHost({ name: 'h1', pfs: 1, linkSpeedMbps: 10_000 })]);
    const net = makeNetwork({ minTxRateMbps: 6000 });
    const [p1, p2] = [s.choose(request(net)), s.choose(request(net))];
    s.reserve(makeAllocation(p1!, net, VM, { group: 'ha' }));
    refused(() => s.reserve(makeAllocation({ ...p2!, vfIndex: 1 }, net, VM)), 'CONFLICT', /no longer fits/);
    refused(() => s.reserve(makeAllocation({ ...p2!, vfIndex: 1 }, makeNetwork(), VM, { group: 'ha' })), 'CONFLICT', /redundancy group/);
    refused(() => s.reserve(makeAllocation({ ...p2!, vfIndex: 99 }, makeNetwork(), VM)), 'CONFLICT', /no longer in the inventory/);
    refused(() => s.reserve(makeAllocation(p2!, net, VM, { state: 'released' })), 'INVALID_ARGUMENT');
  });
});

describe('scheduler: determinism', () => {
  /** A small mixed fleet and a seeded request stream. */
  function scenario(seed: number) {
    const hosts = Array.from({ length: 6 }, (_, h) => ({
      ...makeHost({
        name: `host-${h}`,
        pfs: 3,
        vfs: 5,
        numaNodes: 2,
        drivers: h % 3 === 0 ? ['ixgbe', 'ice', 'mlx5_core'] : ['mlx5_core'],
        linkSpeedMbps: 10_000,
        pf: { 2: { physnet: h % 2 ? 'fabric' : 'datacentre' } },
        state: h === 4 ? 'unreachable' : 'ready',
      }),
      // A drained PF on two hosts: the oracle skips it too.
      drainedPfs: h === 1 || h === 3 ? [pfPci(h === 1 ? 0 : 2)] : [],
    }));
    const physnets = [DATACENTRE, { name: 'fabric', accountingOnly: true, tenantVlans: [] }];
    let x = seed;
    const rand = (n: number) => ((x = (x * 1103515245 + 12345) % 2 ** 31), x % n);
    const requests: PlacementRequest[] = Array.from({ length: 120 }, (_, i) => ({
      network: makeNetwork({ name: `n${i % 4}`, physnet: rand(3) ? 'datacentre' : 'fabric', minTxRateMbps: [0, 0, 500, 2000][rand(4)]! }),
      workload: { kind: 'vm', name: `w${rand(10)}` },
      numaNode: rand(3) ? undefined : rand(2),
      numaPolicy: rand(2) ? 'required' : 'preferred',
      group: rand(3) ? null : 'ha',
      groupAcrossHosts: rand(2) === 0,
      policy: rand(2) ? 'pack' : 'spread',
    }));
    return { hosts, physnets, requests };
  }

  /** Places every request it can, releasing every fifth allocation; the trace of outcomes. */
  function run(place: (r: PlacementRequest) => Placement | null, reserve: (a: Allocation) => void, release: (a: Allocation) => void, requests: PlacementRequest[]) {
    const trace: string[] = [];
    const held: Allocation[] = [];
    requests.forEach((req, i) => {
      const p = place(req);
      trace.push(p ? where(p) : 'refused');
      if (p) {
        const a = makeAllocation(p, req.network, req.workload, { group: req.group ?? null });
        reserve(a);
        held.push(a);
      }
      if (i % 5 === 4 && held.length > 0) release(held.splice(i % held.length, 1)[0]!);
    });
    return trace;
  }

  function indexed(hosts: HostRecord[], physnets: Physnet[], requests: PlacementRequest[]) {
    const s = scheduler(hosts, {}, physnets);
    const place = (r: PlacementRequest) => {
      try {
        return s.choose(r);
      } catch (e) {
        if (e instanceof SriovError && e.code === 'NO_CAPACITY') return null;
        throw e;
      }
    };
    return run(place, (a) => s.reserve(a), (a) => s.release(a), requests);
  }

  it('same inputs, in any load order, give the same choices', () => {
    const { hosts, physnets, requests } = scenario(7);
    const forward = indexed(hosts, physnets, requests);
    assert.deepEqual(indexed([...hosts].reverse(), physnets, requests), forward);
    assert.ok(forward.some((t) => t === 'refused') && forward.some((t) => t !== 'refused'));
  });

  for (const seed of [1, 2, 3, 42]) {
    it(`agrees with a brute-force scan of every VF (seed ${seed})`, () => {
      const { hosts, physnets, requests } = scenario(seed);
      const naive = new NaiveScheduler(hosts, physnets);
      const expected = run((r) => naive.choose(r), (a) => naive.reserve(a), (a) => naive.release(a), requests);
      assert.deepEqual(indexed(hosts, physnets, requests), expected);
    });
  }
});
