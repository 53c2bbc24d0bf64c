/**
 * The in-memory index the scheduler decides from: hosts → PFs → free VFs,
 * committed bandwidth per PF, PFs pooled by (physnet, device type), and who
 * holds what. It does bookkeeping only; the scheduler decides and checks.
 *
 * Holdings are kept by allocation, apart from the host entries, so that a
 * host re-reporting its inventory (or going away and coming back) keeps the
 * VFs its allocations hold. They leave only through `release`.
 */
import { HOLDING_STATES, type Allocation, type HostRecord, type HostState, type Physnet, type Tenant } from '../domain/types.js';
import { buildHostEntry, pfKey, type HostEntry, type PfEntry } from './entries.js';
import { chargeMbps, groupOfTenant, type TenantGroup } from './tenant-groups.js';
import { GroupLedger, groupKey } from './group-usage.js';
import { PfPool } from './pf-pool.js';

export interface Holding {
  readonly id: string;
  readonly host: string;
  readonly pfPciAddress: string;
  readonly vfIndex: number;
  readonly minTxRateMbps: number;
  /** Its network's tenant: a tenant's bandwidth group counts once per PF. */
  readonly tenant: string;
  /** Its network: the max rate the VF may send at is the network's, and may change with it. */
  readonly network: string;
  /** groupKey of the allocation's redundancy group, if any. */
  readonly group: string | null;
}

export class CapacityIndex {
  readonly groups = new GroupLedger();
  private readonly hosts = new Map<string, HostEntry>();
  /** Physnet → device type → pool: no key text made per allocation (it was garbage), where a lookup per allocation finds its pool. */
  private readonly pools = new Map<string, Map<PfEntry['deviceType'], PfPool>>();
  private readonly physnets = new Map<string, Physnet>();
  /** Tenants with a bandwidth group. */
  private readonly tenantGroups = new Map<string, TenantGroup>();
  private readonly holdings = new Map<string, Holding>();
  /**
   * Host → PF PCI address → VF index → holding: one holding per VF, found
   * with no key made. A `host|pf|vf` key per allocation was garbage and,
   * kept as the map's key, a third of what each scavenge copied; a PF's map
   * stays once made, as a host's set in `byHost` does.
   */
  private readonly byVf = new Map<string, Map<string, Map<number, Holding>>>();
  /**
   * Holdings of a VF beside the one in `byVf`. Empty but for a moment with
   * several controllers: a change another controller committed (or a late
   * echo of this one's) can reach the index while a reservation made here
   * for the same VF is still being written, and one of the two will be
   * released. Until then the VF stays taken, whichever goes first.
   */
  private readonly shadowed = new Map<string, Holding[]>();
  private readonly byHost = new Map<string, Set<Holding>>();
  /**
   * Host → PCI addresses of its drained PFs. Kept apart from the host entries,
   * like holdings, so a re-report loaded just after a drain (both in flight at
   * once) cannot undo it: it changes through `load` and `setDrained` only.
   */
  private readonly drained = new Map<string, Set<string>>();

  /** Guarantees on a PF may add up to its link speed × `bandwidthRatio`. */
  constructor(private readonly bandwidthRatio: number) {}

  /** Replace everything. Allocations not in a holding state are ignored. */
  load(hosts: Iterable<HostRecord>, allocations: Iterable<Allocation>, physnets: Iterable<Physnet>, tenants: Iterable<Tenant> = []): void {
    this.hosts.clear();
    this.pools.clear();
    this.physnets.clear();
    this.holdings.clear();
    this.byVf.clear();
    this.shadowed.clear();
    this.byHost.clear();
    this.drained.clear();
    this.groups.clear();
    this.tenantGroups.clear();
    for (const p of physnets) this.putPhysnet(p);
    for (const t of tenants) this.setTenantGroup(t);
    // The store guarantees one holding allocation per VF, so none is checked here.
    for (const a of allocations) if (HOLDING_STATES.includes(a.state)) this.hold(a);
    for (const h of hosts) this.loadHost(h);
  }

  putPhysnet(p: Physnet): void {
    this.physnets.set(p.name, p);
  }

  isAccountingOnly(physnet: string): boolean {
    return this.physnets.get(physnet)?.accountingOnly ?? false;
  }

  physnet(name: string): Physnet | undefined {
    return this.physnets.get(name);
  }

  isGroupsAccountingOnly(physnet: string): boolean {
    return this.physnets.get(physnet)?.groupsAccountingOnly ?? false;
  }

  tenantGroup(tenant: string): TenantGroup | undefined {
    return this.tenantGroups.get(tenant);
  }

