/**
 * The controller's side of the kubelet device plugin: the host's device view
 * the plugin long-polls (which VFs can serve which network, who holds them,
 * what bandwidth is committed), and claims, the pending allocations that the
 * plugin's Allocate makes on the exact VFs the kubelet gave a pod. The pod's
 * CNI ADD then binds its claim (AllocationService.createOrFind); a claim no
 * ADD binds within a grace period is released by the sweep.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { agentHostOf, isStaff, type Actor } from '../domain/actor.js';
import { checkAllocation } from '../domain/invariants.js';
import type { Allocation } from '../domain/types.js';
import { invalid, SriovError } from '../host/errors.js';
import { parseHostName, parsePciAddress } from '../host/validate.js';
import { bandwidthCheck, checkPlacedLinkSpeed, pendingAllocation, type AllocationService } from './allocations.js';
import { CATALOGUE, type Context } from './context.js';
import { reportedVfs } from './hosts.js';
import type { DeviceClaimRequest, DeviceView, DeviceViewAllocation } from './device-view.js';
import { parseName } from './networks.js';

/** How many VFs one Allocate may claim: a container asking for more is refused whole. */
export const MAX_CLAIM_VFS = 64;
/** Default grace before an unbound claim is released: a pod normally reaches its CNI ADD within seconds. */
export const DEFAULT_CLAIM_GRACE_MS = 10 * 60_000;

/** `<prefix>/<name>`: a DNS subdomain, then a Kubernetes qualified name (hyphens allowed). */
const RESOURCE_PREFIX = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const RESOURCE_NAME = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;

export interface DeviceClaimOptions {
  /** Guarantees on a PF may sum to link speed × this (the scheduler's ratio). */
  bandwidthRatio: number;
  /** An unbound claim older than this is released by the sweep. */
  claimGraceMs: number;
}

export class DeviceClaimService {
  /** Set at shutdown: long polls answer at once instead of waiting for a change that will not come. */
  private closing = false;

  constructor(
    private readonly ctx: Context,
    private readonly allocations: AllocationService,
    private readonly opts: DeviceClaimOptions,
  ) {}

  /**
   * Records the VFs the kubelet gave one container, for `network`: one
   * pending allocation per VF, pinned to it, admitted as any allocation
   * (bandwidth, link speed, isolation), all or nothing. A VF that already
   * holds an unbound claim of this network and resource is returned as it is
   * (the kubelet retries Allocate); a VF held otherwise is BUSY.
   */
  async claim(actor: Actor, request: DeviceClaimRequest): Promise<Allocation[]> {
    const req = parseClaimRequest(request);
    requireHostAccess(actor, req.host, 'claim VFs on');
    const network = await this.ctx.store.tx.getNetwork(req.network);
    if (!network) throw new SriovError('NOT_FOUND', `network ${req.network} not found (pool resource ${req.resource})`, { object: req.network, nothingChanged: true });
    const [physnets, sharing] = await Promise.all([this.ctx.store.tx.listPhysnets(), this.ctx.store.tx.listNetworks({ physnet: network.physnet, vlan: network.vlan })]);
    checkAllocation(network, actor, physnets, sharing);
    const workload = { kind: 'container' as const, name: claimWorkloadName(req.resource) };
    const { claims, created } = await this.ctx.decisions.run(async () => {
      // Inside the critical section: a retried Allocate racing the first finds what the first stored.
      const held = new Map((await this.ctx.store.tx.listAllocations({ host: req.host, holding: true })).map((a) => [a.pciAddress, a]));
      const fresh: Allocation[] = [];
      try {
        const claims: Allocation[] = [];
        for (const pciAddress of req.pciAddresses) {
          const holder = held.get(pciAddress);
          if (holder && isSameClaim(holder, req)) {
            claims.push(await this.handedOutAgain(holder));
            continue;
          }
          if (holder) throw vfBusy(holder);
          const a = await this.newClaim(req, pciAddress, network, workload);
          fresh.push(a);
          claims.push(a);
        }
        if (fresh.length) await this.store(actor, fresh);
        return { claims, created: fresh.length > 0 };
      } catch (err) {
        for (const a of fresh) this.forget(a);
        throw err;
      }
    });
    if (created) this.ctx.feed.bump(req.host);
    return claims;
  }

