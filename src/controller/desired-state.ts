/**
 * What the controller wants a host to look like, as its agent receives it:
 * the node policies for the host, and every allocation on it with the full
 * VF configuration the allocation's network asks for.
 */
import type { Allocation, AllocationState, Attachment, DeviceType, Network } from '../domain/types.js';
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
