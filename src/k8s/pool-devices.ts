/**
 * The device model (pure): from the pool file, this host's inventory (read
 * locally: it is what sees a cable pulled or `numVfs` changed first) and the
 * controller's DeviceView (physnets, device types, who holds which VF), each
 * pool's VFs with their health, and its bandwidth units.
 */
import { createHash } from 'node:crypto';
import type { DeviceView, DeviceViewAllocation } from '../controller/device-view.js';
import { HOLDING_STATES, type DeviceType } from '../domain/types.js';
import type { PfInfo, VfInfo } from '../host/model.js';
import type { Pool, PoolConfig } from './pools.js';
import type { DeviceSnapshot, DeviceHealth, PluginDevice, ResourceView } from './source.js';

/**
 * The most bandwidth units a pool's -bw resource lists. Each unit is a device
 * in ListAndWatch, and the kubelet takes at most 4 MB per gRPC message: a
 * small unit on fast links (1 Mbps on two 100G PFs: 200000) would make a list
 * the kubelet drops whole. A node's capacity above this many units is not
 * offered (the safe side: the scheduler sees less than there is).
 */
export const MAX_BANDWIDTH_UNITS = 20_000;

/** What the model needs of a VF and a PF: HostInventory fits, and so does the cheap poll (host-poll.ts). */
export type LocalVf = Pick<VfInfo, 'index' | 'pciAddress' | 'driver' | 'iommuGroup'>;
export interface LocalPf extends Pick<PfInfo, 'name' | 'pciAddress' | 'vendorId' | 'vfDeviceId' | 'linkState' | 'linkSpeedMbps' | 'numaNode'> {
  vfs: LocalVf[];
}
export interface LocalInventory {
  pfs: LocalPf[];
}

export type ViewNetwork = DeviceView['networks'][number];

export interface PoolVf {
  /** The VF's PCI address: the device id the kubelet and Multus pass on. */
  id: string;
  pf: string;
  pfPciAddress: string;
  vfIndex: number;
  numaNode: number | null;
  iommuGroup: number | null;
  health: DeviceHealth;
  /** Why it is Unhealthy (Allocate's refusal says it), else null. */
  unhealthy: string | null;
}

export interface PoolPf {
  name: string;
  pciAddress: string;
  numaNode: number | null;
  /** VFs of this PF that any allocation holds (pack fills the most held PF). */
  heldVfs: number;
  /** link speed × ratio − every guarantee committed on it (what the controller admits a new one against); null: speed unknown. */
  headroomMbps: number | null;
}

export interface PoolState {
  pool: Pool;
  /** null until the network exists (the pool then has no device). */
  network: ViewNetwork | null;
  deviceType: DeviceType | null;
  /** Sorted by id. */
  vfs: PoolVf[];
  /** The PFs the pool selects, sorted by PCI address. */
  pfs: PoolPf[];
  /** Units of `<pool>-bw`; null when there is no bandwidth resource (no network yet, or no guarantee). */
  bandwidthUnits: number | null;
  bandwidthUnitMbps: number;
}


/** Code-unit order, the same on every machine (localeCompare is not). */
export const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The view's allocations, filed once per computation (not once per pool). */
interface Holdings {
  byVf: Map<string, DeviceViewAllocation[]>;
  byPf: Map<string, DeviceViewAllocation[]>;
  /** The VFs the controller knows (can claim). */
  reported: Set<string>;
  /** PCI addresses of the drained PFs: the controller places nothing new there. */
  drained: Set<string>;
}

function fileAllocations(view: DeviceView | null): Holdings {
  const byVf = new Map<string, DeviceViewAllocation[]>();
  const byPf = new Map<string, DeviceViewAllocation[]>();
  const add = (m: Map<string, DeviceViewAllocation[]>, key: string, a: DeviceViewAllocation) => {
    const list = m.get(key);
    if (list) list.push(a);
    else m.set(key, [a]);
  };
  for (const a of view?.allocations ?? []) {
    add(byVf, a.pciAddress, a);
    add(byPf, a.pfPciAddress, a);
  }
  // `?? []` on drainedPfs too: a controller older than drains sends none.
  return { byVf, byPf, reported: new Set(view?.reportedVfs ?? []), drained: new Set(view?.drainedPfs ?? []) };
}

