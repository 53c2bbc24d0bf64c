/** Every statement the store runs, prepared once per connection, and the list queries built per filter shape. */
import type Database from 'better-sqlite3';
import { HOLDING_STATES, type Allocation, type AllocationState, type Network, type StoredPolicy, type Tenant, type TokenRecord } from '../../domain/types.js';
import type { AllocationFilter, MigrationFilter } from '../store.js';
import type { AllocationRow, AllocationValues, EventRow, HostRow, MigrationRow, NetworkRow } from './rows.js';

/** A tenant's holdings on one PF, with its bandwidth group's limits (null: not set). */
export interface PfTenantRow {
  tenant: string;
  vfs: number;
  minTxRateMbps: number;
  pfMinTxRateMbps: number | null;
  pfMaxTxRateMbps: number | null;
}

/** One tenant's holdings on one of its PFs. */
export interface TenantPfRow {
  host: string;
  pf: string;
  pfPciAddress: string;
  vfs: number;
  minTxRateMbps: number;
}

/** Must match the partial indexes' WHERE, so SQLite can use them for holding-state queries. */
const HOLDING_SQL = `state IN (${HOLDING_STATES.map((s) => `'${s}'`).join(', ')})`;

const TENANT_COLUMNS = 'id, name, pf_min_tx_rate_mbps AS pfMinTxRateMbps, pf_max_tx_rate_mbps AS pfMaxTxRateMbps, created_at AS createdAt';
const ALLOCATION_COLUMNS = `id, workload_kind, workload_name, network, tenant, host, pf, pf_pci_address,
  vf_index, pci_address, mac, vlan, min_tx_rate_mbps, group_name, state, reason, created_at, updated_at, attachment_json, claim_resource,
  migration_id, migration_role`;

/** A host row with its liveness (host_liveness, written by touchHost) in place of the row's own state and last_heartbeat. */
const HOST_COLUMNS = `h.name AS name, IFNULL(l.state, h.state) AS state,
  CASE WHEN l.name IS NULL THEN h.last_heartbeat ELSE l.last_heartbeat END AS last_heartbeat,
  h.inventory_json AS inventory_json, h.physnets_json AS physnets_json, h.device_types_json AS device_types_json,
  h.drained_pfs_json AS drained_pfs_json, h.inventory_hash AS inventory_hash, h.updated_at AS updated_at
  FROM hosts h LEFT JOIN host_liveness l ON l.name = h.name`;

