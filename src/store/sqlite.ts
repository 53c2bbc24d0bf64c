/**
 * The embedded store: one SQLite file, `<dataDir>/vfleet.db`, written by one
 * process. The schema itself enforces the store's invariants (partial unique
 * indexes, triggers), so a bug above this file cannot hand a VF, a MAC or a
 * VLAN to two holders; this file only turns those refusals into CONFLICT.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  HOLDING_STATES,
  type Allocation,
  type AllocationMigration,
  type AllocationState,
  type Attachment,
  type AuditEvent,
  type DeviceType,
  type HostRecord,
  type HostState,
  type Migration,
  type Network,
  type Physnet,
  type StoredPolicy,
  type Tenant,
  type TokenRecord,
  type WorkloadKind,
} from '../domain/types.js';
import type { VlanProto } from '../host/model.js';
import { SriovError } from '../host/errors.js';
import { Mutex } from '../util/mutex.js';
import type { Leadership, MigrationFilter, NetworkFilter, NewAuditEvent, Store, StoreChange, StoreTx } from './store.js';

const DB_FILE = 'vfleet.db';
const DEFAULT_EVENT_LIMIT = 1000;
const VLAN_OWNER_VIOLATION = 'vlan owned by another tenant';
const MAC_VIOLATION = 'mac held by another allocation';
const HOLDING_LIST = "('pending', 'configured', 'attached', 'releasing')";
/**
 * The MAC rule as a trigger's condition on NEW: another holding allocation
 * has the MAC, and is not NEW's own migration peer (the same migration id,
 * the other role). A unique index cannot say "except its peer".
 */
const MAC_TAKEN = `NEW.state IN ${HOLDING_LIST} AND EXISTS (
    SELECT 1 FROM allocations o WHERE o.mac = NEW.mac AND o.id <> NEW.id AND o.state IN ${HOLDING_LIST}
      AND NOT (NEW.migration_id IS NOT NULL AND o.migration_id IS NEW.migration_id AND o.migration_role <> NEW.migration_role))`;

