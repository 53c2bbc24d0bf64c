/**
 * The VF scheduler: picks host, PF and VF for a network from the capacity
 * index, in microseconds and deterministically (same index, same request →
 * same answer).
 *
 * `choose` only decides; `reserve` records an allocation the caller has
 * built from the placement, re-checking that nothing took its VF, guarantee
 * or group slot meanwhile (CONFLICT if so). The caller may reserve after the
 * store write, or before it and `release` if the write fails; the latter keeps
 * requests in flight during one write from all picking the same VF.
 */
import { HOLDING_STATES, type Allocation, type HostRecord, type HostState, type Physnet, type Tenant } from '../domain/types.js';
import { claimConflict, invalid, SriovError } from '../host/errors.js';
import { admits, carriesGuarantee, guaranteeCapacityMbps, headroomMbps, inGroup, type Admission } from './admission.js';
import { CapacityIndex, type Holding } from './capacity-index.js';
import { precedes, type HostEntry, type PfEntry } from './entries.js';
import { groupKey } from './group-usage.js';
import { drainedNote, refusal, type RefusalReason } from './refusal.js';
import { RepresentorBook } from './representors.js';
import { groupRefusal, reserveGroupConflict } from './group-refusal.js';
import { groupMisfit, groupPf, type GroupMisfit, type GroupPf } from './group-view.js';
import type { TenantGroup } from './tenant-groups.js';
import type { Placement, PlacementPolicy, PlacementRequest, SchedulerOptions } from './types.js';

export class Scheduler {
  private index: CapacityIndex;
  private readonly policy: PlacementPolicy;
  private readonly bandwidthRatio: number;
  private readonly vfStart: number;
  private book = new RepresentorBook();

  constructor(opts: SchedulerOptions = {}) {
    this.policy = opts.policy ?? 'pack';
    this.bandwidthRatio = opts.bandwidthRatio ?? 1;
    if (!(this.bandwidthRatio > 0 && Number.isFinite(this.bandwidthRatio))) {
      throw invalid(`bandwidth ratio must be a positive number, got ${opts.bandwidthRatio}`);
    }
    this.vfStart = opts.vfStart ?? 0;
    if (!(this.vfStart >= 0 && this.vfStart < 1)) throw invalid(`VF start must be a fraction in [0, 1), got ${opts.vfStart}`);
    this.index = new CapacityIndex(this.bandwidthRatio);
  }

  /** The policy, ratio and VF start it decides with: a planner's private scheduler (a drain's) decides the same way. */
  get options(): Required<SchedulerOptions> {
    return { policy: this.policy, bandwidthRatio: this.bandwidthRatio, vfStart: this.vfStart };
  }

  /** VF representors from the hosts' inventories (switchdev), for the allocations' `representor`. */
  get representors(): RepresentorBook {
    return this.book;
  }

  /** Replace the whole index: hosts, allocations in a holding state, physnets, and tenants (their bandwidth groups). */
  load(hosts: Iterable<HostRecord>, allocations: Iterable<Allocation>, physnets: Iterable<Physnet>, tenants: Iterable<Tenant> = []): void {
    const rebuild = this.rebuild(allocations, physnets, tenants);
    for (const h of hosts) rebuild.addHost(h);
    rebuild.commit();
  }

  /**
   * A whole new index built aside, its hosts added as they are read (a
   * controller's start reads a fleet's records a page at a time, and keeps
   * none): this one decides as before until `commit` replaces it at once.
   */
  rebuild(allocations: Iterable<Allocation>, physnets: Iterable<Physnet>, tenants: Iterable<Tenant> = []): { addHost(h: HostRecord): void; commit(): void } {
    const index = new CapacityIndex(this.bandwidthRatio);
    const book = new RepresentorBook();
    index.load([], allocations, physnets, tenants);
    return {
      addHost: (h) => {
        index.loadHost(h);
        book.load(h);
      },
      commit: () => {
        this.index = index;
        this.book = book;
      },
    };
  }

  /** A tenant created or changed: its bandwidth group counts from now on, on the PFs where it holds VFs. */
  putTenant(tenant: Tenant): void {
    this.index.putTenant(tenant);
  }

  removeTenant(name: string): void {
    this.index.removeTenant(name);
  }

