/**
 * The store's operations on one etcd transaction buffer (buffer.ts). Each
 * invariant SQLite keeps with a unique index or trigger is a claim key here
 * (keys.ts), read in the same transaction as the record it guards: a racing
 * writer then changes a key this transaction read, and its commit fails.
 */
import {
  HOLDING_STATES,
  type Allocation,
  type AllocationMigration,
  type AllocationState,
  type Attachment,
  type AuditEvent,
  type HostRecord,
  type Migration,
  type Network,
  type Physnet,
  type StoredPolicy,
  type Tenant,
  type TokenRecord,
} from '../../domain/types.js';
import { claimConflict as conflict, type SriovError } from '../../host/errors.js';
import { matchesFilter, networkGone, networkInUse, overCommitted, type BandwidthCheck, type AllocationFilter, type MigrationFilter, type NetworkFilter, type NewAuditEvent, type PagedHost, type StoreTx } from '../store.js';
import type { TxnBuffer } from './buffer.js';
import * as codec from './codec.js';
import type { Keys } from './keys.js';
import { prefixEnd, RANGE_PAGE } from './kv.js';
import { INDEXED_FIELDS, indexedValue, type AllocationIndex } from './allocation-index.js';
import { limitsOf, sameLimits, type GroupCheck } from '../group-charge.js';
import { moveGroupHolding, NO_GROUPS, readGroups, regroup, tenantHoldings } from './tenant-groups.js';

const DEFAULT_EVENT_LIMIT = 1000;
/** Host records carry their inventory (~100 KB): fewer per range page. */
const HOST_PAGE = 16;
/** An audit record holds a batch's events (up to one Txn's bytes): fewer per range page too. */
const AUDIT_PAGE = 32;
const ACTIVE_MIGRATION: ReadonlySet<Migration['state']> = new Set(['running', 'rolling-back']);

