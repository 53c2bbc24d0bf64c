/** The store's operations on one connection, and the wrapper that routes each call. */
import type Database from 'better-sqlite3';
import { HOLDING_STATES } from '../../domain/types.js';
import type {
  Allocation,
  AllocationMigration,
  AllocationState,
  Attachment,
  AuditEvent,
  HostRecord,
  Migration,
  Network,
  Physnet,
  StoredPolicy,
  Tenant,
  TokenRecord,
} from '../../domain/types.js';
import { claimConflict as conflict } from '../../host/errors.js';
import { networkGone, networkInUse, overCommitted, type AllocationFilter, type BandwidthCheck, type CommittedReads, type MigrationFilter, type NetworkFilter, type NewAuditEvent, type PagedHost, type StoreTx } from '../store.js';
import { allocationConflict, isSqliteError } from './errors.js';
import { insertAllocationRow, toAllocation, toEvent, toHost, toHostRow, toJson, toMigration, toMigrationRow, toNetwork, toNetworkRow } from './rows.js';
import { allocationQuery, migrationQuery, type Statements } from './statements.js';
import { limitsOf, type GroupCheck } from '../group-charge.js';
import { groupAwareRefusal, regroupConflict } from './group-check.js';

const DEFAULT_EVENT_LIMIT = 1000;

/**
 * The store's operations on the connection as it is: inside a transaction
 * when one is open. Helpers live outside the class because every method on
 * its prototype is wrapped (see `wrapMethods`).
 */
export class SqliteTx implements StoreTx {
  constructor(
    private readonly db: Database.Database,
    private readonly s: Statements,
    /** Told before each write to tenants, physnets, networks or tokens (the committed reads cache them). */
    private readonly onCatalogueWrite: () => void = () => {},
    /** Told at each audit event appended (the store's watch says the log grew once the batch commits). */
    private readonly onEventAppended: () => void = () => {},
  ) {}

  /**
   * How many tenants have a bandwidth group, as committed: while none has,
   * the guarantee check is the plain sum (no group to count). Not a method
   * (every method on the prototype is wrapped), and forgotten at every
   * tenant write and kept only once that batch settled (`settled`), so a
   * rolled-back write never leaves it wrong.
   */
  private groupTenants: number | undefined = undefined;
  private tenantsWritten = false;
  private readonly groupTenantCount = (): number => {
    if (this.groupTenants !== undefined) return this.groupTenants;
    const n = this.s.groupTenantCount.get() ?? 0;
    if (!this.tenantsWritten) this.groupTenants = n;
    return n;
  };
  private readonly tenantWrite = (): void => {
    this.onCatalogueWrite();
    this.groupTenants = undefined;
    this.tenantsWritten = true;
  };
  /** The batch in flight committed or rolled back (the store's queue says so). */
  readonly settled = (): void => {
    if (!this.tenantsWritten) return;
    this.tenantsWritten = false;
    this.groupTenants = undefined;
  };

  async listTenants(): Promise<Tenant[]> {
    return this.s.listTenants.all();
  }

  async getTenant(name: string): Promise<Tenant | null> {
    return this.s.getTenant.get(name) ?? null;
  }

  /** With `check`, a changed bandwidth group must fit each PF where the tenant holds VFs (group-check.ts). */
  async putTenant(t: Tenant, check?: GroupCheck): Promise<void> {
    if (check !== undefined) {
      const before = limitsOf(this.s.getTenant.get(t.name) ?? null);
      const refused = regroupConflict(this.s, t.name, before, limitsOf(t), check);
      if (refused !== null) throw refused;
    }
    this.tenantWrite();
    this.s.putTenant.run({ ...t, pfMinTxRateMbps: t.pfMinTxRateMbps ?? null, pfMaxTxRateMbps: t.pfMaxTxRateMbps ?? null });
  }

  async deleteTenant(name: string): Promise<boolean> {
    this.tenantWrite();
    return this.s.deleteTenant.run(name).changes > 0;
  }

  async listPhysnets(): Promise<Physnet[]> {
    return this.s.listPhysnets.all().map((r) => ({
      name: r.name,
      accountingOnly: r.accounting_only === 1,
      groupsAccountingOnly: r.groups_accounting_only === 1,
      tenantVlans: JSON.parse(r.tenant_vlans_json) as Physnet['tenantVlans'],
    }));
  }