/**
 * Schema migrations, in order; entry i takes `user_version` from i to i + 1.
 * Released entries are never edited: a change is a new entry.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE tenants (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
  );
  CREATE TABLE physnets (
    name TEXT PRIMARY KEY,
    accounting_only INTEGER NOT NULL CHECK (accounting_only IN (0, 1))
  );
  CREATE TABLE networks (
    name TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    physnet TEXT NOT NULL,
    vlan INTEGER NOT NULL,
    qos INTEGER NOT NULL,
    vlan_proto TEXT NOT NULL,
    mtu INTEGER,
    spoof_chk INTEGER NOT NULL CHECK (spoof_chk IN (0, 1)),
    trust INTEGER NOT NULL CHECK (trust IN (0, 1)),
    max_tx_rate_mbps INTEGER NOT NULL,
    min_tx_rate_mbps INTEGER NOT NULL,
    device_type TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE INDEX networks_by_vlan ON networks (physnet, vlan);
  CREATE INDEX networks_by_tenant ON networks (tenant);
  -- One tenant per (physnet, VLAN). A trigger rather than an owners table:
  -- ownership then needs no bookkeeping when the last network goes away.
  -- The network being written is excluded so an upsert may change its tenant.
  CREATE TRIGGER networks_vlan_owner_on_insert BEFORE INSERT ON networks
  WHEN EXISTS (SELECT 1 FROM networks WHERE physnet = NEW.physnet AND vlan = NEW.vlan
               AND tenant <> NEW.tenant AND name <> NEW.name)
  BEGIN SELECT RAISE(ABORT, '${VLAN_OWNER_VIOLATION}'); END;
  CREATE TRIGGER networks_vlan_owner_on_update BEFORE UPDATE OF tenant, physnet, vlan ON networks
  WHEN EXISTS (SELECT 1 FROM networks WHERE physnet = NEW.physnet AND vlan = NEW.vlan
               AND tenant <> NEW.tenant AND name <> NEW.name)
  BEGIN SELECT RAISE(ABORT, '${VLAN_OWNER_VIOLATION}'); END;

  CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    last_heartbeat TEXT,
    inventory_json TEXT NOT NULL,
    physnets_json TEXT NOT NULL,
    device_types_json TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );

  CREATE TABLE allocations (
    id TEXT PRIMARY KEY,
    workload_kind TEXT NOT NULL CHECK (workload_kind IN ('container', 'vm')),
    workload_name TEXT NOT NULL,
    network TEXT NOT NULL,
    tenant TEXT NOT NULL,
    host TEXT NOT NULL,
    pf TEXT NOT NULL,
    pf_pci_address TEXT NOT NULL,
    vf_index INTEGER NOT NULL,
    pci_address TEXT NOT NULL,
    -- NOCASE: 02:AA:... and 02:aa:... are one MAC to the wire.
    mac TEXT NOT NULL COLLATE NOCASE,
    vlan INTEGER NOT NULL,
    min_tx_rate_mbps INTEGER NOT NULL,
    group_name TEXT,
    state TEXT NOT NULL
      CHECK (state IN ('pending', 'configured', 'attached', 'releasing', 'released', 'failed')),
    reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE UNIQUE INDEX allocations_one_holder_per_vf ON allocations (host, pf_pci_address, vf_index)
    WHERE state IN ('pending', 'configured', 'attached', 'releasing');
  CREATE UNIQUE INDEX allocations_unique_mac ON allocations (mac)
    WHERE state IN ('pending', 'configured', 'attached', 'releasing');
  CREATE INDEX allocations_by_host ON allocations (host);
  CREATE INDEX allocations_by_tenant ON allocations (tenant);
  CREATE INDEX allocations_by_network ON allocations (network);

  CREATE TABLE policies (
    host TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );

  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
  );

  CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT
  );
  CREATE INDEX events_by_object ON events (object, seq);
  -- The audit log is append-only for every writer, not just for this code.
  CREATE TRIGGER events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
  CREATE TRIGGER events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
  `,
  `
  -- Containers and VMs: what an allocation is attached to, and IP pools.
  ALTER TABLE networks ADD COLUMN ipam_json TEXT;
  ALTER TABLE allocations ADD COLUMN attachment_json TEXT;
  CREATE INDEX allocations_by_workload ON allocations (workload_name);
  -- One holder per address in a network's pool; the primary key is the guarantee.
  CREATE TABLE ip_leases (
    network TEXT NOT NULL,
    address TEXT NOT NULL,
    allocation_id TEXT NOT NULL,
    PRIMARY KEY (network, address)
  );
  CREATE INDEX ip_leases_by_allocation ON ip_leases (allocation_id);
  `,
  `
  -- Tenant VLAN ranges of a physnet, e.g. [{"from":1000,"to":1999}]: what tenants' networks get.
  ALTER TABLE physnets ADD COLUMN tenant_vlans_json TEXT NOT NULL DEFAULT '[]';
  `,
  `
  -- Tenant identity: an immutable id, so tokens bind to the tenant and not to
  -- its name. Tenants that exist get a random 128-bit id (new ones a UUID);
  -- tenant tokens are bound to their tenant as it is now. A tenant token whose
  -- tenant is gone stays unbound (tenant_id NULL), and an unbound one is refused.
  ALTER TABLE tenants ADD COLUMN id TEXT;
  UPDATE tenants SET id = lower(hex(randomblob(16)));
  CREATE UNIQUE INDEX tenants_by_id ON tenants (id);
  -- Ids never change: an upsert keeps the id, and nothing may rewrite it.
  CREATE TRIGGER tenants_id_immutable BEFORE UPDATE OF id ON tenants
  WHEN OLD.id IS NOT NULL AND NEW.id IS NOT OLD.id
  BEGIN SELECT RAISE(ABORT, 'tenant ids are immutable'); END;
  ALTER TABLE tokens ADD COLUMN tenant_id TEXT;
  UPDATE tokens SET tenant_id = (SELECT id FROM tenants WHERE 'tenant:' || tenants.name = tokens.role)
    WHERE role LIKE 'tenant:%';
  `,
  `
  -- Kubelet device-plugin claims: the extended resource a VF was given as
  -- (e.g. vfleet.io/red), NULL for every other allocation. A claim is bound
  -- when its pod's CNI ADD sets its attachment; the sweep looks for unbound
  -- ones, so they have their own small index.
  ALTER TABLE allocations ADD COLUMN claim_resource TEXT;
  CREATE INDEX allocations_unbound_claims ON allocations (created_at)
    WHERE claim_resource IS NOT NULL AND attachment_json IS NULL
      AND state IN ('pending', 'configured', 'attached', 'releasing');
  `,
  `
  -- PFs staff drained (sriovctl pf drain): a JSON array of PF PCI addresses.
  -- A column of the host rather than a table: it is read and written with the
  -- host record, and goes when the host does.
  ALTER TABLE hosts ADD COLUMN drained_pfs_json TEXT NOT NULL DEFAULT '[]';
  `,
  `
  -- Live migration. An allocation carries the migration moving it and its
  -- role at that end; the destination may share its source's MAC while both
  -- carry the same migration, and nothing else may: the unique MAC index
  -- becomes a trigger (with a plain index for its lookups).
  ALTER TABLE allocations ADD COLUMN migration_id TEXT;
  ALTER TABLE allocations ADD COLUMN migration_role TEXT CHECK (migration_role IN ('source', 'destination'));
  DROP INDEX allocations_unique_mac;
  CREATE INDEX allocations_holding_mac ON allocations (mac) WHERE state IN ${HOLDING_LIST};
  CREATE TRIGGER allocations_mac_on_insert BEFORE INSERT ON allocations WHEN ${MAC_TAKEN}
  BEGIN SELECT RAISE(ABORT, '${MAC_VIOLATION}'); END;
  CREATE TRIGGER allocations_mac_on_update BEFORE UPDATE OF mac, state, migration_id, migration_role ON allocations WHEN ${MAC_TAKEN}
  BEGIN SELECT RAISE(ABORT, '${MAC_VIOLATION}'); END;
  -- The record itself is JSON (it is read and written whole); the columns are what lists filter on.
  CREATE TABLE migrations (
    id TEXT PRIMARY KEY,
    allocation TEXT NOT NULL,
    tenant TEXT NOT NULL,
    from_host TEXT NOT NULL,
    to_host TEXT,
    drain TEXT,
    state TEXT NOT NULL CHECK (state IN ('running', 'rolling-back', 'completed', 'failed', 'aborted')),
    record_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  -- One unfinished migration per allocation: of two started at once, one is refused.
  CREATE UNIQUE INDEX migrations_one_active ON migrations (allocation) WHERE state IN ('running', 'rolling-back');
  CREATE INDEX migrations_by_state ON migrations (state);
  `,
];

/** The schema version a store opened by this vfleet has (`PRAGMA user_version`). */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Must match the partial indexes' WHERE, so SQLite can use them for holding-state queries. */
const HOLDING_SQL = `state IN (${HOLDING_STATES.map((s) => `'${s}'`).join(', ')})`;

