/**
 * Tenant bandwidth groups: `sriovctl tenant set --pf-min-tx-rate/--pf-max-tx-rate`
 * (`PUT /v1/tenants/:name`) and what `tenant show` says of them per PF.
 *
 * The kernel takes a node's tx_share above its tx_max, and any value up to
 * u64, so the limits are checked here: whole Mbit/s, min ≤ max, neither above
 * the fastest link the scheduler knows; and where the tenant already holds
 * VFs, the new group must fit each such PF's headroom (409 naming the PF).
 * The check and the write run under the decision lock, so no placement in
 * this controller slips between them.
 */
import { notFound, requireAdmin, requireTenantAccess, type Actor } from '../domain/actor.js';
import type { Tenant } from '../domain/types.js';
import { atField, invalid, SriovError } from '../host/errors.js';
import { parseRateMbps } from '../host/validate.js';
import { groupOfTenant, type GroupMisfit, type GroupPf } from '../scheduler/index.js';
import { CATALOGUE, recorded, type Context } from './context.js';

/** `PUT /v1/tenants/:name`: the group's limits to change; null or 0 clears one, left out keeps it. */
export interface TenantChange {
  pfMinTxRateMbps?: number | null;
  pfMaxTxRateMbps?: number | null;
}

/** `GET /v1/tenants/:name`: the tenant, and its group per PF. */
export interface TenantView extends Tenant {
  /** Empty when the tenant has no group. */
  groupPfs: GroupPf[];
}

const FIELDS = ['pfMinTxRateMbps', 'pfMaxTxRateMbps'] as const;

export async function setTenantGroup(ctx: Context, actor: Actor, name: string, change: TenantChange): Promise<Tenant> {
  requireAdmin(actor, 'set tenant bandwidth groups');
  const given = parseChange(change);
  return ctx.decisions.run(async () => {
    const before = await ctx.store.tx.getTenant(name);
    if (!before) throw notFound('tenant', name);
    const after = checkGroup({ ...before, ...withGroup(before), ...given }, ctx.scheduler.fastestLinkMbps());
    const misfits = ctx.scheduler.groupMisfits(name, groupOfTenant(after));
    if (misfits.length > 0) throw misfitConflict(after, misfits);
    const tenant = await recorded(ctx, actor, 'tenant.set', `tenant/${name}`, async (tx) => {
      const stored = await tx.getTenant(name);
      if (!stored) throw notFound('tenant', name);
      const next = { ...stored, ...withGroup(stored), ...given };
      // The store checks the group again on each PF where the tenant holds VFs: a placement by another controller may have landed since.
      await tx.putTenant(next, { capacityMbps: (host, pf) => ctx.scheduler.guaranteeCapacity(host, pf) ?? 0 });
      return { before: stored, after: next, result: next };
    });
    ctx.scheduler.putTenant(tenant);
    // The hosts where it holds VFs get their rate nodes created, changed or deleted.
    for (const host of new Set(ctx.scheduler.groupPfs(name, []).map((p) => p.host))) ctx.feed.bump(host);
    ctx.catalogue.bump(CATALOGUE);
    return tenant;
  });
}

/** The tenant with its group per PF: where it holds VFs, and on its networks' physnets. */
export async function showTenant(ctx: Context, actor: Actor, name: string): Promise<TenantView> {
  requireTenantAccess(actor, name, 'tenant', name);
  const [tenant, networks] = await Promise.all([ctx.reads.getTenant(name), ctx.reads.listNetworks({ tenant: name })]);
  if (!tenant) throw notFound('tenant', name);
  const view = { ...tenant, ...withGroup(tenant) };
  if (groupOfTenant(view) === undefined) return { ...view, groupPfs: [] };
  return { ...view, groupPfs: ctx.scheduler.groupPfs(name, networks.map((n) => n.physnet)) };
}

function withGroup(t: Tenant): Required<Pick<Tenant, (typeof FIELDS)[number]>> {
  return { pfMinTxRateMbps: t.pfMinTxRateMbps ?? null, pfMaxTxRateMbps: t.pfMaxTxRateMbps ?? null };
}

/** The limits given, each a whole number of Mbit/s or null (0 and null clear it). */
function parseChange(change: TenantChange): TenantChange {
  const out: TenantChange = {};
  for (const field of FIELDS) {
    const value = change[field];
    if (value === undefined) continue;
    out[field] = value === null ? null : atField(field, () => parseRateMbps(value, field)) || null;
  }
  if (Object.keys(out).length === 0) throw invalid('give pfMinTxRateMbps, pfMaxTxRateMbps or both');
  return out;
}

/** min ≤ max, and neither above the fastest link: the kernel itself accepts a tx_share above tx_max. */
function checkGroup<T extends Tenant>(t: T, fastestLinkMbps: number | null): T {
  const { pfMinTxRateMbps: min, pfMaxTxRateMbps: max } = t;
  if (min != null && max != null && min > max) {
    throw invalid(`pfMinTxRateMbps ${min} exceeds pfMaxTxRateMbps ${max}: a group's guarantee cannot be above its cap`, t.name, 'pfMinTxRateMbps');
  }
  for (const field of FIELDS) {
    const rate = t[field];
    if (rate != null && fastestLinkMbps !== null && rate > fastestLinkMbps) {
      throw new SriovError('OUT_OF_RANGE', `${field} ${rate} exceeds the ${fastestLinkMbps} Mbps link of the fastest PF vfleet knows`, {
        object: t.name,
        field,
        nothingChanged: true,
      });
    }
  }
  return t;
}

/** 409: the first PF (host and PCI order) where the new group does not fit, with its headroom; all of them in `data`. */
function misfitConflict(t: Tenant, misfits: GroupMisfit[]): SriovError {
  const tenant = t.name;
  const m = misfits[0]!;
  const where = `${m.pf.host.name}/${m.pf.name}`;
  const more = misfits.length > 1 ? ` (and ${misfits.length - 1} more PF${misfits.length > 2 ? 's' : ''})` : '';
  const why = m.inside
    ? `the tenant's VFs there already guarantee ${m.chargeMbps} Mbps, more than the group would hold`
    : `the group would commit ${m.chargeMbps} Mbps there, and its headroom without the tenant is ${m.headroomMbps === null ? 'unknown (link down?)' : `${Math.max(0, Math.floor(m.headroomMbps))} Mbps`}`;
  return new SriovError('CONFLICT', `tenant ${tenant}'s bandwidth group does not fit on PF ${where}${more}: ${why}; release VFs there or choose smaller limits`, {
    object: tenant,
    // A group with no share holds its VFs' guarantees within its cap.
    field: m.inside && t.pfMinTxRateMbps == null ? 'pfMaxTxRateMbps' : 'pfMinTxRateMbps',
    nothingChanged: true,
    data: {
      pfs: misfits.map((x) => ({
        host: x.pf.host.name,
        pf: x.pf.name,
        pfPciAddress: x.pf.pciAddress,
        headroomMbps: x.headroomMbps === null ? null : Math.max(0, Math.floor(x.headroomMbps)),
        chargeMbps: x.chargeMbps,
      })),
    },
  });
}
