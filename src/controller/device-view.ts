/**
 * What a host's kubelet device plugin learns from the controller (agent
 * protocol): which networks its VFs can serve, who holds which VF, and what
 * bandwidth is committed; and how it records the VFs the kubelet gave a pod.
 */
import type { Allocation, AllocationState, DeviceType, Network } from '../domain/types.js';

export interface DeviceViewAllocation {
  id: string;
  network: string;
  state: AllocationState;
  pfPciAddress: string;
  vfIndex: number;
  pciAddress: string;
  minTxRateMbps: number;
  /** Set when the allocation is a device-plugin claim (bound to a pod's interface or not yet). */
  deviceClaim: { resource: string } | null;
  /** Whether a CNI ADD (or other attach) has bound it: null attachment means not yet. */
  bound: boolean;
}

export interface DeviceView {
  host: string;
  /** Changes whenever anything below changes; the plugin long-polls on it. */
  revision: string;
  /** PF pciAddress → physnet, and → device type, from the host's node policies. */
  physnets: Record<string, string>;
  deviceTypes: Record<string, DeviceType>;
  /** Physnets whose guarantees are accounting only (the NIC does not enforce min_tx_rate). */
  accountingOnly: string[];
  /** PCI addresses of this host's drained PFs (sorted): the controller places nothing new there, so the plugin offers none of their VFs. */
  drainedPfs: string[];
  /** Every network on a physnet of this host (staff view: all tenants). */
  networks: Array<Pick<Network, 'name' | 'tenant' | 'physnet' | 'vlan' | 'minTxRateMbps' | 'maxTxRateMbps' | 'deviceType'>>;
  /** Holding allocations on this host, and `failed` ones whose VF nobody holds (the plugin reports those VFs unhealthy). */
  allocations: DeviceViewAllocation[];
  /**
   * The VFs (PCI addresses, sorted) in the host's last report: the controller
   * can claim only these, so the plugin offers no other VF to the kubelet (a
   * real kubelet does not retry a refused Allocate: the pod would fail).
   */
  reportedVfs: string[];
  /** Guarantees on a PF may sum to link speed × this. */
  bandwidthRatio: number;
}

/** Allocate's record: the VFs the kubelet gave one container, for one network. */
export interface DeviceClaimRequest {
  host: string;
  /** The extended resource, e.g. vfleet.io/red: recorded on the claims. */
  resource: string;
  network: string;
  pciAddresses: string[];
}

/** How the device plugin reaches the controller; InProcessLink and HttpLink implement it. */
export interface DeviceLink {
  /** Long-polls like `desired`: resolves at once when `after` is not the current revision, else on a change or after waitMs. */
  devices(host: string, after: string | undefined, waitMs: number): Promise<DeviceView>;
  /** All or nothing; the same claim again returns the same allocations. */
  claimDevices(request: DeviceClaimRequest): Promise<Allocation[]>;
}
