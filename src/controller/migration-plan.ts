/**
 * Planning a migration: every check the protocol asks for, then the
 * destination VF the scheduler picks, by the network's own rules. Reads
 * only: a refusal here changes nothing, and names the reason and, when
 * capacity is what failed, the best alternative that would fit.
 */
import { HOLDING_STATES, type Allocation, type HostRecord, type HypervisorKind, type Migration, type Network } from '../domain/types.js';
import { isVfioMigrationDriver, vfioMigrationDrivers } from '../host/capabilities.js';
import { invalid, SriovError } from '../host/errors.js';
import type { PfInfo } from '../host/model.js';
import { parseHostName, parseIfName, shown } from '../host/validate.js';
import type { Placement, PlacementRequest } from '../scheduler/index.js';
import { checkPlacedLinkSpeed } from './allocations.js';
import type { Context } from './context.js';
import type { MigrationRequest } from './migration-request.js';
import { parseMigrateUri } from './migration-uri.js';

const HYPERVISORS: readonly HypervisorKind[] = ['libvirt', 'qemu', 'hook'];

export interface MigrationPlan {
  source: Allocation;
  network: Network;
  sourceHost: HostRecord;
  destHost: HostRecord;
  placement: Placement;
  hypervisor: HypervisorKind | null;
  migrateUri: string | null;
  requested: { host: string; pf: string | null };
}

/** The request's own fields, checked before anything is read. */
export function parseTarget(req: MigrationRequest): { host: string; pf: string | null } {
  if (!req.to || typeof req.to !== 'object') throw invalid('to: the destination host (and optionally its PF) is required');
  const host = parseHostName(req.to.host);
  const pf = req.to.pf === null || req.to.pf === undefined ? null : parseIfName(req.to.pf);
  if (req.hypervisor !== undefined && !HYPERVISORS.includes(req.hypervisor)) {
    throw invalid(`hypervisor must be one of ${HYPERVISORS.join(', ')}, got ${shown(req.hypervisor)}`);
  }
  return { host, pf };
}

export async function planMigration(ctx: Context, source: Allocation, req: MigrationRequest): Promise<MigrationPlan> {
  const requested = parseTarget(req);
  checkSource(source);
  const hypervisor = checkHypervisor(source, req.hypervisor);
  const migrateUri = parseMigrateUri(req.migrateUri, hypervisor);
  const [network, sourceHost, destHost] = await Promise.all([
    ctx.store.tx.getNetwork(source.network),
    ctx.store.tx.getHost(source.host),
    ctx.store.tx.getHost(requested.host),
  ]);
  if (!network || !sourceHost) throw invalid(`allocation ${source.id}'s network ${source.network} or host ${source.host} is gone; it cannot migrate`, source.id);
  if (!destHost) throw await unknownHost(ctx, requested.host);
  const destPf = checkDestination(source, sourceHost, destHost, requested, network);
  checkVmCanMove(source, sourceHost);
  await checkUriFree(ctx, source, hypervisor, migrateUri);
  await checkVmAlone(ctx, source, requested.host, hypervisor);
  const placement = await choose(ctx, source, network, sourceHost, destHost, destPf);
  checkDestinationState(source, sourceHost, destHost, placement);
  await checkPlacedLinkSpeed(ctx, network, placement);
  return { source, network, sourceHost, destHost, placement, hypervisor, migrateUri, requested };
}

function checkSource(a: Allocation): void {
  if (!HOLDING_STATES.includes(a.state) || a.state === 'releasing') {
    throw new SriovError('CONFLICT', `allocation ${a.id} is ${a.state}: it holds no VF to move; only a pending, configured or attached allocation migrates`, { object: a.id, nothingChanged: true });
  }
  if (a.migration) {
    throw new SriovError('CONFLICT', `allocation ${a.id} is already migrating (migration ${a.migration.id}, as its ${a.migration.role}); wait for it or abort it`, { object: a.id, nothingChanged: true });
  }
  if (!a.attachment) throw invalid(`allocation ${a.id} is not attached to a container or VM: there is no workload to move; release it and allocate anew where it should be`, a.id);
}

function checkHypervisor(a: Allocation, hypervisor: HypervisorKind | undefined): HypervisorKind | null {
  if (a.workload.kind === 'container') {
    if (hypervisor !== undefined) throw invalid(`allocation ${a.id} is a container's: it moves without a hypervisor; leave --hypervisor out`, a.id);
    return null;
  }
  if (hypervisor === undefined) throw invalid(`allocation ${a.id} is VM ${a.workload.name}'s: say who moves it with --hypervisor libvirt, qemu or hook`, a.id);
  return hypervisor;
}