const ALLOCATION_COLUMNS = `id, workload_kind, workload_name, network, tenant, host, pf, pf_pci_address,
  vf_index, pci_address, mac, vlan, min_tx_rate_mbps, group_name, state, reason, created_at, updated_at, attachment_json, claim_resource,
  migration_id, migration_role`;

interface NetworkRow {
  name: string;
  tenant: string;
  physnet: string;
  vlan: number;
  qos: number;
  vlan_proto: VlanProto;
  mtu: number | null;
  spoof_chk: number;
  trust: number;
  max_tx_rate_mbps: number;
  min_tx_rate_mbps: number;
  device_type: DeviceType;
  created_at: string;
  ipam_json: string | null;
}

interface HostRow {
  name: string;
  state: HostState;
  last_heartbeat: string | null;
  inventory_json: string;
  physnets_json: string;
  device_types_json: string;
  drained_pfs_json: string;
  updated_at: string;
}

interface AllocationRow {
  id: string;
  workload_kind: WorkloadKind;
  workload_name: string;
  network: string;
  tenant: string;
  host: string;
  pf: string;
  pf_pci_address: string;
  vf_index: number;
  pci_address: string;
  mac: string;
  vlan: number;
  min_tx_rate_mbps: number;
  group_name: string | null;
  state: AllocationState;
  reason: string | null;
  created_at: string;
  updated_at: string;
  attachment_json: string | null;
  claim_resource: string | null;
  migration_id: string | null;
  migration_role: 'source' | 'destination' | null;
}