  /** The tenant's bandwidth group as admission counts it; undefined when it has none. */
  tenantGroup(tenant: string): TenantGroup | undefined {
    return this.index.tenantGroup(tenant);
  }

  /**
   * How the tenant's group stands on each PF where it holds VFs, and on each
   * PF of `physnets` (its networks'), in host and PCI order.
   */
  groupPfs(tenant: string, physnets: Iterable<string>): GroupPf[] {
    const wanted = new Set(physnets);
    const pfs: PfEntry[] = [];
    for (const host of this.index.hostEntries()) {
      for (const pf of host.pfs.values()) if (pf.tenants.has(tenant) || (pf.physnet !== null && wanted.has(pf.physnet))) pfs.push(pf);
    }
    pfs.sort((x, y) => (precedes(x, y) ? -1 : precedes(y, x) ? 1 : 0));
    return pfs.map((pf) => groupPf(pf, tenant, pf.physnet === null ? undefined : this.index.physnet(pf.physnet)));
  }

  /** The PFs where the tenant holds VFs that `group` (undefined: none) would no longer fit, in host and PCI order. */
  groupMisfits(tenant: string, group: TenantGroup | undefined): GroupMisfit[] {
    const before = this.index.tenantGroup(tenant);
    const out: GroupMisfit[] = [];
    for (const host of this.index.hostEntries()) {
      for (const pf of host.pfs.values()) {
        const misfit = groupMisfit(pf, tenant, before, group, this.bandwidthRatio);
        if (misfit) out.push(misfit);
      }
    }
    return out.sort((x, y) => (precedes(x.pf, y.pf) ? -1 : precedes(y.pf, x.pf) ? 1 : 0));
  }

  /** Whether the NIC enforces tenant groups on the PF (switchdev, a driver with rate nodes); false for a PF the index does not know. */
  enforcesGroups(host: string, pfPciAddress: string): boolean {
    return this.index.host(host)?.pfs.get(pfPciAddress)?.enforcesGroups ?? false;
  }

  /**
   * The link speeds (Mbps) the hosts report for the PFs their node policies
   * put on `physnet` (a network's rates are checked against the fastest);
   * PFs that report none are left out.
   */
  linkSpeedsOn(physnet: string): number[] {
    const speeds: number[] = [];
    for (const host of this.index.hostEntries()) {
      for (const pf of host.pfs.values()) if (pf.physnet === physnet && pf.reportedLinkSpeedMbps != null) speeds.push(pf.reportedLinkSpeedMbps);
    }
    return speeds;
  }

  /** The fastest known link speed among the PFs the index knows (Mbps); null when none is known. */
  fastestLinkMbps(): number | null {
    let fastest: number | null = null;
    for (const host of this.index.hostEntries()) {
      for (const pf of host.pfs.values()) if (pf.linkSpeedMbps !== null && (fastest === null || pf.linkSpeedMbps > fastest)) fastest = pf.linkSpeedMbps;
    }
    return fastest;
  }

  loadHost(host: HostRecord): void {
    this.index.loadHost(host);
    this.book.load(host);
  }

  removeHost(name: string): boolean {
    this.book.remove(name);
    return this.index.removeHost(name);
  }

  setHostState(name: string, state: HostState): boolean {
    return this.index.setHostState(name, state);
  }

  /**
   * Make exactly these PFs (PCI addresses) of `host` drained: they take no new
   * allocation, and the allocations they have keep their VFs. False for a
   * host the index does not know.
   */
  setDrained(host: string, pfPciAddresses: Iterable<string>): boolean {
    return this.index.setDrained(host, pfPciAddresses);
  }

  putPhysnet(physnet: Physnet): void {
    this.index.putPhysnet(physnet);
  }

  /** The index's hosts, read-only, for summaries (`GET /v1/hosts`): entries are live, do not keep them. */
  hosts(): Iterable<HostEntry> {
    return this.index.hostEntries();
  }

  drainedPfs(host: string): ReadonlySet<string> {
    return this.index.drainedPfs(host);
  }

  /** The allocations holding a VF, as the index has them (read-only: `/metrics`' committed max rates). */
  holdings(): Iterable<Holding> {
    return this.index.holdingEntries();
  }