export function poolStates(config: PoolConfig, inventory: LocalInventory, view: DeviceView | null): PoolState[] {
  const holdings = fileAllocations(view);
  return config.pools.map((pool) => poolState(config, pool, inventory, view, holdings));
}

function poolState(config: PoolConfig, pool: Pool, inventory: LocalInventory, view: DeviceView | null, h: Holdings): PoolState {
  const network = view?.networks.find((n) => n.name === pool.network) ?? null;
  const deviceType = network ? (pool.deviceType ?? network.deviceType) : null;
  const empty: PoolState = { pool, network, deviceType, vfs: [], pfs: [], bandwidthUnits: null, bandwidthUnitMbps: config.bandwidthUnitMbps };
  if (!view || !network || !deviceType) return empty;
  // The file's physnet is a check on the network's: when they differ the pool offers nothing (the log says why).
  if (pool.physnet !== undefined && pool.physnet !== network.physnet) return empty;
  const pfs = inventory.pfs
    .filter((pf) => view.physnets[pf.pciAddress] === network.physnet && (view.deviceTypes[pf.pciAddress] ?? 'netdevice') === deviceType)
    .filter((pf) => pfMatches(pool, pf))
    .sort((a, b) => byText(a.pciAddress, b.pciAddress));
  const vfs = pfs.flatMap((pf) => pf.vfs.filter((vf) => vfMatches(pool, pf, vf)).map((vf) => poolVf(pool, deviceType, pf, vf, h)));
  vfs.sort((a, b) => byText(a.id, b.id));
  const units =
    network.minTxRateMbps > 0 ? Math.min(MAX_BANDWIDTH_UNITS, pfs.reduce((sum, pf) => sum + bandwidthUnits(pf, view.bandwidthRatio, config.bandwidthUnitMbps, h), 0)) : null;
  return { ...empty, vfs, pfs: pfs.map((pf) => poolPf(pf, view.bandwidthRatio, h)), bandwidthUnits: units };
}

function pfMatches(pool: Pool, pf: LocalPf): boolean {
  if (pool.vendor !== undefined && pf.vendorId.toLowerCase() !== pool.vendor) return false;
  if (pool.device !== undefined && (pf.vfDeviceId ?? '').toLowerCase() !== pool.device) return false;
  return !pool.pfNames || pool.pfNames.some((sel) => sel.pf === pf.name);
}

function vfMatches(pool: Pool, pf: LocalPf, vf: LocalVf): boolean {
  if (pool.driver !== undefined && vf.driver !== pool.driver) return false;
  if (!pool.pfNames) return true;
  return pool.pfNames.some((sel) => sel.pf === pf.name && (sel.vfs === null || (vf.index >= sel.vfs.from && vf.index <= sel.vfs.to)));
}

function poolVf(pool: Pool, deviceType: DeviceType, pf: LocalPf, vf: LocalVf, h: Holdings): PoolVf {
  const unhealthy = whyUnhealthy(pool, deviceType, pf, vf, h);
  return {
    id: vf.pciAddress,
    pf: pf.name,
    pfPciAddress: pf.pciAddress,
    vfIndex: vf.index,
    numaNode: pf.numaNode,
    iommuGroup: vf.iommuGroup,
    health: unhealthy === null ? 'Healthy' : 'Unhealthy',
    unhealthy,
  };
}

/**
 * A VF the kubelet must not hand out: its PF has no link (a pulled cable) or
 * is drained (staff keep new workloads off it), an allocation other than
 * this resource's own claim holds it (another pool's
 * pod, a VM, a CLI user), or its last allocation failed (drift the agent
 * could not repair) and nobody holds it since; or it is not bound as the
 * device type needs yet (the agent rebinds after a policy change: a vfio-pci
 * container needs vfio-pci, a netdevice one a kernel driver's netdev); or
 * the controller cannot claim it yet (not reported, or its release still
 * scrubbing). Each clears by itself, but a drain, which clears with
 * `sriovctl pf undrain`.
 */
