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
  | { kind: 'vm'; vm: string; failover: boolean };

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
  createdAt: string;
  updatedAt: string;
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
