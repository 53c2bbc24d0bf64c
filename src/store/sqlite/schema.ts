/**
 * The SQLite schema: its migrations, in order, and the connection settings.
 * The schema itself enforces the store's invariants (partial unique indexes,
 * triggers), so a bug above the store cannot hand a VF, a MAC or a VLAN to
 * two holders; the other modules only turn those refusals into CONFLICT.
 */
import type Database from 'better-sqlite3';
import { SriovError } from '../../host/errors.js';

/** The messages the triggers raise; errors.ts recognises the MAC rule by its own. */
const VLAN_OWNER_VIOLATION = 'vlan owned by another tenant';
export const MAC_VIOLATION = 'mac held by another allocation';
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
  `
  -- Tenant bandwidth groups: the tenant's aggregate guarantee and cap per PF
  -- (devlink tx_share/tx_max of its rate node), NULL for none; and whether a
  -- physnet's PFs that cannot enforce a group only account it.
  ALTER TABLE tenants ADD COLUMN pf_min_tx_rate_mbps INTEGER;
  ALTER TABLE tenants ADD COLUMN pf_max_tx_rate_mbps INTEGER;
  ALTER TABLE physnets ADD COLUMN groups_accounting_only INTEGER NOT NULL DEFAULT 0 CHECK (groups_accounting_only IN (0, 1));
  `,
  `
  -- The inventory hash the agent sent with the host's inventory (sha256 hex),
  -- written with it: a controller that did not take the inventory itself (a
  -- fresh one) still takes the agent's liveness-only reports. NULL on a record
  -- from before: its agent is asked for the inventory once.
  ALTER TABLE hosts ADD COLUMN inventory_hash TEXT;
  `,
  `
  -- Liveness (state and last heartbeat) in a narrow table of its own: a
  -- liveness-only heartbeat (touchHost) rewrites a ~60-byte row that shares
  -- its page with many hosts', instead of the page of a host row that carries
  -- its whole inventory (tens of KB). Reads take state and last_heartbeat
  -- from here; the triggers keep it in step with every write of a host row
  -- (putHost, the sweep, import) and with its deletion. The triggers upsert
  -- rather than INSERT OR REPLACE: an outer statement's conflict handling
  -- (putHost is an upsert itself) overrides a trigger's OR clause.
  CREATE TABLE host_liveness (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    last_heartbeat TEXT
  );
  INSERT INTO host_liveness (name, state, last_heartbeat) SELECT name, state, last_heartbeat FROM hosts;
  CREATE TRIGGER hosts_liveness_on_insert AFTER INSERT ON hosts
  BEGIN INSERT INTO host_liveness (name, state, last_heartbeat) VALUES (NEW.name, NEW.state, NEW.last_heartbeat)
    ON CONFLICT (name) DO UPDATE SET state = excluded.state, last_heartbeat = excluded.last_heartbeat; END;
  CREATE TRIGGER hosts_liveness_on_update AFTER UPDATE ON hosts
  BEGIN INSERT INTO host_liveness (name, state, last_heartbeat) VALUES (NEW.name, NEW.state, NEW.last_heartbeat)
    ON CONFLICT (name) DO UPDATE SET state = excluded.state, last_heartbeat = excluded.last_heartbeat; END;
  CREATE TRIGGER hosts_liveness_on_delete AFTER DELETE ON hosts
  BEGIN DELETE FROM host_liveness WHERE name = OLD.name; END;
  `,
];

/** The schema version a store opened by this vfleet has (`PRAGMA user_version`). */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** WAL + synchronous=NORMAL: a killed process never corrupts the file or loses a commit. */
export function configure(db: Database.Database): void {
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
}

/**
 * Applies pending migrations, each in its own IMMEDIATE transaction that
 * re-reads the version, so two processes opening one file cannot both apply one.
 */
export function migrate(db: Database.Database, file: string): void {
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
