/**
 * The control plane's store. The embedded engine is SQLite (`sqlite/`), the distributed one etcd (`etcd/`); a
 * distributed engine implements the same interface, so no SQL appears above
 * this file. Methods are async for that reason, even where SQLite is not.
 *
 * Invariants the store itself guarantees (so two controllers cannot race
 * past them): one holding allocation per VF, unique MACs among holding
 * allocations (but a migration's destination shares its own source's
 * while both carry that migration), one tenant per (physnet, VLAN), one
 * unfinished migration per allocation, a holding allocation's network
 * existing (an insert on a network deleted meanwhile is refused, and so is
 * the delete of a network that holding allocations are on), and guarantees on a PF within the
 * capacity an insert is checked against (BandwidthCheck), a tenant with a
 * bandwidth group counting max(share, its VFs' guarantees) there
 * (group-charge.ts).
 */
import { HOLDING_STATES } from '../domain/types.js';
import type {
  Allocation,
  AllocationMigration,
  Attachment,
  AllocationState,
  AuditEvent,
  HostRecord,
  Migration,
  Network,
  Physnet,
  StoredPolicy,
  Tenant,
  TokenRecord,
} from '../domain/types.js';
import { claimConflict, SriovError } from '../host/errors.js';
import type { GroupCheck } from './group-charge.js';

/**
 * What a new allocation's guarantee is checked against, in the transaction
 * that writes it: so two controllers cannot both take a PF's last guarantee
 * bandwidth (each scheduler's index covers its own controller only).
 */
export interface BandwidthCheck {
  /**
   * What the guarantees of the allocations holding a VF of the PF may add up
   * to: its link speed × the bandwidth ratio, as the scheduler admitted the
   * allocation against (0 when the link speed is unknown).
   */
  capacityMbps: number;
}

/**
 * The refusal when `a`'s guarantee on top of `committed` (the guarantees
 * already on its PF) exceeds the capacity; null when it fits.
 */
export function overCommitted(a: Allocation, committed: number, check: BandwidthCheck): SriovError | null {
  if (!HOLDING_STATES.includes(a.state) || a.minTxRateMbps <= 0 || committed + a.minTxRateMbps <= check.capacityMbps) return null;
  const headroom = Math.max(0, Math.floor(check.capacityMbps - committed));
  return claimConflict(
    'bandwidth',
    `guarantee of ${a.minTxRateMbps} Mbps no longer fits on ${a.host}/${a.pf}: ${committed} of its ${Math.floor(check.capacityMbps)} Mbps are committed ` +
      `(headroom ${headroom} Mbps); choose another PF`,
    a.id,
  );
}

/**
 * The refusal of an allocation that would hold a VF on a network that does
 * not exist: deleted after the caller looked, perhaps through another
 * controller (whose catalogue cache this one's may lag).
 */
export function networkGone(a: Allocation): SriovError {
  return new SriovError('NOT_FOUND', `network ${a.network} not found`, { object: a.network, nothingChanged: true });
}

/** The refusal of a network's delete while allocations hold VFs on it. */
export function networkInUse(name: string): SriovError {
  return new SriovError('CONFLICT', `network ${name} still has allocations`, { object: name, nothingChanged: true });
}

export interface NewAuditEvent {
  actor: string;
  action: string;
  object: string;
  before: unknown;
  after: unknown;
}

/** Filters combine with AND; `physnet` alone lists a physnet's networks, with `vlan` one L2 segment's. */
export interface NetworkFilter {
  tenant?: string;
  physnet?: string;
  vlan?: number;
}

export interface AllocationFilter {
  /**
   * Paging: at most `limit` allocations, ordered by id, with ids after `after`
   * (the last id of the previous page). Keyset paging: a page stays the same
   * under concurrent inserts and deletes elsewhere in the list. Without
   * `limit` the list has no promised order.
   */
  limit?: number;
  after?: string;
  tenant?: string;
  host?: string;
  network?: string;
  holding?: boolean;
  workload?: string;
  ifname?: string;
  state?: AllocationState;
  pciAddress?: string;
  unboundClaim?: boolean;
}

/** Whether an allocation passes a filter, as the stores' queries decide it (SQLite: statements.ts). */
export function matchesFilter(a: Allocation, f: AllocationFilter): boolean {
  const holding = HOLDING_STATES.includes(a.state);
  return (
    (f.tenant === undefined || a.tenant === f.tenant) &&
    (f.host === undefined || a.host === f.host) &&
    (f.network === undefined || a.network === f.network) &&
    (f.workload === undefined || a.workload.name === f.workload) &&
    (f.ifname === undefined || (a.attachment !== null && 'ifname' in a.attachment && a.attachment.ifname === f.ifname)) &&
    (f.state === undefined || a.state === f.state) &&
    (f.pciAddress === undefined || a.pciAddress === f.pciAddress) &&
    (!f.unboundClaim || (a.deviceClaim !== null && a.attachment === null && holding)) &&
    (f.holding === undefined || holding === f.holding)
  );
}

