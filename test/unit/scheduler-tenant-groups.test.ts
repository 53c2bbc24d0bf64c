// The scheduler's accounting of tenant bandwidth groups: a group's share is
// committed once per PF where the tenant holds VFs, whatever their number,
// and goes with the last of them; a changed group is counted anew.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Allocation, HostRecord, Network, Physnet, Tenant } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import { Scheduler, type PlacementRequest } from '../../src/scheduler/index.js';
import { makeAllocation, makeHost, makeNetwork, pfPci } from '../helpers/inventory.js';

const DATACENTRE: Physnet = { name: 'datacentre', accountingOnly: false, groupsAccountingOnly: false, tenantVlans: [] };
const tenant = (name: string, pfMinTxRateMbps: number | null, pfMaxTxRateMbps: number | null = null): Tenant => ({ id: name, name, pfMinTxRateMbps, pfMaxTxRateMbps, createdAt: '2025-01-01T00:00:00.000Z' });

/** One host of two ice PFs (100 Gbit/s, 8 VFs): the first in switchdev (rate nodes), the second legacy. */
function host(): HostRecord {
  const h = makeHost({ name: 'h1', pfs: 2, vfs: 8, driver: 'ice' });
  h.inventory.pfs[0]!.eswitchMode = 'switchdev';
  return h;
}

const blueNet = makeNetwork({ name: 'blue-net', tenant: 'blue', minTxRateMbps: 5000 });
const redNet = (minTxRateMbps: number) => makeNetwork({ name: `red-${minTxRateMbps}`, tenant: 'red', vlan: 200, minTxRateMbps });

function allocate(s: Scheduler, network: Network, name: string, pf = 0): Allocation {
  const req: PlacementRequest = { network, workload: { kind: 'vm', name }, host: 'h1', pfPciAddress: pfPci(pf) };
  const a = makeAllocation(s.choose(req), network, req.workload);
  s.reserve(a);
  return a;
}

function refused(fn: () => unknown, code: string, message: RegExp): SriovError {
  let caught: unknown;
  assert.throws(fn, (e: unknown) => ((caught = e), e instanceof SriovError && e.code === code && message.test(e.message)));
  return caught as SriovError;
}

