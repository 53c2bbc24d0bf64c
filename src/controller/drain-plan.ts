/**
 * The drain planner: which holding allocations on a PF (or on every PF of a
 * host) move where. Pure: it reads a snapshot of the store and decides on a
 * private scheduler loaded from it, so a plan changes nothing, and each move
 * is placed with the moves planned before it already counted (their VFs,
 * guarantees and group slots held), as the migrations will hold them. A
 * tenant's bandwidth group counts as admission counts it: a group tenant's
 * first VF on a PF takes its share there (max(share, its VFs' guarantees),
 * once per PF), and its source PF keeps its charge while the move runs.
 *
 * Where a move may go:
 * - a container: another PF of its own host, or a PF of a host on the same
 *   kernel (the same `inventory.bootId`: agents split with `--pfs`), since
 *   its network namespace cannot leave the kernel;
 * - a VM: another host; or another PF of its own host when the hypervisor
 *   can migrate within a host (QMP to a second QEMU, or a hook's
 *   orchestrator; libvirt refuses a migration to the same host). A QMP
 *   `unix:` URI is a socket on this machine, so it stays on this kernel:
 *   this host, or a host on the same kernel.
 */
import { HOLDING_STATES, type Allocation, type HostRecord, type HypervisorKind, type Migration, type Network, type Physnet, type Tenant } from '../domain/types.js';
import { SriovError } from '../host/errors.js';
import { isPciAddress, parsePciAddress } from '../host/validate.js';
import { Scheduler, type Placement, type PlacementRequest, type SchedulerOptions } from '../scheduler/index.js';
import { pendingAllocation } from './allocations.js';
import type { DrainMove, DrainPlan } from './migration-request.js';

/** What the planner reads: the store's view at one moment. */
export interface DrainSnapshot {
  hosts: HostRecord[];
  /** Allocations in a holding state, everywhere (the destinations' load counts). */
  allocations: Allocation[];
  physnets: Physnet[];
  networks: Network[];
  /** Their bandwidth groups: a move of a group tenant's VF needs room for its share on the PF it goes to. */
  tenants: Tenant[];
  /** Migrations still running or rolling back: an allocation they move is followed, not moved twice. */
  migrations: Migration[];
}

export interface DrainTarget {
  host: string;
  /** A PF's netdev name or PCI address; null drains every PF of the host. */
  pf: string | null;
  hypervisor?: HypervisorKind;
  migrateUri?: string;
  dryRun?: boolean;
}

/** A plan, and what needs no move. */
export interface PlannedDrain extends DrainPlan {
  /** Allocations on the drained PFs already releasing (no migration): they free their VFs with no move. */
  releasing: string[];
}

const ACTIVE: ReadonlyArray<Migration['state']> = ['running', 'rolling-back'];

/** Plans the drain of `target` over `snap`; a move with nowhere to go carries its refusal. Throws only for a bad target. */
export function planDrain(snap: DrainSnapshot, target: DrainTarget, schedulerOptions: SchedulerOptions = {}): PlannedDrain {
  const host = snap.hosts.find((h) => h.name === target.host);
  if (!host) throw unknownHost(target.host, snap.hosts);
  const pfs = drainedPfsOf(host, target.pf);
  if (host.state !== 'ready') {
    throw new SriovError('CONFLICT', `host ${host.name} is unreachable: a drain moves its workloads live, which needs its agent; bring the agent back first`, {
      object: host.name,
      nothingChanged: true,
    });
  }
  const id = target.pf === null ? host.name : `${host.name}/${pfs[0]!.name}`;
  const planner = new Planner(snap, host, pfs, target, schedulerOptions);
  const on = new Set(pfs.map((p) => p.pciAddress));
  const holding = snap.allocations
    .filter((a) => a.host === host.name && on.has(a.pfPciAddress) && HOLDING_STATES.includes(a.state))
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  const moves: DrainMove[] = [];
  const releasing: string[] = [];
  for (const a of holding) {
    const followed = planner.followed(a);
    if (followed) moves.push(followed);
    else if (a.state === 'releasing') releasing.push(a.id);
    else moves.push(planner.move(a));
  }
  refuseSharedQmpUri(moves, target);
  return { id, host: host.name, pfs: pfs.map((p) => p.name), dryRun: target.dryRun === true, moves, releasing };
}

interface PfRef {
  name: string;
  pciAddress: string;
  numaNode: number | null;
}

class Planner {
  private readonly scheduler: Scheduler;
  private readonly networks: Map<string, Network>;
  private readonly active = new Map<string, Migration>();