interface MigrationRow {
  id: string;
  allocation: string;
  tenant: string;
  from_host: string;
  to_host: string | null;
  drain: string | null;
  state: Migration['state'];
  record_json: string;
  created_at: string;
  updated_at: string;
}

interface EventRow {
  seq: number;
  at: string;
  actor: string;
  action: string;
  object: string;
  before_json: string | null;
  after_json: string | null;
}

type AllocationFilter = NonNullable<Parameters<StoreTx['listAllocations']>[0]>;

/** Every statement the store runs, prepared once per connection (hot path). */
function prepareStatements(db: Database.Database) {
  return {
    listTenants: db.prepare<[], Tenant>('SELECT id, name, created_at AS createdAt FROM tenants ORDER BY name'),
    getTenant: db.prepare<[string], Tenant>('SELECT id, name, created_at AS createdAt FROM tenants WHERE name = ?'),
    // The id is set once, by the insert; an update of the same name keeps it.
    putTenant: db.prepare<Tenant>(
      `INSERT INTO tenants (id, name, created_at) VALUES (@id, @name, @createdAt)
       ON CONFLICT (name) DO UPDATE SET created_at = excluded.created_at`,
    ),
    deleteTenant: db.prepare<[string]>('DELETE FROM tenants WHERE name = ?'),

    listPhysnets: db.prepare<[], { name: string; accounting_only: number; tenant_vlans_json: string }>(
      'SELECT name, accounting_only, tenant_vlans_json FROM physnets ORDER BY name',
    ),
    putPhysnet: db.prepare<{ name: string; accountingOnly: number; tenantVlans: string }>(
      `INSERT INTO physnets (name, accounting_only, tenant_vlans_json) VALUES (@name, @accountingOnly, @tenantVlans)
       ON CONFLICT (name) DO UPDATE SET accounting_only = excluded.accounting_only, tenant_vlans_json = excluded.tenant_vlans_json`,
    ),

    listNetworks: db.prepare<[], NetworkRow>('SELECT * FROM networks ORDER BY name'),
    listTenantNetworks: db.prepare<[string], NetworkRow>('SELECT * FROM networks WHERE tenant = ? ORDER BY name'),
    listPhysnetNetworks: db.prepare<[string], NetworkRow>('SELECT * FROM networks WHERE physnet = ? ORDER BY vlan, name'),
    listSegmentNetworks: db.prepare<[string, number], NetworkRow>('SELECT * FROM networks WHERE physnet = ? AND vlan = ? ORDER BY name'),
    getNetwork: db.prepare<[string], NetworkRow>('SELECT * FROM networks WHERE name = ?'),
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

    listHosts: db.prepare<[], HostRow>('SELECT * FROM hosts ORDER BY name'),
    getHost: db.prepare<[string], HostRow>('SELECT * FROM hosts WHERE name = ?'),
    touchHost: db.prepare<{ name: string; state: string; at: string }>('UPDATE hosts SET state = @state, last_heartbeat = @at WHERE name = @name'),
    putHost: db.prepare<HostRow>(
      `INSERT INTO hosts (name, state, last_heartbeat, inventory_json, physnets_json, device_types_json, drained_pfs_json, updated_at)
       VALUES (@name, @state, @last_heartbeat, @inventory_json, @physnets_json, @device_types_json, @drained_pfs_json, @updated_at)
       ON CONFLICT (name) DO UPDATE SET
         state = excluded.state, last_heartbeat = excluded.last_heartbeat,
         inventory_json = excluded.inventory_json, physnets_json = excluded.physnets_json,
         device_types_json = excluded.device_types_json, drained_pfs_json = excluded.drained_pfs_json,
         updated_at = excluded.updated_at`,
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
    insertAllocation: db.prepare<AllocationRow>(
      `INSERT INTO allocations (${ALLOCATION_COLUMNS}) VALUES (@id, @workload_kind, @workload_name, @network,
         @tenant, @host, @pf, @pf_pci_address, @vf_index, @pci_address, @mac, @vlan, @min_tx_rate_mbps,
         @group_name, @state, @reason, @created_at, @updated_at, @attachment_json, @claim_resource,
         @migration_id, @migration_role)`,
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

    appendEvent: db.prepare<Omit<EventRow, 'seq'>, number>(
      `INSERT INTO events (at, actor, action, object, before_json, after_json)
       VALUES (@at, @actor, @action, @object, @before_json, @after_json) RETURNING seq`,
    ).pluck(),
    listEvents: db.prepare<{ afterSeq: number; limit: number }, EventRow>(
      'SELECT * FROM events WHERE seq > @afterSeq ORDER BY seq LIMIT @limit',
    ),
    listObjectEvents: db.prepare<{ afterSeq: number; limit: number; object: string }, EventRow>(
      'SELECT * FROM events WHERE object = @object AND seq > @afterSeq ORDER BY seq LIMIT @limit',
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

function toNetworkRow(n: Network): NetworkRow {
  return {
    name: n.name,
    tenant: n.tenant,
    physnet: n.physnet,
    vlan: n.vlan,
    qos: n.qos,
    vlan_proto: n.vlanProto,
    mtu: n.mtu,
    spoof_chk: n.spoofChk ? 1 : 0,
    trust: n.trust ? 1 : 0,
    max_tx_rate_mbps: n.maxTxRateMbps,
    min_tx_rate_mbps: n.minTxRateMbps,
    device_type: n.deviceType,
    created_at: n.createdAt,
    ipam_json: n.ipam ? JSON.stringify(n.ipam) : null,
  };
}

function toNetwork(r: NetworkRow): Network {
  return {
    name: r.name,
    tenant: r.tenant,
    physnet: r.physnet,
    vlan: r.vlan,
    qos: r.qos,
    vlanProto: r.vlan_proto,
    mtu: r.mtu,
    spoofChk: r.spoof_chk === 1,
    trust: r.trust === 1,
    maxTxRateMbps: r.max_tx_rate_mbps,
    minTxRateMbps: r.min_tx_rate_mbps,
    deviceType: r.device_type,
    createdAt: r.created_at,
    ipam: r.ipam_json === null ? null : (JSON.parse(r.ipam_json) as Network['ipam']),
  };
}

function toHostRow(h: HostRecord): HostRow {
  return {
    name: h.name,
    state: h.state,
    last_heartbeat: h.lastHeartbeat,
    inventory_json: JSON.stringify(h.inventory),
    physnets_json: JSON.stringify(h.physnets),
    device_types_json: JSON.stringify(h.deviceTypes),
    // Sorted and once each: the stored set reads the same however it was built.
    drained_pfs_json: JSON.stringify([...new Set(h.drainedPfs)].sort()),
    updated_at: h.updatedAt,
  };
}

function toHost(r: HostRow): HostRecord {
  return {
    name: r.name,
    state: r.state,
    lastHeartbeat: r.last_heartbeat,
    inventory: JSON.parse(r.inventory_json) as HostRecord['inventory'],
    physnets: JSON.parse(r.physnets_json) as HostRecord['physnets'],
    deviceTypes: JSON.parse(r.device_types_json) as HostRecord['deviceTypes'],
    drainedPfs: JSON.parse(r.drained_pfs_json) as string[],
    updatedAt: r.updated_at,
  };
}

function toAllocationRow(a: Allocation): AllocationRow {
  return {
    id: a.id,
    workload_kind: a.workload.kind,
    workload_name: a.workload.name,
    network: a.network,
    tenant: a.tenant,
    host: a.host,
    pf: a.pf,
    pf_pci_address: a.pfPciAddress,
    vf_index: a.vfIndex,
    pci_address: a.pciAddress,
    mac: a.mac,
    vlan: a.vlan,
    min_tx_rate_mbps: a.minTxRateMbps,
    group_name: a.group,
    state: a.state,
    reason: a.reason,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
    attachment_json: a.attachment ? JSON.stringify(a.attachment) : null,
    // Optional chaining: callers that predate claims (scripts, old tests) leave the field out.
    claim_resource: a.deviceClaim?.resource ?? null,
    migration_id: a.migration?.id ?? null,
    migration_role: a.migration?.role ?? null,
  };
}

function toAllocation(r: AllocationRow): Allocation {
  return {
    id: r.id,
    workload: { kind: r.workload_kind, name: r.workload_name },
    network: r.network,
    tenant: r.tenant,
    host: r.host,
    pf: r.pf,
    pfPciAddress: r.pf_pci_address,
    vfIndex: r.vf_index,
    pciAddress: r.pci_address,
    mac: r.mac,
    vlan: r.vlan,
    minTxRateMbps: r.min_tx_rate_mbps,
    group: r.group_name,
    state: r.state,
    reason: r.reason,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    attachment: r.attachment_json === null ? null : (JSON.parse(r.attachment_json) as Allocation['attachment']),
    deviceClaim: r.claim_resource === null ? null : { resource: r.claim_resource },
    migration: r.migration_id === null || r.migration_role === null ? null : { id: r.migration_id, role: r.migration_role },
  };
}

function toMigrationRow(m: Migration): MigrationRow {
  return {
    id: m.id,
    allocation: m.from.allocation,
    tenant: m.tenant,
    from_host: m.from.host,
    to_host: m.to?.host ?? null,
    drain: m.drain,
    state: m.state,
    record_json: JSON.stringify(m),
    created_at: m.createdAt,
    updated_at: m.updatedAt,
  };
}

function toMigration(r: MigrationRow): Migration {
  return JSON.parse(r.record_json) as Migration;
}

function migrationQuery(db: Database.Database, s: Statements, filter: MigrationFilter) {
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

/** `undefined` has no JSON form; it is stored as NULL and read back as null. */
function toJson(value: unknown): string | null {
  return JSON.stringify(value) ?? null;
}

function fromJson(text: string | null): unknown {
  return text === null ? null : JSON.parse(text);
}

function toEvent(r: EventRow): AuditEvent {
  return {
    seq: r.seq,
    at: r.at,
    actor: r.actor,
    action: r.action,
    object: r.object,
    before: fromJson(r.before_json),
    after: fromJson(r.after_json),
  };
}

function allocationQuery(db: Database.Database, s: Statements, filter: AllocationFilter) {
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

function isSqliteError(err: unknown, code: string): err is Error {
  return err instanceof Database.SqliteError && err.code === code;
}

function conflict(message: string, object: string, cause: unknown): SriovError {
  return new SriovError('CONFLICT', message, { object, nothingChanged: true, cause });
}

/**
 * Says what `a` asked for is taken, when a unique index refused it; other
 * errors pass through. The holder is not named: it may be another tenant's
 * allocation, and the store does not know who asks.
 */
function allocationConflict(s: Statements, err: unknown, a: Allocation): unknown {
  if (isSqliteError(err, 'SQLITE_CONSTRAINT_PRIMARYKEY')) {
    return conflict(`allocation ${a.id} already exists`, a.id, err);
  }
  // The MAC trigger runs before the unique VF index: of the two, the VF is named first, as before.
  const macRule = isSqliteError(err, 'SQLITE_CONSTRAINT_TRIGGER') && err.message.includes(MAC_VIOLATION);
  if (!macRule && !isSqliteError(err, 'SQLITE_CONSTRAINT_UNIQUE')) return err;
  if (s.vfHolder.get(a) !== undefined) return conflict(`VF ${a.vfIndex} of ${a.pf} on ${a.host} is taken`, a.id, err);
  if (macRule || s.macHolder.get(a) !== undefined) return conflict(`MAC ${a.mac} is in use`, a.id, err);
  return err;
}

/**
 * The store's operations on the connection as it is: inside a transaction
 * when one is open. Helpers live outside the class because every method on
 * its prototype is wrapped (see `wrapMethods`).
 */
class SqliteTx implements StoreTx {
  constructor(
    private readonly db: Database.Database,
    private readonly s: Statements,
  ) {}

  async listTenants(): Promise<Tenant[]> {
    return this.s.listTenants.all();
  }

  async getTenant(name: string): Promise<Tenant | null> {
    return this.s.getTenant.get(name) ?? null;
  }

  async putTenant(t: Tenant): Promise<void> {
    this.s.putTenant.run(t);
  }

  async deleteTenant(name: string): Promise<boolean> {
    return this.s.deleteTenant.run(name).changes > 0;
  }

  async listPhysnets(): Promise<Physnet[]> {
    return this.s.listPhysnets.all().map((r) => ({
      name: r.name,
      accountingOnly: r.accounting_only === 1,
      tenantVlans: JSON.parse(r.tenant_vlans_json) as Physnet['tenantVlans'],
    }));
  }

  async putPhysnet(p: Physnet): Promise<void> {
    this.s.putPhysnet.run({ name: p.name, accountingOnly: p.accountingOnly ? 1 : 0, tenantVlans: JSON.stringify(p.tenantVlans) });
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
    try {
      this.s.putNetwork.run(toNetworkRow(n));
    } catch (err) {
      const owner = isSqliteError(err, 'SQLITE_CONSTRAINT_TRIGGER') ? this.s.vlanOwner.get(n) : undefined;
      if (owner === undefined) throw err;
      // The store does not know who asks: it never names the owner (another tenant's data).
      throw conflict(`VLAN ${n.vlan} on physnet ${n.physnet} is taken by another tenant`, n.name, err);
    }
  }

  async deleteNetwork(name: string): Promise<boolean> {
    return this.s.deleteNetwork.run(name).changes > 0;
  }

  async listHosts(): Promise<HostRecord[]> {
    return this.s.listHosts.all().map(toHost);
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

  async insertAllocation(a: Allocation): Promise<void> {
    try {
      this.s.insertAllocation.run(toAllocationRow(a));
    } catch (err) {
      throw allocationConflict(this.s, err, a);
    }
  }

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
      throw conflict(what, m.from.allocation, err);
    }
  }

  async updateMigration(m: Migration): Promise<boolean> {
    return this.s.updateMigration.run(toMigrationRow(m)).changes > 0;
  }

  async leaseAddresses(network: string, allocationId: string, addresses: string[]): Promise<void> {
    for (const address of addresses) {
      const holder = this.s.addressHolder.get({ network, address });
      if (holder !== undefined && holder !== allocationId) {
        throw new SriovError('CONFLICT', `address ${address} on network ${network} is held by allocation ${holder}`, { object: address });
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
    try {
      this.s.putToken.run(t);
    } catch (err) {
      throw isSqliteError(err, 'SQLITE_CONSTRAINT_UNIQUE') ? conflict('token hash already in use', t.id, err) : err;
    }
  }

  async deleteToken(id: string): Promise<boolean> {
    return this.s.deleteToken.run(id).changes > 0;
  }

  async appendEvent(e: NewAuditEvent & { at: string }): Promise<AuditEvent> {
    const row = { ...e, before_json: toJson(e.before), after_json: toJson(e.after) };
    const seq = this.s.appendEvent.get(row);
    if (seq === undefined) throw new Error('INSERT ... RETURNING seq returned no row');
    return toEvent({ seq, ...row });
  }

  async listEvents(opts: { afterSeq?: number; limit?: number; object?: string } = {}): Promise<AuditEvent[]> {
    const params = { afterSeq: opts.afterSeq ?? 0, limit: opts.limit ?? DEFAULT_EVENT_LIMIT };
    const rows =
      opts.object === undefined
        ? this.s.listEvents.all(params)
        : this.s.listObjectEvents.all({ ...params, object: opts.object });
    return rows.map(toEvent);
  }
}

const TX_METHODS = Object.getOwnPropertyNames(SqliteTx.prototype).filter((name) => name !== 'constructor');

type AnyMethod = (...args: unknown[]) => Promise<unknown>;

/** A StoreTx whose every call to `inner` goes through `around`. */
function wrapMethods(inner: SqliteTx, around: (call: () => Promise<unknown>) => Promise<unknown>): StoreTx {
  const wrapped: Record<string, AnyMethod> = {};
  const methods = inner as unknown as Record<string, AnyMethod>;
  for (const name of TX_METHODS) {
    const method = methods[name] as AnyMethod;
    wrapped[name] = (...args) => around(() => method.apply(inner, args));
  }
  return wrapped as unknown as StoreTx;
}


/** WAL + synchronous=NORMAL: a killed process never corrupts the file or loses a commit. */
function configure(db: Database.Database): void {
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
}

/**
 * Applies pending migrations, each in its own IMMEDIATE transaction that
 * re-reads the version, so two processes opening one file cannot both apply one.
 */
function migrate(db: Database.Database, file: string): void {
  const step = db.transaction((): boolean => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new SriovError(
        'UNSUPPORTED',
        `${file} has schema version ${version}, newer than the ${MIGRATIONS.length} this vfleet knows; ` +
          'upgrade vfleet (or restore a backup taken by this version)',
        { object: file, nothingChanged: true },
      );
    }
    const sql = MIGRATIONS[version];
    if (sql === undefined) return false;
    db.exec(sql);
    db.pragma(`user_version = ${version + 1}`);
    return true;
  });
  while (step.immediate()) {
    // Each pass applies one migration.
  }
}

const CHECKPOINT_MS = 1000;

/** The embedded store has one controller: it leads from the start, and nobody takes over. */
const SOLE_LEADER: Leadership = {
  leader: true,
  onChange: () => () => {},
  resign: async () => {},
};

class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly tx: StoreTx;
  /**
   * One SQLite connection has one transaction: while a `transaction` awaits,
   * nothing else may run SQL on the connection, or it would silently join it.
   */
  private readonly mutex = new Mutex();
  private readonly inner: SqliteTx;
  private readonly begin: Database.Statement;
  private readonly commit: Database.Statement;
  private readonly rollback: Database.Statement;

  private readonly checkpointer: NodeJS.Timeout;

  constructor(private readonly db: Database.Database) {
    this.inner = new SqliteTx(db, prepareStatements(db));
    // Checkpoints copy the WAL into the database file; run here, off the
    // request path, instead of inside whichever commit crosses 1000 pages.
    db.pragma('wal_autocheckpoint = 0');
    this.checkpointer = setInterval(() => void this.mutex.run(async () => db.pragma('wal_checkpoint(PASSIVE)')), CHECKPOINT_MS);
    this.checkpointer.unref();
    this.tx = wrapMethods(this.inner, (call) => this.mutex.run(call));
    // IMMEDIATE takes the write lock up front, so a read-then-write in `fn` cannot be raced.
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
  }

  /** `fn` must use the `tx` it is given: `store.tx` waits for this transaction, so it would deadlock. */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      let open = true;
      // Refuses calls made after the end (a leaked tx), which would otherwise run in someone else's transaction.
      const scoped = wrapMethods(this.inner, (call) =>
        open ? call() : Promise.reject(new Error('transaction already ended; use store.tx')),
      );
      this.begin.run();
      try {
        const result = await fn(scoped);
        this.commit.run();
        return result;
      } catch (err) {
        // SQLite itself rolls back on some errors (e.g. SQLITE_FULL); ROLLBACK would then fail.
        if (this.db.inTransaction) this.rollback.run();
        throw err;
      } finally {
        open = false;
      }
    });
  }

  /** One controller writes the file (the daemon holds it), so no change comes from elsewhere. */
  watch(_listener: (changes: StoreChange[]) => void): () => void {
    return () => {};
  }

  async campaign(_candidate: string): Promise<Leadership> {
    return SOLE_LEADER;
  }

  close(): Promise<void> {
    clearInterval(this.checkpointer);
    return this.mutex.run(async () => {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      this.db.close();
    });
  }
}

/** Opens (creating and migrating as needed) `<dataDir>/vfleet.db`. */
export async function openSqliteStore(dataDir: string): Promise<Store> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, DB_FILE);
  const db = new Database(file);
  try {
    configure(db);
    migrate(db, file);
    return new SqliteStore(db);
  } catch (err) {
    db.close();
    throw err;
  }
}