describe('scheduler: tenant bandwidth groups', () => {
  it('commits the share once per PF, however many VFs the tenant has there, and frees it with the last', () => {
    const s = new Scheduler();
    s.load([host()], [], [DATACENTRE], [tenant('blue', 30_000, 50_000), tenant('red', null)]);
    const blue = [1, 2, 3].map((i) => allocate(s, blueNet, `b${i}`));
    // 100 − 30 = 70 Gbit/s for red: its 70 Gbit/s fits, and then not 1 Mbit/s more.
    const red = allocate(s, redNet(70_000), 'r1');
    const full = refused(() => allocate(s, redNet(1), 'r2'), 'NO_CAPACITY', /headroom is 0 Mbps/);
    assert.equal(full.details.data?.reason, 'headroom');
    // Releasing two of blue's three VFs frees nothing; the last frees the share.
    s.release(blue[0]!);
    s.release(blue[1]!);
    refused(() => allocate(s, redNet(1), 'r2'), 'NO_CAPACITY', /headroom/);
    s.release(blue[2]!);
    allocate(s, redNet(30_000), 'r3');
    s.release(red);
  });

  it('keeps the VFs’ guarantees inside the share (or inside the cap, with no share)', () => {
    const s = new Scheduler();
    s.load([host()], [], [DATACENTRE], [tenant('blue', 12_000)]);
    allocate(s, blueNet, 'b1');
    allocate(s, blueNet, 'b2');
    const e = refused(() => allocate(s, blueNet, 'b3'), 'NO_CAPACITY', /5000 Mbps does not fit inside tenant blue's bandwidth group \(share 12000 Mbps, no cap\)/);
    assert.equal(e.details.data?.reason, 'group-share');
    s.putTenant(tenant('blue', null, 15_000));
    allocate(s, blueNet, 'b3');
    refused(() => allocate(s, blueNet, 'b4'), 'NO_CAPACITY', /\(no share, cap 15000 Mbps\).*at most 15000 Mbps per PF/);
  });

  it('refuses a PF without rate nodes unless the physnet only accounts groups, then accounts the share there', () => {
    const s = new Scheduler();
    s.load([host()], [], [DATACENTRE], [tenant('blue', 40_000)]);
    const e = refused(() => allocate(s, blueNet, 'b1', 1), 'NO_CAPACITY', /legacy eswitch mode, and devlink rate nodes need switchdev/);
    assert.equal(e.details.data?.reason, 'group-not-enforced');
    s.putPhysnet({ ...DATACENTRE, groupsAccountingOnly: true });
    allocate(s, blueNet, 'b1', 1);
    allocate(s, redNet(60_000), 'r1', 1);
    refused(() => allocate(s, redNet(1), 'r2', 1), 'NO_CAPACITY', /headroom/);
  });

  it('counts a changed group anew where the tenant holds VFs, and says where a bigger one would not fit', () => {
    const s = new Scheduler();
    s.load([host()], [], [DATACENTRE], [tenant('blue', 20_000), tenant('red', null)]);
    allocate(s, blueNet, 'b1');
    allocate(s, redNet(70_000), 'r1');
    const misfits = s.groupMisfits('blue', { tenant: 'blue', shareMbps: 40_000, maxMbps: null });
    assert.deepEqual(
      misfits.map((m) => [m.pf.pciAddress, m.headroomMbps, m.chargeMbps]),
      [[pfPci(0), 30_000, 40_000]],
    );
    assert.deepEqual(s.groupMisfits('blue', { tenant: 'blue', shareMbps: 30_000, maxMbps: null }), []);
    s.putTenant(tenant('blue', 30_000));
    refused(() => allocate(s, redNet(1), 'r2'), 'NO_CAPACITY', /headroom is 0 Mbps/);
    s.putTenant(tenant('blue', null));
    // No share: blue commits its VF's 5 Gbit/s only.
    allocate(s, redNet(25_000), 'r3');
  });

  it('re-checks the group at reserve: a placement decided before another took the headroom is a bandwidth conflict', () => {
    const s = new Scheduler();
    s.load([host()], [], [DATACENTRE], [tenant('blue', 50_000)]);
    const req: PlacementRequest = { network: blueNet, workload: { kind: 'vm', name: 'b1' }, host: 'h1', pfPciAddress: pfPci(0) };
    // Another VF of the same PF than the one red will take: only the bandwidth is in question.
    const vf7 = host().inventory.pfs[0]!.vfs[7]!;
    const stale = makeAllocation({ ...s.choose(req), vfIndex: 7, pciAddress: vf7.pciAddress }, blueNet, req.workload);
    allocate(s, redNet(60_000), 'r1');
    const e = refused(() => s.reserve(stale), 'CONFLICT', /would add 50000 Mbps of guarantee: the PF's headroom is 40000 Mbps/);
    assert.equal(e.details.claim, 'bandwidth');
  });

  it('adopts another controller’s allocation unchecked, committing the share or its VFs’ guarantees if more', () => {
    const s = new Scheduler();
    s.load([host()], [], [DATACENTRE], [tenant('blue', 4000)]);
    const other = new Scheduler();
    other.load([host()], [], [DATACENTRE], []);
    // Placed by a controller that did not know the group yet: 5 Gbit/s inside a 4 Gbit/s share.
    assert.equal(s.adopt(allocate(other, blueNet, 'b1')), true);
    allocate(s, redNet(95_000), 'r1');
    refused(() => allocate(s, redNet(1), 'r2'), 'NO_CAPACITY', /headroom is 0 Mbps/);
  });
});