  /**
   * A tenant created or changed (its group set, changed or cleared): the PFs
   * where it holds VFs count its new share in place of the old. Unchecked:
   * the caller refused a group that no longer fits.
   */
  putTenant(t: Tenant): void {
    const [before, after] = [this.tenantGroups.get(t.name), groupOfTenant(t)];
    if (before?.shareMbps === after?.shareMbps && before?.maxMbps === after?.maxMbps) return;
    const touched: PfEntry[] = [];
    for (const host of this.hosts.values()) {
      for (const pf of host.pfs.values()) if (pf.tenants.has(t.name)) touched.push(pf);
    }
    for (const pf of touched) pf.committedMbps -= this.chargeOn(pf, t.name);
    this.setTenantGroup(t);
    for (const pf of touched) {
      pf.committedMbps += this.chargeOn(pf, t.name);
      this.poolOf(pf)?.refile(pf);
    }
  }

  /** A tenant deleted: it holds nothing (it has no networks left). */
  removeTenant(name: string): void {
    this.tenantGroups.delete(name);
  }

  private setTenantGroup(t: Tenant): void {
    const group = groupOfTenant(t);
    if (group) this.tenantGroups.set(t.name, group);
    else this.tenantGroups.delete(t.name);
  }

  /** What the tenant's holdings on `pf` commit there, with its group as the index has it. */
  private chargeOn(pf: PfEntry, tenant: string): number {
    const usage = pf.tenants.get(tenant);
    return usage === undefined ? 0 : chargeMbps(this.tenantGroups.get(tenant), usage.vfs, usage.minTxRateMbps);
  }

  /** Adds (sign 1) or takes away (-1) `h`'s holding in its tenant's usage of `pf`, and the committed bandwidth with it. */
  private count(pf: PfEntry, h: Holding, sign: 1 | -1): void {
    const before = this.chargeOn(pf, h.tenant);
    const usage = pf.tenants.get(h.tenant) ?? { vfs: 0, minTxRateMbps: 0 };
    usage.vfs += sign;
    usage.minTxRateMbps += sign * h.minTxRateMbps;
    if (usage.vfs > 0) pf.tenants.set(h.tenant, usage);
    else pf.tenants.delete(h.tenant);
    pf.committedMbps += this.chargeOn(pf, h.tenant) - before;
  }

  /**
   * Add or replace a host (its inventory, node-policy physnets and state).
   * Its drained PFs come from the record only the first time the index sees
   * the host; after that from `setDrained` (see `drained`).
   */
  loadHost(record: HostRecord): void {
    const old = this.hosts.get(record.name);
    if (old) this.unpool(old);
    let drained = this.drained.get(record.name);
    if (!drained) this.drained.set(record.name, (drained = new Set(record.drainedPfs)));
    const host = buildHostEntry(record, drained);
    this.hosts.set(host.name, host);
    for (const h of this.byHost.get(host.name) ?? []) this.take(host, h);
    for (const pf of host.pfs.values()) this.poolOf(pf)?.add(pf);
  }

  removeHost(name: string): boolean {
    const host = this.hosts.get(name);
    if (!host) return false;
    this.unpool(host);
    this.drained.delete(name);
    return this.hosts.delete(name);
  }

  /** Make exactly `pfPciAddresses` the host's drained PFs; false for a host the index does not know. */
  setDrained(name: string, pfPciAddresses: Iterable<string>): boolean {
    const host = this.hosts.get(name);
    if (!host) return false;
    const drained = new Set(pfPciAddresses);
    this.drained.set(name, drained);
    for (const pf of host.pfs.values()) {
      pf.drained = drained.has(pf.pciAddress);
      this.poolOf(pf)?.refresh(pf);
    }
    return true;
  }

  setHostState(name: string, state: HostState): boolean {
    const host = this.hosts.get(name);
    if (!host) return false;
    host.state = state;
    for (const pf of host.pfs.values()) this.poolOf(pf)?.refresh(pf);
    return true;
  }

  host(name: string): HostEntry | undefined {
    return this.hosts.get(name);
  }

  /** Every host the index knows, in no promised order (read-only: host summaries). */
  hostEntries(): IterableIterator<HostEntry> {
    return this.hosts.values();
  }

  /** PCI addresses of the host's drained PFs, including any that left its report. */
  drainedPfs(name: string): ReadonlySet<string> {
    return this.drained.get(name) ?? new Set();
  }

  pool(physnet: string, deviceType: PfEntry['deviceType']): PfPool | undefined {
    return this.pools.get(physnet)?.get(deviceType);
  }

