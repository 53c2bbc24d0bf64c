/**
 * A brute-force scheduler with the same rules as src/scheduler: every request
 * walks every VF of every host. The tests use it as an oracle for the indexed
 * scheduler's choices; the bench uses it as the baseline it must beat.
 */
import type { Allocation, HostRecord, Physnet } from '../../src/domain/types.js';
import { capabilitiesOf } from '../../src/host/capabilities.js';
import type { PfInfo } from '../../src/host/model.js';
import type { Placement, PlacementPolicy, PlacementRequest } from '../../src/scheduler/index.js';

interface Candidate {
  host: HostRecord;
  pf: PfInfo;
  free: number;
  lowest: number;
  committed: number;
}

export class NaiveScheduler {
  /** host → PF pci → VF index → holding allocation. */
  private readonly held = new Map<string, Map<string, Map<number, Allocation>>>();

  constructor(
    private readonly hosts: HostRecord[],
    private readonly physnets: Physnet[],
    private readonly opts: { policy?: PlacementPolicy; bandwidthRatio?: number } = {},
  ) {}

  choose(req: PlacementRequest): Placement | null {
    const preferred = req.numaNode !== undefined && req.numaPolicy === 'preferred';
    const found = (preferred ? this.best(req, req.numaNode) : undefined) ?? this.best(req, preferred ? undefined : req.numaNode);
    if (!found) return null;
    const vf = found.pf.vfs.find((v) => v.index === found.lowest)!;
    return {
      host: found.host.name,
      pf: found.pf.name,
      pfPciAddress: found.pf.pciAddress,
      vfIndex: vf.index,
      pciAddress: vf.pciAddress,
      numaNode: found.pf.numaNode,
    };
  }

  reserve(a: Allocation): void {
    let pfs = this.held.get(a.host);
    if (!pfs) this.held.set(a.host, (pfs = new Map()));
    let vfs = pfs.get(a.pfPciAddress);
    if (!vfs) pfs.set(a.pfPciAddress, (vfs = new Map()));
    vfs.set(a.vfIndex, a);
  }

  release(a: Allocation): void {
    this.held.get(a.host)?.get(a.pfPciAddress)?.delete(a.vfIndex);
  }

  private best(req: PlacementRequest, numaNode: number | undefined): Candidate | undefined {
    const policy = req.policy ?? this.opts.policy ?? 'pack';
    const used = this.groupUse(req);
    let best: Candidate | undefined;
    for (const host of this.hosts) {
      if (host.state !== 'ready' || (req.host !== undefined && host.name !== req.host)) continue;
      for (const pf of host.inventory.pfs) {
        const c = this.scan(host, pf);
        if (c.free === 0 || !this.admits(c, req, numaNode, used)) continue;
        if (!best || better(c, best, policy)) best = c;
      }
    }
    return best;
  }

  private scan(host: HostRecord, pf: PfInfo): Candidate {
    const held = this.held.get(host.name)?.get(pf.pciAddress);
    const c: Candidate = { host, pf, free: 0, lowest: Infinity, committed: 0 };
    for (const vf of pf.vfs) {
      const a = held?.get(vf.index);
      if (a) c.committed += a.minTxRateMbps;
      else {
        c.free++;
        c.lowest = Math.min(c.lowest, vf.index);
      }
    }
    return c;
  }

  private admits(c: Candidate, req: PlacementRequest, numaNode: number | undefined, used: Set<string>): boolean {
    const { network } = req;
    if (c.host.drainedPfs.includes(c.pf.pciAddress)) return false;
    if (c.host.physnets[c.pf.pciAddress] !== network.physnet) return false;
    if ((c.host.deviceTypes[c.pf.pciAddress] ?? 'netdevice') !== network.deviceType) return false;
    if (numaNode !== undefined && c.pf.numaNode !== numaNode) return false;
    if (used.has(req.groupAcrossHosts ? c.host.name : `${c.host.name}|${c.pf.pciAddress}`)) return false;
    if (network.minTxRateMbps <= 0) return true;
    const accountingOnly = this.physnets.find((p) => p.name === network.physnet)?.accountingOnly ?? false;
    if (!accountingOnly && !capabilitiesOf(c.pf.driver).enforcesMinTxRate) return false;
    if (!c.pf.linkSpeedMbps) return false;
    return c.committed + network.minTxRateMbps <= c.pf.linkSpeedMbps * (this.opts.bandwidthRatio ?? 1);
  }

  /** Hosts, or `host|pf` keys, the request's redundancy group already uses. */
  private groupUse(req: PlacementRequest): Set<string> {
    const used = new Set<string>();
    if (req.group == null) return used;
    for (const pfs of this.held.values()) {
      for (const vfs of pfs.values()) {
        for (const a of vfs.values()) {
          if (a.group !== req.group || a.workload.kind !== req.workload.kind || a.workload.name !== req.workload.name) continue;
          used.add(req.groupAcrossHosts ? a.host : `${a.host}|${a.pfPciAddress}`);
        }
      }
    }
    return used;
  }
}

function better(c: Candidate, than: Candidate, policy: PlacementPolicy): boolean {
  if (c.free !== than.free) return policy === 'pack' ? c.free < than.free : c.free > than.free;
  if (c.host.name !== than.host.name) return c.host.name < than.host.name;
  return c.pf.pciAddress < than.pf.pciAddress;
}