/** Filters combine with AND. `active`: running or rolling back. */
export interface MigrationFilter {
  state?: Migration['state'];
  active?: boolean;
  /** The allocation moved (the source's id). */
  allocation?: string;
  tenant?: string;
  drain?: string;
  /** Either end's host. */
  host?: string;
}

/**
 * A host record of a page (StoreTx.listHostPages). `json`: the text the
 * store keeps it as, when it keeps one (etcd), for a caller that keeps the
 * record as text (the read mirror deflates it, rather than a copy it
 * stringified again); that text may have an older state and lastHeartbeat
 * than `record`, which has the host's liveness-only heartbeat merged in.
 */
export interface PagedHost {
  record: HostRecord;
  json?: string;
}

/**
 * A committed change, as a store's watch delivers it. Values are the new
 * records (null: deleted). Tenants, physnets and networks are one kind, the
 * catalogue: every controller re-reads it whole, it is small.
 */
export type StoreChange =
  | { kind: 'allocation'; id: string; value: Allocation | null }
  | { kind: 'host'; name: string; value: HostRecord | null }
  /** A liveness-only heartbeat (touchHost): no inventory in it. */
  | { kind: 'heartbeat'; name: string; state: HostRecord['state']; at: string }
  | { kind: 'migration'; id: string; value: Migration | null }
  | { kind: 'policy'; host: string }
  /** An API token minted or revoked (its record; null: deleted). */
  | { kind: 'token'; id: string; value: TokenRecord | null }
  | { kind: 'catalogue' }
  /** The audit log grew (once per commit, however many events it appended): its readers read on from where they are. */
  | { kind: 'audit' };

export interface WatchHooks {
  /**
   * The watch lost changes (etcd compacted the revision it had to resume
   * from) and goes on from the current revision: whatever the listener built
   * from the changes so far must be read from the store again. Called before
   * the first change of the new watch is delivered.
   */
  onResync?: () => void;
}

/** Whether this controller runs the background work (heartbeat sweep, orphan release, migration resumption). */
export interface Leadership {
  readonly leader: boolean;
  /** Called on every gain and loss of leadership; returns the unsubscribe. */
  onChange(listener: (leader: boolean) => void): () => void;
  /** Gives leadership up (shutdown), so a standby takes over at once instead of after the lease. */
  resign(): Promise<void>;
}

export interface Store {
  /** `sqlite` (one controller, embedded) or `etcd` (several controllers). */
  readonly kind: 'sqlite' | 'etcd';
  /**
   * Run `fn` atomically: all of its writes land, or none. `fn` may run more
   * than once (etcd re-runs it when a key it read changed before the commit),
   * so it must use only the `tx` it is given and keep side effects for after.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** Reads and writes outside an explicit transaction are each atomic on their own. */
  readonly tx: StoreTx;
  /**
   * Reads of what is committed, that never wait behind the writes queued
   * before them, and so never see those writes (nor a transaction's writes
   * before its commit). For reads no decision in memory is made on (the
   * API's reads, a request's checks before it takes the decision lock).
   * A write's promise settles after its commit, so an awaited write is seen.
   */
  readonly committed: CommittedReads;
  /**
   * Changes committed through any controller sharing the store, in commit
   * order, this controller's own included (applying one twice must be
   * harmless). A store only one controller can open delivers none.
   * Returns the unsubscribe.
   */
  watch(listener: (changes: StoreChange[]) => void, opts?: WatchHooks): () => void;
  /** Joins the election of the controller that runs background work; `candidate` names this one. */
  campaign(candidate: string): Promise<Leadership>;
  close(): Promise<void>;
}

/** StoreTx's reads: what `Store.committed` answers. */
export type CommittedReads = Pick<StoreTx, Extract<keyof StoreTx, `list${string}` | `get${string}` | `find${string}`>>;

export interface StoreTx {
  listTenants(): Promise<Tenant[]>;
  getTenant(name: string): Promise<Tenant | null>;
  /**
   * With `check` (`tenant set`), a changed bandwidth group must fit each PF
   * where the tenant holds VFs: CONFLICT (claim `bandwidth`) naming the PF
   * and its headroom when its charge there grows past the capacity. Either
   * way the PFs' committed guarantees count the group from then on
   * (group-charge.ts).
   */
  putTenant(t: Tenant, check?: GroupCheck): Promise<void>;
  deleteTenant(name: string): Promise<boolean>;

  listPhysnets(): Promise<Physnet[]>;
  putPhysnet(p: Physnet): Promise<void>;