const holding = (a: Allocation) => HOLDING_STATES.includes(a.state);
const byKey = <T>(key: (x: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

function withHolder(err: SriovError, holder: string): SriovError {
  err.details.data = { ...err.details.data, holder };
  return err;
}

/** What `a` adds to its PF's committed guarantees: its own, while it holds its VF. */
const guaranteeOf = (a: Allocation | null) => (a !== null && holding(a) ? a.minTxRateMbps : 0);

/** The part of a key after `prefix` (an id, an address). */
const tail = (key: string, prefix: string) => key.slice(prefix.length);

export class EtcdTx implements StoreTx {
  constructor(
    private readonly b: TxnBuffer,
    private readonly k: Keys,
    /** The audit/in/ key this batch appends its events to; none for reads outside a transaction. */
    private readonly inbox?: string,
  ) {}

  // --- helpers (on the prototype too: run.ts wraps only the names that do not start with '_')

  private async _read<T>(key: string, decode: (text: string) => T): Promise<T | null> {
    const text = await this.b.get(key);
    return text === null ? null : decode(text);
  }

  private async _all<T>(prefix: string, decode: (text: string) => T, pageSize?: number): Promise<T[]> {
    const out: T[] = [];
    for await (const page of this.b.scan(prefix, prefixEnd(prefix), { pageSize })) {
      for (const kv of page) out.push(decode(kv.value));
    }
    return out;
  }

  private async _keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for await (const page of this.b.scan(prefix, prefixEnd(prefix), { keysOnly: true })) {
      for (const kv of page) out.push(tail(kv.key, prefix));
    }
    return out;
  }

  // --- the catalogue

  async listTenants(): Promise<Tenant[]> {
    return this._all(this.k.ranges.tenants, codec.decodeTenant);
  }

  async getTenant(name: string): Promise<Tenant | null> {
    return this._read(this.k.tenant(name), codec.decodeTenant);
  }

  /**
   * The id is set once, by the first put: an update of the same name keeps it (as SQLite's upsert).
   * A changed bandwidth group moves its charge on every PF where the tenant holds VFs (tenant-groups.ts).
   */
  async putTenant(t: Tenant, check?: GroupCheck): Promise<void> {
    const [existing, groups] = await Promise.all([this.getTenant(t.name), readGroups(this.b, this.k)]);
    const after = limitsOf(t);
    if (!sameLimits(groups.get(t.name) ?? null, after)) {
      await regroup(this.b, this.k, t.name, after, await tenantHoldings(this.b, this.k, t.name), check);
    }
    this.b.put(this.k.tenant(t.name), codec.encode(codec.normalTenant({ ...t, id: existing?.id ?? t.id })));
  }

  /**
   * Its group leaves `tenant-groups`, and its `pf-tenants/` keys go with it:
   * VFs it still holds (the controller refuses that, the store does not, as
   * SQLite's) then count their own guarantees, as without a group.
   */
  async deleteTenant(name: string): Promise<boolean> {
    const groups = await readGroups(this.b, this.k);
    if (groups.has(name)) await regroup(this.b, this.k, name, null, await tenantHoldings(this.b, this.k, name));
    return this._delete(this.k.tenant(name));
  }

  private async _delete(key: string): Promise<boolean> {
    if (!(await this.b.has(key))) return false;
    this.b.del(key);
    return true;
  }

  async listPhysnets(): Promise<Physnet[]> {
    return this._all(this.k.ranges.physnets, codec.decodePhysnet);
  }

  async putPhysnet(p: Physnet): Promise<void> {
    this.b.put(this.k.physnet(p.name), codec.encode(codec.normalPhysnet(p)));
  }

  async listNetworks(filter: NetworkFilter = {}): Promise<Network[]> {
    const all = await this._all(this.k.ranges.networks, codec.decodeNetwork);
    const matching = all.filter(
      (n) =>
        (filter.tenant === undefined || n.tenant === filter.tenant) &&
        (filter.physnet === undefined || n.physnet === filter.physnet) &&
        (filter.vlan === undefined || n.vlan === filter.vlan),
    );
    // As SQLite: a physnet's networks by VLAN, then name; others by name (the range's order).
    return filter.physnet !== undefined ? matching.sort((a, b) => a.vlan - b.vlan || byKey<Network>((n) => n.name)(a, b)) : matching;
  }

  async getNetwork(name: string): Promise<Network | null> {
    return this._read(this.k.network(name), codec.decodeNetwork);
  }

  /** One tenant per (physnet, VLAN): the segment key names its tenant and networks. */
  async putNetwork(n: Network): Promise<void> {
    const old = await this.getNetwork(n.name);
    const segKey = this.k.segment(n.physnet, n.vlan);
    const seg = await this._read(segKey, codec.decodeSegment);
    const others = (seg?.networks ?? []).filter((name) => name !== n.name);
    if (seg && seg.tenant !== n.tenant && others.length > 0) {
      // The store does not know who asks: it never names the owner (another tenant's data).
      throw conflict('vlan', `VLAN ${n.vlan} on physnet ${n.physnet} is taken by another tenant`, n.name);
    }
    if (old && (old.physnet !== n.physnet || old.vlan !== n.vlan)) await this._leaveSegment(old);
    this.b.put(segKey, codec.encode({ tenant: n.tenant, networks: [...others, n.name].sort() }));
    this.b.put(this.k.network(n.name), codec.encode(codec.normalNetwork(n)));
  }

  private async _leaveSegment(n: Network): Promise<void> {
    const key = this.k.segment(n.physnet, n.vlan);
    const seg = await this._read(key, codec.decodeSegment);
    const rest = (seg?.networks ?? []).filter((name) => name !== n.name);
    if (rest.length === 0) this.b.del(key);
    else this.b.put(key, codec.encode({ tenant: seg!.tenant, networks: rest }));
  }

  /** The list by network depends on `added/allocations/network/<name>`, which an insert on it writes: the two conflict. */
  async deleteNetwork(name: string): Promise<boolean> {
    const [old, held] = await Promise.all([this.getNetwork(name), this.listAllocations({ network: name, holding: true, limit: 1 })]);
    if (held.length > 0) throw networkInUse(name);
    if (old === null) return false;
    await this._leaveSegment(old);
    this.b.del(this.k.network(name));
    return true;
  }

  // --- hosts

  async listHosts(): Promise<HostRecord[]> {
    const hosts: HostRecord[] = [];
    await this.listHostPages((page) => {
      for (const { record } of page) hosts.push(record);
    });
    return hosts;
  }

  async listHostPages(each: (page: PagedHost[]) => void): Promise<void> {
    const alive = new Map<string, codec.Alive>();
    for await (const page of this.b.scan(this.k.ranges.alive, prefixEnd(this.k.ranges.alive))) {
      for (const kv of page) alive.set(tail(kv.key, this.k.ranges.alive), codec.decodeAlive(kv.value));
    }
    // Decoded page by page as they come, the next page in flight meanwhile; each merged once, not copied after.
    for await (const page of this.b.scan(this.k.ranges.hosts, prefixEnd(this.k.ranges.hosts), { pageSize: HOST_PAGE, whole: true })) {
      each(
        page.map((kv) => {
          const record = codec.decodeHost(kv.value);
          return { record: codec.mergeAlive(record, alive.get(record.name) ?? null), json: kv.value };
        }),
      );
    }
  }

  async getHost(name: string): Promise<HostRecord | null> {
    const [host, alive] = await Promise.all([this._read(this.k.host(name), codec.decodeHost), this._read(this.k.alive(name), codec.decodeAlive)]);
    return host === null ? null : codec.mergeAlive(host, alive);
  }

  /** The whole record; a heartbeat written before it (alive/) is superseded by the record's own state. */
  async putHost(h: HostRecord): Promise<void> {
    this.b.put(this.k.host(h.name), codec.encode(codec.normalHost(h)));
    this.b.del(this.k.alive(h.name));
  }

  /** Only `alive/<name>`: the record (and its inventory) is neither read nor written. */
  async touchHost(name: string, state: HostRecord['state'], at: string): Promise<boolean> {
    if (!(await this.b.has(this.k.host(name)))) return false;
    this.b.put(this.k.alive(name), codec.encode({ state, at }));
    return true;
  }

  async deleteHost(name: string): Promise<boolean> {
    if (!(await this.b.has(this.k.host(name)))) return false;
    this.b.del(this.k.host(name));
    this.b.del(this.k.alive(name));
    return true;
  }

  // --- allocations

  async listAllocations(filter: AllocationFilter = {}): Promise<Allocation[]> {
    const limit = filter.limit ?? Infinity;
    const out: Allocation[] = [];
    if (limit <= 0) return out;
    for await (const batch of this._candidates(filter)) {
      for (const a of batch) {
        if (!matchesFilter(a, filter)) continue;
        out.push(a);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  /**
   * Allocations in id order: for a host, network or tenant (the first the
   * filter names), the candidates the store's memory holds (allocation-index.ts)
   * with those this batch and the batches ahead write, each read at the
   * snapshot; else the records themselves. After `after` when paging.
   */
  private async *_candidates(filter: AllocationFilter): AsyncGenerator<Allocation[]> {
    const field = BY_SELECTIVITY.find((f) => filter[f] !== undefined);
    const index = this.b.index;
    const after = filter.limit !== undefined && filter.after !== undefined ? filter.after : undefined;
    const prefix = this.k.ranges.allocations;
    // By state alone, or holding (the metrics, a drain's snapshot): not the released ones, which only accumulate.
    const states = filter.state !== undefined ? [filter.state] : filter.holding ? HOLDING_STATES : null;
    if (index !== null && field === undefined && states !== null) {
      yield* this._inStates(index, states, after, filter.limit ?? Infinity);
      return;
    }
    if (field === undefined || index === null) {
      yield* this._records(after);
      return;
    }
    const value = String(filter[field]);
    // Depended on even when this batch writes it: an insert of this value elsewhere after the snapshot fails the commit.
    const mod = await this.b.depend(this.k.added(field, value));
    const known = await index.ids(field, value, Number(mod));
    const ids = new Set(known);
    for (const key of this.b.pendingIn(prefix, prefixEnd(prefix))) ids.add(tail(key, prefix));
    const sorted = [...ids].filter((id) => after === undefined || id > after).sort();
    for (let i = 0; i < sorted.length; i += RANGE_PAGE) {
      const found = await Promise.all(sorted.slice(i, i + RANGE_PAGE).map((id) => this.getAllocation(id)));
      yield found.filter((a): a is Allocation => a !== null && indexedValue(a, field) === value);
    }
  }

  /** Every record, in id order, after `after`. */
  private async *_records(after: string | undefined): AsyncGenerator<Allocation[]> {
    const prefix = this.k.ranges.allocations;
    const start = after !== undefined ? `${prefix}${after}\0` : prefix;
    for await (const page of this.b.scan(start, prefixEnd(prefix))) yield page.map((kv) => codec.decodeAllocation(kv.value));
  }

  /**
   * The allocations in `states` after `after`, in id order: the ids the
   * store's memory holds in those states (a superset per state,
   * allocation-index.ts) with those this batch and the batches ahead write,
   * a page at a time, each read at the snapshot; the records themselves when
   * the memory cannot answer for this snapshot, or when most records are in
   * those states anyway (AllocationIndex.mostlyIn). A page asks for no more ids
   * than the list still wants (`want`), so a page of 301 reads 301 records, not 512.
   */
  private async *_inStates(index: AllocationIndex, states: readonly AllocationState[], after: string | undefined, want: number): AsyncGenerator<Allocation[]> {
    // Depended on as the other added/ keys (_candidates): a change into a state elsewhere after the snapshot fails the commit.
    const sets = await Promise.all(
      states.map(async (state) => index.stateIds(state, Number(await this.b.depend(this.k.added('state', state))), Number(this.b.revision))),
    );
    if (sets.includes(null) || index.mostlyIn(states)) {
      yield* this._records(after);
      return;
    }
    const prefix = this.k.ranges.allocations;
    const pending = this.b.pendingIn(prefix, prefixEnd(prefix)).map((key) => tail(key, prefix)).filter((id) => after === undefined || id > after).sort();
    let cursor = after;
    let listed = 0;
    for (;;) {
      // Past `want` (other filters turned some down), whole pages.
      const size = want - listed > 0 ? Math.min(RANGE_PAGE, want - listed) : RANGE_PAGE;
      // The first `size` of the sets together: each set's first `size`, merged, cut at `size`.
      const known = [...new Set(sets.flatMap((ids) => ids!.after(cursor, size)))].sort().slice(0, size);
      const upto = known.length === size ? known[known.length - 1]! : null;
      const mine = pending.filter((id) => (cursor === undefined || id > cursor) && (upto === null || id <= upto));
      const page = [...new Set([...known, ...mine])].sort();
      const found = await Promise.all(page.map((id) => this.getAllocation(id)));
      const inStates = found.filter((a): a is Allocation => a !== null && states.includes(a.state));
      listed += inStates.length;
      if (inStates.length > 0) yield inStates;
      if (upto === null) return;
      cursor = upto;
    }
  }

  async getAllocation(id: string): Promise<Allocation | null> {
    return this._read(this.k.allocation(id), codec.decodeAllocation);
  }

  async findAllocationByIdPrefix(prefix: string, tenant?: string, host?: string): Promise<{ count: number; allocation: Allocation | null }> {
    const start = this.k.allocation(prefix);
    let count = 0;
    let first: Allocation | null = null;
    for await (const page of this.b.scan(start, prefixEnd(start))) {
      for (const kv of page) {
        const a = codec.decodeAllocation(kv.value);
        if ((tenant !== undefined && a.tenant !== tenant) || (host !== undefined && a.host !== host)) continue;
        count++;
        first ??= a;
      }
    }
    return { count, allocation: count === 1 ? first : null };
  }

  async insertAllocation(a: Allocation, check?: BandwidthCheck): Promise<void> {
    const next = codec.normalAllocation(a);
    // The reads in parallel: one round trip, not four.
    // The network's key read (and so compared at commit): a delete of it committed meanwhile fails this insert.
    const [exists, network, refused, committed, groups] = await Promise.all([
      this.b.has(this.k.allocation(a.id)),
      holding(next) ? this.b.has(this.k.network(next.network)) : true,
      failure(this._checkClaims(null, next)),
      guaranteeOf(next) > 0 ? this._committed(next) : 0,
      holding(next) ? readGroups(this.b, this.k) : NO_GROUPS,
    ]);
    if (exists) throw conflict('exists', `allocation ${a.id} already exists`, a.id);
    if (!network) throw networkGone(next);
    if (refused !== null) throw refused;
    const group = groups.get(next.tenant);
    if (group !== undefined) await moveGroupHolding(this.b, this.k, next, group, 1, check);
    const over = check === undefined || group !== undefined ? null : overCommitted(next, committed, check);
    if (over !== null) throw over;
    this._putAllocation(null, next);
    // Blind (nothing read): inserts elsewhere never conflict on them; a filtered list depends on them (_candidates).
    for (const field of INDEXED_FIELDS) this.b.put(this.k.added(field, indexedValue(next, field)), next.id);
    if (group === undefined && guaranteeOf(next) > 0) this._putCommitted(next, committed + guaranteeOf(next));
  }

  async updateAllocationState(id: string, state: AllocationState, reason: string | null, at: string): Promise<Allocation | null> {
    return this._change(id, (a) => ({ ...a, state, reason, updatedAt: at }));
  }

  async setAllocationAttachment(id: string, attachment: Attachment | null): Promise<Allocation | null> {
    return this._change(id, (a) => ({ ...a, attachment }));
  }

  /** Only an unbound claim still holding its VF: of two ADDs racing for one claim, one binds it. */
  async bindClaim(id: string, workload: string, attachment: Attachment, at: string): Promise<Allocation | null> {
    const bound = await this._change(id, (a) =>
      a.deviceClaim !== null && a.attachment === null && (a.state === 'pending' || a.state === 'configured')
        ? { ...a, workload: { ...a.workload, name: workload }, attachment, updatedAt: at }
        : null,
    );
    // Its new workload name, as an insert's: a list by workload depends on it (_candidates).
    if (bound !== null) this.b.put(this.k.added('workload', workload), id);
    return bound;
  }

  async setAllocationMigration(id: string, migration: AllocationMigration | null, at: string): Promise<Allocation | null> {
    return this._change(id, (a) => ({ ...a, migration: migration === null ? null : { id: migration.id, role: migration.role }, updatedAt: at }));
  }

  /** Reads, changes (null: leave it) and writes one allocation with its claim and index keys. */
  private async _change(id: string, edit: (a: Allocation) => Allocation | null): Promise<Allocation | null> {
    const old = await this.getAllocation(id);
    if (old === null) return null;
    const next = edit(old);
    if (next === null) return null;
    await this._writeAllocation(old, next);
    return next;
  }

  /** The keys an allocation holds besides its record: while holding, its VF and MAC. */
  private _derived(a: Allocation): Map<string, string> {
    const keys = new Map<string, string>();
    if (holding(a)) {
      keys.set(this.k.vf(a.host, a.pfPciAddress, a.vfIndex), a.id);
      keys.set(this.k.mac(macText(a.mac), a.id), codec.encode({ migration: a.migration }));
    }
    return keys;
  }

  private async _writeAllocation(old: Allocation, next: Allocation): Promise<void> {
    await this._checkClaims(old, next);
    await this._moveGuarantee(old, next);
    this._putAllocation(old, next);
  }

  // --- pf-committed/<host>/<pf>: the sum of the guarantees of the allocations holding a VF of the PF

  /** The PF's committed guarantees, read in this transaction (so a racing writer of the PF fails its commit). */
  private async _committed(a: Allocation): Promise<number> {
    const text = await this.b.get(this.k.pfCommitted(a.host, a.pfPciAddress));
    return text === null ? 0 : Number(text);
  }

  /** Absent at zero: a PF with nothing committed has no key. */
  private _putCommitted(a: Allocation, mbps: number): void {
    const key = this.k.pfCommitted(a.host, a.pfPciAddress);
    if (mbps > 0) this.b.put(key, String(mbps));
    else this.b.del(key);
  }

  /**
   * Keeps the PF's record exact when an allocation's guarantee starts or
   * stops counting (it leaves or re-enters a holding state). Accounting only:
   * the capacity check is the insert's, where a new guarantee is decided.
   */
  private async _moveGuarantee(old: Allocation, next: Allocation): Promise<void> {
    const before = guaranteeOf(old);
    const after = guaranteeOf(next);
    const samePf = old.host === next.host && old.pfPciAddress === next.pfPciAddress;
    if (samePf && holding(old) === holding(next) && old.minTxRateMbps === next.minTxRateMbps) return;
    // A group tenant's holdings count by its group (a VF without a guarantee too): tenant-groups.ts.
    const group = (await readGroups(this.b, this.k)).get(old.tenant);
    if (group !== undefined) {
      if (holding(old)) await moveGroupHolding(this.b, this.k, old, group, -1);
      if (holding(next)) await moveGroupHolding(this.b, this.k, next, group, 1);
      return;
    }
    if (samePf && before === after) return;
    if (before > 0) this._putCommitted(old, (await this._committed(old)) - before);
    if (after > 0) this._putCommitted(next, (await this._committed(next)) + after);
  }

  /** The VF and MAC `next` takes that `old` did not hold are free (of the two, the VF is named first, as SQLite does). */
  private async _checkClaims(old: Allocation | null, next: Allocation): Promise<void> {
    if (!holding(next)) return;
    const before = old ? this._derived(old) : new Map<string, string>();
    const after = this._derived(next);
    const vfKey = this.k.vf(next.host, next.pfPciAddress, next.vfIndex);
    const macKey = this.k.mac(macText(next.mac), next.id);
    const checkVf = async () => {
      if (before.has(vfKey)) return;
      const holder = await this.b.get(vfKey);
      // The holder is named (data.holder): a controller that lost the VF to another waits for that allocation to reach its memory, then decides again.
      if (holder !== null && holder !== next.id) throw withHolder(conflict('vf', `VF ${next.vfIndex} of ${next.pf} on ${next.host} is taken`, next.id), holder);
    };
    const checkMac = async () => {
      if (before.get(macKey) !== after.get(macKey)) await this._checkMac(next);
    };
    const [vf, mac] = await Promise.all([failure(checkVf()), failure(checkMac())]);
    if (vf !== null || mac !== null) throw vf ?? mac;
  }

  /** The record, and the claim and index keys that changed. */
  private _putAllocation(old: Allocation | null, next: Allocation): void {
    const before = old ? this._derived(old) : new Map<string, string>();
    const after = this._derived(next);
    for (const key of before.keys()) if (!after.has(key)) this.b.del(key);
    for (const [key, value] of after) if (before.get(key) !== value) this.b.put(key, value);
    this.b.put(this.k.allocation(next.id), codec.encode(next));
    // Blind, as an insert's added/ keys: a list by state depends on it (_inStates).
    if (old === null || old.state !== next.state) this.b.put(this.k.added('state', next.state), next.id);
  }

  /** The MAC rule: no other holder of `a`'s MAC, but its own migration's other end. */
  private async _checkMac(a: Allocation): Promise<void> {
    const prefix = this.k.macs(macText(a.mac));
    for await (const page of this.b.scan(prefix, prefixEnd(prefix))) {
      for (const kv of page) {
        if (tail(kv.key, prefix) === a.id) continue;
        const other = codec.decodeMacHolder(kv.value).migration;
        const peer = a.migration !== null && other !== null && other.id === a.migration.id && other.role !== a.migration.role;
        if (!peer) throw conflict('mac', `MAC ${a.mac} is in use`, a.id);
      }
    }
  }

  // --- IP leases: leases/<network>/<address> → id, and leased/<id>/<network>/<address> to release by allocation

  async leaseAddresses(network: string, allocationId: string, addresses: string[]): Promise<void> {
    for (const address of addresses) {
      const holder = await this.b.get(this.k.lease(network, address));
      if (holder !== null && holder !== allocationId) {
        throw conflict('lease', `address ${address} on network ${network} is held by allocation ${holder}`, address);
      }
      if (holder === null) {
        this.b.put(this.k.lease(network, address), allocationId);
        this.b.put(this.k.leased(allocationId, network, address), '');
      }
    }
  }

  async releaseAddresses(allocationId: string): Promise<number> {
    const held = await this._keys(this.k.leasedBy(allocationId));
    for (const rest of held) {
      const [network, address] = rest.split('/') as [string, string];
      this.b.del(this.k.lease(network, address));
      this.b.del(this.k.leased(allocationId, network, address));
    }
    return held.length;
  }

  async listLeases(network: string): Promise<string[]> {
    return this._keys(this.k.leases(network));
  }

  // --- policies and tokens

  async listPolicies(host?: string): Promise<StoredPolicy[]> {
    if (host === undefined) return this._all(this.k.ranges.policies, codec.decodePolicy);
    const one = await this._read(this.k.policy(host), codec.decodePolicy);
    return one === null ? [] : [one];
  }

  async putPolicy(p: StoredPolicy): Promise<void> {
    this.b.put(this.k.policy(p.host), codec.encode({ host: p.host, document: p.document, updatedAt: p.updatedAt }));
  }

  async listTokens(): Promise<TokenRecord[]> {
    const all = await this._all(this.k.ranges.tokens, codec.decodeToken);
    return all.sort((a, b) => byKey<TokenRecord>((t) => t.createdAt)(a, b) || byKey<TokenRecord>((t) => t.id)(a, b));
  }

  async findTokenByHash(hash: string): Promise<TokenRecord | null> {
    const id = await this.b.get(this.k.tokenHash(hash));
    return id === null ? null : this._read(this.k.token(id), codec.decodeToken);
  }

  /** An upsert by id; the hash is unique (token-hashes/<hash> → id). */
  async putToken(t: TokenRecord): Promise<void> {
    const holder = await this.b.get(this.k.tokenHash(t.hash));
    if (holder !== null && holder !== t.id) throw conflict('exists', 'token hash already in use', t.id);
    const old = await this._read(this.k.token(t.id), codec.decodeToken);
    if (old && old.hash !== t.hash) this.b.del(this.k.tokenHash(old.hash));
    this.b.put(this.k.tokenHash(t.hash), t.id);
    this.b.put(this.k.token(t.id), codec.encode({ id: t.id, role: t.role, tenantId: t.tenantId, hash: t.hash, createdAt: t.createdAt }));
  }

  async deleteToken(id: string): Promise<boolean> {
    const old = await this._read(this.k.token(id), codec.decodeToken);
    if (old === null) return false;
    this.b.del(this.k.token(id));
    this.b.del(this.k.tokenHash(old.hash));
    return true;
  }

  // --- migrations: active-migrations/<allocation> → the one unfinished migration's id

  async listMigrations(filter: MigrationFilter = {}): Promise<Migration[]> {
    const all = await this._all(this.k.ranges.migrations, codec.decodeMigration);
    return all
      .filter((m) => migrationMatches(m, filter))
      .sort((a, b) => byKey<Migration>((m) => m.createdAt)(a, b) || byKey<Migration>((m) => m.id)(a, b));
  }

  async getMigration(id: string): Promise<Migration | null> {
    return this._read(this.k.migration(id), codec.decodeMigration);
  }

  async insertMigration(m: Migration): Promise<void> {
    const activeKey = this.k.activeMigration(m.from.allocation);
    const active = await this.b.get(activeKey);
    const exists = await this.b.has(this.k.migration(m.id));
    if ((ACTIVE_MIGRATION.has(m.state) && active !== null) || exists) {
      const what = active !== null ? `allocation ${m.from.allocation} is already migrating (migration ${active}); wait for it or abort it` : `migration ${m.id} already exists`;
      throw conflict(active !== null ? 'migration' : 'exists', what, m.from.allocation);
    }
    if (ACTIVE_MIGRATION.has(m.state)) this.b.put(activeKey, m.id);
    this.b.put(this.k.migration(m.id), codec.encode(m));
  }

  async updateMigration(m: Migration): Promise<boolean> {
    const old = await this.getMigration(m.id);
    if (old === null) return false;
    // The allocation moved is the one it was inserted with (SQLite never rewrites that column).
    const activeKey = this.k.activeMigration(old.from.allocation);
    const wasActive = ACTIVE_MIGRATION.has(old.state);
    const isActive = ACTIVE_MIGRATION.has(m.state);
    if (wasActive && !isActive) this.b.del(activeKey);
    if (!wasActive && isActive) {
      const holder = await this.b.get(activeKey);
      if (holder !== null && holder !== m.id) {
        throw conflict('migration', `allocation ${old.from.allocation} is already migrating (migration ${holder}); wait for it or abort it`, old.from.allocation);
      }
      this.b.put(activeKey, m.id);
    }
    this.b.put(this.k.migration(m.id), codec.encode(m));
    return true;
  }

  // --- the audit log. A write transaction's events go, not numbered, to ONE key of its batch
  // (audit/in/<writer>/<n>, keys.ts), written blind: an append reads nothing, so it conflicts with no
  // other writer's. The sequencer (audit-sequencer.ts) numbers them after the commit, in commit order.
  // So a read of the log in a write transaction sees it as its snapshot holds it: numbered events only,
  // neither this transaction's appends nor those committed and not numbered yet. Outside a transaction
  // the store first waits for its own appends to be numbered (store.ts).

  async appendEvent(e: NewAuditEvent & { at: string }): Promise<void> {
    if (this.inbox === undefined) throw new Error('appendEvent outside a write transaction (run.ts gives every batch its audit/in/ key)');
    const text = codec.encode({ at: e.at, actor: e.actor, action: e.action, object: e.object, before: e.before ?? null, after: e.after ?? null });
    this.b.put(this.inbox, codec.appendToInbox(this.b.written(this.inbox) ?? undefined, text));
  }

  async listEvents(opts: { afterSeq?: number; limit?: number; object?: string } = {}): Promise<AuditEvent[]> {
    const limit = opts.limit ?? DEFAULT_EVENT_LIMIT;
    const after = opts.afterSeq ?? 0;
    const out: AuditEvent[] = [];
    if (limit <= 0) return out;
    // The first record whose last number is past `after` holds the next event.
    const start = this.k.auditEvent(after + 1);
    for await (const page of this.b.scan(start, prefixEnd(this.k.ranges.auditEvents), { pageSize: AUDIT_PAGE })) {
      for (const kv of page) {
        for (const e of codec.decodeEvents(kv.value)) {
          if (e.seq <= after || (opts.object !== undefined && e.object !== opts.object)) continue;
          out.push(e);
          if (out.length >= limit) return out;
        }
      }
    }
    return out;
  }

  async getLastEventSeq(): Promise<number> {
    const last = await this.b.get(this.k.auditSeq);
    return last === null ? 0 : Number(last);
  }
}

/** The error `p` rejects with, or null: to run checks side by side and still report them in order. */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return null;
  } catch (err) {
    return err;
  }
}

/**
 * The indexed field a filtered list reads its candidates by, the fewest
 * first: a workload holds a few VFs, a host up to all of its own, a network
 * or tenant any number. A container ADD names its host and workload; by its
 * host, it read every allocation there, and its commit conflicted with any
 * insert on that host.
 */
const BY_SELECTIVITY = ['workload', 'host', 'network', 'tenant'] as const satisfies readonly (typeof INDEXED_FIELDS)[number][];

/** MACs are one MAC whatever their case (SQLite: COLLATE NOCASE). */
const macText = (mac: string) => mac.toLowerCase();


function migrationMatches(m: Migration, f: MigrationFilter): boolean {
  return (
    (f.state === undefined || m.state === f.state) &&
    (f.active === undefined || ACTIVE_MIGRATION.has(m.state) === f.active) &&
    (f.allocation === undefined || m.from.allocation === f.allocation) &&
    (f.tenant === undefined || m.tenant === f.tenant) &&
    (f.drain === undefined || m.drain === f.drain) &&
    (f.host === undefined || m.from.host === f.host || m.to?.host === f.host)
  );
}
