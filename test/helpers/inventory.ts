/**
 * Synthetic hosts, networks and allocations for scheduler tests and benches:
 * N PFs × M VFs with chosen drivers, link speeds, NUMA nodes and physnets.
 */
import type { Allocation, DeviceType, HostRecord, HostState, Network, WorkloadKind } from '../../src/domain/types.js';
import type { PfInfo, VfInfo } from '../../src/host/model.js';
import { SCRUBBED_VF_CONFIG } from '../../src/host/model.js';
import type { Placement } from '../../src/scheduler/index.js';
import { pendingAllocation } from '../../src/controller/allocations.js';

export interface PfSpec {
  driver?: string | null;
  linkSpeedMbps?: number | null;
  numaNode?: number | null;
  /** null: no node policy names this PF. */
  physnet?: string | null;
  /** undefined: absent from deviceTypes (counts as netdevice). */
  deviceType?: DeviceType;
  vfs?: number;
}

export interface HostSpec extends PfSpec {
  name: string;
  state?: HostState;
  pfs?: number;
  /** PFs are spread over this many NUMA nodes in order (first half on 0...). Default 1. */
  numaNodes?: number;
  /** Drivers cycled over the PFs; `driver` applies to all when this is absent. */
  drivers?: string[];
  /** Per-PF overrides, by PF position. */
  pf?: Record<number, PfSpec>;
}

const AT = '2024-01-01T00:00:00.000Z';

export function pfPci(i: number): string {
  return `0000:${(0x10 + i).toString(16).padStart(2, '0')}:00.0`;
}

function vfPci(pf: number, vf: number): string {
  const fn = vf + 1;
  return `0000:${(0x10 + pf).toString(16).padStart(2, '0')}:${(fn >> 3).toString(16).padStart(2, '0')}.${fn & 7}`;
}

function makeVf(pf: number, index: number): VfInfo {
  return {
    ...SCRUBBED_VF_CONFIG,
    index,
    pciAddress: vfPci(pf, index),
    driver: 'iavf',
    driverOverride: null,
    netdev: null,
    iommuGroup: null,
  };
}

function makePf(i: number, s: Required<Pick<PfSpec, 'vfs'>> & PfSpec): PfInfo {
  return {
    name: `ens${i + 1}f0`,
    pciAddress: pfPci(i),
    vendorId: '8086',
    deviceId: '1593',
    driver: s.driver ?? 'ice',
    mac: null,
    mtu: 1500,
    linkState: 'up',
    linkSpeedMbps: s.linkSpeedMbps === undefined ? 100_000 : s.linkSpeedMbps,
    numaNode: s.numaNode ?? 0,
    localCpus: null,
    totalVfs: s.vfs,
    numVfs: s.vfs,
    autoprobe: true,
    eswitchMode: 'legacy',
    vfDeviceId: '1889',
    vfs: Array.from({ length: s.vfs }, (_, v) => makeVf(i, v)),
  };
}

/** A host with `pfs` PFs (default 2) of `vfs` VFs (default 8), all on physnet `physnet` (default 'datacentre'). */
export function makeHost(spec: HostSpec): HostRecord {
  const count = spec.pfs ?? 2;
  const nodes = spec.numaNodes ?? 1;
  const record: HostRecord = {
    name: spec.name,
    state: spec.state ?? 'ready',
    lastHeartbeat: AT,
    inventory: { hostname: spec.name, pfs: [] },
    physnets: {},
    deviceTypes: {},
    drainedPfs: [],
    updatedAt: AT,
  };
  for (let i = 0; i < count; i++) {
    const pf = {
      driver: spec.drivers ? spec.drivers[i % spec.drivers.length] : spec.driver,
      linkSpeedMbps: spec.linkSpeedMbps,
      numaNode: spec.numaNode ?? Math.floor((i * nodes) / count),
      physnet: spec.physnet,
      deviceType: spec.deviceType,
      vfs: spec.vfs ?? 8,
      ...spec.pf?.[i],
    };
    record.inventory.pfs.push(makePf(i, pf));
    const physnet = pf.physnet === undefined ? 'datacentre' : pf.physnet;
    if (physnet !== null) record.physnets[pfPci(i)] = physnet;
    if (pf.deviceType !== undefined) record.deviceTypes[pfPci(i)] = pf.deviceType;
  }
  return record;
}

export function makeNetwork(fields: Partial<Network> = {}): Network {
  return {
    name: 'net1',
    tenant: 'acme',
    physnet: 'datacentre',
    vlan: 100,
    qos: 0,
    vlanProto: '802.1Q',
    mtu: null,
    spoofChk: true,
    trust: false,
    maxTxRateMbps: 0,
    minTxRateMbps: 0,
    deviceType: 'netdevice',
    ipam: null,
    createdAt: AT,
    ...fields,
  };
}

let nextId = 0;

/** The allocation a service would store for `placement`. */
export function makeAllocation(
  placement: Placement,
  network: Network,
  workload: { kind: WorkloadKind; name: string },
  fields: Partial<Allocation> = {},
): Allocation {
  const base = { id: `a${++nextId}`, mac: '02:5f:00:00:00:01', group: null, attachment: null, createdAt: AT };
  return { ...pendingAllocation(placement, network, workload, base), ...fields };
}
