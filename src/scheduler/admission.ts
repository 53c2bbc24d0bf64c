/**
 * Whether one PF can take one request: not drained, NUMA, redundancy group
 * and bandwidth.
 * Kept free of allocation and closures over the request beyond one object,
 * because it runs for every PF a search looks at.
 */
import type { PfEntry } from './entries.js';
import type { GroupUsage } from './group-usage.js';
import { addedChargeMbps, carriesGroup, fitsInsideGroup, type TenantGroup } from './tenant-groups.js';

export interface Admission {
  /** Only PFs on this NUMA node; undefined for any node. */
  numaNode: number | undefined;
  guaranteeMbps: number;
  /** The physnet is marked accountingOnly: guarantees need no enforcing driver. */
  accountingOnly: boolean;
  bandwidthRatio: number;
  /** The request's redundancy group as it stands, if it has members yet. */
  group: GroupUsage | undefined;
  groupAcrossHosts: boolean;
  /** The network's tenant's bandwidth group, if it has one. */
  tenantGroup: TenantGroup | undefined;
  /** The physnet is marked groupsAccountingOnly: the group needs no PF that enforces it. */
  groupsAccountingOnly: boolean;
}

export function admits(pf: PfEntry, a: Admission): boolean {
  // Pools do not file a drained PF; a pinned host or VF is compared directly, so it is checked here too.
  if (pf.drained) return false;
  if (a.numaNode !== undefined && pf.numaNode !== a.numaNode) return false;
  if (a.group !== undefined && inGroup(pf, a)) return false;
  if (a.tenantGroup !== undefined) return fitsTenantGroup(pf, a, a.tenantGroup);
  return a.guaranteeMbps <= 0 || fitsGuarantee(pf, a);
}

/**
 * With a tenant group: the PF carries the group, the VF's guarantee (if any)
 * is enforced and fits inside the group, and what the placement adds to the
 * PF's committed bandwidth (the group's share, for the tenant's first VF
 * there; nothing after) fits in its headroom.
 */
export function fitsTenantGroup(pf: PfEntry, a: Admission, group: TenantGroup): boolean {
  if (!carriesGroup(pf, a.groupsAccountingOnly)) return false;
  if (a.guaranteeMbps > 0 && !carriesGuarantee(pf, a.accountingOnly)) return false;
  if (!fitsInsideGroup(pf, group, a.guaranteeMbps)) return false;
  const added = addedChargeMbps(pf, group, a.guaranteeMbps);
  if (added <= 0) return true;
  const headroom = headroomMbps(pf, a.bandwidthRatio);
  return headroom !== null && added <= headroom;
}

export function inGroup(pf: PfEntry, a: Admission): boolean {
  if (a.group === undefined) return false;
  return a.groupAcrossHosts ? a.group.hosts.has(pf.host.name) : a.group.pfs.has(pf.key);
}

/** A guarantee needs a driver that enforces it, unless the physnet only accounts it. */
export function carriesGuarantee(pf: PfEntry, accountingOnly: boolean): boolean {
  return accountingOnly || pf.enforcesMinTxRate;
}

/** What guarantees on the PF may add up to: its link speed × the bandwidth ratio; null when the link speed is unknown. */
export function guaranteeCapacityMbps(pf: PfEntry, bandwidthRatio: number): number | null {
  return pf.linkSpeedMbps === null ? null : pf.linkSpeedMbps * bandwidthRatio;
}

/** Guarantee bandwidth still uncommitted; null when the link speed is unknown (admits no guarantee). */
export function headroomMbps(pf: PfEntry, bandwidthRatio: number): number | null {
  const capacity = guaranteeCapacityMbps(pf, bandwidthRatio);
  return capacity === null ? null : capacity - pf.committedMbps;
}

// Zero-guarantee requests skip this: best-effort traffic cannot break a hardware-enforced minimum.
function fitsGuarantee(pf: PfEntry, a: Admission): boolean {
  if (!carriesGuarantee(pf, a.accountingOnly)) return false;
  const headroom = headroomMbps(pf, a.bandwidthRatio);
  return headroom !== null && a.guaranteeMbps <= headroom;
}
