/**
 * What the controller wants a host to look like, as its agent receives it:
 * the node policies for the host, and every allocation on it with the full
 * VF configuration the allocation's network asks for.
 */
import type { Allocation, AllocationState, DeviceType, Network } from '../domain/types.js';
import type { VfConfig } from '../host/model.js';

export interface DesiredAllocation {
  id: string;
  state: AllocationState;
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
}

/** What an agent reports back after reconciling. */
export interface AllocationStatus {
  id: string;
  state: 'configured' | 'released' | 'failed';
  reason?: string | null;
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
