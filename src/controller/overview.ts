/**
 * The fleet at a glance (`GET /v1/overview`, the console's first page):
 * hosts by state, VFs by use, guarantees committed against capacity per
 * physnet, and the open problems an operator acts on. Built from the
 * scheduler's memory and one bounded store read of failed allocations, never
 * from the hosts' inventories, so it costs the same few milliseconds at
 * 1,000 hosts as at one. The isolation audit (drift and isolation findings)
 * reads every inventory and stays its own request.
 */
import { requireStaff, type Actor } from '../domain/actor.js';
import type { Allocation } from '../domain/types.js';
import type { StoreTx } from '../store/store.js';
import { listAllocationPage } from './allocation-listing.js';
import { hostSummaries, type SummarySource, type VfCounts } from './host-summaries.js';

/** Problems listed per kind; the counts are exact, the lists stop here. */
export const OVERVIEW_LIST_LIMIT = 50;

export interface PhysnetLoad {
  name: string;
  hosts: number;
  pfs: number;
  vfs: VfCounts;
  committedMbps: number;
  capacityMbps: number;
}

export interface FleetOverview {
  hosts: { total: number; ready: number; unreachable: number; withDrainedPfs: number };
  drainedPfs: number;
  vfs: VfCounts & { failed: number };
  physnets: PhysnetLoad[];
  unreachableHosts: Array<{ name: string; heartbeatAgeMs: number | null }>;
  drained: Array<{ host: string; pf: string; pciAddress: string }>;
  failedAllocations: Array<Pick<Allocation, 'id' | 'workload' | 'network' | 'tenant' | 'host' | 'pf' | 'vfIndex' | 'reason'>>;
  /** True when a list above stopped at OVERVIEW_LIST_LIMIT. */
  truncated: boolean;
}

const zero = (): VfCounts => ({ total: 0, allocated: 0, free: 0, unschedulable: 0 });
const add = (a: VfCounts, b: VfCounts) => {
  a.total += b.total;
  a.allocated += b.allocated;
  a.free += b.free;
  a.unschedulable += b.unschedulable;
};

export async function fleetOverview(source: SummarySource, reads: Pick<StoreTx, 'listAllocations' | 'listNetworks'>, actor: Actor): Promise<FleetOverview> {
  requireStaff(actor, 'read the fleet overview');
  const summaries = hostSummaries(source, actor, {}, { limit: Infinity });
  const failed = await listAllocationPage(reads, actor, { state: 'failed' }, { limit: OVERVIEW_LIST_LIMIT + 1 });
  const vfs = zero();
  const physnets = new Map<string, PhysnetLoad>();
  const unreachable: FleetOverview['unreachableHosts'] = [];
  const drained: FleetOverview['drained'] = [];
  let ready = 0;
  let withDrained = 0;
  let drainedPfs = 0;
  for (const h of summaries) {
    add(vfs, h.vfs);
    if (h.state === 'ready') ready++;
    else unreachable.push({ name: h.name, heartbeatAgeMs: h.heartbeatAgeMs });
    if (h.drainedPfs.length > 0) withDrained++;
    drainedPfs += h.drainedPfs.length;
    const seen = new Set<string>();
    for (const pf of h.pfs) {
      if (pf.drained) drained.push({ host: h.name, pf: pf.name, pciAddress: pf.pciAddress });
      if (pf.physnet === null) continue;
      const load = physnets.get(pf.physnet) ?? { name: pf.physnet, hosts: 0, pfs: 0, vfs: zero(), committedMbps: 0, capacityMbps: 0 };
      physnets.set(pf.physnet, load);
      if (!seen.has(pf.physnet)) load.hosts++;
      seen.add(pf.physnet);
      load.pfs++;
      add(load.vfs, pf.vfs);
      load.committedMbps += pf.committedMbps;
      load.capacityMbps += pf.capacityMbps ?? 0;
    }
  }
  const truncated = unreachable.length > OVERVIEW_LIST_LIMIT || drained.length > OVERVIEW_LIST_LIMIT || failed.length > OVERVIEW_LIST_LIMIT;
  return {
    hosts: { total: summaries.length, ready, unreachable: unreachable.length, withDrainedPfs: withDrained },
    drainedPfs,
    vfs: { ...vfs, failed: failed.length > OVERVIEW_LIST_LIMIT ? await countFailed(reads, actor) : failed.length },
    physnets: [...physnets.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
    unreachableHosts: unreachable.slice(0, OVERVIEW_LIST_LIMIT),
    drained: drained.slice(0, OVERVIEW_LIST_LIMIT),
    failedAllocations: failed.slice(0, OVERVIEW_LIST_LIMIT).map((a) => ({
      id: a.id, workload: a.workload, network: a.network, tenant: a.tenant, host: a.host, pf: a.pf, vfIndex: a.vfIndex, reason: a.reason,
    })),
    truncated,
  };
}

/** Failed allocations are few (each is cleared by hand), so counting them page by page stays cheap. */
async function countFailed(reads: Pick<StoreTx, 'listAllocations' | 'listNetworks'>, actor: Actor): Promise<number> {
  let count = 0;
  let after: string | undefined;
  for (;;) {
    const page = await listAllocationPage(reads, actor, { state: 'failed' }, { after, limit: 1000 });
    count += page.length;
    if (page.length < 1000) return count;
    after = page[page.length - 1]!.id;
  }
}