  constructor(
    private readonly snap: DrainSnapshot,
    private readonly host: HostRecord,
    private readonly pfs: PfRef[],
    private readonly target: DrainTarget,
    options: SchedulerOptions,
  ) {
    this.scheduler = new Scheduler(options);
    this.scheduler.load(snap.hosts, snap.allocations, snap.physnets, snap.tenants);
    // The source host's PFs already drained, and the ones this drain drains, take nothing.
    this.scheduler.setDrained(host.name, new Set([...host.drainedPfs, ...pfs.map((p) => p.pciAddress)]));
    this.networks = new Map(snap.networks.map((n) => [n.name, n]));
    for (const m of snap.migrations) if (ACTIVE.includes(m.state)) this.active.set(m.from.allocation, m);
  }

  /** The move of an allocation a migration already moves (started by an earlier run of this drain, or by hand). */
  followed(a: Allocation): DrainMove | null {
    const m = this.active.get(a.id);
    const id = m?.id ?? (a.migration?.role === 'source' ? a.migration.id : null);
    if (a.migration?.role === 'destination') {
      const why = `it is arriving by migration ${a.migration.id} onto a PF being drained; wait for that migration to end (or abort it), then drain again`;
      return { ...this.base(a), refusal: why };
    }
    if (id === null) return null;
    const to = m?.to ? { host: m.to.host, pf: m.to.pf } : null;
    return { ...this.base(a), to, hypervisor: m?.hypervisor ?? null, migration: id };
  }

  move(a: Allocation): DrainMove {
    const base = this.base(a);
    const network = this.networks.get(a.network);
    if (!network) return { ...base, refusal: `its network ${a.network} no longer exists` };
    const vm = a.workload.kind === 'vm';
    if (vm && !this.target.hypervisor) return { ...base, refusal: `VM ${a.workload.name} needs a hypervisor to migrate: give --hypervisor libvirt, qemu or hook` };
    const placed = vm ? this.placeVm(a, network) : this.placeContainer(a, network);
    if ('refusal' in placed) return { ...base, refusal: placed.refusal };
    // Held in the private scheduler: the moves after this one see its VF, guarantee and group slot taken.
    this.scheduler.reserve(pendingAllocation(placed, network, a.workload, { id: `${a.id}:drain`, mac: a.mac, group: a.group, attachment: null, createdAt: a.createdAt }));
    return { ...base, to: { host: placed.host, pf: placed.pf }, hypervisor: vm ? this.target.hypervisor! : null };
  }

  private base(a: Allocation): DrainMove {
    return { allocation: a.id, workload: a.workload, from: { host: a.host, pf: a.pf }, to: null, hypervisor: null, refusal: null, migration: null };
  }

  /** Its own host first (same NUMA node preferred: its CPUs stay where they are), then hosts on the same kernel. */
  private placeContainer(a: Allocation, network: Network): Placement | { refusal: string } {
    const peers = this.kernelPeers();
    const reasons: string[] = [];
    for (const name of [this.host.name, ...peers]) {
      const placed = this.tryChoose(this.request(a, network, name));
      if (!('refusal' in placed)) return placed;
      reasons.push(placed.refusal);
    }
    const where = peers.length ? `another PF of ${this.host.name} or of ${peers.join(', ')} (same kernel)` : `another PF of ${this.host.name} (no other host reports its bootId)`;
    return { refusal: `container ${a.workload.name} can only move to ${where}, and none fits: ${reasons.join('; ')}` };
  }

  /** The other hosts on this host's kernel: agents split with `--pfs` report the same bootId. */
  private kernelPeers(): string[] {
    const bootId = this.host.inventory.bootId;
    return bootId ? this.snap.hosts.filter((h) => h.name !== this.host.name && h.inventory.bootId === bootId).map((h) => h.name).sort() : [];
  }

