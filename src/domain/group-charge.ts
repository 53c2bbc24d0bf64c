/**
 * What a tenant's holdings on one PF commit of its guarantee bandwidth,
 * with a bandwidth group: the group's share (its devlink rate node's
 * tx_share), or its VFs' guarantees if more (an allocation committed
 * elsewhere is adopted unchecked); without a share, its VFs' guarantees.
 * One rule for the scheduler's admission and the store's invariant.
 */
export function groupChargeMbps(shareMbps: number | null | undefined, vfs: number, minTxRateMbps: number): number {
  if (vfs <= 0) return 0;
  return shareMbps == null ? minTxRateMbps : Math.max(shareMbps, minTxRateMbps);
}
