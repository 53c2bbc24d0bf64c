/**
 * The scheduler's view of hosts and PFs: what the inventory says, plus the
 * mutable counters (free VFs, committed bandwidth) the index keeps in step.
 */
import type { DeviceType, HostRecord, HostState } from '../domain/types.js';
import { capabilitiesOf } from '../host/capabilities.js';
import type { PfInfo } from '../host/model.js';
import { FreeVfSet } from './free-set.js';
import { vfAddresses, type VfAddresses } from './vf-addresses.js';

export interface HostEntry {
  readonly name: string;
  state: HostState;
  /** PF pciAddress → entry, for every PF in the inventory (schedulable or not). */
  readonly pfs: Map<string, PfEntry>;
}

export interface PfEntry {
  readonly host: HostEntry;
  readonly name: string;
  readonly pciAddress: string;
  /** `host|pciAddress`: how redundancy groups name a PF. */
  readonly key: string;
  readonly numaNode: number | null;
  readonly driver: string | null;
  readonly enforcesMinTxRate: boolean;
  /**
   * Whether the NIC enforces a tenant's bandwidth group here: a devlink rate
   * node needs switchdev mode and a driver with rate nodes.
   */
  readonly enforcesGroups: boolean;
  readonly eswitchMode: PfInfo['eswitchMode'];
  readonly linkSpeedMbps: number | null;
  /** The link speed as the inventory reports it (0 kept), for the API's rate checks. */
  readonly reportedLinkSpeedMbps: number | null;
  /** The PF's own link (operstate) as last reported: what `/metrics` says of it. */
  readonly linkState: PfInfo['linkState'];
  /** null when no node policy gives this PF a physnet: never scheduled. */
  readonly physnet: string | null;
  readonly deviceType: DeviceType;
  /** VF index → VF PCI address, for the VFs the inventory lists. */
  readonly vfPci: VfAddresses;
  /** Inventory VFs not held by an allocation. */
  readonly free: FreeVfSet;
  /**
   * The guarantee bandwidth committed here: the minTxRateMbps of the
   * allocations holding a VF, except that a tenant with a bandwidth group
   * counts its group's share once instead (tenant-groups.ts).
   */
  committedMbps: number;
  /** Tenant → its holdings here (how many, the sum of their minTxRateMbps). */
  readonly tenants: Map<string, TenantUsage>;
  /** Staff drained it (`sriovctl pf drain`): it takes no new allocation; those it has stay. */
  drained: boolean;
  /** Free count under which the PF's pool files it; -1 while not filed (host not ready, or PF drained). */
  filedAt: number;
}

export interface TenantUsage {
  vfs: number;
  minTxRateMbps: number;
}

export function pfKey(host: string, pfPciAddress: string): string {
  return `${host}|${pfPciAddress}`;
}

/**
 * Entries for a host record, with every inventory VF free and the PFs in
 * `drained` (PCI addresses) drained; holdings are applied by the index.
 */
export function buildHostEntry(record: HostRecord, drained: ReadonlySet<string>): HostEntry {
  const host: HostEntry = { name: record.name, state: record.state, pfs: new Map() };
  for (const pf of record.inventory.pfs) {
    host.pfs.set(pf.pciAddress, buildPfEntry(host, pf, record, drained.has(pf.pciAddress)));
  }
  return host;
}

function buildPfEntry(host: HostEntry, pf: PfInfo, record: HostRecord, drained: boolean): PfEntry {
  const capacity = pf.vfs.reduce((max, vf) => Math.max(max, vf.index + 1), 0);
  const entry: PfEntry = {
    host,
    name: pf.name,
    pciAddress: pf.pciAddress,
    key: pfKey(host.name, pf.pciAddress),
    numaNode: pf.numaNode,
    driver: pf.driver,
    enforcesMinTxRate: capabilitiesOf(pf.driver).enforcesMinTxRate,
    enforcesGroups: capabilitiesOf(pf.driver).rateNodes && pf.eswitchMode === 'switchdev',
    eswitchMode: pf.eswitchMode,
    // A link that is down reports no speed (sysfs gives -1): no guarantee can be promised on it.
    linkSpeedMbps: pf.linkSpeedMbps && pf.linkSpeedMbps > 0 ? pf.linkSpeedMbps : null,
    reportedLinkSpeedMbps: pf.linkSpeedMbps,
    linkState: pf.linkState,
    physnet: record.physnets[pf.pciAddress] ?? null,
    deviceType: record.deviceTypes[pf.pciAddress] ?? 'netdevice',
    vfPci: vfAddresses(pf.vfs),
    free: new FreeVfSet(capacity),
    committedMbps: 0,
    tenants: new Map(),
    drained,
    filedAt: -1,
  };
  for (const vf of pf.vfs) entry.free.add(vf.index);
  return entry;
}

/** Whether a PF's pool offers it to searches: its host is ready and it is not drained. */
export function schedulable(pf: PfEntry): boolean {
  return pf.host.state === 'ready' && !pf.drained;
}

/** Deterministic order among PFs: host name, then PF PCI address (code-unit order, locale-free). */
export function precedes(a: PfEntry, b: PfEntry): boolean {
  return a.host.name < b.host.name || (a.host.name === b.host.name && a.pciAddress < b.pciAddress);
}