/** The destination PF asked for (null: the scheduler's choice), after the checks that need only the records. */
function checkDestination(a: Allocation, sourceHost: HostRecord, destHost: HostRecord, to: { host: string; pf: string | null }, network: Network): PfInfo | null {
  const pf = to.pf === null ? null : findPf(destHost, to.pf);
  if (to.host === a.host && pf?.pciAddress === a.pfPciAddress) {
    throw invalid(`the destination ${to.host}/${to.pf} is where allocation ${a.id} already is; name another PF or host`, a.id);
  }
  if (destHost.state !== 'ready') {
    throw new SriovError('NO_CAPACITY', `host ${destHost.name} is unreachable (no heartbeat from its agent); a migration needs a live destination agent`, { object: destHost.name, nothingChanged: true });
  }
  const carries = destHost.inventory.pfs.filter((p) => destHost.physnets[p.pciAddress] === network.physnet);
  if (carries.length === 0 || (pf && destHost.physnets[pf.pciAddress] !== network.physnet)) {
    const where = pf ? `PF ${destHost.name}/${pf.name} is not` : `host ${destHost.name} has no PF`;
    throw new SriovError('NO_CAPACITY', `${where} on physnet ${network.physnet}, which network ${network.name} needs; its node policy decides that`, { object: destHost.name, nothingChanged: true });
  }
  if (a.workload.kind === 'container' && destHost.name !== sourceHost.name && !oneKernel(sourceHost, destHost)) {
    throw invalid(
      `allocation ${a.id} is container ${a.workload.name}'s, which moves only between PFs of its own host ${a.host} ` +
        `(or of agents on one kernel: the same bootId), and ${destHost.name} is another host; use --to ${a.host}/<pf>`,
      a.id,
    );
  }
  return pf;
}

/** Two agents on one kernel (split with --pfs) share its network namespaces. */
export function oneKernel(a: HostRecord, b: HostRecord): boolean {
  return a.inventory.bootId !== undefined && a.inventory.bootId === b.inventory.bootId;
}

function findPf(host: HostRecord, name: string): PfInfo {
  const pf = host.inventory.pfs.find((p) => p.name === name);
  if (pf) return pf;
  const known = host.inventory.pfs.map((p) => p.name).join(', ') || 'none';
  throw new SriovError('NOT_FOUND', `PF ${name} is not in host ${host.name}'s last report; its PFs: ${known}`, { object: `${host.name}/${name}`, nothingChanged: true });
}

/** Without a failover standby, only a VF whose driver carries its state across (vfio migration) can move. */
function checkVmCanMove(a: Allocation, sourceHost: HostRecord): void {
  if (a.attachment?.kind !== 'vm' || a.attachment.failover) return;
  const driver = vfOf(sourceHost, a.pciAddress)?.driver ?? null;
  if (isVfioMigrationDriver(driver)) return;
  throw new SriovError(
    'UNSUPPORTED',
    `VM ${a.attachment.vm} has no failover standby for allocation ${a.id}, and its VF ${a.pciAddress} is bound to ${driver ?? 'no driver'}, ` +
      `not a vfio migration driver (${vfioMigrationDrivers().join(', ')}); attach it with --failover (a virtio standby) to make it migratable`,
    { object: a.id, nothingChanged: true },
  );
}

/**
 * A migration moves a VM with one VF: its hypervisor unplugs (failover) or
 * carries only that one. Another VF the VM holds on the host would stay
 * behind, held for a VM that left, and its MAC gone from the wire. So the VM
 * must hold no other VF there, unless it does not move at all (the hook
 * between two PFs of its host, where the orchestrator swaps one VF).
 */
async function checkVmAlone(ctx: Context, a: Allocation, destHost: string, hypervisor: HypervisorKind | null): Promise<void> {
  if (a.attachment?.kind !== 'vm' || (hypervisor === 'hook' && destHost === a.host)) return;
  const vm = a.attachment.vm;
  const others = (await ctx.store.tx.listAllocations({ host: a.host, holding: true })).filter((o) => o.id !== a.id && o.attachment?.kind === 'vm' && o.attachment.vm === vm);
  if (others.length === 0) return;
  const held = others.map((o) => `allocation ${o.id} (VF ${o.pciAddress})`).join(', ');
  throw new SriovError(
    'UNSUPPORTED',
    `VM ${vm} on ${a.host} also holds ${held}: a migration moves the VM with one VF and would leave the others behind; release them first (sriovctl alloc delete <id>), or move this VF between PFs of ${a.host} with --hypervisor hook`,
    { object: a.id, nothingChanged: true },
  );
}

/**
 * A QMP `migrateUri` is one destination QEMU's `-incoming`, which takes one
 * VM: a second VM sent there would run in the process started for the first
 * (and under its name). A `tcp:` address is the same QEMU from any host; a
 * `unix:` path is a socket on the source host.
 */
