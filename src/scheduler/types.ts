/** The scheduler's request and answer. Field names are part of the HTTP API. */
import type { Network, WorkloadKind } from '../domain/types.js';

export type PlacementPolicy = 'pack' | 'spread';
export type NumaPolicy = 'required' | 'preferred';

export interface PlacementRequest {
  network: Network;
  workload: { kind: WorkloadKind; name: string };
  numaNode?: number;
  /** Defaults to 'required': a workload pinned to a node's CPUs loses line rate across NUMA. */
  numaPolicy?: NumaPolicy;
  /** Redundancy group: allocations of one workload in a group go to different PFs. */
  group?: string | null;
  /** With a group: different hosts, not just different PFs. */
  groupAcrossHosts?: boolean;
  policy?: PlacementPolicy;
  /** Pin to this host. */
  host?: string;
  /** Pin to this VF (with `host`): a device plugin already chose it. */
  pciAddress?: string;
  /** With `host`: only this PF (PCI address), as a migration's requested destination PF. */
  pfPciAddress?: string;
  /** With `host`: never this PF (PCI address), as a migration's source PF. */
  avoidPfPciAddress?: string;
}

export interface Placement {
  host: string;
  /** PF netdev name. */
  pf: string;
  pfPciAddress: string;
  vfIndex: number;
  /** The VF's PCI address. */
  pciAddress: string;
  numaNode: number | null;
}

export interface SchedulerOptions {
  /** Default placement policy when a request names none. */
  policy?: PlacementPolicy;
  /** Guarantees on a PF may add up to linkSpeedMbps × this ratio. */
  bandwidthRatio?: number;
  /**
   * Where in a PF's VFs the search for a free one starts, as a fraction of
   * its VFs in [0, 1) (default 0: the lowest free VF). Several controllers
   * sharing a store (etcd) each start at their own point, so that their
   * requests in flight at once pick different VFs of the PF their policy
   * prefers, instead of all the same ones, which the store would refuse to
   * all but one controller (a VF claim conflict, decided again).
   */
  vfStart?: number;
}