  holder(host: string, pfPciAddress: string, vfIndex: number): Holding | undefined {
    return this.byVf.get(host)?.get(pfPciAddress)?.get(vfIndex);
  }

  holding(id: string): Holding | undefined {
    return this.holdings.get(id);
  }

  /** Every holding, in no promised order (read-only: what `/metrics` sums per PF). */
  holdingEntries(): IterableIterator<Holding> {
    return this.holdings.values();
  }

  /** Record that `a` holds its VF, its guarantee and its group slot. Unchecked: Scheduler.reserve checks. */
  hold(a: Allocation): void {
    const h: Holding = {
      id: a.id,
      host: a.host,
      pfPciAddress: a.pfPciAddress,
      vfIndex: a.vfIndex,
      minTxRateMbps: a.minTxRateMbps,
      tenant: a.tenant,
      network: a.network,
      group: a.group === null ? null : groupKey(a.workload, a.group),
    };
    this.holdings.set(h.id, h);
    const onPf = this.heldOn(h.host, h.pfPciAddress);
    const other = onPf.get(h.vfIndex);
    if (other) {
      const key = vfKey(h);
      this.shadowed.set(key, [...(this.shadowed.get(key) ?? []), other]);
    }
    onPf.set(h.vfIndex, h);
    let onHost = this.byHost.get(h.host);
    if (!onHost) this.byHost.set(h.host, (onHost = new Set()));
    onHost.add(h);
    if (h.group !== null) this.groups.add(h.group, h.host, pfKey(h.host, h.pfPciAddress));
    const host = this.hosts.get(h.host);
    if (host) this.take(host, h);
  }

  /** Give back what allocation `id` holds; false when it held nothing. */
  release(id: string): boolean {
    const h = this.holdings.get(id);
    if (!h) return false;
    this.holdings.delete(id);
    const stillHeld = this.unlinkVf(h);
    this.byHost.get(h.host)?.delete(h);
    if (h.group !== null) this.groups.remove(h.group, h.host, pfKey(h.host, h.pfPciAddress));
    const pf = this.hosts.get(h.host)?.pfs.get(h.pfPciAddress);
    if (pf) {
      if (pf.vfPci.has(h.vfIndex) && !stillHeld) pf.free.add(h.vfIndex);
      this.count(pf, h, -1);
      this.poolOf(pf)?.refile(pf);
    }
    return true;
  }

  /** Takes `h` off its VF; true when another holding still holds the VF. */
  private unlinkVf(h: Holding): boolean {
    const onPf = this.heldOn(h.host, h.pfPciAddress);
    // Shadowed holdings are rare and brief (several controllers): a key is made only while there are some.
    const key = this.shadowed.size === 0 ? undefined : vfKey(h);
    const others = key === undefined ? [] : (this.shadowed.get(key) ?? []).filter((o) => o !== h);
    if (onPf.get(h.vfIndex) === h) {
      const next = others.pop();
      if (next) onPf.set(h.vfIndex, next);
      else onPf.delete(h.vfIndex);
    }
    if (key !== undefined) {
      if (others.length) this.shadowed.set(key, others);
      else this.shadowed.delete(key);
    }
    return onPf.has(h.vfIndex);
  }

  /** The holdings on a PF by VF index; made on the PF's first. */
  private heldOn(host: string, pfPciAddress: string): Map<number, Holding> {
    let onHost = this.byVf.get(host);
    if (!onHost) this.byVf.set(host, (onHost = new Map()));
    let onPf = onHost.get(pfPciAddress);
    if (!onPf) onHost.set(pfPciAddress, (onPf = new Map()));
    return onPf;
  }

  /** Apply a holding to the host's PF entry, if the PF is still in the inventory. */
  private take(host: HostEntry, h: Holding): void {
    const pf = host.pfs.get(h.pfPciAddress);
    if (!pf) return;
    pf.free.delete(h.vfIndex);
    this.count(pf, h, 1);
    this.poolOf(pf)?.refile(pf);
  }

  private unpool(host: HostEntry): void {
    for (const pf of host.pfs.values()) this.poolOf(pf)?.remove(pf);
  }

  private poolOf(pf: PfEntry): PfPool | undefined {
    if (pf.physnet === null) return undefined;
    let byType = this.pools.get(pf.physnet);
    if (!byType) this.pools.set(pf.physnet, (byType = new Map()));
    let pool = byType.get(pf.deviceType);
    if (!pool) byType.set(pf.deviceType, (pool = new PfPool(this.bandwidthRatio)));
    return pool;
  }
}

/** A VF's key in `shadowed`. */
const vfKey = (h: Holding): string => `${h.host}|${h.pfPciAddress}|${h.vfIndex}`;


