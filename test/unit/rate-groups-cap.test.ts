// A tenant group's cap above a slower PF's link: the rate node's tx_max is
// clamped to the link speed (the kernel refuses a rate above it), and the PF
// still takes the tenant.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { desiredRateGroups, nodeCapMbps } from '../../src/controller/rate-groups.js';
import type { Allocation } from '../../src/domain/types.js';
import type { Scheduler } from '../../src/scheduler/index.js';
import { allocation } from '../contract/store.contract.js';

const FAST = '0000:3b:00.0';
const SLOW = '0000:5e:00.0';

/** The scheduler as desiredRateGroups reads it: tenant red's group, both PFs enforcing groups, links of 100 and 25 Gbit/s. */
const scheduler = {
  tenantGroup: (tenant: string) => (tenant === 'red' ? { tenant, shareMbps: 10_000, maxMbps: 40_000 } : undefined),
  enforcesGroups: () => true,
  reportedLinkSpeed: (_host: string, pf: string) => (pf === FAST ? 100_000 : pf === SLOW ? 25_000 : undefined),
} as unknown as Scheduler;

describe('rate node caps', () => {
  it('clamps a group cap above a slower PF’s link speed to that speed, and leaves it elsewhere', () => {
    const held: Allocation[] = [
      allocation({ id: 'r-1', tenant: 'red', pfPciAddress: FAST }),
      allocation({ id: 'r-2', tenant: 'red', pfPciAddress: SLOW, vfIndex: 1, mac: '02:00:00:00:00:04' }),
    ];
    const { rateGroups, nodeOf } = desiredRateGroups(scheduler, 'host-a', held);
    assert.deepEqual(rateGroups, [
      { pfPciAddress: FAST, node: 'vfleet-red', txShareMbps: 10_000, txMaxMbps: 40_000 },
      { pfPciAddress: SLOW, node: 'vfleet-red', txShareMbps: 10_000, txMaxMbps: 25_000 },
    ]);
    assert.deepEqual(held.map(nodeOf), ['vfleet-red', 'vfleet-red']);
  });

  it('keeps no cap as devlink’s 0, and a cap where the link speed is unknown', () => {
    assert.equal(nodeCapMbps(null, 25_000), 0);
    assert.equal(nodeCapMbps(40_000, null), 40_000);
    assert.equal(nodeCapMbps(40_000, 0), 40_000);
    assert.equal(nodeCapMbps(10_000, 25_000), 10_000);
  });
});
