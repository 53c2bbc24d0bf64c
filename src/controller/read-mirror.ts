/**
 * What the API reads, kept in this controller's memory from the store's
 * watch (cluster-sync.ts), so that reads can still be answered, marked as
 * possibly stale, while the store cannot answer (etcd without quorum):
 * - the catalogue (tenants, physnets, networks): small, read whole on a change;
 * - host records, deflated: an inventory is ~70 KB of JSON for 256 VFs, and
 *   compresses about tenfold, and a host record changes only with its inventory;
 * - API tokens (a few per host): requests must still authenticate;
 * - the allocations that hold a VF (at most one per VF). Released and failed
 *   ones stay in the store only: they accumulate without bound, so a read
 *   that may need them is refused rather than answered incompletely.
 *
 * Only a controller with a watch (etcd) keeps one; memory never answers a
 * read the store could, and never decides a write.
 */
import { performance } from 'node:perf_hooks';
import { deflateRawSync, inflateRawSync, constants } from 'node:zlib';
import { HOLDING_STATES, type Allocation, type HostRecord, type Network, type Physnet, type Tenant, type TokenRecord } from '../domain/types.js';
import { matchesFilter, type AllocationFilter, type NetworkFilter, type PagedHost, type StoreTx } from '../store/store.js';
import { unreachable } from './store-health.js';

/** The reads the API's read endpoints make, which memory can stand in for. */
export const MIRRORED_READS = ['findTokenByHash', 'getTenant', 'listTenants', 'listPhysnets', 'listNetworks', 'getNetwork', 'getHost', 'listAllocations', 'getAllocation', 'findAllocationByIdPrefix'] as const;
export type StoreReads = Pick<StoreTx, (typeof MIRRORED_READS)[number]>;

/** How long one slice of deflating host records may hold the event loop. */
const PACK_SLICE_MS = 5;

