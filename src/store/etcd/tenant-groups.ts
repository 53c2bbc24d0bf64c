/**
 * Tenant bandwidth groups in etcd's guarantee invariant (keys.ts:
 * tenant-groups, pf-tenants/, pf-committed/). `pf-committed/<host>/<pf>`
 * stays the PF's one total, now counting a group tenant's charge
 * (max(share, its VFs' guarantees), group-charge.ts) in place of its VFs'
 * guarantees; `pf-tenants/<host>/<pf>/<tenant>` holds a group tenant's
 * holdings there, from which its charge is computed.
 *
 * Every key is read in the transaction that writes from it, so the usual
 * compares make two writers of one PF, or a holding change and a group
 * change, conflict: one commits, the other runs again and sees it.
 * A tenant without a group costs one read of `tenant-groups` per batch
 * (the snapshot caches it for every transaction of the batch) and only
 * for writes that start or stop a holding; no pf-tenants key.
 */
import { HOLDING_STATES, type Allocation } from '../../domain/types.js';
import { chargeOf, groupRefusal, NO_USAGE, regroupRefusal, withVf, type GroupCheck, type GroupLimits, type PfUsage } from '../group-charge.js';
import type { BandwidthCheck } from '../store.js';
import type { TxnBuffer } from './buffer.js';
import * as codec from './codec.js';
import type { Keys } from './keys.js';
import { prefixEnd } from './kv.js';

export type Groups = ReadonlyMap<string, GroupLimits>;
export const NO_GROUPS: Groups = new Map();

/** The tenants with a group, read in this transaction. */
export async function readGroups(b: TxnBuffer, k: Keys): Promise<Groups> {
  const text = await b.get(k.tenantGroups);
  if (text === null) return NO_GROUPS;
  return new Map(Object.entries(JSON.parse(text) as Record<string, GroupLimits>));
}

function writeGroups(b: TxnBuffer, k: Keys, groups: Groups): void {
  if (groups.size === 0) b.del(k.tenantGroups);
  else b.put(k.tenantGroups, JSON.stringify(Object.fromEntries([...groups].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))));
}

/** The PF's committed guarantees (the `pf-committed/` record), read in this transaction. */
export async function committedOn(b: TxnBuffer, k: Keys, host: string, pfPciAddress: string): Promise<number> {
  const text = await b.get(k.pfCommitted(host, pfPciAddress));
  return text === null ? 0 : Number(text);
}

/** Absent at zero: a PF with nothing committed has no key. */
export function putCommitted(b: TxnBuffer, k: Keys, host: string, pfPciAddress: string, mbps: number): void {
  const key = k.pfCommitted(host, pfPciAddress);
  if (mbps > 0) b.put(key, String(mbps));
  else b.del(key);
}

async function usageOf(b: TxnBuffer, k: Keys, host: string, pfPciAddress: string, tenant: string): Promise<PfUsage> {
  const text = await b.get(k.pfTenant(host, pfPciAddress, tenant));
  return text === null ? NO_USAGE : (JSON.parse(text) as PfUsage);
}

function putUsage(b: TxnBuffer, k: Keys, host: string, pfPciAddress: string, tenant: string, usage: PfUsage): void {
  const key = k.pfTenant(host, pfPciAddress, tenant);
  if (usage.vfs > 0) b.put(key, JSON.stringify({ vfs: usage.vfs, minTxRateMbps: usage.minTxRateMbps }));
  else b.del(key);
}

/**
 * A group tenant's VF starts (sign 1) or stops (-1) holding on its PF: its
 * usage there and the PF's total move together. With `check` (a new
 * placement), refused when it does not fit the group or the PF; nothing
 * is written then.
 */
export async function moveGroupHolding(b: TxnBuffer, k: Keys, a: Allocation, group: GroupLimits, sign: 1 | -1, check?: BandwidthCheck): Promise<void> {
  const [usage, committed] = await Promise.all([usageOf(b, k, a.host, a.pfPciAddress, a.tenant), committedOn(b, k, a.host, a.pfPciAddress)]);
  if (sign === 1 && check !== undefined) {
    const refused = groupRefusal(a, group, usage, committed, check.capacityMbps);
    if (refused !== null) throw refused;
  }
  const after = withVf(usage, a, sign);
  putUsage(b, k, a.host, a.pfPciAddress, a.tenant, after);
  const moved = chargeOf(group, after) - chargeOf(group, usage);
  if (moved !== 0) putCommitted(b, k, a.host, a.pfPciAddress, committed + moved);
}