  /**
   * The kubelet gave this VF again (a retried Allocate, or a new pod after
   * one that never reached its ADD): the stale-claim grace starts over from
   * now, so the sweep does not release it under the new pod's ADD. Only the
   * time changes, so no audit event.
   */
  private async handedOutAgain(claim: Allocation): Promise<Allocation> {
    return (await this.ctx.store.tx.updateAllocationState(claim.id, claim.state, claim.reason, this.ctx.now())) ?? claim;
  }

  /** A claim on one VF, reserved in memory (so the next VF of the request sees its guarantee committed). */
  private async newClaim(req: ClaimRequest, pciAddress: string, network: Parameters<typeof pendingAllocation>[1], workload: Allocation['workload']): Promise<Allocation> {
    const placement = this.ctx.scheduler.choose({ network, workload, host: req.host, pciAddress });
    await checkPlacedLinkSpeed(this.ctx, network, placement);
    const mac = this.ctx.macs.next();
    const a = pendingAllocation(placement, network, workload, {
      id: randomUUID(),
      mac,
      group: null,
      attachment: null,
      createdAt: this.ctx.now(),
      deviceClaim: { resource: req.resource },
    });
    this.ctx.scheduler.reserve(a);
    this.ctx.macs.markUsed(mac);
    return a;
  }

  /** Every claim and its audit event in one transaction. */
  private async store(actor: Actor, claims: Allocation[]): Promise<void> {
    await this.ctx.store.transaction(async (tx) => {
      for (const a of claims) {
        await tx.insertAllocation(a, bandwidthCheck(this.ctx, a));
        await tx.appendEvent({ at: this.ctx.now(), actor: `${actor.role}/${actor.id}`, action: 'allocation.claim', object: `allocation/${a.id}`, before: null, after: a });
      }
    });
  }

  private forget(a: Allocation): void {
    this.ctx.scheduler.release(a);
    this.ctx.macs.release(a.mac);
  }

  /**
   * The host's device view, once its revision differs from `after` (long
   * poll, like HostService.desired). The revision is a hash of the content,
   * so it changes exactly when the view does; the host's change feed and the
   * catalogue feed (networks, physnets) say when to look again.
   */
  async view(actor: Actor, host: string, after?: string, waitMs = 0): Promise<DeviceView> {
    const name = parseHostName(host);
    requireHostAccess(actor, name, 'read the device view of');
    const deadline = Date.now() + Math.max(0, waitMs);
    for (;;) {
      // Read before building: a change during the build then wakes the wait below at once.
      const marks = { host: this.ctx.feed.revision(name), catalogue: this.ctx.catalogue.revision(CATALOGUE) };
      const view = await this.build(name);
      const left = deadline - Date.now();
      if (view.revision !== after || left <= 0 || this.closing) return view;
      await this.waitForChange(name, marks, left);
    }
  }

  /** Answers long polls at once from now on (the controller is shutting down). */
  shutdown(): void {
    this.closing = true;
  }