async function checkUriFree(ctx: Context, a: Allocation, hypervisor: HypervisorKind | null, uri: string | null): Promise<void> {
  if (hypervisor !== 'qemu' || uri === null) return;
  const active = await ctx.store.tx.listMigrations({ active: true });
  const taken = active.find((m) => m.hypervisor === 'qemu' && m.migrateUri === uri && (uri.startsWith('tcp:') || m.from.host === a.host) && !vmMoved(m));
  if (!taken) return;
  throw new SriovError(
    'CONFLICT',
    `migrateUri ${uri} is where migration ${taken.id} sends VM ${taken.workload.name}; a destination QEMU's -incoming takes one VM: start another with -incoming on another port or socket, or wait for that migration`,
    { object: a.id, nothingChanged: true },
  );
}

/** The VM went (or its migrate task ended): the destination QEMU was used, or is no longer waited for. */
const vmMoved = (m: Migration) => (m.tasks ?? []).some((t) => t.op === 'migrate' && t.outcome !== 'pending');

/** A vfio-migration VF's state goes to a VF bound to the same driver at the destination. */
function checkDestinationState(a: Allocation, sourceHost: HostRecord, destHost: HostRecord, p: Placement): void {
  if (a.attachment?.kind !== 'vm' || a.attachment.failover) return;
  const driver = vfOf(sourceHost, a.pciAddress)?.driver ?? null;
  const there = vfOf(destHost, p.pciAddress)?.driver ?? null;
  if (there === driver) return;
  throw new SriovError(
    'UNSUPPORTED',
    `the destination VF ${p.host}/${p.pciAddress} is bound to ${there ?? 'no driver'}, not ${driver}, so it cannot take VM ${a.attachment.vm}'s VF state; ` +
      `bind the destination PF's VFs to ${driver} (node policy) or pick another PF`,
    { object: a.id, nothingChanged: true },
  );
}

function vfOf(host: HostRecord, pciAddress: string) {
  for (const pf of host.inventory.pfs) for (const vf of pf.vfs) if (vf.pciAddress === pciAddress) return vf;
  return undefined;
}

/** The scheduler's VF on the destination: not the source PF; on the same host, the source's NUMA node when it can. */
async function choose(ctx: Context, a: Allocation, network: Network, sourceHost: HostRecord, destHost: HostRecord, pf: PfInfo | null): Promise<Placement> {
  const sameHost = destHost.name === a.host;
  const numaNode = sameHost ? (sourceHost.inventory.pfs.find((p) => p.pciAddress === a.pfPciAddress)?.numaNode ?? undefined) : undefined;
  const req: PlacementRequest = {
    network,
    workload: a.workload,
    group: a.group,
    host: destHost.name,
    numaNode,
    numaPolicy: 'preferred',
    pfPciAddress: pf?.pciAddress,
    avoidPfPciAddress: sameHost ? a.pfPciAddress : undefined,
  };
  try {
    return ctx.scheduler.choose(req);
  } catch (err) {
    if (!(err instanceof SriovError) || err.code !== 'NO_CAPACITY') throw err;
    throw withAlternative(ctx, err, a, req, sourceHost, await ctx.store.tx.listHosts());
  }
}

/** The refusal, plus the first other PF or host that would take the VF, for the caller to ask for instead. */
function withAlternative(ctx: Context, err: SriovError, a: Allocation, tried: PlacementRequest, sourceHost: HostRecord, hosts: HostRecord[]): SriovError {
  const alt = alternative(ctx, a, tried, alternativeHosts(a, tried.host!, sourceHost, hosts));
  const hint = alt ? `; ${alt.host}/${alt.pf} would fit (--to ${alt.host}/${alt.pf})` : '; no other PF or host would fit either';
  return new SriovError('NO_CAPACITY', `cannot migrate allocation ${a.id} to ${tried.host}: ${err.message}${hint}`, {
    object: a.id,
    nothingChanged: true,
    data: { ...err.details.data, alternative: alt ? { host: alt.host, pf: alt.pf } : null },
    cause: err,
  });
}

function alternative(ctx: Context, a: Allocation, tried: PlacementRequest, hosts: string[]): Placement | null {
  for (const host of hosts) {
    try {
      return ctx.scheduler.choose({ ...tried, host, pfPciAddress: undefined, avoidPfPciAddress: host === a.host ? a.pfPciAddress : undefined });
    } catch {
      // Not this one either.
    }
  }
  return null;
}

/** The asked-for host first (another of its PFs), then the hosts this workload may go to, by name. */
function alternativeHosts(a: Allocation, asked: string, sourceHost: HostRecord, hosts: HostRecord[]): string[] {
  const allowed = hosts.filter((h) => h.state === 'ready' && (a.workload.kind === 'vm' || h.name === a.host || oneKernel(h, sourceHost)));
  const names = allowed.map((h) => h.name).sort();
  return [asked, ...names.filter((n) => n !== asked)];
}

async function unknownHost(ctx: Context, name: string): Promise<SriovError> {
  const known = (await ctx.store.tx.listHosts()).map((h) => h.name);
  return new SriovError('NOT_FOUND', `host ${name} is not known; the hosts are: ${known.join(', ') || 'none (no agent has reported)'}`, { object: name, nothingChanged: true });
}