  async putPhysnet(p: Physnet): Promise<void> {
    this.onCatalogueWrite();
    this.s.putPhysnet.run({
      name: p.name,
      accountingOnly: p.accountingOnly ? 1 : 0,
      groupsAccountingOnly: p.groupsAccountingOnly ? 1 : 0,
      tenantVlans: JSON.stringify(p.tenantVlans),
    });
  }

  async listNetworks(filter: NetworkFilter = {}): Promise<Network[]> {
    const rows =
      filter.physnet !== undefined && filter.vlan !== undefined
        ? this.s.listSegmentNetworks.all(filter.physnet, filter.vlan).filter((r) => filter.tenant === undefined || r.tenant === filter.tenant)
        : filter.physnet !== undefined
          ? this.s.listPhysnetNetworks.all(filter.physnet).filter((r) => filter.tenant === undefined || r.tenant === filter.tenant)
          : filter.tenant !== undefined
          ? this.s.listTenantNetworks.all(filter.tenant)
          : this.s.listNetworks.all();
    return rows.map(toNetwork);
  }

  async getNetwork(name: string): Promise<Network | null> {
    const row = this.s.getNetwork.get(name);
    return row === undefined ? null : toNetwork(row);
  }

  async putNetwork(n: Network): Promise<void> {
    this.onCatalogueWrite();
    try {
      this.s.putNetwork.run(toNetworkRow(n));
    } catch (err) {
      const owner = isSqliteError(err, 'SQLITE_CONSTRAINT_TRIGGER') ? this.s.vlanOwner.get(n) : undefined;
      if (owner === undefined) throw err;
      // The store does not know who asks: it never names the owner (another tenant's data).
      throw conflict('vlan', `VLAN ${n.vlan} on physnet ${n.physnet} is taken by another tenant`, n.name, err);
    }
  }

  async deleteNetwork(name: string): Promise<boolean> {
    if (this.s.networkHeld.get(name) !== undefined) throw networkInUse(name);
    this.onCatalogueWrite();
    return this.s.deleteNetwork.run(name).changes > 0;
  }

  async listHosts(): Promise<HostRecord[]> {
    // Row by row: each inventory's JSON text (about 100 KB for 256 VFs) is garbage once parsed, not kept until the last row is.
    const hosts: HostRecord[] = [];
    for (const row of this.s.listHosts.iterate()) hosts.push(toHost(row));
    return hosts;
  }

  /** One page: this connection runs nothing else while a statement is iterated, so the rows cannot be read across awaits. */
  async listHostPages(each: (page: PagedHost[]) => void): Promise<void> {
    each((await this.listHosts()).map((record) => ({ record })));
  }

  async getHost(name: string): Promise<HostRecord | null> {
    const row = this.s.getHost.get(name);
    return row === undefined ? null : toHost(row);
  }

  async putHost(h: HostRecord): Promise<void> {
    this.s.putHost.run(toHostRow(h));
  }

  async touchHost(name: string, state: HostRecord['state'], at: string): Promise<boolean> {
    return this.s.touchHost.run({ name, state, at }).changes > 0;
  }

  async deleteHost(name: string): Promise<boolean> {
    return this.s.deleteHost.run(name).changes > 0;
  }

  async listAllocations(filter: AllocationFilter = {}): Promise<Allocation[]> {
    return allocationQuery(this.db, this.s, filter).all(filter).map(toAllocation);
  }

  async getAllocation(id: string): Promise<Allocation | null> {
    const row = this.s.getAllocation.get(id);
    return row === undefined ? null : toAllocation(row);
  }

  async findAllocationByIdPrefix(prefix: string, tenant?: string, host?: string): Promise<{ count: number; allocation: Allocation | null }> {
    const range = { lo: prefix, hi: `${prefix}\uffff`, tenant: tenant ?? null, host: host ?? null };
    const rows = this.s.idPrefixMatches.all(range);
    if (rows.length === 1) return { count: 1, allocation: toAllocation(rows[0]!) };
    return { count: rows.length === 0 ? 0 : this.s.idPrefixCount.get(range)!, allocation: null };
  }

