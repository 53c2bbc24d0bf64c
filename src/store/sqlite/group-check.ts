/**
 * Tenant bandwidth groups in SQLite's guarantee invariant: the PF's sum, in
 * the write transaction, counts a group tenant's charge (max(share, its VFs'
 * guarantees), group-charge.ts) in place of its VFs' guarantees. One writer
 * holds the file, so reading the rows in the transaction is exact; the
 * check runs only when some tenant has a group (SqliteTx keeps that count).
 */
import type { Allocation } from '../../domain/types.js';
import type { SriovError } from '../../host/errors.js';
import { chargeOf, groupRefusal, limitsOf, NO_USAGE, regroupRefusal, type GroupCheck, type GroupLimits, type PfUsage } from '../group-charge.js';
import { overCommitted, type BandwidthCheck } from '../store.js';
import type { Statements } from './statements.js';

/** The PF's committed total (every tenant's charge), and `tenant`'s own holdings there. */
function pfCharges(s: Statements, host: string, pfPciAddress: string, tenant: string): { committed: number; own: PfUsage } {
  let committed = 0;
  let own = NO_USAGE;
  for (const row of s.pfTenantUsage.all({ host, pfPciAddress })) {
    committed += chargeOf(limitsOf(row), row);
    if (row.tenant === tenant) own = { vfs: row.vfs, minTxRateMbps: row.minTxRateMbps };
  }
  return { committed, own };
}

/** A new holding of `a` (not inserted yet), with its tenant's group counted as the scheduler counts it; null when it fits. */
export function groupAwareRefusal(s: Statements, a: Allocation, group: GroupLimits | null, check: BandwidthCheck): SriovError | null {
  const { committed, own } = pfCharges(s, a.host, a.pfPciAddress, a.tenant);
  return group === null ? overCommitted(a, committed, check) : groupRefusal(a, group, own, committed, check.capacityMbps);
}

/** `tenant set`: the group going from `before` to `after` must fit each PF where the tenant holds VFs; null when it does. */
export function regroupConflict(s: Statements, tenant: string, before: GroupLimits | null, after: GroupLimits | null, check: GroupCheck): SriovError | null {
  for (const pf of s.tenantHoldings.all(tenant)) {
    const { committed } = pfCharges(s, pf.host, pf.pfPciAddress, tenant);
    const usage = { vfs: pf.vfs, minTxRateMbps: pf.minTxRateMbps };
    const refused = regroupRefusal(tenant, `${pf.host}/${pf.pf}`, after, usage, chargeOf(before, usage), chargeOf(after, usage), committed, check.capacityMbps(pf.host, pf.pfPciAddress));
    if (refused !== null) return refused;
  }
  return null;
}