const holding = (a: Allocation) => HOLDING_STATES.includes(a.state);
const byId = (a: Allocation, b: Allocation) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export class ReadMirror implements StoreReads {
  private tenants: Tenant[] = [];
  private physnets: Physnet[] = [];
  private networks: Network[] = [];
  private hosts = new Map<string, Buffer>();
  /**
   * Records from the watch not deflated yet: deflating is done a slice at a
   * time after the event loop is free, so that a fleet's first reports to a
   * controller are not held up by it.
   */
  private readonly unpacked = new Map<string, HostRecord>();
  private packing = false;
  /** Liveness-only heartbeats since each host's record was written: they override its state and lastHeartbeat, as in the store. */
  private alive = new Map<string, Beat>();
  private readonly holdings = new Map<string, Allocation>();
  /** Token id → record, and secret hash → id. */
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly tokenIds = new Map<string, string>();

  /** `since`: when the store stopped answering, for the refusals of what memory does not hold. */
  constructor(private readonly since: () => Date) {}

  /** Everything at once (the controller's start, and a resync after a watch lost changes), the hosts deflated as they were read. */
  load(state: { hosts: PackedHosts; holding: Allocation[]; catalogue: Catalogue; tokens: TokenRecord[] }): void {
    this.hosts = state.hosts.packed;
    this.alive = state.hosts.alive;
    this.unpacked.clear();
    this.holdings.clear();
    this.tokens.clear();
    this.tokenIds.clear();
    for (const t of state.tokens) this.putToken(t.id, t);
    for (const a of state.holding) this.putAllocation(a.id, a);
    this.putCatalogue(state.catalogue);
  }

  putCatalogue(c: Catalogue): void {
    [this.tenants, this.physnets, this.networks] = [c.tenants, c.physnets, c.networks];
  }

  putToken(id: string, t: TokenRecord | null): void {
    const old = this.tokens.get(id);
    if (old) this.tokenIds.delete(old.hash);
    if (t) {
      this.tokens.set(id, t);
      this.tokenIds.set(t.hash, id);
    } else this.tokens.delete(id);
  }

  async findTokenByHash(hash: string): Promise<TokenRecord | null> {
    const id = this.tokenIds.get(hash);
    return id === undefined ? null : (this.tokens.get(id) ?? null);
  }

  async getTenant(name: string): Promise<Tenant | null> {
    return this.tenants.find((t) => t.name === name) ?? null;
  }

  putHost(name: string, record: HostRecord | null): void {
    this.alive.delete(name);
    this.hosts.delete(name);
    if (record) {
      this.unpacked.set(name, record);
      this.packSoon();
    } else this.unpacked.delete(name);
  }

  private packSoon(): void {
    if (this.packing) return;
    this.packing = true;
    setImmediate(() => this.pack());
  }

  /** Deflates records for up to PACK_SLICE_MS, then lets the event loop run. */
  private pack(): void {
    const until = performance.now() + PACK_SLICE_MS;
    for (const [name, record] of this.unpacked) {
      this.unpacked.delete(name);
      this.hosts.set(name, pack(JSON.stringify(record)));
      if (performance.now() >= until) break;
    }
    this.packing = false;
    if (this.unpacked.size > 0) this.packSoon();
  }

  /** A liveness-only heartbeat (the record itself is not rewritten: deflating it on every heartbeat would cost more than the rest). */
  heard(name: string, state: HostRecord['state'], at: string): void {
    if (this.hosts.has(name) || this.unpacked.has(name)) this.alive.set(name, { state, at });
  }

  putAllocation(id: string, a: Allocation | null): void {
    if (a && holding(a)) this.holdings.set(id, a);
    else this.holdings.delete(id);
  }

  async listTenants(): Promise<Tenant[]> {
    return [...this.tenants];
  }

  async listPhysnets(): Promise<Physnet[]> {
    return [...this.physnets];
  }

  async listNetworks(f: NetworkFilter = {}): Promise<Network[]> {
    const found = this.networks.filter(
      (n) => (f.tenant === undefined || n.tenant === f.tenant) && (f.physnet === undefined || n.physnet === f.physnet) && (f.vlan === undefined || n.vlan === f.vlan),
    );
    // As the stores order them: a physnet's networks by VLAN, then name; others by name.
    return found.sort((a, b) => (f.physnet !== undefined ? a.vlan - b.vlan : 0) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async getNetwork(name: string): Promise<Network | null> {
    return this.networks.find((n) => n.name === name) ?? null;
  }

  async getHost(name: string): Promise<HostRecord | null> {
    const packed = this.hosts.get(name);
    const record = this.unpacked.get(name) ?? (packed ? (JSON.parse(inflateRawSync(packed).toString('utf8')) as HostRecord) : null);
    if (!record) return null;
    const beat = this.alive.get(name);
    return beat ? { ...record, state: beat.state, lastHeartbeat: beat.at } : record;
  }

  /** Answered only when the filter keeps to holding allocations (all that memory has). */
  async listAllocations(f: AllocationFilter = {}): Promise<Allocation[]> {
    const onlyHolding = f.holding === true || f.unboundClaim === true || (f.state !== undefined && HOLDING_STATES.includes(f.state));
    if (!onlyHolding) throw unreachable(this.since(), 'released or failed allocations (ask for a state: pending, configured, attached or releasing)');
    const found: Allocation[] = [];
    for (const a of this.holdings.values()) if ((f.after === undefined || a.id > f.after) && matchesFilter(a, f)) found.push(a);
    return f.limit === undefined ? found : found.sort(byId).slice(0, f.limit);
  }

  /** A holding allocation; any other id may be a released one that only the store has. */
  async getAllocation(id: string): Promise<Allocation | null> {
    const a = this.holdings.get(id);
    if (!a) throw unreachable(this.since(), `allocation ${id}: it holds no VF, or is not known here`);
    return a;
  }

  async findAllocationByIdPrefix(prefix: string): Promise<{ count: number; allocation: Allocation | null }> {
    // The released allocations sharing the prefix are in the store only: the count cannot be known.
    throw unreachable(this.since(), `which allocations' ids start with ${prefix}; give the whole id`);
  }
}

type Beat = { state: HostRecord['state']; at: string };

/**
 * Host records deflated as a controller's start reads them, page by page
 * (ControlPlane.load), for ReadMirror.load: none is held decoded until the
 * last is read, nor deflated from a copy stringified again.
 */
export class PackedHosts {
  readonly packed = new Map<string, Buffer>();
  readonly alive = new Map<string, Beat>();

  add({ record, json }: PagedHost): void {
    this.packed.set(record.name, pack(json ?? JSON.stringify(record)));
    // The stored text may be older than the host's liveness-only heartbeat, which the record has merged in.
    if (json !== undefined && record.lastHeartbeat !== null) this.alive.set(record.name, { state: record.state, at: record.lastHeartbeat });
    else this.alive.delete(record.name);
  }
}

/**
 * A record's JSON deflated, in a buffer of its own size: zlib hands back a
 * slice of its 16 KB output chunk, and kept as it is, each ~3 KB record
 * would hold the whole chunk (16 MB at 1,000 hosts).
 */
function pack(json: string): Buffer {
  const deflated = deflateRawSync(json, { level: constants.Z_BEST_SPEED });
  const own = Buffer.allocUnsafeSlow(deflated.length);
  deflated.copy(own);
  return own;
}

export interface Catalogue {
  tenants: Tenant[];
  physnets: Physnet[];
  networks: Network[];
}

/** The catalogue, read whole (it is small). */
export function readCatalogue(tx: Pick<StoreTx, 'listTenants' | 'listPhysnets' | 'listNetworks'>): Promise<Catalogue> {
  return Promise.all([tx.listTenants(), tx.listPhysnets(), tx.listNetworks()]).then(([tenants, physnets, networks]) => ({ tenants, physnets, networks }));
}