  /**
   * The guarantee check sums the PF's other holding allocations in the write
   * transaction. A refused guarantee still runs the insert, in a savepoint it
   * then undoes, so that a VF or MAC refusal is named first.
   */
  async insertAllocation(a: Allocation, check?: BandwidthCheck): Promise<void> {
    const holding = HOLDING_STATES.includes(a.state);
    if (holding && this.s.networkExists.get(a.network) === undefined) throw networkGone(a);
    const checked = check !== undefined && holding;
    const over = !checked ? null : this.groupTenantCount() > 0 ? this.withGroups(a, check) : a.minTxRateMbps > 0 ? overCommitted(a, this.s.pfCommitted.get(a) ?? 0, check) : null;
    try {
      // Without a refusal, no closure: this runs for every allocation.
      if (over === null) insertAllocationRow(this.s.insertAllocation, a);
      else {
        this.db.transaction(() => {
          insertAllocationRow(this.s.insertAllocation, a);
          throw over;
        })();
      }
    } catch (err) {
      throw allocationConflict(this.s, err, a);
    }
  }

  /** With groups: the PF's sum counts them, and a tenant's group is charged for its VFs without a guarantee too. */
  private readonly withGroups = (a: Allocation, check: BandwidthCheck) => {
    const group = limitsOf(this.s.getTenant.get(a.tenant) ?? null);
    return group === null && a.minTxRateMbps <= 0 ? null : groupAwareRefusal(this.s, a, group, check);
  };

  async updateAllocationState(
    id: string,
    state: AllocationState,
    reason: string | null,
    at: string,
  ): Promise<Allocation | null> {
    try {
      const row = this.s.updateAllocationState.get({ id, state, reason, at });
      return row === undefined ? null : toAllocation(row);
    } catch (err) {
      // Only a move back into a holding state can collide; say what is taken as insert does.
      const current = this.s.getAllocation.get(id);
      throw current === undefined ? err : allocationConflict(this.s, err, toAllocation(current));
    }
  }

  async bindClaim(id: string, workload: string, attachment: Attachment, at: string): Promise<Allocation | null> {
    const row = this.s.bindClaim.get({ id, workload_name: workload, attachment_json: JSON.stringify(attachment), at });
    return row === undefined ? null : toAllocation(row);
  }

  async setAllocationAttachment(id: string, attachment: Attachment | null): Promise<Allocation | null> {
    const row = this.s.setAttachment.get({ id, attachment_json: attachment ? JSON.stringify(attachment) : null });
    return row === undefined ? null : toAllocation(row);
  }

  async setAllocationMigration(id: string, migration: AllocationMigration | null, at: string): Promise<Allocation | null> {
    const params = { id, migration_id: migration?.id ?? null, migration_role: migration?.role ?? null, at };
    try {
      const row = this.s.setMigration.get(params);
      return row === undefined ? null : toAllocation(row);
    } catch (err) {
      const current = this.s.getAllocation.get(id);
      throw current === undefined ? err : allocationConflict(this.s, err, toAllocation(current));
    }
  }

  async listMigrations(filter: MigrationFilter = {}): Promise<Migration[]> {
    return migrationQuery(this.db, this.s, filter).all(filter as Record<string, unknown>).map(toMigration);
  }

  async getMigration(id: string): Promise<Migration | null> {
    const row = this.s.getMigration.get(id);
    return row === undefined ? null : toMigration(row);
  }

  async insertMigration(m: Migration): Promise<void> {
    try {
      this.s.insertMigration.run(toMigrationRow(m));
    } catch (err) {
      if (!isSqliteError(err, 'SQLITE_CONSTRAINT_UNIQUE') && !isSqliteError(err, 'SQLITE_CONSTRAINT_PRIMARYKEY')) throw err;
      const active = this.s.activeMigrationOf.get(m.from.allocation);
      const what = active ? `allocation ${m.from.allocation} is already migrating (migration ${active}); wait for it or abort it` : `migration ${m.id} already exists`;
      throw conflict(active ? 'migration' : 'exists', what, m.from.allocation, err);
    }
  }

  async updateMigration(m: Migration): Promise<boolean> {
    return this.s.updateMigration.run(toMigrationRow(m)).changes > 0;
  }

  async leaseAddresses(network: string, allocationId: string, addresses: string[]): Promise<void> {
    for (const address of addresses) {
      const holder = this.s.addressHolder.get({ network, address });
      if (holder !== undefined && holder !== allocationId) {
        throw conflict('lease', `address ${address} on network ${network} is held by allocation ${holder}`, address);
      }
      if (holder === undefined) this.s.leaseAddress.run({ network, address, allocationId });
    }
  }

  async releaseAddresses(allocationId: string): Promise<number> {
    return this.s.releaseAddresses.run(allocationId).changes;
  }

