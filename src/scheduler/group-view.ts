/**
 * A tenant's bandwidth group as the PFs see it: where it is enforced by the
 * NIC, only accounted, or refused (`tenant show`), and whether a new group
 * still fits where the tenant already holds VFs (`tenant set`).
 */
import type { Physnet } from '../domain/types.js';
import { guaranteeCapacityMbps } from './admission.js';
import type { PfEntry } from './entries.js';
import { notEnforcing } from './group-refusal.js';
import { carriesGroup, chargeMbps, groupLimitMbps, type TenantGroup } from './tenant-groups.js';

/**
 * `nic`: a devlink rate node enforces it; `accounted`: the PF cannot, and
 * its physnet only accounts groups; `refused`: the PF cannot, and takes no
 * VF of the tenant (VFs it already holds there stay).
 */
export type GroupEnforcement = 'nic' | 'accounted' | 'refused';

export interface GroupPf {
  host: string;
  pf: string;
  pfPciAddress: string;
  physnet: string | null;
  /** The tenant's VFs held on the PF. */
  vfs: number;
  /** Their guarantees. */
  vfMinTxRateMbps: number;
  enforcement: GroupEnforcement;
  /** Why the NIC does not enforce it; null when it does. */
  reason: string | null;
}

export function groupPf(pf: PfEntry, tenant: string, physnet: Physnet | undefined): GroupPf {
  const usage = pf.tenants.get(tenant);
  const enforcement: GroupEnforcement = pf.enforcesGroups ? 'nic' : carriesGroup(pf, physnet?.groupsAccountingOnly ?? false) ? 'accounted' : 'refused';
  return {
    host: pf.host.name,
    pf: pf.name,
    pfPciAddress: pf.pciAddress,
    physnet: pf.physnet,
    vfs: usage?.vfs ?? 0,
    vfMinTxRateMbps: usage?.minTxRateMbps ?? 0,
    enforcement,
    reason: pf.enforcesGroups ? null : notEnforcing(pf),
  };
}

/** Where `group` (undefined: none) would not fit on a PF where the tenant holds VFs, now that `before` counts there. */
export interface GroupMisfit {
  pf: PfEntry;
  /** What the PF's guarantees may add up to without the tenant; null when its link speed is unknown. */
  headroomMbps: number | null;
  /** What the tenant would commit there. */
  chargeMbps: number;
  /** The tenant's VFs' guarantees there exceed the group (its share, or cap). */
  inside: boolean;
}

export function groupMisfit(pf: PfEntry, tenant: string, before: TenantGroup | undefined, after: TenantGroup | undefined, bandwidthRatio: number): GroupMisfit | null {
  const usage = pf.tenants.get(tenant);
  if (!usage) return null;
  if (after !== undefined && usage.minTxRateMbps > groupLimitMbps(after)) {
    return { pf, headroomMbps: null, chargeMbps: usage.minTxRateMbps, inside: true };
  }
  const charge = chargeMbps(after, usage.vfs, usage.minTxRateMbps);
  const others = pf.committedMbps - chargeMbps(before, usage.vfs, usage.minTxRateMbps);
  const capacity = guaranteeCapacityMbps(pf, bandwidthRatio);
  const headroom = capacity === null ? null : capacity - others;
  // Not more than it commits now: a PF already over (a link that slowed) is no reason to refuse a smaller group.
  if (charge <= chargeMbps(before, usage.vfs, usage.minTxRateMbps) || (headroom !== null && charge <= headroom)) return null;
  return { pf, headroomMbps: headroom, chargeMbps: charge, inside: false };
}
