/**
 * Host summaries (`GET /v1/hosts`, `sriovctl host list`): per host its PFs,
 * VF counts, committed bandwidth against capacity, heartbeat age and drained
 * PFs. Built from this controller's memory (the scheduler's index, the host
 * service's liveness), never from the stored inventories: at 1,000 hosts a
 * page of summaries is a few hundred KB, where the inventories were 280 MB.
 * The full inventory is `GET /v1/hosts/:name`.
 */
import { requireStaff, type Actor } from '../domain/actor.js';
import type { DeviceType, HostState } from '../domain/types.js';
import type { HostEntry, PfEntry, Scheduler } from '../scheduler/index.js';

export interface VfCounts {
  /** VFs the host reported. */
  total: number;
  /** Held by an allocation (pending to releasing). */
  allocated: number;
  free: number;
  /** Free VFs the scheduler does not offer: on a drained PF, a PF without physnet, or a host not ready. */
  unschedulable: number;
}

export interface PfSummary {
  name: string;
  pciAddress: string;
  physnet: string | null;
  deviceType: DeviceType;
  numaNode: number | null;
  linkSpeedMbps: number | null;
  drained: boolean;
  vfs: VfCounts;
  /** Sum of the guarantees (minTxRateMbps) of the allocations holding its VFs. */
  committedMbps: number;
  /** What guarantees may add up to: link speed × the bandwidth ratio; null without a link speed. */
  capacityMbps: number | null;
}

export interface HostSummary {
  name: string;
  state: HostState;
  /** Since this controller last heard from the host (a restarted one counts from its start); null: never. */
  heartbeatAgeMs: number | null;
  vfs: VfCounts;
  committedMbps: number;
  capacityMbps: number;
  /** PCI addresses, sorted; a drained PF that left the host's report is still listed. */
  drainedPfs: string[];
  pfs: PfSummary[];
}

export interface HostSummaryFilter {
  state?: HostState;
  /** Hosts with at least one PF on this physnet. */
  physnet?: string;
}

export interface SummarySource {
  scheduler: Scheduler;
  lastSeenAt(name: string): number | undefined;
}

/** Up to `limit` summaries of the hosts named after `after` (name order) that pass the filter. */
export function hostSummaries(
  source: SummarySource,
  actor: Actor,
  filter: HostSummaryFilter,
  page: { after?: string; limit: number },
  now = Date.now(),
): HostSummary[] {
  requireStaff(actor, 'list hosts');
  const chosen: HostEntry[] = [];
  for (const host of source.scheduler.hosts()) {
    if (page.after !== undefined && host.name <= page.after) continue;
    if (passes(host, filter)) chosen.push(host);
  }
  chosen.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const ratio = source.scheduler.options.bandwidthRatio;
  return chosen.slice(0, page.limit).map((h) => summarize(h, ratio, source, now));
}

function passes(host: HostEntry, filter: HostSummaryFilter): boolean {
  if (filter.state !== undefined && host.state !== filter.state) return false;
  if (filter.physnet === undefined) return true;
  for (const pf of host.pfs.values()) if (pf.physnet === filter.physnet) return true;
  return false;
}

function summarize(host: HostEntry, ratio: number, source: SummarySource, now: number): HostSummary {
  const pfs = [...host.pfs.values()].sort((a, b) => (a.pciAddress < b.pciAddress ? -1 : 1)).map((pf) => pfSummary(pf, ratio));
  const seen = source.lastSeenAt(host.name);
  return {
    name: host.name,
    state: host.state,
    heartbeatAgeMs: seen === undefined ? null : Math.max(0, now - seen),
    vfs: pfs.reduce((sum, pf) => addCounts(sum, pf.vfs), { total: 0, allocated: 0, free: 0, unschedulable: 0 }),
    committedMbps: pfs.reduce((sum, pf) => sum + pf.committedMbps, 0),
    capacityMbps: pfs.reduce((sum, pf) => sum + (pf.capacityMbps ?? 0), 0),
    drainedPfs: [...source.scheduler.drainedPfs(host.name)].sort(),
    pfs,
  };
}

function pfSummary(pf: PfEntry, ratio: number): PfSummary {
  const total = pf.vfPci.size;
  const free = pf.free.size;
  const offered = pf.host.state === 'ready' && !pf.drained && pf.physnet !== null;
  return {
    name: pf.name,
    pciAddress: pf.pciAddress,
    physnet: pf.physnet,
    deviceType: pf.deviceType,
    numaNode: pf.numaNode,
    linkSpeedMbps: pf.linkSpeedMbps,
    drained: pf.drained,
    vfs: { total, allocated: total - free, free, unschedulable: offered ? 0 : free },
    committedMbps: pf.committedMbps,
    capacityMbps: pf.linkSpeedMbps === null ? null : Math.floor(pf.linkSpeedMbps * ratio),
  };
}

function addCounts(a: VfCounts, b: VfCounts): VfCounts {
  return { total: a.total + b.total, allocated: a.allocated + b.allocated, free: a.free + b.free, unschedulable: a.unschedulable + b.unschedulable };
}
