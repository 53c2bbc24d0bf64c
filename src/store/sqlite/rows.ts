/** Row codecs: each record as its table's columns, and back. */
import type {
  Allocation,
  AllocationState,
  AuditEvent,
  DeviceType,
  HostRecord,
  HostState,
  Migration,
  Network,
  WorkloadKind,
} from '../../domain/types.js';
import type { VlanProto } from '../../host/model.js';

export interface NetworkRow {
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

export interface HostRow {
  name: string;
  state: HostState;
  last_heartbeat: string | null;
  inventory_json: string;
  physnets_json: string;
  device_types_json: string;
  drained_pfs_json: string;
  inventory_hash: string | null;
  updated_at: string;
}

export interface AllocationRow {
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

export interface MigrationRow {
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

export interface EventRow {
  seq: number;
  at: string;
  actor: string;
  action: string;
  object: string;
  before_json: string | null;
  after_json: string | null;
}

export function toNetworkRow(n: Network): NetworkRow {
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

export function toNetwork(r: NetworkRow): Network {
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

export function toHostRow(h: HostRecord): HostRow {
  return {
    name: h.name,
    state: h.state,
    last_heartbeat: h.lastHeartbeat,
    inventory_json: JSON.stringify(h.inventory),
    physnets_json: JSON.stringify(h.physnets),
    device_types_json: JSON.stringify(h.deviceTypes),
    // Sorted and once each: the stored set reads the same however it was built.
    drained_pfs_json: JSON.stringify([...new Set(h.drainedPfs)].sort()),
    inventory_hash: h.inventoryHash ?? null,
    updated_at: h.updatedAt,
  };
}

export function toHost(r: HostRow): HostRecord {
  return {
    name: r.name,
    state: r.state,
    lastHeartbeat: r.last_heartbeat,
    inventory: JSON.parse(r.inventory_json) as HostRecord['inventory'],
    physnets: JSON.parse(r.physnets_json) as HostRecord['physnets'],
    deviceTypes: JSON.parse(r.device_types_json) as HostRecord['deviceTypes'],
    drainedPfs: JSON.parse(r.drained_pfs_json) as string[],
    // Absent, not null, on a record from before hashes were stored (HostRecord.inventoryHash).
    ...(r.inventory_hash === null ? {} : { inventoryHash: r.inventory_hash }),
    updatedAt: r.updated_at,
  };
}

/** An allocation's row by position, in ALLOCATION_COLUMNS' order (statements.ts). */
export type AllocationValues = [
  id: string,
  workloadKind: WorkloadKind,
  workloadName: string,
  network: string,
  tenant: string,
  host: string,
  pf: string,
  pfPciAddress: string,
  vfIndex: number,
  pciAddress: string,
  mac: string,
  vlan: number,
  minTxRateMbps: number,
  groupName: string | null,
  state: AllocationState,
  reason: string | null,
  createdAt: string,
  updatedAt: string,
  attachmentJson: string | null,
  claimResource: string | null,
  migrationId: string | null,
  migrationRole: 'source' | 'destination' | null,
];

/** Runs `insert` with `a`'s row bound by position: a row object (200 B) per allocation was garbage on every allocation. */
export function insertAllocationRow(insert: { run(...values: AllocationValues): unknown }, a: Allocation): void {
  insert.run(
    a.id,
    a.workload.kind,
    a.workload.name,
    a.network,
    a.tenant,
    a.host,
    a.pf,
    a.pfPciAddress,
    a.vfIndex,
    a.pciAddress,
    a.mac,
    a.vlan,
    a.minTxRateMbps,
    a.group,
    a.state,
    a.reason,
    a.createdAt,
    a.updatedAt,
    a.attachment ? JSON.stringify(a.attachment) : null,
    // Optional chaining: callers that predate claims (scripts, old tests) leave the field out.
    a.deviceClaim?.resource ?? null,
    a.migration?.id ?? null,
    a.migration?.role ?? null,
  );
}

export function toAllocation(r: AllocationRow): Allocation {
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

export function toMigrationRow(m: Migration): MigrationRow {
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

export function toMigration(r: MigrationRow): Migration {
  return JSON.parse(r.record_json) as Migration;
}

/** `undefined` has no JSON form; it is stored as NULL and read back as null. */
export function toJson(value: unknown): string | null {
  return JSON.stringify(value) ?? null;
}

export function fromJson(text: string | null): unknown {
  return text === null ? null : JSON.parse(text);
}

export function toEvent(r: EventRow): AuditEvent {
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
