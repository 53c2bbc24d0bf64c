/**
 * Tenant bandwidth groups in the store's guarantee invariant. A tenant with
 * a group share commits, on each PF where it holds VFs, max(share, its VFs'
 * guarantees) there, not the sum of its VFs' guarantees: the same count as
 * the scheduler's admission (scheduler/tenant-groups.ts, chargeMbps; both
 * use `groupChargeMbps` below). So the store's check counts it the same
 * way, or two controllers placing two tenants' first VFs on one PF could
 * each fit its share in headroom that only one of them has.
 *
 * Pure functions and the refusals, shared by both stores: etcd keeps the
 * counts (tenant-groups, pf-tenants/, pf-committed/), SQLite sums them in
 * the write transaction.
 */
import type { Allocation, Tenant } from '../domain/types.js';
import { groupChargeMbps } from '../domain/group-charge.js';
import { claimConflict, type SriovError } from '../host/errors.js';

export { groupChargeMbps };

/** A tenant's group limits as the store keeps them; null: that limit is not set. */
export interface GroupLimits {
  shareMbps: number | null;
  maxMbps: number | null;
}

/** A tenant's holdings on one PF: how many VFs, and their guarantees' sum. */
export interface PfUsage {
  vfs: number;
  minTxRateMbps: number;
}

export const NO_USAGE: PfUsage = Object.freeze({ vfs: 0, minTxRateMbps: 0 });

/** The tenant's group, or null when it has none (neither limit set). */
export function limitsOf(t: Pick<Tenant, 'pfMinTxRateMbps' | 'pfMaxTxRateMbps'> | null): GroupLimits | null {
  if (t === null) return null;
  const shareMbps = t.pfMinTxRateMbps ?? null;
  const maxMbps = t.pfMaxTxRateMbps ?? null;
  return shareMbps === null && maxMbps === null ? null : { shareMbps, maxMbps };
}

export function sameLimits(a: GroupLimits | null, b: GroupLimits | null): boolean {
  return a === b || (a !== null && b !== null && a.shareMbps === b.shareMbps && a.maxMbps === b.maxMbps);
}

/** What `usage` commits on its PF under `group` (null: no group, its guarantees). */
export function chargeOf(group: GroupLimits | null, usage: PfUsage): number {
  return groupChargeMbps(group?.shareMbps ?? null, usage.vfs, usage.minTxRateMbps);
}

/** `usage` with `a` added (sign 1) or taken away (-1). */
export function withVf(usage: PfUsage, a: Pick<Allocation, 'minTxRateMbps'>, sign: 1 | -1): PfUsage {
  return { vfs: usage.vfs + sign, minTxRateMbps: usage.minTxRateMbps + sign * a.minTxRateMbps };
}

/** What the VFs' own guarantees may add up to inside the group: its share, else its cap. */
export function groupLimitMbps(group: GroupLimits): number {
  return group.shareMbps ?? group.maxMbps ?? Infinity;
}

/**
 * The refusal of a new holding of `a` whose tenant's group is `group`, on a
 * PF where the tenant already holds `usage` and `committed` is committed in
 * all (the tenant's charge included): its guarantee must fit inside the
 * group, and what it adds to the PF must fit in `capacityMbps`. Null when it
 * fits. Claim `bandwidth`: a lost race, decided again by the scheduler.
 */
export function groupRefusal(a: Allocation, group: GroupLimits, usage: PfUsage, committed: number, capacityMbps: number): SriovError | null {
  const after = withVf(usage, a, 1);
  const where = `${a.host}/${a.pf}`;
  if (a.minTxRateMbps > 0 && after.minTxRateMbps > groupLimitMbps(group)) {
    return claimConflict(
      'bandwidth',
      `guarantee of ${a.minTxRateMbps} Mbps no longer fits inside tenant ${a.tenant}'s bandwidth group on ${where}: ` +
        `its VFs there guarantee ${usage.minTxRateMbps} of its ${groupLimitMbps(group)} Mbps; choose another PF`,
      a.id,
    );
  }
  const added = chargeOf(group, after) - chargeOf(group, usage);
  if (added <= 0 || committed + added <= capacityMbps) return null;
  return claimConflict('bandwidth', overMessage(`tenant ${a.tenant}'s bandwidth group would add ${added} Mbps of guarantee`, where, committed, capacityMbps), a.id);
}

/**
 * `tenant set`: the refusal of a group change on a PF where the tenant holds
 * `usage`, that moves its charge from `before` to `after` with `committed`
 * on the PF in all. Only a charge that grows is checked (a PF already over,
 * a link that slowed, is no reason to refuse a smaller group), as the
 * scheduler's groupMisfit does.
 */
export function regroupRefusal(tenant: string, where: string, group: GroupLimits | null, usage: PfUsage, before: number, after: number, committed: number, capacityMbps: number): SriovError | null {
  if (group !== null && usage.minTxRateMbps > groupLimitMbps(group)) {
    return claimConflict(
      'bandwidth',
      `tenant ${tenant}'s bandwidth group does not fit on PF ${where}: the tenant's VFs there already guarantee ${usage.minTxRateMbps} Mbps, more than the group would hold; release VFs there or choose smaller limits`,
      tenant,
    );
  }
  if (after <= before || committed - before + after <= capacityMbps) return null;
  return claimConflict('bandwidth', `${overMessage(`tenant ${tenant}'s bandwidth group would commit ${after} Mbps`, where, committed - before, capacityMbps)}`, tenant);
}

function overMessage(what: string, where: string, committed: number, capacityMbps: number): string {
  const headroom = Math.max(0, Math.floor(capacityMbps - committed));
  return `${what} on ${where}: ${committed} of its ${Math.floor(capacityMbps)} Mbps are committed (headroom ${headroom} Mbps); choose another PF or smaller limits`;
}

/**
 * What `tenant set` checks a group change against, in the transaction that
 * writes it: each PF's capacity (link speed × bandwidth ratio) as the
 * controller's scheduler knows it; 0 for a PF it does not know.
 */
export interface GroupCheck {
  capacityMbps(host: string, pfPciAddress: string): number;
}
