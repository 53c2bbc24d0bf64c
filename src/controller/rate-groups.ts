/**
 * The tenants' bandwidth groups in a host's desired state: one devlink rate
 * node `vfleet-<tenant>` per (tenant with a group, PF of the host that
 * enforces groups, with at least one of the tenant's holding allocations),
 * and each allocation's leaf parented to its tenant's node there. From the
 * scheduler's memory: its index has the groups (kept in step with the store
 * by `tenant set` and the cluster sync) and which PFs enforce them.
 */
import type { Allocation } from '../domain/types.js';
import type { Scheduler } from '../scheduler/index.js';
import type { DesiredRateGroup } from './desired-state.js';

export interface HostRateGroups {
  rateGroups: DesiredRateGroup[];
  /** The node `a`'s leaf is parented to; null when none (no group, accounted only, or being released). */
  nodeOf(a: Allocation): string | null;
}

/** `vfleet-<tenant>`: tenant names are DNS labels, so the node name is one devlink accepts. */
export function rateNodeName(tenant: string): string {
  return `vfleet-${tenant}`;
}

export function desiredRateGroups(scheduler: Scheduler, host: string, holding: readonly Allocation[]): HostRateGroups {
  const nodes = new Map<string, DesiredRateGroup>();
  const key = (tenant: string, pfPciAddress: string) => `${pfPciAddress}|${tenant}`;
  for (const a of holding) {
    const group = scheduler.tenantGroup(a.tenant);
    if (group === undefined || !scheduler.enforcesGroups(host, a.pfPciAddress)) continue;
    const k = key(a.tenant, a.pfPciAddress);
    if (!nodes.has(k)) {
      // devlink's 0: no guarantee, no cap.
      const txMaxMbps = nodeCapMbps(group.maxMbps, scheduler.reportedLinkSpeed(host, a.pfPciAddress));
      nodes.set(k, { pfPciAddress: a.pfPciAddress, node: rateNodeName(a.tenant), txShareMbps: group.shareMbps ?? 0, txMaxMbps });
    }
  }
  const rateGroups = [...nodes.values()].sort((x, y) => (x.pfPciAddress + x.node < y.pfPciAddress + y.node ? -1 : 1));
  return {
    rateGroups,
    // A releasing VF's leaf is un-parented; its node stays listed until the release is done (deleting a node with children is EBUSY).
    nodeOf: (a) => (a.state !== 'releasing' && nodes.has(key(a.tenant, a.pfPciAddress)) ? rateNodeName(a.tenant) : null),
  };
}

/**
 * The node's tx_max on a PF: the group's cap, clamped to the PF's link
 * speed. A cap is an upper bound, and a slower link already keeps the
 * tenant under it there, so the PF still takes the tenant (refusing it
 * would shut a fleet's slower NICs to every capped tenant); and the
 * kernel refuses a rate above the port's speed (EINVAL "TX rate value
 * exceed link maximum speed"), so the unclamped cap could never be set
 * there. The share is
 * not clamped: admission already refuses a share the PF has no room for.
 * 0 (devlink's no cap) without a cap.
 */
export function nodeCapMbps(maxMbps: number | null, linkSpeedMbps: number | null | undefined): number {
  if (maxMbps === null) return 0;
  return linkSpeedMbps != null && linkSpeedMbps > 0 ? Math.min(maxMbps, linkSpeedMbps) : maxMbps;
}