  /**
   * Another host first, then (when the hypervisor can) another PF of its own
   * host. A QMP `unix:` URI is a socket on this machine: then "another host"
   * is one on the same kernel (`--pfs` agents, as the lab runs host A and B).
   */
  private placeVm(a: Allocation, network: Network): Placement | { refusal: string } {
    const hv = this.target.hypervisor!;
    const localOnly = hv === 'qemu' && this.target.migrateUri?.startsWith('unix:') === true;
    const reasons: string[] = [];
    if (!localOnly) {
      const away = this.elsewhere(a, network);
      if (!('refusal' in away)) return away;
      reasons.push(away.refusal);
    }
    for (const peer of localOnly ? this.kernelPeers() : []) {
      const there = this.tryChoose(this.request(a, network, peer));
      if (!('refusal' in there)) return there;
      reasons.push(`on ${peer} (same kernel; a unix: --migrate-uri reaches no further): ${there.refusal}`);
    }
    if (hv !== 'libvirt') {
      const here = this.tryChoose(this.request(a, network, this.host.name));
      if (!('refusal' in here)) return here;
      reasons.push(`on ${this.host.name}: ${here.refusal}`);
    } else {
      reasons.push(`libvirt does not migrate a VM to its own host`);
    }
    return { refusal: `VM ${a.workload.name} has nowhere to go: ${reasons.join('; ')}` };
  }

  /**
   * Any host but the source, ranked by the scheduler's own policy: the source
   * host counts as unreachable for this one choice (marking its PFs drained
   * would have the refusal suggest undraining them).
   */
  private elsewhere(a: Allocation, network: Network): Placement | { refusal: string } {
    const others = this.snap.hosts.filter((h) => h.name !== this.host.name && Object.values(h.physnets).includes(network.physnet));
    if (others.length === 0) return { refusal: `no other host has a PF on physnet ${network.physnet}` };
    this.scheduler.setHostState(this.host.name, 'unreachable');
    try {
      const placed = this.tryChoose(this.request(a, network, undefined));
      return 'refusal' in placed ? { refusal: `on other hosts: ${placed.refusal}` } : placed;
    } finally {
      this.scheduler.setHostState(this.host.name, 'ready');
    }
  }

  private request(a: Allocation, network: Network, host: string | undefined): PlacementRequest {
    const numaNode = host === a.host ? this.pfs.find((p) => p.pciAddress === a.pfPciAddress)?.numaNode : undefined;
    const numa = numaNode == null ? {} : { numaNode, numaPolicy: 'preferred' as const };
    return { network, workload: a.workload, group: a.group, host, ...numa };
  }

  private tryChoose(req: PlacementRequest): Placement | { refusal: string } {
    try {
      return this.scheduler.choose(req);
    } catch (err) {
      if (err instanceof SriovError) return { refusal: this.unnoted(err.message) };
      throw err;
    }
  }

  /** The scheduler suggests undraining a drained PF; for the PFs this drain drains, that is no advice. */
  private unnoted(message: string): string {
    let out = message;
    for (const pf of this.pfs) {
      const at = `${this.host.name}/${pf.name}`;
      out = out.replace(`${at} is drained (sriovctl pf undrain ${at})`, `${at} is being drained`);
    }
    return out;
  }
}

/**
 * QMP migrates to the one destination QEMU that `migrateUri` names (its
 * `-incoming`): two VMs cannot both go there.
 */
function refuseSharedQmpUri(moves: DrainMove[], target: DrainTarget): void {
  if (target.hypervisor !== 'qemu') return;
  const vms = moves.filter((m) => m.workload.kind === 'vm' && m.migration === null && m.refusal === null);
  if (vms.length < 2) return;
  for (const m of vms) {
    m.refusal = `--hypervisor qemu migrates to the one QEMU that --migrate-uri names, and this drain moves ${vms.length} VMs; use libvirt or hook, or migrate them one by one (sriovctl migrate)`;
  }
}

/** The PFs to drain: one by netdev name or PCI address, or all the host reports. */
function drainedPfsOf(host: HostRecord, pf: string | null): PfRef[] {
  const all = host.inventory.pfs.map((p) => ({ name: p.name, pciAddress: p.pciAddress, numaNode: p.numaNode }));
  if (pf === null) return all;
  const pci = isPciAddress(pf) ? parsePciAddress(pf) : null;
  const found = all.find((p) => (pci ? p.pciAddress === pci : p.name === pf));
  if (found) return [found];
  const known = all.map((p) => `${p.name} (${p.pciAddress})`).join(', ');
  throw new SriovError('NOT_FOUND', `PF ${pf} is not in host ${host.name}'s last report; its PFs: ${known || 'none'}`, { object: `${host.name}/${pf}`, nothingChanged: true });
}

function unknownHost(name: string, hosts: HostRecord[]): SriovError {
  const known = hosts.map((h) => h.name).sort().slice(0, 8).join(', ');
  return new SriovError('NOT_FOUND', `host ${name} is not known; the hosts are: ${known || 'none (no agent has reported)'}`, { object: name, nothingChanged: true });
}