  listNetworks(filter?: NetworkFilter): Promise<Network[]>;
  getNetwork(name: string): Promise<Network | null>;
  /** Fails with CONFLICT when (physnet, vlan) belongs to another tenant. */
  putNetwork(n: Network): Promise<void>;
  /** Fails with CONFLICT (networkInUse) while an allocation holding a VF is on it. */
  deleteNetwork(name: string): Promise<boolean>;

  listHosts(): Promise<HostRecord[]>;
  /**
   * Every host, handed to `each` a page at a time as read (a controller's
   * start): a caller that folds each page into memory never holds the
   * fleet's records (~100 KB of JSON each) at once. Should the read start
   * over (etcd compacted its snapshot away), pages come again from the first.
   */
  listHostPages(each: (page: PagedHost[]) => void): Promise<void>;
  getHost(name: string): Promise<HostRecord | null>;
  putHost(h: HostRecord): Promise<void>;
  /**
   * A heartbeat that only proves liveness: sets the host's state and
   * lastHeartbeat, and writes nothing else (its inventory is unchanged).
   * False when there is no such host.
   */
  touchHost(name: string, state: HostRecord['state'], at: string): Promise<boolean>;
  deleteHost(name: string): Promise<boolean>;

  /** `unboundClaim`: device-plugin claims still holding their VF that no CNI ADD has bound yet. */
  listAllocations(filter?: AllocationFilter): Promise<Allocation[]>;
  getAllocation(id: string): Promise<Allocation | null>;
  /**
   * Allocations whose id starts with `prefix` (a tenant's only, with `tenant`; a host's only, with `host`):
   * how many, and the allocation when exactly one does. An index range scan, not a full one.
   */
  findAllocationByIdPrefix(prefix: string, tenant?: string, host?: string): Promise<{ count: number; allocation: Allocation | null }>;
  /**
   * Fails with NOT_FOUND (networkGone) when the allocation would hold a VF
   * and its network does not exist: read in the transaction, so a delete of
   * the network racing it on another controller and this insert never both
   * succeed (released or failed ones, as an import brings, are not checked:
   * their network may be long gone).
   * Fails with CONFLICT when the VF or the MAC is held by another allocation,
   * or (with `check`, for a holding allocation with a guarantee or of a
   * tenant with a bandwidth group) when the guarantees on its PF would
   * exceed `check.capacityMbps`, a group tenant counting max(share, its
   * VFs' guarantees) there, or when its guarantee does not fit inside its
   * tenant's group (group-charge.ts). Without `check` (an import) the
   * guarantee is counted but not checked.
   */
  insertAllocation(a: Allocation, check?: BandwidthCheck): Promise<void>;
  updateAllocationState(id: string, state: AllocationState, reason: string | null, at: string): Promise<Allocation | null>;
  setAllocationAttachment(id: string, attachment: Attachment | null): Promise<Allocation | null>;
  /**
   * Binds a device-plugin claim to its pod's interface: workload name and
   * attachment in one statement, state kept. Null (nothing changed) unless
   * `id` is a claim that is unbound and pending or configured.
   */
  bindClaim(id: string, workload: string, attachment: Attachment, at: string): Promise<Allocation | null>;

  /** Sets or clears an allocation's migration mark; CONFLICT when that would break the MAC rule. */
  setAllocationMigration(id: string, migration: AllocationMigration | null, at: string): Promise<Allocation | null>;

  /** Addresses (without prefix length) of a network's pool; CONFLICT when one is held by another allocation. */
  leaseAddresses(network: string, allocationId: string, addresses: string[]): Promise<void>;
  releaseAddresses(allocationId: string): Promise<number>;
  listLeases(network: string): Promise<string[]>;

  listPolicies(host?: string): Promise<StoredPolicy[]>;
  putPolicy(p: StoredPolicy): Promise<void>;

  listTokens(): Promise<TokenRecord[]>;
  findTokenByHash(hash: string): Promise<TokenRecord | null>;
  putToken(t: TokenRecord): Promise<void>;
  deleteToken(id: string): Promise<boolean>;

  /** Oldest first. */
  listMigrations(filter?: MigrationFilter): Promise<Migration[]>;
  getMigration(id: string): Promise<Migration | null>;
  /** CONFLICT when the allocation already has a running or rolling-back migration. */
  insertMigration(m: Migration): Promise<void>;
  /** Writes the whole record; false when there is none with its id. */
  updateMigration(m: Migration): Promise<boolean>;

  /**
   * Numbered by the store, gap-free in commit order; etcd numbers it after the
   * commit (audit-sequencer.ts), so the number is not known here: read the log.
   */
  appendEvent(e: NewAuditEvent & { at: string }): Promise<void>;
  listEvents(opts?: { afterSeq?: number; limit?: number; object?: string }): Promise<AuditEvent[]>;
  /** The last event's seq (0 for an empty log): where a reader that wants only what comes next starts. */
  getLastEventSeq(): Promise<number>;
}