  private waitForChange(host: string, marks: { host: string; catalogue: string }, timeoutMs: number): Promise<void> {
    if (this.ctx.feed.revision(host) !== marks.host || this.ctx.catalogue.revision(CATALOGUE) !== marks.catalogue) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unwatchHost();
        unwatchCatalogue();
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      const unwatchHost = this.ctx.feed.watch(host, done);
      const unwatchCatalogue = this.ctx.catalogue.watch(CATALOGUE, done);
    });
  }

  private async build(host: string): Promise<DeviceView> {
    const tx = this.ctx.store.tx;
    const [record, networks, physnets, holding, failed] = await Promise.all([
      tx.getHost(host),
      tx.listNetworks(),
      tx.listPhysnets(),
      tx.listAllocations({ host, holding: true }),
      tx.listAllocations({ host, state: 'failed' }),
    ]);
    const pfPhysnets = record?.physnets ?? {};
    const onHost = new Set(Object.values(pfPhysnets));
    const heldVfs = new Set(holding.map((a) => a.pciAddress));
    // A VF whose allocation failed and that nobody holds since: the plugin reports it unhealthy. The latest failure per VF.
    const failedVfs = new Map<string, Allocation>();
    for (const a of failed) if (!heldVfs.has(a.pciAddress) && (failedVfs.get(a.pciAddress)?.updatedAt ?? '') <= a.updatedAt) failedVfs.set(a.pciAddress, a);
    const body: Omit<DeviceView, 'revision'> = {
      host,
      physnets: pfPhysnets,
      deviceTypes: record?.deviceTypes ?? {},
      accountingOnly: physnets.filter((p) => p.accountingOnly && onHost.has(p.name)).map((p) => p.name),
      drainedPfs: record?.drainedPfs ?? [],
      networks: networks
        .filter((n) => onHost.has(n.physnet))
        .map((n) => ({ name: n.name, tenant: n.tenant, physnet: n.physnet, vlan: n.vlan, minTxRateMbps: n.minTxRateMbps, maxTxRateMbps: n.maxTxRateMbps, deviceType: n.deviceType })),
      allocations: [...holding, ...failedVfs.values()].map(viewAllocation).sort((a, b) => (a.pciAddress < b.pciAddress ? -1 : a.pciAddress > b.pciAddress ? 1 : 0)),
      reportedVfs: reportedVfs(record),
      bandwidthRatio: this.opts.bandwidthRatio,
    };
    const revision = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
    return { ...body, revision };
  }

  /**
   * Releases claims no CNI ADD bound within the grace period: the kubelet gave
   * the VF to a pod that never got to its ADD (it failed to start, or was
   * deleted first), so nothing else would ever free it. Returns their ids.
   */
  async sweep(now = Date.now()): Promise<string[]> {
    const stale = (await this.ctx.store.tx.listAllocations({ unboundClaim: true })).filter((a) => unbound(a) && now - Date.parse(a.updatedAt) > this.opts.claimGraceMs);
    const released: string[] = [];
    for (const a of stale) {
      // With the decisions held, a CNI ADD cannot bind it between the check and the release.
      const done = await this.ctx.decisions.run(async () => {
        const current = await this.ctx.store.tx.getAllocation(a.id);
        if (!current || !unbound(current)) return false;
        const grace = Math.round(this.opts.claimGraceMs / 1000);
        return this.allocations.releaseFor('controller', current, `device claim of ${a.deviceClaim!.resource} not bound by a CNI ADD within ${grace} s (its pod never reached network setup); released`);
      });
      if (done) released.push(a.id);
    }
    return released;
  }
}

interface ClaimRequest {
  host: string;
  resource: string;
  network: string;
  pciAddresses: string[];
}

/** Every field checked before anything is read or reserved. */
function parseClaimRequest(req: DeviceClaimRequest): ClaimRequest {
  if (typeof req !== 'object' || req === null) throw invalid('a device claim must be an object with host, resource, network and pciAddresses');
  const host = parseHostName(req.host);
  const resource = parseResourceName(req.resource);
  const network = parseName(req.network, 'network');
  if (!Array.isArray(req.pciAddresses) || req.pciAddresses.length < 1 || req.pciAddresses.length > MAX_CLAIM_VFS) {
    const got = Array.isArray(req.pciAddresses) ? `${req.pciAddresses.length}` : JSON.stringify(req.pciAddresses);
    throw invalid(`pciAddresses must list 1-${MAX_CLAIM_VFS} VF PCI addresses, got ${got}`);
  }
  const pciAddresses = req.pciAddresses.map((p) => {
    if (typeof p !== 'string') throw invalid(`pciAddresses must be strings like 0000:3b:02.0, got ${JSON.stringify(p)}`);
    return parsePciAddress(p);
  });
  const twice = pciAddresses.find((p, i) => pciAddresses.indexOf(p) !== i);
  if (twice) throw invalid(`pciAddresses lists VF ${twice} twice; each VF is claimed once`, twice);
  return { host, resource, network, pciAddresses };
}