/** Every statement the store runs, prepared once per connection (hot path). */
export function prepareStatements(db: Database.Database) {
  return {
    listTenants: db.prepare<[], Tenant>(`SELECT ${TENANT_COLUMNS} FROM tenants ORDER BY name`),
    getTenant: db.prepare<[string], Tenant>(`SELECT ${TENANT_COLUMNS} FROM tenants WHERE name = ?`),
    // The id is set once, by the insert; an update of the same name keeps it.
    putTenant: db.prepare<Required<Tenant>>(
      `INSERT INTO tenants (id, name, pf_min_tx_rate_mbps, pf_max_tx_rate_mbps, created_at)
       VALUES (@id, @name, @pfMinTxRateMbps, @pfMaxTxRateMbps, @createdAt)
       ON CONFLICT (name) DO UPDATE SET created_at = excluded.created_at,
         pf_min_tx_rate_mbps = excluded.pf_min_tx_rate_mbps, pf_max_tx_rate_mbps = excluded.pf_max_tx_rate_mbps`,
    ),
    deleteTenant: db.prepare<[string]>('DELETE FROM tenants WHERE name = ?'),

    listPhysnets: db.prepare<[], { name: string; accounting_only: number; groups_accounting_only: number; tenant_vlans_json: string }>(
      'SELECT name, accounting_only, groups_accounting_only, tenant_vlans_json FROM physnets ORDER BY name',
    ),
    putPhysnet: db.prepare<{ name: string; accountingOnly: number; groupsAccountingOnly: number; tenantVlans: string }>(
      `INSERT INTO physnets (name, accounting_only, groups_accounting_only, tenant_vlans_json)
       VALUES (@name, @accountingOnly, @groupsAccountingOnly, @tenantVlans)
       ON CONFLICT (name) DO UPDATE SET accounting_only = excluded.accounting_only,
         groups_accounting_only = excluded.groups_accounting_only, tenant_vlans_json = excluded.tenant_vlans_json`,
    ),

    listNetworks: db.prepare<[], NetworkRow>('SELECT * FROM networks ORDER BY name'),
    listTenantNetworks: db.prepare<[string], NetworkRow>('SELECT * FROM networks WHERE tenant = ? ORDER BY name'),
    listPhysnetNetworks: db.prepare<[string], NetworkRow>('SELECT * FROM networks WHERE physnet = ? ORDER BY vlan, name'),
    listSegmentNetworks: db.prepare<[string, number], NetworkRow>('SELECT * FROM networks WHERE physnet = ? AND vlan = ? ORDER BY name'),
    getNetwork: db.prepare<[string], NetworkRow>('SELECT * FROM networks WHERE name = ?'),
    // An allocation's insert asks whether its network exists: a number, not the network's row, on every allocation.
    networkExists: db.prepare<[string], number>('SELECT 1 FROM networks WHERE name = ?').pluck(),
    putNetwork: db.prepare<NetworkRow>(
      `INSERT INTO networks (name, tenant, physnet, vlan, qos, vlan_proto, mtu, spoof_chk, trust,
                             max_tx_rate_mbps, min_tx_rate_mbps, device_type, created_at, ipam_json)
       VALUES (@name, @tenant, @physnet, @vlan, @qos, @vlan_proto, @mtu, @spoof_chk, @trust,
               @max_tx_rate_mbps, @min_tx_rate_mbps, @device_type, @created_at, @ipam_json)
       ON CONFLICT (name) DO UPDATE SET
         tenant = excluded.tenant, physnet = excluded.physnet, vlan = excluded.vlan, qos = excluded.qos,
         vlan_proto = excluded.vlan_proto, mtu = excluded.mtu, spoof_chk = excluded.spoof_chk,
         trust = excluded.trust, max_tx_rate_mbps = excluded.max_tx_rate_mbps,
         min_tx_rate_mbps = excluded.min_tx_rate_mbps, device_type = excluded.device_type,
         created_at = excluded.created_at, ipam_json = excluded.ipam_json`,
    ),
    vlanOwner: db.prepare<Network, { name: string; tenant: string }>(
      `SELECT name, tenant FROM networks
       WHERE physnet = @physnet AND vlan = @vlan AND tenant <> @tenant AND name <> @name LIMIT 1`,
    ),
    deleteNetwork: db.prepare<[string]>('DELETE FROM networks WHERE name = ?'),
    networkHeld: db.prepare<[string], { held: number }>(`SELECT 1 AS held FROM allocations WHERE network = ? AND ${HOLDING_SQL} LIMIT 1`),

    listHosts: db.prepare<[], HostRow>(`SELECT ${HOST_COLUMNS} ORDER BY h.name`),
    getHost: db.prepare<[string], HostRow>(`SELECT ${HOST_COLUMNS} WHERE h.name = ?`),
    // Only the narrow host_liveness row (schema migration 10), and only for a host that has a record:
    // `changes` is 0 for one that has none. The SELECT reads hosts' name index, not its rows.
    touchHost: db.prepare<{ name: string; state: string; at: string }>(
      `INSERT INTO host_liveness (name, state, last_heartbeat) SELECT name, @state, @at FROM hosts WHERE name = @name
       ON CONFLICT (name) DO UPDATE SET state = excluded.state, last_heartbeat = excluded.last_heartbeat`,
    ),
    putHost: db.prepare<HostRow>(
      `INSERT INTO hosts (name, state, last_heartbeat, inventory_json, physnets_json, device_types_json, drained_pfs_json, inventory_hash, updated_at)
       VALUES (@name, @state, @last_heartbeat, @inventory_json, @physnets_json, @device_types_json, @drained_pfs_json, @inventory_hash, @updated_at)
       ON CONFLICT (name) DO UPDATE SET
         state = excluded.state, last_heartbeat = excluded.last_heartbeat,
         inventory_json = excluded.inventory_json, physnets_json = excluded.physnets_json,
         device_types_json = excluded.device_types_json, drained_pfs_json = excluded.drained_pfs_json,
         inventory_hash = excluded.inventory_hash, updated_at = excluded.updated_at`,
    ),
    deleteHost: db.prepare<[string]>('DELETE FROM hosts WHERE name = ?'),

    /** One statement per listAllocations filter shape (at most 24), prepared on first use. */
    allocationQueries: new Map<string, Database.Statement<[AllocationFilter], AllocationRow>>(),
    getAllocation: db.prepare<[string], AllocationRow>(`SELECT ${ALLOCATION_COLUMNS} FROM allocations WHERE id = ?`),
    // A range on the primary key, [prefix, prefix + U+FFFF): LIKE would not use the index (it is case-insensitive).
    idPrefixMatches: db.prepare<{ lo: string; hi: string; tenant: string | null; host: string | null }, AllocationRow>(
      `SELECT ${ALLOCATION_COLUMNS} FROM allocations
       WHERE id >= @lo AND id < @hi AND (@tenant IS NULL OR tenant = @tenant) AND (@host IS NULL OR host = @host) ORDER BY id LIMIT 2`,
    ),
    idPrefixCount: db.prepare<{ lo: string; hi: string; tenant: string | null; host: string | null }, number>(
      'SELECT COUNT(*) FROM allocations WHERE id >= @lo AND id < @hi AND (@tenant IS NULL OR tenant = @tenant) AND (@host IS NULL OR host = @host)',
    ).pluck(),
    // By position (insertAllocationRow): one ? per column of ALLOCATION_COLUMNS.
    insertAllocation: db.prepare<AllocationValues>(
      `INSERT INTO allocations (${ALLOCATION_COLUMNS}) VALUES (${ALLOCATION_COLUMNS.split(',').map(() => '?').join(', ')})`,
    ),
    // Only an unbound claim still holding its VF: of two ADDs racing for one claim, one binds it.
    bindClaim: db.prepare<{ id: string; workload_name: string; attachment_json: string; at: string }, AllocationRow>(
      `UPDATE allocations SET workload_name = @workload_name, attachment_json = @attachment_json, updated_at = @at
       WHERE id = @id AND claim_resource IS NOT NULL AND attachment_json IS NULL AND state IN ('pending', 'configured')
       RETURNING ${ALLOCATION_COLUMNS}`,
    ),
    setAttachment: db.prepare<{ id: string; attachment_json: string | null }, AllocationRow>(
      `UPDATE allocations SET attachment_json = @attachment_json WHERE id = @id RETURNING ${ALLOCATION_COLUMNS}`,
    ),
    setMigration: db.prepare<{ id: string; migration_id: string | null; migration_role: string | null; at: string }, AllocationRow>(
      `UPDATE allocations SET migration_id = @migration_id, migration_role = @migration_role, updated_at = @at WHERE id = @id
       RETURNING ${ALLOCATION_COLUMNS}`,
    ),
    /** One statement per listMigrations filter shape, prepared on first use. */
    migrationQueries: new Map<string, Database.Statement<[Record<string, unknown>], MigrationRow>>(),
    getMigration: db.prepare<[string], MigrationRow>('SELECT * FROM migrations WHERE id = ?'),
    insertMigration: db.prepare<MigrationRow>(
      `INSERT INTO migrations (id, allocation, tenant, from_host, to_host, drain, state, record_json, created_at, updated_at)
       VALUES (@id, @allocation, @tenant, @from_host, @to_host, @drain, @state, @record_json, @created_at, @updated_at)`,
    ),
    updateMigration: db.prepare<MigrationRow>(
      `UPDATE migrations SET to_host = @to_host, state = @state, record_json = @record_json, updated_at = @updated_at WHERE id = @id`,
    ),
    activeMigrationOf: db.prepare<[string], string>(
      "SELECT id FROM migrations WHERE allocation = ? AND state IN ('running', 'rolling-back')",
    ).pluck(),
    leaseAddress: db.prepare<{ network: string; address: string; allocationId: string }>(
      'INSERT INTO ip_leases (network, address, allocation_id) VALUES (@network, @address, @allocationId)',
    ),
    addressHolder: db.prepare<{ network: string; address: string }, string>(
      'SELECT allocation_id FROM ip_leases WHERE network = @network AND address = @address',
    ).pluck(),
    releaseAddresses: db.prepare<[string]>('DELETE FROM ip_leases WHERE allocation_id = ?'),
    listLeases: db.prepare<[string], string>('SELECT address FROM ip_leases WHERE network = ? ORDER BY address').pluck(),
    updateAllocationState: db.prepare<
      { id: string; state: AllocationState; reason: string | null; at: string },
      AllocationRow
    >(
      `UPDATE allocations SET state = @state, reason = @reason, updated_at = @at WHERE id = @id
       RETURNING ${ALLOCATION_COLUMNS}`,
    ),
    vfHolder: db.prepare<Allocation, string>(
      `SELECT id FROM allocations WHERE host = @host AND pf_pci_address = @pfPciAddress
       AND vf_index = @vfIndex AND ${HOLDING_SQL} AND id <> @id LIMIT 1`,
    ).pluck(),
    macHolder: db.prepare<Allocation, string>(
      `SELECT id FROM allocations WHERE mac = @mac AND ${HOLDING_SQL} AND id <> @id LIMIT 1`,
    ).pluck(),
    // Through the partial one-holder-per-VF index: the PF's holding allocations only.
    pfCommitted: db.prepare<Allocation, number>(
      `SELECT COALESCE(SUM(min_tx_rate_mbps), 0) FROM allocations WHERE host = @host AND pf_pci_address = @pfPciAddress AND ${HOLDING_SQL}`,
    ).pluck(),

    // Tenant bandwidth groups (group-check.ts): each tenant's holdings on a PF, with its group's limits.
    pfTenantUsage: db.prepare<{ host: string; pfPciAddress: string }, PfTenantRow>(
      `SELECT a.tenant AS tenant, COUNT(*) AS vfs, SUM(a.min_tx_rate_mbps) AS minTxRateMbps,
              t.pf_min_tx_rate_mbps AS pfMinTxRateMbps, t.pf_max_tx_rate_mbps AS pfMaxTxRateMbps
       FROM allocations a LEFT JOIN tenants t ON t.name = a.tenant
       WHERE a.host = @host AND a.pf_pci_address = @pfPciAddress AND a.${HOLDING_SQL}
       GROUP BY a.tenant`,
    ),
    tenantHoldings: db.prepare<[string], TenantPfRow>(
      `SELECT host, pf, pf_pci_address AS pfPciAddress, COUNT(*) AS vfs, SUM(min_tx_rate_mbps) AS minTxRateMbps
       FROM allocations WHERE tenant = ? AND ${HOLDING_SQL} GROUP BY host, pf_pci_address`,
    ),
    groupTenantCount: db.prepare<[], number>(
      'SELECT COUNT(*) FROM tenants WHERE pf_min_tx_rate_mbps IS NOT NULL OR pf_max_tx_rate_mbps IS NOT NULL',
    ).pluck(),

    listPolicies: db.prepare<[], StoredPolicy>(
      'SELECT host, document, updated_at AS updatedAt FROM policies ORDER BY host',
    ),
    listHostPolicies: db.prepare<[string], StoredPolicy>(
      'SELECT host, document, updated_at AS updatedAt FROM policies WHERE host = ?',
    ),
    putPolicy: db.prepare<StoredPolicy>(
      `INSERT INTO policies (host, document, updated_at) VALUES (@host, @document, @updatedAt)
       ON CONFLICT (host) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at`,
    ),

    listTokens: db.prepare<[], TokenRecord>(
      'SELECT id, role, tenant_id AS tenantId, hash, created_at AS createdAt FROM tokens ORDER BY created_at, id',
    ),
    findTokenByHash: db.prepare<[string], TokenRecord>(
      'SELECT id, role, tenant_id AS tenantId, hash, created_at AS createdAt FROM tokens WHERE hash = ?',
    ),
    putToken: db.prepare<TokenRecord>(
      `INSERT INTO tokens (id, role, tenant_id, hash, created_at) VALUES (@id, @role, @tenantId, @hash, @createdAt)
       ON CONFLICT (id) DO UPDATE SET role = excluded.role, tenant_id = excluded.tenant_id, hash = excluded.hash,
         created_at = excluded.created_at`,
    ),
    deleteToken: db.prepare<[string]>('DELETE FROM tokens WHERE id = ?'),

    // By position, not name: a row object per event (every write appends one) was garbage.
    // Nobody reads the seq it returns (Store.appendEvent returns nothing). Kept, with get(): a plain number per
    // event, where run()'s result object ({ changes, lastInsertRowid }) would be garbage on every write.
    appendEvent: db.prepare<[at: string, actor: string, action: string, object: string, beforeJson: string | null, afterJson: string | null], number>(
      `INSERT INTO events (at, actor, action, object, before_json, after_json) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq`,
    ).pluck(),
    listEvents: db.prepare<{ afterSeq: number; limit: number }, EventRow>(
      'SELECT * FROM events WHERE seq > @afterSeq ORDER BY seq LIMIT @limit',
    ),
    lastEventSeq: db.prepare<[], number>('SELECT COALESCE(MAX(seq), 0) FROM events').pluck(),
    listObjectEvents: db.prepare<{ afterSeq: number; limit: number; object: string }, EventRow>(
      'SELECT * FROM events WHERE object = @object AND seq > @afterSeq ORDER BY seq LIMIT @limit',
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;

export function migrationQuery(db: Database.Database, s: Statements, filter: MigrationFilter) {
  const clauses: string[] = [];
  if (filter.state !== undefined) clauses.push('state = @state');
  if (filter.active !== undefined) clauses.push(`${filter.active ? '' : 'NOT '}state IN ('running', 'rolling-back')`);
  if (filter.allocation !== undefined) clauses.push('allocation = @allocation');
  if (filter.tenant !== undefined) clauses.push('tenant = @tenant');
  if (filter.drain !== undefined) clauses.push('drain = @drain');
  if (filter.host !== undefined) clauses.push('(from_host = @host OR to_host = @host)');
  const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
  let stmt = s.migrationQueries.get(where);
  if (stmt === undefined) {
    stmt = db.prepare<Record<string, unknown>, MigrationRow>(`SELECT * FROM migrations ${where} ORDER BY created_at, id`);
    s.migrationQueries.set(where, stmt);
  }
  return stmt;
}

export function allocationQuery(db: Database.Database, s: Statements, filter: AllocationFilter) {
  const clauses: string[] = [];
  if (filter.tenant !== undefined) clauses.push('tenant = @tenant');
  if (filter.host !== undefined) clauses.push('host = @host');
  if (filter.network !== undefined) clauses.push('network = @network');
  if (filter.workload !== undefined) clauses.push('workload_name = @workload');
  if (filter.ifname !== undefined) clauses.push("json_extract(attachment_json, '$.ifname') = @ifname");
  if (filter.state !== undefined) clauses.push('state = @state');
  if (filter.pciAddress !== undefined) clauses.push('pci_address = @pciAddress');
  // Written as the partial index's WHERE says, so SQLite uses it.
  if (filter.unboundClaim) clauses.push(`claim_resource IS NOT NULL AND attachment_json IS NULL AND ${HOLDING_SQL}`);
  if (filter.holding !== undefined) clauses.push(filter.holding ? HOLDING_SQL : `NOT ${HOLDING_SQL}`);
  const paged = filter.limit !== undefined;
  if (paged && filter.after !== undefined) clauses.push('id > @after');
  const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
  const tail = paged ? 'ORDER BY id LIMIT @limit' : 'ORDER BY rowid';
  const key = `${where} ${tail}`;
  let stmt = s.allocationQueries.get(key);
  if (stmt === undefined) {
    stmt = db.prepare<AllocationFilter, AllocationRow>(`SELECT ${ALLOCATION_COLUMNS} FROM allocations ${where} ${tail}`);
    s.allocationQueries.set(key, stmt);
  }
  return stmt;
}