  /** Decide where a VF of `req.network` goes. Throws NO_CAPACITY saying why when nowhere. */
  choose(req: PlacementRequest): Placement {
    const a = this.admission(req);
    if (req.pciAddress !== undefined) return this.choosePinned(req, a);
    const pf = this.search(req, a);
    if (!pf) throw refusal(this.candidates(req), req, a);
    return placement(pf, this.vfStart === 0 ? pf.free.lowest() : pf.free.firstFrom(this.vfStart * pf.vfPci.size));
  }

  /**
   * One exact VF (a device plugin already picked it): it must be on the
   * pinned host, match the network, be free and pass admission.
   */
  private choosePinned(req: PlacementRequest, a: Admission): Placement {
    if (req.host === undefined) throw invalid(`a pinned VF (${req.pciAddress}) needs its host`);
    const host = this.index.host(req.host);
    if (!host) throw new SriovError('NOT_FOUND', `host ${req.host} is not known`, { object: req.host, nothingChanged: true });
    const pf = [...host.pfs.values()].find((p) => p.vfPci.indexOf(req.pciAddress!) !== undefined);
    const object = `${req.host}/${req.pciAddress}`;
    const refuse = (reason: RefusalReason, why: string) => new SriovError('NO_CAPACITY', `VF ${object} ${why}`, { object, nothingChanged: true, data: { reason } });
    if (!pf) throw new SriovError('NOT_FOUND', `VF ${object} is not in the host's inventory`, { object, nothingChanged: true });
    const vfIndex = pf.vfPci.indexOf(req.pciAddress!)!;
    if (host.state !== 'ready') throw refuse('host-unreachable', `is on an unreachable host`);
    if (pf.physnet !== req.network.physnet || pf.deviceType !== req.network.deviceType) {
      throw refuse('placement', `is on ${pf.name}, which is not on physnet ${req.network.physnet} with device type ${req.network.deviceType}`);
    }
    // Before "held": a drained PF's VF stays refused once its holder is gone, so that is the lasting reason.
    if (pf.drained) throw refuse('drained', `is on PF ${pf.name}: ${drainedNote([pf])}`);
    if (!pf.free.has(vfIndex)) throw refuse('held', 'is held by another allocation');
    if (!admits(pf, a)) throw pinnedRefusal(pf, a, req, object);
    return placement(pf, vfIndex);
  }

  /**
   * How many VFs on `host` a request for `network` could be placed on now
   * (PFs of its physnet and device type that admit its guarantee), and the
   * host's state; null for a host the index does not know.
   */
  freeVfs(network: PlacementRequest['network'], host: string): { hostState: HostState; freeVfs: number } | null {
    const entry = this.index.host(host);
    if (!entry) return null;
    // A request of no workload in particular: no group, no NUMA node.
    const probe: PlacementRequest = { network, host, workload: { kind: 'container', name: '-' } };
    const a = this.admission(probe);
    let freeVfs = 0;
    for (const pf of this.candidates(probe)) if (admits(pf, a)) freeVfs += pf.free.size;
    return { hostState: entry.state, freeVfs };
  }

  /**
   * The link speed the inventory reports for a PF (null: none reported);
   * undefined for a PF the index does not know. What the API checks a
   * placed network's rates against, without reading the host's record.
   */
  reportedLinkSpeed(host: string, pfPciAddress: string): number | null | undefined {
    return this.index.host(host)?.pfs.get(pfPciAddress)?.reportedLinkSpeedMbps;
  }

  /**
   * What guarantees on a PF may add up to (its link speed × the bandwidth
   * ratio): what the store checks a new allocation's guarantee against, as
   * this controller admitted it. Null when the link speed is unknown;
   * undefined for a PF the index does not know.
   */
  guaranteeCapacity(host: string, pfPciAddress: string): number | null | undefined {
    const pf = this.index.host(host)?.pfs.get(pfPciAddress);
    return pf && guaranteeCapacityMbps(pf, this.bandwidthRatio);
  }

