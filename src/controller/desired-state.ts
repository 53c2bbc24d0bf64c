/**
 * What the controller wants a host to look like, as its agent receives it:
 * the node policies for the host, and every allocation on it with the full
 * VF configuration the allocation's network asks for.
 */
import type { Allocation, AllocationState, Attachment, DeviceType, MigrationStep, Network } from '../domain/types.js';
import type { HypervisorTask, HypervisorTaskResult } from '../hypervisor/hypervisor.js';

export type { HypervisorTask, HypervisorTaskResult };
import type { VfConfig, VfSettings } from '../host/model.js';

export interface DesiredAllocation {
  id: string;
  state: AllocationState;
  attachment: Attachment | null;
  /** MTU for a container attachment (the network's), null to leave it. */
  mtu: number | null;
  /** Routes for a container attachment, from the network's IP pool. */
  routes: Array<{ dst: string; gw?: string }>;
  pfPciAddress: string;
  vfIndex: number;
  pciAddress: string;
  deviceType: DeviceType;
  /** Every field, so the agent can both apply and check for drift. */
  config: VfConfig;
  /**
   * Set while a migration moves this allocation (null otherwise). What the
   * agent does differs from a plain allocation:
   * - `destination`, step `reserve`/`prepare`: configure the VF (and bind
   *   vfio-pci for a VM), report `configured`, never attach it;
   * - `destination` of a container, step `switch`: re-home the workload from
   *   `peer` (the source: on this host, or on another agent of this kernel)
   *   make-before-break, then report this allocation `attached`. The old VF
   *   stays in the namespace, down, under a temporary name; the controller
   *   then marks the source `releasing`, and its agent's normal release finds
   *   it there by PCI address, moves it out and scrubs it;
   * - `destination` of a VM, step `switch`: stays `configured`; the
   *   hypervisor tasks plug it, and the controller marks it `attached`;
   * - `source`, step `switch` or later: leave it as it is (no drift repair,
   *   no re-attach): the workload is moving off it.
   */
  migration: DesiredMigration | null;
  /**
   * The devlink rate node (`vfleet-<tenant>`, one of `rateGroups`) this VF's
   * rate leaf is parented to; null when the tenant has no group or the PF
   * cannot enforce one (accounted only).
   */
  rateGroup: string | null;
}

/**
 * A tenant's bandwidth group on one PF: a devlink rate node whose
 * `tx_share`/`tx_max` the tenant's VFs there share. Listed only while at
 * least one of the tenant's allocations holds a VF of that PF, on PFs that
 * enforce groups (switchdev, a driver with rate nodes). The agent creates
 * it, parents the VFs' leaves to it, and deletes `vfleet-*` nodes that are
 * not listed (nodes it did not name are never touched).
 */
export interface DesiredRateGroup {
  pfPciAddress: string;
  /** `vfleet-<tenant>` */
  node: string;
  txShareMbps: number;
  txMaxMbps: number;
}

export interface DesiredMigration {
  id: string;
  role: 'source' | 'destination';
  step: MigrationStep;
  /** The allocation at the other end (the source for a destination, and back). */
  peer: string;
}

export interface DesiredState {
  host: string;
  /** Changes whenever anything below changes; agents long-poll on it. */
  revision: string;
  policies: string[];
  allocations: DesiredAllocation[];
  /** VFs carrying MACs under this prefix without an allocation are leftovers to collect. */
  macPrefix: string;
  /** How long a leftover (a vanished namespace, an unallocated configured VF) is left before collection. */
  orphanGraceMs: number;
  /**
   * Changes when someone asks for a whole-host reconcile (`host reconcile`):
   * other changes the agent applies one allocation at a time.
   */
  resync: number;
  /**
   * Hypervisor work for this host's agent (migrate a VM out, plug or unplug
   * a VF in a running VM), each with an id that stays the same until the
   * controller saw its result: the agent runs each id at most once at a
   * time, and an id it already finished is answered from its memory (or, after
   * an agent restart, by the adapter's idempotent check) rather than redone.
   */
  tasks: HypervisorTask[];
  /** The tenants' bandwidth groups on this host's PFs. */
  rateGroups: DesiredRateGroup[];
}

/** What an agent reports back after reconciling. */
export interface AllocationStatus {
  id: string;
  /**
   * `released` from `attached` means the agent collected an orphan (its namespace vanished).
   * `releasing` (from `releasing`) says what keeps a release from finishing, in `reason`.
   */
  state: 'configured' | 'attached' | 'releasing' | 'released' | 'failed';
  reason?: string | null;
  /** For a container attachment: the VF netdev's name in the host namespace before it moved. */
  hostIfName?: string;
}

/** Something an agent noticed and did on its own: drift repaired, an orphan scrubbed, a VF recovered. */
export interface AgentEvent {
  action: 'drift.repaired' | 'orphan.scrubbed' | 'allocation.recovered' | 'policy.failed';
  object: string;
  detail: string;
}

/**
 * What vfleet keeps on a VF in use (drift repair, the isolation audit). A
 * trusted VF may set its own MAC — that is what trust grants, a chained
 * `tuning` plugin does it, and igb then records it as the VF's MAC — so
 * after the attach its MAC is the workload's: putting ours back would leave
 * the PF filtering for one MAC and the netdev sending as another.
 */
export function keptVfSettings(config: VfConfig): VfSettings {
  if (!config.trust) return config;
  const { mac: _workloads, ...kept } = config;
  return kept;
}

export function vfConfigFor(network: Network, a: Allocation): VfConfig {
  return {
    mac: a.mac,
    vlan: network.vlan,
    qos: network.qos,
    vlanProto: network.vlanProto,
    minTxRateMbps: network.minTxRateMbps,
    maxTxRateMbps: network.maxTxRateMbps,
    spoofChk: network.spoofChk,
    trust: network.trust,
    linkState: 'auto',
  };
}
