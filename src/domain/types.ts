/**
 * The control plane's domain: tenants, physical networks, networks, hosts and
 * allocations. Field names are part of the HTTP API and `-o json` output.
 */
import type { HostInventory, VlanProto } from '../host/model.js';

export type DeviceType = 'netdevice' | 'vfio-pci';

export interface Tenant {
  /**
   * Immutable identity (a UUID), distinct from the name: tokens bind to it,
   * so a tenant deleted and re-created under the same name is a new tenant
   * that the old tokens cannot reach.
   */
  id: string;
  name: string;
  /**
   * The tenant's bandwidth group: its aggregate guarantee (devlink tx_share)
   * and cap (tx_max) on each PF where it holds VFs, whole Mbit/s; null: none.
   * Admin-set (`sriovctl tenant set`). Enforced by the NIC through a devlink
   * rate node `vfleet-<tenant>` on PFs that have them (switchdev, a driver with
   * rate nodes); elsewhere refused or only accounted (Physnet.groupsAccountingOnly).
   * Absent reads as null (the stores always return both).
   */
  pfMinTxRateMbps?: number | null;
  pfMaxTxRateMbps?: number | null;
  createdAt: string;
}

/** A label that node policies attach to PFs (`physnet: datacentre`). */
export interface Physnet {
  name: string;
  /**
   * Admin-set: bandwidth guarantees on this physnet are only accounted, so
   * PFs whose driver does not enforce min_tx_rate may carry them.
   */
  accountingOnly: boolean;
  /**
   * Admin-set: tenant bandwidth groups on this physnet's PFs that cannot
   * enforce them (no devlink rate nodes: legacy mode, or a driver without
   * them) are only accounted; otherwise such PFs refuse a tenant with a group.
   * Absent reads as false (the stores always return it).
   */
  groupsAccountingOnly?: boolean;
  /** Admin-set: the VLANs tenants' networks get when none is given (Neutron's network_vlan_ranges); sorted, disjoint. */
  tenantVlans: VlanRange[];
}

/** VLANs `from` to `to`, both included, within 1-4094. */
export interface VlanRange {
  from: number;
  to: number;
}

/** A network's IPv4 address pool: addresses for container attachments come from here. */
export interface IpPool {
  cidr: string;
  /** First and last address handed out; default: the whole subnet but network, broadcast and gateway. */
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
  routes: Array<{ dst: string; gw?: string }>;
}

export interface Network {
  name: string;
  tenant: string;
  physnet: string;
  vlan: number;
  qos: number;
  vlanProto: VlanProto;
  mtu: number | null;
  spoofChk: boolean;
  trust: boolean;
  maxTxRateMbps: number;
  minTxRateMbps: number;
  deviceType: DeviceType;
  ipam: IpPool | null;
  createdAt: string;
}

export type WorkloadKind = 'container' | 'vm';

export type AllocationState = 'pending' | 'configured' | 'attached' | 'releasing' | 'released' | 'failed';

/** What the allocation's VF is handed to. */
export type Attachment =
  | {
      kind: 'container';
      /** Network namespace path, e.g. /var/run/netns/pod-a or /proc/PID/ns/net. */
      netns: string;
      ifname: string;
      /** The VF netdev's name in the host namespace, recorded by the agent, restored on detach. */
      hostIfName: string | null;
      /** CIDRs, e.g. 198.18.0.10/24. */
      ips: string[];
      /**
       * The CNI configuration's `name` when a CNI plugin made the attachment:
       * with host, container id and ifname it is the attachment's identity
       * (CNI's GC key). Absent on attachments made before it was recorded.
       */
      cniNetwork?: string;
    }
  | {
      kind: 'vm';
      vm: string;
      failover: boolean;
      /**
       * The VF's and its virtio standby's device ids in the VM, when they are not
       * the defaults named from this allocation's id (vm/qemu.ts: `hostdev-<8>`,
       * `net-<8>`; libvirt: `ua-sriov-<8>`, `ua-backup-<8>`). A migration's
       * destination carries its source's, so the ids stay the same across moves.
       */
      devices?: { primary: string; standby: string };
    };

/** States in which an allocation holds its VF, MAC and bandwidth. */
export const HOLDING_STATES: readonly AllocationState[] = ['pending', 'configured', 'attached', 'releasing'];

export interface Allocation {
  id: string;
  workload: { kind: WorkloadKind; name: string };
  network: string;
  tenant: string;
  host: string;
  pf: string;
  pfPciAddress: string;
  vfIndex: number;
  pciAddress: string;
  mac: string;
  vlan: number;
  minTxRateMbps: number;
  /** Redundancy group: allocations of one workload in a group go to different PFs. */
  group: string | null;
  state: AllocationState;
  reason: string | null;
  attachment: Attachment | null;
  /**
   * Set when a kubelet device plugin's Allocate made this allocation (a
   * claim): the extended resource the VF was given as. Unbound until the
   * pod's CNI ADD binds it (`attachment` null until then). Null otherwise.
   */
  deviceClaim: { resource: string } | null;
  /**
   * Set while a migration moves this allocation's workload: `source` on the
   * allocation being moved off its VF, `destination` on the reservation at
   * the other end. The destination is the only allocation that may share a
   * holding allocation's MAC, and only its own migration's source's, while
   * that migration runs (the store enforces it). Null otherwise, and cleared
   * on both when the migration ends.
   */
  migration: AllocationMigration | null;
  createdAt: string;
  updatedAt: string;
}