/**
 * `tenant set` changed `tenant`'s group from what `tenant-groups` holds to
 * `after`: on each PF where it holds VFs (`holdings`, from its allocations
 * read in this transaction), the PF's total moves by the change of its
 * charge, checked against `check`'s capacity where it grows, and its
 * usage is kept (with a group) or dropped (without).
 */
export async function regroup(b: TxnBuffer, k: Keys, tenant: string, after: GroupLimits | null, holdings: Allocation[], check?: GroupCheck): Promise<void> {
  const groups = await readGroups(b, k);
  const before = groups.get(tenant) ?? null;
  const pfs = new Map<string, { a: Allocation; usage: PfUsage }>();
  for (const a of holdings) {
    const key = `${a.host}/${a.pfPciAddress}`;
    const pf = pfs.get(key) ?? { a, usage: NO_USAGE };
    pfs.set(key, { a: pf.a, usage: withVf(pf.usage, a, 1) });
  }
  for (const { a, usage } of pfs.values()) {
    const committed = await committedOn(b, k, a.host, a.pfPciAddress);
    const [was, will] = [chargeOf(before, usage), chargeOf(after, usage)];
    if (check !== undefined) {
      const refused = regroupRefusal(tenant, `${a.host}/${a.pf}`, after, usage, was, will, committed, check.capacityMbps(a.host, a.pfPciAddress));
      if (refused !== null) throw refused;
    }
    if (will !== was) putCommitted(b, k, a.host, a.pfPciAddress, committed - was + will);
    putUsage(b, k, a.host, a.pfPciAddress, tenant, after === null ? NO_USAGE : usage);
  }
  const next = new Map(groups);
  if (after === null) next.delete(tenant);
  else next.set(tenant, { shareMbps: after.shareMbps, maxMbps: after.maxMbps });
  writeGroups(b, k, next);
}

/** Up to this many allocations, a group change compares each record; past it, the VF keys of their PFs. */
const RECORD_COMPARES = 64;

/**
 * The tenant's holding allocations, for a group change, read so that a
 * racing change of any of them fails the commit: an insert of the
 * tenant's writes `added/allocations/tenant/<tenant>`, which this depends
 * on; a holding that starts or stops writes its VF key. A few records are
 * compared each; more (they would not fit one Txn's compares) are read
 * without, and the commit depends instead on the VF keys of every PF any
 * of them is on, one range compare per PF (a change by another tenant on
 * those PFs then fails it too, and it runs again).
 */
export async function tenantHoldings(b: TxnBuffer, k: Keys, tenant: string): Promise<Allocation[]> {
  const prefix = k.ranges.allocations;
  const index = b.index;
  let all: Allocation[];
  if (index === null) {
    all = [];
    for await (const page of b.scan(prefix, prefixEnd(prefix))) for (const kv of page) all.push(codec.decodeAllocation(kv.value));
  } else {
    const mod = await b.depend(k.added('tenant', tenant));
    const ids = new Set(await index.ids('tenant', tenant, Number(mod)));
    for (const key of b.pendingIn(prefix, prefixEnd(prefix))) ids.add(key.slice(prefix.length));
    const few = ids.size <= RECORD_COMPARES;
    const texts = await Promise.all([...ids].map((id) => (few ? b.get(k.allocation(id)) : b.peek(k.allocation(id)))));
    all = texts.flatMap((text) => (text === null ? [] : [codec.decodeAllocation(text)]));
    if (!few) {
      const pfs = new Set(all.filter((a) => a.tenant === tenant).map((a) => k.vfsOf(a.host, a.pfPciAddress)));
      await Promise.all([...pfs].map(async (start) => {
        for await (const page of b.scan(start, prefixEnd(start), { keysOnly: true })) void page;
      }));
    }
  }
  return all.filter((a) => a.tenant === tenant && HOLDING_STATES.includes(a.state));
}