  async listLeases(network: string): Promise<string[]> {
    return this.s.listLeases.all(network);
  }

  async listPolicies(host?: string): Promise<StoredPolicy[]> {
    return host === undefined ? this.s.listPolicies.all() : this.s.listHostPolicies.all(host);
  }

  async putPolicy(p: StoredPolicy): Promise<void> {
    this.s.putPolicy.run(p);
  }

  async listTokens(): Promise<TokenRecord[]> {
    return this.s.listTokens.all();
  }

  async findTokenByHash(hash: string): Promise<TokenRecord | null> {
    return this.s.findTokenByHash.get(hash) ?? null;
  }

  async putToken(t: TokenRecord): Promise<void> {
    this.onCatalogueWrite();
    try {
      this.s.putToken.run(t);
    } catch (err) {
      throw isSqliteError(err, 'SQLITE_CONSTRAINT_UNIQUE') ? conflict('exists', 'token hash already in use', t.id, err) : err;
    }
  }

  async deleteToken(id: string): Promise<boolean> {
    this.onCatalogueWrite();
    return this.s.deleteToken.run(id).changes > 0;
  }

  async appendEvent(e: NewAuditEvent & { at: string }): Promise<void> {
    this.s.appendEvent.get(e.at, e.actor, e.action, e.object, toJson(e.before), toJson(e.after));
    this.onEventAppended();
  }

  async listEvents(opts: { afterSeq?: number; limit?: number; object?: string } = {}): Promise<AuditEvent[]> {
    const params = { afterSeq: opts.afterSeq ?? 0, limit: opts.limit ?? DEFAULT_EVENT_LIMIT };
    const rows =
      opts.object === undefined
        ? this.s.listEvents.all(params)
        : this.s.listObjectEvents.all({ ...params, object: opts.object });
    return rows.map(toEvent);
  }

  async getLastEventSeq(): Promise<number> {
    return this.s.lastEventSeq.get() ?? 0;
  }
}

const TX_METHODS = Object.getOwnPropertyNames(SqliteTx.prototype).filter((name) => name !== 'constructor');

type AnyMethod = (...args: unknown[]) => Promise<unknown>;

/** A StoreTx whose every call to `inner` goes through `around`. */
export function wrapMethods(inner: SqliteTx, around: (call: () => Promise<unknown>) => Promise<unknown>): StoreTx {
  const wrapped: Record<string, AnyMethod> = {};
  const methods = inner as unknown as Record<string, AnyMethod>;
  for (const name of TX_METHODS) {
    const method = methods[name] as AnyMethod;
    wrapped[name] = (...args) => around(() => method.apply(inner, args));
  }
  return wrapped as unknown as StoreTx;
}

const READ_METHODS = TX_METHODS.filter((name) => /^(list|get|find)/.test(name));

/**
 * `inner`'s reads, called directly: on a connection of their own (read-only,
 * in WAL mode), each read is its own transaction over what is committed, and
 * waits for no writer.
 */
export function readMethods(inner: SqliteTx): CommittedReads {
  const reads: Record<string, AnyMethod> = {};
  const methods = inner as unknown as Record<string, AnyMethod>;
  for (const name of READ_METHODS) reads[name] = (methods[name] as AnyMethod).bind(inner);
  return reads as unknown as CommittedReads;
}

/** Set on a ScopedTx while its transaction runs; a symbol, so a walk over its methods does not meet it. */
export const OPEN = Symbol('open');

/** A StoreTx that calls `inner` while `[OPEN]`: what one transaction of a batch is given. */
export type ScopedTx = StoreTx & { [OPEN]: boolean };

/**
 * Makes ScopedTx views of `inner`: each is one small object over a shared
 * prototype, where a closure per method per transaction (wrapMethods) was
 * most of the garbage an allocation made, and so of its GC pauses.
 */
export function scopedViews(inner: SqliteTx): () => ScopedTx {
  const proto: Record<string, AnyMethod> = {};
  const methods = inner as unknown as Record<string, AnyMethod>;
  for (const name of TX_METHODS) {
    const method = methods[name] as AnyMethod;
    proto[name] = function (this: ScopedTx, ...args) {
      return this[OPEN] ? method.apply(inner, args) : Promise.reject(new Error('transaction already ended; use store.tx'));
    };
  }
  return () => {
    const view = Object.create(proto) as ScopedTx;
    view[OPEN] = true;
    return view;
  };
}
