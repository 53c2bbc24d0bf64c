/**
 * Tenant bandwidth groups in admission. A tenant with a group has, on each
 * PF where it holds VFs, a devlink rate node whose tx_share is its aggregate
 * guarantee there and whose tx_max its cap. So:
 * - the PF's committed guarantee counts the group's share once for the
 *   tenant, in place of its VFs' own guarantees (they are inside it);
 * - the VFs' own guarantees on the PF must fit inside the group: its share,
 *   or its cap when it has no share;
 * - a PF that cannot enforce a group (no rate nodes: legacy mode, or the
 *   driver has none) takes the tenant only when its physnet says
 *   groupsAccountingOnly.
 * A group with only a cap (no share) commits what its VFs guarantee, as
 * without a group.
 */
import { groupChargeMbps } from '../domain/group-charge.js';
import type { Tenant } from '../domain/types.js';
import type { PfEntry } from './entries.js';

/** A tenant's group as admission uses it. */
export interface TenantGroup {
  tenant: string;
  /** tx_share per PF; null: no aggregate guarantee. */
  shareMbps: number | null;
  /** tx_max per PF; null: no cap. */
  maxMbps: number | null;
}

/** The tenant's group, or undefined when it has none (both limits null or absent). */
export function groupOfTenant(t: Pick<Tenant, 'name' | 'pfMinTxRateMbps' | 'pfMaxTxRateMbps'>): TenantGroup | undefined {
  const shareMbps = t.pfMinTxRateMbps ?? null;
  const maxMbps = t.pfMaxTxRateMbps ?? null;
  return shareMbps === null && maxMbps === null ? undefined : { tenant: t.name, shareMbps, maxMbps };
}

/**
 * What a tenant's holdings of `vfs` VFs guaranteeing `minTxRateMbps` in all
 * commit on a PF: the group's share (or their guarantees, if more: an
 * allocation another controller committed is adopted unchecked), else their
 * guarantees.
 */
export function chargeMbps(group: TenantGroup | undefined, vfs: number, minTxRateMbps: number): number {
  // The store's invariant counts it with the same rule (store/group-charge.ts).
  return groupChargeMbps(group?.shareMbps, vfs, minTxRateMbps);
}

/** What the group's VFs' guarantees on one PF may add up to: its share, or else its cap. */
export function groupLimitMbps(group: TenantGroup): number {
  return group.shareMbps ?? group.maxMbps ?? Infinity;
}

/** Whether the PF may carry the tenant's group: the NIC enforces it, or the physnet only accounts it. */
export function carriesGroup(pf: PfEntry, groupsAccountingOnly: boolean): boolean {
  return groupsAccountingOnly || pf.enforcesGroups;
}

/** The tenant's VFs' guarantees on `pf` with one more of `guaranteeMbps`: within the group? */
export function fitsInsideGroup(pf: PfEntry, group: TenantGroup, guaranteeMbps: number): boolean {
  return (pf.tenants.get(group.tenant)?.minTxRateMbps ?? 0) + guaranteeMbps <= groupLimitMbps(group);
}

/** How much one more VF of the group's tenant, guaranteeing `guaranteeMbps`, adds to the PF's committed bandwidth. */
export function addedChargeMbps(pf: PfEntry, group: TenantGroup, guaranteeMbps: number): number {
  const usage = pf.tenants.get(group.tenant);
  const vfs = usage?.vfs ?? 0;
  const min = usage?.minTxRateMbps ?? 0;
  return chargeMbps(group, vfs + 1, min + guaranteeMbps) - chargeMbps(group, vfs, min);
}

/** "tenant red's group (share 2000 Mbps, cap 8000 Mbps)": how refusals name it. */
export function describeGroup(group: TenantGroup): string {
  const share = group.shareMbps === null ? 'no share' : `share ${group.shareMbps} Mbps`;
  const cap = group.maxMbps === null ? 'no cap' : `cap ${group.maxMbps} Mbps`;
  return `tenant ${group.tenant}'s bandwidth group (${share}, ${cap})`;
}