  /** Record that `a` holds its VF; CONFLICT when the VF, guarantee or group slot went meanwhile. */
  reserve(a: Allocation): void {
    if (!HOLDING_STATES.includes(a.state)) {
      throw invalid(`allocation ${a.id} is ${a.state}; only an allocation in a holding state reserves a VF`, a.id);
    }
    if (this.index.holding(a.id)) throw conflict(`allocation ${a.id} is already reserved`, a.id);
    const pf = this.index.host(a.host)?.pfs.get(a.pfPciAddress);
    if (!pf || !pf.vfPci.has(a.vfIndex)) throw conflict(`${vfObject(a)} is no longer in the inventory`, vfObject(a));
    if (pf.drained) throw conflict(`${a.host}/${a.pf} was drained meanwhile; it takes no new allocation`, vfObject(a));
    const holder = this.index.holder(a.host, a.pfPciAddress, a.vfIndex);
    if (holder) throw claimConflict('vf', `${vfObject(a)} is held by allocation ${holder.id}`, vfObject(a));
    const tenantGroup = this.index.tenantGroup(a.tenant);
    const headroom = headroomMbps(pf, this.bandwidthRatio);
    if (tenantGroup !== undefined) {
      const refused = reserveGroupConflict(pf, tenantGroup, a.minTxRateMbps, this.bandwidthRatio);
      if (refused) throw claimConflict('bandwidth', `${vfObject(a)}: ${refused}`, vfObject(a));
    } else if (a.minTxRateMbps > 0 && (headroom === null || a.minTxRateMbps > headroom)) {
      throw claimConflict('bandwidth', `guarantee of ${a.minTxRateMbps} Mbps no longer fits on ${a.host}/${a.pf} (headroom ${headroom ?? 0} Mbps)`, vfObject(a));
    }
    if (a.group !== null && this.index.groups.get(groupKey(a.workload, a.group))?.pfs.has(pf.key)) {
      throw claimConflict('group', `redundancy group "${a.group}" of ${a.workload.kind} ${a.workload.name} already has a VF on ${a.host}/${a.pf}`, vfObject(a));
    }
    this.index.hold(a);
  }

  /**
   * Record a holding the store already committed (another controller's, seen
   * through the store's watch): no check, as the store's invariants held for
   * it. False when `a` is not holding or already recorded.
   */
  adopt(a: Allocation): boolean {
    if (!HOLDING_STATES.includes(a.state) || this.index.holding(a.id)) return false;
    this.index.hold(a);
    return true;
  }

  /** Whether allocation `id` holds a VF in the index. */
  holds(id: string): boolean {
    return this.index.holding(id) !== undefined;
  }

  /** Give back the VF, guarantee and group slot of allocation `a`; false when it held none. */
  release(a: Pick<Allocation, 'id'>): boolean {
    return this.index.release(a.id);
  }

  private admission(req: PlacementRequest): Admission {
    const { network, group } = req;
    return {
      numaNode: (req.numaPolicy ?? 'required') === 'required' ? req.numaNode : undefined,
      guaranteeMbps: network.minTxRateMbps,
      accountingOnly: this.index.isAccountingOnly(network.physnet),
      bandwidthRatio: this.bandwidthRatio,
      group: group == null ? undefined : this.index.groups.get(groupKey(req.workload, group)),
      groupAcrossHosts: req.groupAcrossHosts ?? false,
      tenantGroup: this.index.tenantGroup(network.tenant),
      groupsAccountingOnly: this.index.isGroupsAccountingOnly(network.physnet),
    };
  }

  /** A preferred NUMA node is tried first, then any node. */
  private search(req: PlacementRequest, a: Admission): PfEntry | undefined {
    if (req.numaNode !== undefined && a.numaNode === undefined) {
      const onNode = this.searchWith(req, { ...a, numaNode: req.numaNode });
      if (onNode) return onNode;
    }
    return this.searchWith(req, a);
  }

  private searchWith(req: PlacementRequest, a: Admission): PfEntry | undefined {
    const policy = req.policy ?? this.policy;
    if (req.host !== undefined) return this.searchHost(req, a, policy);
    const pool = this.index.pool(req.network.physnet, req.network.deviceType);
    return pool?.find(policy, a);
  }

  /** A pinned host has a handful of PFs: compare them directly. */
  private searchHost(req: PlacementRequest, a: Admission, policy: PlacementPolicy): PfEntry | undefined {
    const host = this.index.host(req.host!);
    if (!host) throw new SriovError('NOT_FOUND', `host ${req.host} is not known`, { object: req.host, nothingChanged: true });
    if (host.state !== 'ready') return undefined;
    let best: PfEntry | undefined;
    for (const pf of this.candidates(req)) {
      if (pf.free.size > 0 && admits(pf, a) && (best === undefined || better(pf, best, policy))) best = pf;
    }
    return best;
  }