/** A Kubernetes extended resource name: `<DNS subdomain>/<qualified name>`, e.g. vfleet.io/red-bw. */
export function parseResourceName(value: unknown): string {
  const form = "<prefix>/<name>: a lower-case DNS subdomain, '/', then 1-63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
  if (typeof value !== 'string') throw invalid(`resource must be ${form}, got ${JSON.stringify(value)}`);
  const slash = value.indexOf('/');
  const [prefix, name] = slash < 0 ? ['', value] : [value.slice(0, slash), value.slice(slash + 1)];
  if (!RESOURCE_PREFIX.test(prefix) || !RESOURCE_NAME.test(name)) throw invalid(`resource must be ${form}, got ${JSON.stringify(value.slice(0, 300))}`, value.slice(0, 300));
  // As the pool file (and the kubelet) refuse them: no device plugin serves such a resource.
  if (prefix.endsWith('kubernetes.io')) throw invalid(`resource ${value}: ${prefix} is reserved by Kubernetes for its own resources; a pool's prefix is your own domain, like vfleet.io`, value);
  if (prefix.startsWith('requests.')) throw invalid(`resource ${value}: ${prefix} starts with "requests.", which Kubernetes reserves for quotas`, value);
  return value;
}

/** The host's own agent, or staff. */
function requireHostAccess(actor: Actor, host: string, what: string): void {
  if (agentHostOf(actor) === host || isStaff(actor)) return;
  throw new SriovError('FORBIDDEN', `${actor.role} may not ${what} host ${host}: only that host's agent (agent:${host}) or staff may`, { object: host, nothingChanged: true });
}

/** `kubelet-<resource name>-<8 hex>`: recognisable in listings as a device-plugin claim, unique per Allocate. */
function claimWorkloadName(resource: string): string {
  return `kubelet-${resource.slice(resource.indexOf('/') + 1)}-${randomBytes(4).toString('hex')}`;
}

function unbound(a: Allocation): boolean {
  return a.deviceClaim !== null && a.attachment === null && (a.state === 'pending' || a.state === 'configured');
}

function isSameClaim(a: Allocation, req: ClaimRequest): boolean {
  return unbound(a) && a.network === req.network && a.deviceClaim!.resource === req.resource;
}

function vfBusy(holder: Allocation): SriovError {
  const claim = holder.deviceClaim ? `, claimed as ${holder.deviceClaim.resource}${holder.attachment ? '' : ' for network ' + holder.network}` : '';
  return new SriovError('BUSY', `VF ${holder.pciAddress} on ${holder.host} is held by allocation ${holder.id} (${holder.workload.kind} ${holder.workload.name}${claim})`, {
    object: holder.pciAddress,
    nothingChanged: true,
    data: { allocation: holder.id, workload: holder.workload.name, state: holder.state },
  });
}

function viewAllocation(a: Allocation): DeviceViewAllocation {
  return {
    id: a.id,
    network: a.network,
    state: a.state,
    pfPciAddress: a.pfPciAddress,
    vfIndex: a.vfIndex,
    pciAddress: a.pciAddress,
    minTxRateMbps: a.minTxRateMbps,
    deviceClaim: a.deviceClaim,
    bound: a.attachment !== null,
  };
}