export interface AllocationMigration {
  id: string;
  role: 'source' | 'destination';
}

/**
 * Who moves a VM: vfleet itself through the host's libvirt (`virsh migrate
 * --live`, attach-device) or QEMU's QMP socket, or an external orchestrator
 * (OpenStack, KubeVirt) that calls prepare/complete/abort on the API.
 */
export type HypervisorKind = 'libvirt' | 'qemu' | 'hook';

/**
 * A migration's steps, in order. `reserve`: a VF at the destination is held
 * for the same network and MAC; `prepare`: the destination agent configured
 * it (and bound vfio-pci for a VM); `switch`: the workload moved (VM:
 * unplug/migrate/plug through the hypervisor; container: the agent's
 * make-before-break re-home); `release`: the source VF is scrubbed, verified
 * and freed; `done`.
 */
export type MigrationStep = 'reserve' | 'prepare' | 'switch' | 'release' | 'done';

/**
 * `running` until `completed`; a failure or an abort before the switch
 * completed goes through `rolling-back` (source plugged back, destination
 * scrubbed and freed) to `failed` or `aborted`. A failure after the switch
 * (the workload already runs at the destination) rolls forward instead.
 */
export type MigrationState = 'running' | 'rolling-back' | 'completed' | 'failed' | 'aborted';

/** One VF end of a migration. */
export interface MigrationEndpoint {
  host: string;
  pf: string;
  pfPciAddress: string;
  vfIndex: number;
  pciAddress: string;
  /** The allocation holding this end's VF. */
  allocation: string;
}

/** One line of a migration's history: each is also an audit event (`migration.<step>`). */
export interface MigrationHistoryEntry {
  step: MigrationStep | 'rollback';
  outcome: 'started' | 'done' | 'failed';
  at: string;
  detail: string;
}

export interface Migration {
  id: string;
  workload: { kind: WorkloadKind; name: string };
  tenant: string;
  network: string;
  mac: string;
  from: MigrationEndpoint;
  /** Null until `reserve` is done. */
  to: MigrationEndpoint | null;
  /** What was asked: a host, and optionally one of its PFs (netdev name). */
  requested: { host: string; pf: string | null };
  /** Null for a container (the agent re-homes it; no hypervisor involved). */
  hypervisor: HypervisorKind | null;
  /** QMP: the URI the source QEMU migrates to (`tcp:198.18.0.2:4444`, `unix:/run/...`), as the destination QEMU's `-incoming`. */
  migrateUri: string | null;
  /** The drain this migration is part of, when a drain started it. */
  drain: string | null;
  state: MigrationState;
  /** The step under way (or, once ended, the step it ended at). */
  step: MigrationStep;
  history: MigrationHistoryEntry[];
  /** Downtime the hypervisor reported (QEMU's `downtime` in query-migrate, ms); null when unknown. */
  downtimeMs: number | null;
  /** Why it failed or was aborted; null otherwise. */
  reason: string | null;
  /** The hypervisor tasks given to agents (VM, libvirt or qemu), in order, and how each went. */
  tasks?: MigrationTaskRecord[];
  createdAt: string;
  updatedAt: string;
}

/** One hypervisor task of a migration: its id (`<migration>:<op>:<host>`) is stable until its result is seen. */
export interface MigrationTaskRecord {
  id: string;
  op: 'migrate' | 'plug' | 'unplug';
  host: string;
  outcome: 'pending' | 'ok' | 'failed';
  detail: string | null;
}

export type HostState = 'ready' | 'unreachable';

/** A PF as the scheduler sees it: its inventory plus the physnet its node policy gives it. */
export interface HostRecord {
  name: string;
  state: HostState;
  lastHeartbeat: string | null;
  inventory: HostInventory;
  /** PF pciAddress → physnet, from the host's node policies. */
  physnets: Record<string, string>;
  /** PF pciAddress → device type its VFs are bound to (from node policy). */
  deviceTypes: Record<string, DeviceType>;
  /**
   * PCI addresses of the PFs staff drained (`sriovctl pf drain`): they take no
   * new allocation until undrained. The controller's, not the agent's: a
   * report keeps it.
   */
  drainedPfs: string[];
  /**
   * sha256 hex of the inventory JSON, as the agent sent it with `inventory`
   * (host/inventory-hash.ts): written with the inventory, so any controller,
   * a fresh one included, takes the agent's liveness-only reports that carry
   * it without asking for the inventory again. Absent on a record written
   * before hashes were stored (its agent then sends its inventory once more).
   */
  inventoryHash?: string;
  updatedAt: string;
}

export type Role = 'admin' | 'operator' | `tenant:${string}` | `agent:${string}` | `node:${string}`;

export interface TokenRecord {
  id: string;
  role: Role;
  /** For `tenant:<name>` tokens: the id of the tenant it was minted for; null for other roles. */
  tenantId: string | null;
  /** sha256 of the secret, hex. The secret itself is never stored. */
  hash: string;
  createdAt: string;
}

export interface AuditEvent {
  seq: number;
  at: string;
  actor: string;
  action: string;
  object: string;
  before: unknown;
  after: unknown;
}

export interface StoredPolicy {
  host: string;
  /** The node-policy YAML document as the user wrote it. */
  document: string;
  updatedAt: string;
}