  /** Every PF matching the request's physnet, device type and pinned host, whatever its state. */
  private candidates(req: PlacementRequest): Iterable<PfEntry> {
    const { physnet, deviceType } = req.network;
    if (req.host === undefined) return this.index.pool(physnet, deviceType)?.members ?? [];
    const pfs = [...(this.index.host(req.host)?.pfs.values() ?? [])];
    return pfs.filter(
      (pf) =>
        pf.physnet === physnet &&
        pf.deviceType === deviceType &&
        (req.pfPciAddress === undefined || pf.pciAddress === req.pfPciAddress) &&
        pf.pciAddress !== req.avoidPfPciAddress,
    );
  }
}

function placement(pf: PfEntry, vfIndex: number): Placement {
  return {
    host: pf.host.name,
    pf: pf.name,
    pfPciAddress: pf.pciAddress,
    vfIndex,
    pciAddress: pf.vfPci.get(vfIndex)!,
    numaNode: pf.numaNode,
  };
}

/** Pack prefers the PF with fewer free VFs, spread the one with more; then host and PCI order. */
function better(pf: PfEntry, than: PfEntry, policy: PlacementPolicy): boolean {
  if (pf.free.size !== than.free.size) return policy === 'pack' ? pf.free.size < than.free.size : pf.free.size > than.free.size;
  return precedes(pf, than);
}

/**
 * Why the PF of a pinned VF does not admit the request, naming the PF and,
 * for a guarantee, its headroom: the device plugin's user learns which PF
 * was too full and by how much (the node-level count cannot show it).
 */
function pinnedRefusal(pf: PfEntry, a: Admission, req: PlacementRequest, object: string): SriovError {
  const where = `${pf.host.name}/${pf.name}`;
  const headroom = headroomMbps(pf, a.bandwidthRatio);
  const data = { pf: where, pfPciAddress: pf.pciAddress, guaranteeMbps: a.guaranteeMbps, headroomMbps: headroom === null ? null : Math.floor(headroom) };
  const refuse = (reason: RefusalReason, why: string) => new SriovError('NO_CAPACITY', `VF ${object} ${why}`, { object, nothingChanged: true, data: { reason, ...data } });
  if (a.numaNode !== undefined && pf.numaNode !== a.numaNode) return refuse('numa', `is on PF ${where}, on NUMA node ${pf.numaNode ?? 'unknown'}, not ${a.numaNode}`);
  if (inGroup(pf, a)) return refuse('group', `is on PF ${where}, where redundancy group "${req.group}" of ${req.workload.kind} ${req.workload.name} already has a VF`);
  const group = a.tenantGroup === undefined ? null : groupRefusal(pf, a, a.tenantGroup, req.network.physnet);
  if (group) return refuse(group.reason, `is on PF ${where}, ${group.why}`);
  if (!carriesGuarantee(pf, a.accountingOnly)) {
    return refuse(
      'not-enforcing',
      `is on PF ${where}, whose driver ${pf.driver ?? 'unknown'} does not enforce min_tx_rate, which a guarantee of ${a.guaranteeMbps} Mbps needs, ` +
        `and physnet ${req.network.physnet} is not accountingOnly`,
    );
  }
  if (headroom === null) return refuse('link-speed-unknown', `is on PF ${where}, whose link speed is unknown (link down?), so no guarantee of ${a.guaranteeMbps} Mbps fits`);
  return refuse(
    'headroom',
    `is on PF ${where}, where a guarantee of ${a.guaranteeMbps} Mbps does not fit: its headroom is ${Math.floor(headroom)} Mbps ` +
      `(${pf.linkSpeedMbps} Mbps link × ${a.bandwidthRatio}, ${pf.committedMbps} Mbps committed); pick a VF on a PF with headroom`,
  );
}

function conflict(message: string, object: string): SriovError {
  return new SriovError('CONFLICT', message, { object, nothingChanged: true });
}

/** How a refusal names the VF an allocation holds: built for a refusal only, as its text for every allocation was garbage. */
function vfObject(a: Allocation): string {
  return `${a.host}/${a.pf} vf ${a.vfIndex}`;
}