function whyUnhealthy(pool: Pool, deviceType: DeviceType, pf: LocalPf, vf: LocalVf, h: Holdings): string | null {
  if (pf.linkState === 'down') return `its PF ${pf.name} has no link`;
  // The controller would refuse the claim (a real kubelet never retries Allocate), so it is never offered.
  if (h.drained.has(pf.pciAddress)) return `its PF ${pf.name} is drained`;
  const bound = deviceType === 'vfio-pci' ? vf.driver === 'vfio-pci' : vf.driver !== null && vf.driver !== 'vfio-pci';
  if (!bound) return `it is bound to ${vf.driver ?? 'no driver'}, not yet to ${deviceType === 'vfio-pci' ? 'vfio-pci' : 'a kernel network driver'}`;
  if (!h.reported.has(vf.pciAddress)) return 'the agent has not reported it to the controller yet';
  const all = h.byVf.get(vf.pciAddress) ?? [];
  const held = all.filter((a) => HOLDING_STATES.includes(a.state));
  // Its own claim being released (the stale-claim sweep, a staff release): the controller refuses a new claim until it is scrubbed.
  const releasing = held.find((a) => a.state === 'releasing');
  if (releasing) return `allocation ${releasing.id} (network ${releasing.network}) is being released`;
  const other = held.find((a) => a.deviceClaim?.resource !== pool.resourceName);
  if (other) return `allocation ${other.id} (network ${other.network}) holds it`;
  const failed = all.find((a) => a.state === 'failed');
  if (held.length === 0 && failed) return `its last allocation ${failed.id} failed and was not repaired`;
  return null;
}

function committed(pf: LocalPf, h: Holdings, include: (a: DeviceViewAllocation) => boolean): number {
  return (h.byPf.get(pf.pciAddress) ?? []).filter((a) => HOLDING_STATES.includes(a.state) && include(a)).reduce((sum, a) => sum + a.minTxRateMbps, 0);
}

/**
 * floor((link speed × ratio − guarantees of allocations that are NOT device
 * claims) / unit). Claims are left out because the kubelet already counts the
 * units it gave their pods against this node's capacity: subtracting them here
 * too would count each pod's guarantee twice. A PF without link offers none,
 * and neither does a drained one (none of its VFs can take a new pod).
 */
function bandwidthUnits(pf: LocalPf, ratio: number, unitMbps: number, h: Holdings): number {
  if (pf.linkState === 'down' || !pf.linkSpeedMbps || h.drained.has(pf.pciAddress)) return 0;
  const free = pf.linkSpeedMbps * ratio - committed(pf, h, (a) => a.deviceClaim === null);
  return Math.max(0, Math.floor(free / unitMbps));
}

function poolPf(pf: LocalPf, ratio: number, h: Holdings): PoolPf {
  const held = new Set((h.byPf.get(pf.pciAddress) ?? []).filter((a) => HOLDING_STATES.includes(a.state)).map((a) => a.pciAddress));
  const speed = pf.linkState === 'down' ? null : pf.linkSpeedMbps;
  return {
    name: pf.name,
    pciAddress: pf.pciAddress,
    numaNode: pf.numaNode,
    heldVfs: held.size,
    headroomMbps: speed ? speed * ratio - committed(pf, h, () => true) : null,
  };
}

/** `<pool>-bw-<n>`: a bandwidth unit's device id. */
export const bandwidthDeviceId = (pool: Pool, n: number) => `${pool.name}-bw-${n}`;

/** What ListAndWatch serves: every pool's VFs, and its bandwidth units when its network has guarantees. */
export function resourceViews(states: PoolState[]): ResourceView[] {
  return states.flatMap((s) => {
    const devices: PluginDevice[] = s.vfs.map((vf) => ({ id: vf.id, health: vf.health, numaNode: vf.numaNode }));
    const out: ResourceView[] = [{ resourceName: s.pool.resourceName, devices, preStartRequired: true }];
    if (s.bandwidthUnits !== null) {
      // Units are not tied to a NUMA node: no topology, so the topology manager does not pin them.
      const units = Array.from({ length: s.bandwidthUnits }, (_, n): PluginDevice => ({ id: bandwidthDeviceId(s.pool, n), health: 'Healthy', numaNode: null }));
      units.sort((a, b) => byText(a.id, b.id));
      out.push({ resourceName: s.pool.bandwidthResourceName, devices: units, preStartRequired: false });
    }
    return out;
  });
}

/** The snapshot; its revision is a hash of the content, so equal content keeps the revision. */
export function deviceSnapshot(states: PoolState[]): DeviceSnapshot {
  const resources = resourceViews(states);
  const revision = createHash('sha256').update(JSON.stringify(resources)).digest('hex').slice(0, 16);
  return { revision, resources };
}
