/**
 * Allocations: a workload's claim on one VF, and what the VF is attached to.
 * Intent is stored (`pending`) before any host is touched; the host's agent
 * then configures (and attaches) the VF and reports back, so a crash at any
 * point leaves a record to converge from.
 */
import {
  agentHostOf,
  allocationFor,
  forbidden,
  nodeHostOf,
  notFound,
  pinnedHost,
  requireAllocationAccess,
  requireAttachRight,
  tenantOf,
  type Actor,
} from '../domain/actor.js';
import { parseCniNetworkName } from '../domain/cni-attachment.js';
import { checkAllocation, checkLinkSpeed } from '../domain/invariants.js';
import { addressOf, checkRequestedAddress, nextAddress } from '../domain/ipam.js';
import { HOLDING_STATES, type Allocation, type AllocationState, type Attachment, type Network, type WorkloadKind } from '../domain/types.js';
import { invalid, SriovError } from '../host/errors.js';
import { parseIfName, parseInteger, parseMac, parseNetnsPath, parsePciAddress } from '../host/validate.js';
import type { Placement, PlacementRequest } from '../scheduler/index.js';
import type { BandwidthCheck, StoreTx } from '../store/store.js';
import { randomUuid } from '../util/uuid.js';
import { parseDomainName } from '../vm/libvirt.js';
import { auditEvent, recorded, type Context } from './context.js';
import type { AllocationStatus } from './desired-state.js';
import { taskId } from './migration-tasks.js';
import type { NetworkService } from './networks.js';
import type { StoreReads } from './read-mirror.js';
import { AttachmentsInFlight } from './attachments-in-flight.js';

const WORKLOAD_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;
/** The start of an allocation id (a UUID): at least 4 hex digits, so a prefix does not match half the store. */
const ID_PREFIX = /^[0-9A-Fa-f]{4}[0-9A-Fa-f-]{0,32}$/;

export type AttachInput =
  | { kind: 'container'; netns: string; ifname: string; ips?: string[]; cniNetwork?: string }
  | { kind: 'vm'; vm: string; failover?: boolean };

/** A placement request naming its network, plus what the VF is for. */
export interface AllocationInput extends Omit<PlacementRequest, 'network'> {
  network: string;
  mac?: string;
  attach?: AttachInput;
}

/** A request's parsed parts, as the decisions take them. */
interface Decision {
  host: string | undefined;
  network: Network;
  workload: Allocation['workload'];
  attach: AttachInput | null;
  numaNode: number | undefined;
  pciAddress: string | undefined;
}

export interface AllocationFilter {
  network?: string;
  host?: string;
  workload?: string;
  ifname?: string;
}

/** Which reported state may follow which stored state. */
const TRANSITIONS: Record<AllocationStatus['state'], AllocationState[]> = {
  configured: ['pending'],
  attached: ['pending', 'configured'],
  // Same state, a new reason: what keeps the release from finishing.
  releasing: ['releasing'],
  // From `attached`: the agent collected an orphan whose namespace vanished.
  released: ['releasing', 'attached'],
  failed: ['pending', 'configured', 'attached', 'releasing'],
};

export class AllocationService {
  /** The container attachments decided here whose store reads may not show them yet. */
  private readonly inFlight = new AttachmentsInFlight();

  constructor(
    private readonly ctx: Context,
    private readonly networks: NetworkService,
  ) {}

  async list(actor: Actor, filter: AllocationFilter = {}): Promise<Allocation[]> {
    if (agentHostOf(actor)) throw forbidden(actor, 'list allocations');
    const tenant = tenantOf(actor) ?? undefined;
    // A node sees the allocations on its own host, of every tenant; asking for another host finds none.
    const node = nodeHostOf(actor);
    if (node !== null && filter.host !== undefined && filter.host !== node) return [];
    const found = await this.ctx.reads.listAllocations({ ...filter, tenant, host: node ?? filter.host });
    return found.map((a) => allocationFor(actor, a));
  }

  /**
   * By id, or by a unique prefix of one (as the console shows them); a tenant's
   * prefix matches only its own, a node's only those on its host, so the count
   * in an ambiguous prefix's refusal says nothing of what the caller may not see.
   */
  async get(actor: Actor, id: string, from: StoreReads = this.ctx.store.tx): Promise<Allocation> {
    const a = (await from.getAllocation(id)) ?? (await this.byIdPrefix(actor, id, from));
    if (!a) throw notFound('allocation', id);
    requireAllocationAccess(actor, a, id);
    return allocationFor(actor, a);
  }

  private async byIdPrefix(actor: Actor, prefix: string, from: StoreReads): Promise<Allocation | null> {
    if (!ID_PREFIX.test(prefix)) return null;
    if (agentHostOf(actor)) throw forbidden(actor, 'use allocations');
    const { count, allocation } = await from.findAllocationByIdPrefix(
      prefix.toLowerCase(),
      tenantOf(actor) ?? undefined,
      nodeHostOf(actor) ?? undefined,
    );
    if (count > 1) {
      throw invalid(`allocation id ${prefix} is the start of ${count} allocations' ids; give more of it`, prefix);
    }
    return allocation;
  }

  /**
   * Only staff and the node token of the host it lands on may name a network
   * namespace or VM domain (`attach`); a node's allocation is placed on its
   * own host. Tenants reserve (no `attach`) on their own networks.
   */
  create(actor: Actor, input: AllocationInput): Promise<Allocation> {
    return this.createOrFind(actor, input).then(allocationOf);
  }

  /**
   * As create, but a container attachment that already exists (same host,
   * workload, ifname, CNI network, network and namespace: a runtime's retried
   * or concurrent ADD) is returned as it is, `created: false`; the same
   * interface of that workload held otherwise is a CONFLICT.
   *
   * With several controllers, two may choose the same VF (or MAC) at once:
   * the store commits one, and the other decides again once its memory has
   * the winner (ctx.caughtUp), instead of refusing a request there was room for.
   */
  createOrFind(actor: Actor, input: AllocationInput): Promise<{ allocation: Allocation; created: boolean }> {
    // A controller alone on its store loses no race, and so skips the retry loop (an async frame more per allocation).
    const caughtUp = this.ctx.caughtUp;
    return caughtUp ? this.retryingLostRaces(actor, input, caughtUp) : this.createOrFindOnce(actor, input);
  }

  private async retryingLostRaces(
    actor: Actor,
    input: AllocationInput,
    caughtUp: (ms: number) => Promise<void>,
  ): Promise<{ allocation: Allocation; created: boolean }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.createOrFindOnce(actor, input);
      } catch (err) {
        const holder = takeHolder(err);
        if (attempt >= RACE_ATTEMPTS || !lostRace(err, input)) throw err;
        await (holder === undefined ? caughtUp(RACE_WAIT_MS) : this.winnerKnown(holder, caughtUp));
      }
    }
  }

  /**
   * Until the allocation that took the VF this controller chose holds it in
   * this controller's memory (so the next decision does not choose it again),
   * or RACE_WAIT_MS: the winner may already be gone.
   */
  private async winnerKnown(holder: string, caughtUp: (ms: number) => Promise<void>): Promise<void> {
    const until = Date.now() + RACE_WAIT_MS;
    for (let left = RACE_WAIT_MS; left > 0 && !this.ctx.scheduler.holds(holder); left = until - Date.now()) await caughtUp(left);
  }

  /**
   * Checks, decides (inside the decisions) and waits for the write: one async
   * function from the first read to the commit, as a frame per step (and the
   * promise each returned) was garbage on every allocation, whose collection
   * pauses every request in flight. `held`: what the store held for a
   * container attachment's interface, read before the decisions; with what
   * this controller decided since, of two identical requests the second
   * finds what the first stored.
   */
  private async createOrFindOnce(actor: Actor, input: AllocationInput): Promise<{ allocation: Allocation; created: boolean }> {
    if (input.attach) requireAttachRight(actor);
    const host = pinnedHost(actor, input.host) ?? input.host;
    // Checks before the decision lock read what is committed, without waiting in the store's write queue.
    const committed = this.ctx.store.committed;
    const req = decision(input, host, this.networks.visible(actor, input.network, await committed.getNetwork(input.network)));
    // One after the other: both are answered from memory (the catalogue cache), and Promise.all's own objects were more garbage than the reads'.
    const physnets = await committed.listPhysnets();
    const sharing = await committed.listNetworks({ physnet: req.network.physnet, vlan: req.network.vlan });
    checkAllocation(req.network, actor, physnets, sharing);
    // A container's interface is read before the decisions, not inside them, where every request of this
    // controller waited for its round trip; what a request ahead of this one decided meanwhile is found
    // in memory instead (attachments-in-flight.ts).
    const attach = req.attach?.kind === 'container' ? req.attach : null;
    const started = attach ? this.inFlight.begin() : 0;
    try {
      const held = attach ? await this.heldInterface(req.host, req.workload.name, attach) : undefined;
      const deciding = this.ctx.decisions.now(() => this.decided(actor, input, req, held));
      const found = deciding instanceof Promise ? await deciding : deciding;
      // Awaited after the decisions are released, so the requests behind this one decide while it commits and the store can commit them together.
      if (found.written) {
        try {
          await found.written;
        } catch (err) {
          this.writeSettled(found.allocation, false);
          throw err;
        }
        this.writeSettled(found.allocation, true);
      }
      if (found.created) this.ctx.feed.bump(found.allocation.host);
      return { allocation: allocationFor(actor, found.allocation), created: found.created };
    } finally {
      if (attach) this.inFlight.end(started);
    }
  }

  /**
   * Inside the decisions. Not an async function: most allocations wait for
   * nothing here, and an async frame per allocation was garbage whose
   * collection pauses every request in flight; only a claim's or an
   * attachment's read waits.
   */
  private decided(actor: Actor, input: AllocationInput, req: Decision, held: Allocation[] | undefined): Decided | Promise<Decided> {
    const { host, network, workload, attach, pciAddress } = req;
    const existing = attach?.kind === 'container' ? this.existingAttachment(host, workload.name, attach, network.name, input, held ?? []) : null;
    if (existing) return { allocation: existing, created: false };
    if (attach?.kind === 'container' && host !== undefined && pciAddress !== undefined) return this.boundOrPlaced(actor, input, req, host, pciAddress);
    return this.placed(actor, input, req);
  }

  /** A container's ADD naming its VF binds the device-plugin claim holding it, if one does; else as any other. */
  private async boundOrPlaced(actor: Actor, input: AllocationInput, req: Decision, host: string, pciAddress: string): Promise<Decided> {
    const claim = await this.unboundClaim(host, pciAddress, req.network);
    if (claim) return { allocation: await this.bind(actor, claim, req.network, req.workload, req.attach!, input), created: true };
    return this.placed(actor, input, req);
  }

  /** Chooses the VF and MAC and queues the write; waits only for an attachment's addresses. */
  private placed(actor: Actor, input: AllocationInput, req: Decision): Decided | Promise<Decided> {
    const { network, attach } = req;
    const mac = input.mac === undefined ? this.ctx.macs.next() : this.ctx.macs.checkRequested(input.mac);
    const placement = this.ctx.scheduler.choose(placementRequest(input, req));
    checkLinkSpeedInMemory(this.ctx, network, placement);
    if (!attach) return this.queued(actor, input, req, placement, mac, null);
    return this.attachmentFor(network, attach).then((attachment) => this.queued(actor, input, req, placement, mac, attachment));
  }

  /**
   * Reserves the VF and MAC in memory first, so nothing else in this
   * controller can pick them during the write, and queues the write here, in
   * decision order, so a later request's reads see it.
   */
  private queued(actor: Actor, input: AllocationInput, req: Decision, placement: Placement, mac: string, attachment: Attachment | null): Decided {
    const a = pendingAllocation(placement, req.network, req.workload, { id: randomUuid(), mac, group: input.group ?? null, attachment, createdAt: this.ctx.now() });
    this.ctx.scheduler.reserve(a);
    this.ctx.macs.markUsed(mac);
    if (req.attach?.kind === 'container') this.inFlight.add(a);
    const check = bandwidthCheck(this.ctx, a);
    // As `recorded` would, in one async function instead of two: its frames are this path's garbage. Its refusal
    // needs no handler here: createOrFindOnce awaits it once the decisions return, before a batch can have run it.
    const written = this.ctx.store.transaction(async (tx) => {
      await tx.insertAllocation(a, check);
      if (a.attachment !== null) await leaseAttachment(tx, a);
      await tx.appendEvent(auditEvent(this.ctx, actor, 'allocation.create', `allocation/${a.id}`, null, a));
    });
    return { allocation: a, created: true, written };
  }

  /** A refused write gives back the VF and MAC reserved for it. */
  private writeSettled(a: Allocation, stored: boolean): void {
    if (a.attachment?.kind === 'container') this.inFlight.settle(a, stored);
    if (!stored) this.forget(a);
  }

  /**
   * The live (holding, not releasing) allocation of this workload's interface
   * on `host`, when it is exactly the one asked for; CONFLICT when the
   * interface is held otherwise. Without a host (staff letting the scheduler
   * choose) only an identical attachment on any host is found.
   */
  private existingAttachment(
    host: string | undefined,
    workload: string,
    attach: Extract<AttachInput, { kind: 'container' }>,
    network: string,
    input: AllocationInput,
    stored: Allocation[],
  ): Allocation | null {
    const decided = this.inFlight.find(workload).filter((a) => (host === undefined || a.host === host) && a.attachment?.kind === 'container' && a.attachment.ifname === attach.ifname);
    const held = decided.length === 0 ? stored : [...stored, ...decided.filter((a) => !stored.some((s) => s.id === a.id))];
    const live = held.filter((a) => a.state !== 'releasing' && a.workload.kind === 'container' && a.attachment?.kind === 'container');
    const same = live.find((a) => differences(a, attach, network, input).length === 0);
    if (same) return same;
    const other = host === undefined ? undefined : live[0];
    if (other) {
      const what = differences(other, attach, network, input).join(', ');
      throw new SriovError('CONFLICT', `${attach.ifname} of ${workload} on ${host} is already allocation ${other.id} (${what} differ); release it first`, {
        object: other.id,
        nothingChanged: true,
      });
    }
    return null;
  }

  /** What holds this workload's interface in the store (on `host`, when named). */
  private heldInterface(host: string | undefined, workload: string, attach: Extract<AttachInput, { kind: 'container' }>): Promise<Allocation[]> {
    return this.ctx.store.tx.listAllocations({ host, workload, ifname: attach.ifname, holding: true });
  }

  /**
   * The device-plugin claim holding VF `pciAddress` on `host` that no ADD has
   * bound yet: what a CNI ADD with Multus' `deviceID` binds instead of
   * allocating the VF anew. Null when the VF holds no such claim (then the
   * scheduler decides: free, or held otherwise). A claim made for another
   * network is a CONFLICT: the kubelet gave the VF as another resource.
   */
  private async unboundClaim(host: string, pciAddress: string, network: Network): Promise<Allocation | null> {
    const held = await this.ctx.store.tx.listAllocations({ host, pciAddress, holding: true });
    const claim = held.find((a) => a.deviceClaim !== null && a.attachment === null && (a.state === 'pending' || a.state === 'configured'));
    if (!claim) return null;
    if (claim.network !== network.name) {
      throw new SriovError(
        'CONFLICT',
        `VF ${pciAddress} on ${host} was given to this pod as ${claim.deviceClaim!.resource}, claimed for network ${claim.network} ` +
          `(allocation ${claim.id}), not for network ${network.name}; use the NetworkAttachmentDefinition whose resourceName is ${claim.deviceClaim!.resource}`,
        { object: claim.id, nothingChanged: true, data: { resource: claim.deviceClaim!.resource, network: claim.network } },
      );
    }
    return claim;
  }

  /**
   * Binds `claim` to the pod's interface: workload name and attachment (with
   * its address lease) in one transaction, state kept; the agent then moves
   * the VF it configured for the claim into the namespace.
   */
  private async bind(
    actor: Actor,
    claim: Allocation,
    network: Network,
    workload: Allocation['workload'],
    attach: AttachInput,
    input: AllocationInput,
  ): Promise<Allocation> {
    if (workload.kind !== 'container') throw invalid(`VF ${claim.pciAddress} is a device-plugin claim: only a container may bind it`, claim.id);
    if (input.mac !== undefined && parseMac(input.mac) !== claim.mac) {
      throw new SriovError('CONFLICT', `VF ${claim.pciAddress} was claimed with MAC ${claim.mac}, not ${parseMac(input.mac)}`, { object: claim.id, nothingChanged: true });
    }
    const attachment = (await this.attachmentFor(network, attach))!;
    const bound = await recorded(this.ctx, actor, 'allocation.bind', `allocation/${claim.id}`, async (tx) => {
      const after = await tx.bindClaim(claim.id, workload.name, attachment, this.ctx.now());
      if (!after) throw new SriovError('CONFLICT', `device claim ${claim.id} on VF ${claim.pciAddress} changed meanwhile; retry`, { object: claim.id, nothingChanged: true });
      await leaseAttachment(tx, after);
      return { before: { workload: claim.workload, attachment: null }, after: { workload: after.workload, attachment }, result: after };
    });
    this.ctx.waits.wake(claim.id);
    return bound;
  }

  /** The network's rates against the link of the PF the scheduler chose. */
  /** Container addresses: the requested ones (checked against the pool), else the pool's next. */
  private async attachmentFor(network: Network, attach: AttachInput | null): Promise<Attachment | null> {
    if (!attach) return null;
    if (attach.kind === 'vm') return { kind: 'vm', vm: attach.vm, failover: attach.failover ?? false };
    // No read without addresses to give: inside the decisions, it was a store round trip per allocation.
    if (!attach.ips?.length && !network.ipam) return containerAttachment(attach, []);
    const leased = await this.ctx.store.tx.listLeases(network.name);
    const ips = attach.ips?.length
      ? attach.ips.map((ip) => checkRequestedAddress(ip, network.ipam, leased))
      : network.ipam
        ? [nextAddress(network.ipam, leased)]
        : [];
    if (new Set(ips.map(addressOf)).size !== ips.length) throw invalid('the same address is requested twice');
    return containerAttachment(attach, ips);
  }

  /**
   * Starts the release; the agent detaches, scrubs the VF and reports `released`.
   * A `failed` allocation is cleared to `released` at once, its reason kept: its
   * VF was freed when it failed, so there is nothing to ask of the host. Idempotent.
   */
  async delete(actor: Actor, id: string): Promise<Allocation> {
    const a = await this.get(actor, id);
    if (a.state === 'failed') {
      const cleared = await this.clearFailed(actor, a);
      // The host's device view lists failed allocations (their VFs unhealthy): it changed.
      this.ctx.feed.bump(a.host);
      return allocationFor(actor, cleared);
    }
    if (!HOLDING_STATES.includes(a.state) || a.state === 'releasing') return a;
    if (a.migration) await this.checkReleasable(a, a.migration);
    // Of two DELETEs racing, or one racing the agent's `released`, the second changes nothing.
    const updated = await this.transition(actor.role, a, 'releasing', null, undefined, releasable);
    this.ctx.feed.bump(a.host);
    return allocationFor(actor, updated ?? (await this.get(actor, id)));
  }

  /**
   * A migration's end is released by the migration, except a source whose
   * migration rolls back: it stays where it was, and its workload may go, even
   * while the destination's release waits for a host that may never return
   * (abort has nothing left to stop then). Not while its VF is being plugged
   * back into the VM: that plug would take a VF being scrubbed.
   */
  private async checkReleasable(a: Allocation, mark: NonNullable<Allocation['migration']>): Promise<void> {
    const m = await this.ctx.store.tx.getMigration(mark.id);
    const refuse = (what: string) => new SriovError('CONFLICT', `allocation ${a.id} is the ${mark.role} of migration ${mark.id}; ${what}`, { object: a.id, nothingChanged: true });
    if (m?.state === 'running') throw refuse(`abort the migration (sriovctl migrations abort ${mark.id}) or let it finish first`);
    if (m?.state !== 'rolling-back' || mark.role !== 'source') return;
    const back = m.tasks?.find((t) => t.id === taskId(m, 'plug-back', m.from.host) && t.outcome === 'pending');
    const vm = a.attachment?.kind === 'vm' ? a.attachment.vm : a.workload.name;
    if (back) throw refuse(`migration ${mark.id} is rolling back and plugs VF ${a.pciAddress} back into VM ${vm}; wait for it (sriovctl migrations show ${mark.id}), then release`);
  }

  /**
   * Starts the release of `a` for the controller itself (`actor` as the audit
   * log names it), with `reason` saying why; false when it is no longer
   * holding or already releasing.
   */
  async releaseFor(actor: string, a: Allocation, reason: string): Promise<boolean> {
    const current = await this.ctx.store.tx.getAllocation(a.id);
    if (!current || !releasable(current)) return false;
    const released = await this.transition(actor, current, 'releasing', reason, undefined, releasable);
    this.ctx.feed.bump(a.host);
    return released !== null;
  }

  /**
   * Moves `id` to `state` for the controller itself (a migration marking its
   * destination attached, its source releasing); null when it is no longer
   * holding, or already in that state.
   */
  async moveFor(actor: string, id: string, state: 'attached' | 'releasing', reason: string | null): Promise<Allocation | null> {
    const current = await this.ctx.store.tx.getAllocation(id);
    const movable = (c: Allocation) => releasable(c) && c.state !== state;
    if (!current || !movable(current)) return null;
    const moved = await this.transition(actor, current, state, reason, undefined, movable);
    this.ctx.feed.bump(current.host);
    return moved;
  }

  /** failed → released in the store only: the in-memory indexes gave its VF and MAC back when it failed. */
  private async clearFailed(actor: Actor, a: Allocation): Promise<Allocation> {
    return recorded(this.ctx, actor, 'allocation.released', `allocation/${a.id}`, async (tx) => {
      // Re-read in the transaction: a second DELETE racing this one finds it released and changes nothing more.
      const current = (await tx.getAllocation(a.id))!;
      const after = current.state === 'failed' ? (await tx.updateAllocationState(a.id, 'released', current.reason, this.ctx.now()))! : current;
      return { before: { state: current.state }, after: { state: after.state, reason: after.reason }, result: after };
    }).finally(() => this.ctx.waits.wake(a.id));
  }

  /** An agent's reports for allocations on its host; reports for other hosts' allocations are ignored. */
  async applyStatus(host: string, reports: AllocationStatus[]): Promise<void> {
    // Side by side: their transactions share a batch (on etcd, its reads and its commit).
    const applied = await Promise.all(reports.map((r) => this.applyReport(host, r)));
    if (applied.includes(true)) this.ctx.feed.bump(host);
  }

  /**
   * One report, checked again against the allocation as its transaction reads
   * it: a DELETE that moved it to releasing meanwhile is not undone by the
   * `attached` the agent sent before it heard of the DELETE.
   */
  private async applyReport(host: string, r: AllocationStatus): Promise<boolean> {
    // Most reports repeat what is stored: a read says so, with no write transaction.
    const a = await this.ctx.store.tx.getAllocation(r.id);
    if (!a || !reportApplies(host, r, a)) return false;
    const applies = (current: Allocation) => reportApplies(host, r, current);
    const actor = `agent:${host}`;
    const done = r.state === a.state ? await this.explain(actor, a.id, r.reason!, applies) : await this.transition(actor, a, r.state, r.reason ?? null, r.hostIfName, applies);
    return done !== null;
  }

  /** A new reason for an allocation that stays in its state: what it is stuck on. */
  private async explain(actor: string, id: string, reason: string, applies: (current: Allocation) => boolean): Promise<Allocation | null> {
    const explained = await this.ctx.store.transaction(async (tx) => {
      const a = await tx.getAllocation(id);
      if (!a || !applies(a)) return null;
      await tx.appendEvent({ at: this.ctx.now(), actor, action: 'allocation.stuck', object: `allocation/${id}`, before: { state: a.state, reason: a.reason }, after: { state: a.state, reason } });
      return tx.updateAllocationState(id, a.state, reason, this.ctx.now());
    });
    this.ctx.waits.wake(id);
    return explained;
  }

  /**
   * Moves `a` to `state`. With `applies`, only if the allocation, as the
   * transaction reads it again, still may (null if not): what was read before
   * may have changed through another request or controller.
   */
  private async transition(
    actor: string,
    a: Allocation,
    state: AllocationState,
    reason: string | null,
    hostIfName?: string,
    applies?: (current: Allocation) => boolean,
  ): Promise<Allocation | null> {
    const done = !HOLDING_STATES.includes(state);
    const updated = await this.ctx.store.transaction(async (tx) => {
      const current = applies ? await tx.getAllocation(a.id) : a;
      if (!current || (applies && !applies(current))) return null;
      let after = (await tx.updateAllocationState(a.id, state, reason, this.ctx.now()))!;
      if (hostIfName && after.attachment?.kind === 'container' && after.attachment.hostIfName !== hostIfName) {
        after = (await tx.setAllocationAttachment(a.id, { ...after.attachment, hostIfName }))!;
      }
      const peer = done ? await holdingMigrationPeer(tx, after) : null;
      if (done) await tx.releaseAddresses(a.id);
      // A migrated container keeps its addresses: its source's leases pass to the destination.
      if (peer && after.migration?.role === 'source') await leaseAttachment(tx, peer);
      await tx.appendEvent({ at: this.ctx.now(), actor, action: `allocation.${state}`, object: `allocation/${a.id}`, before: { state: current.state }, after: { state, reason } });
      return { after, peerHoldsMac: peer !== null };
    });
    if (updated === null) return null;
    if (done) this.forget(a, updated.peerHoldsMac);
    this.ctx.waits.wake(a.id);
    return updated.after;
  }

  /** Gives back what the in-memory indexes hold for `a`; the MAC stays used while a migration peer still holds it. */
  private forget(a: Allocation, keepMac = false): void {
    this.ctx.scheduler.release(a);
    if (!keepMac) this.ctx.macs.release(a.mac);
  }
}

const allocationOf = (found: { allocation: Allocation }): Allocation => found.allocation;

/** Holding, and not on its way out already. */
const releasable = (a: Allocation): boolean => HOLDING_STATES.includes(a.state) && a.state !== 'releasing';

/** Whether an agent's report moves `a` (or, in the same state, says a new reason it is stuck). */
function reportApplies(host: string, r: AllocationStatus, a: Allocation): boolean {
  if (a.host !== host || !TRANSITIONS[r.state]?.includes(a.state)) return false;
  return r.state !== a.state || (!!r.reason && r.reason !== a.reason);
}

/** What a request decided: an allocation found or created, and the write that stores a new one. */
interface Decided {
  allocation: Allocation;
  created: boolean;
  written?: Promise<void>;
}

/**
 * Decisions a request may take when another controller's commits keep beating
 * it to the VF it chose. Each loss waits for its winner to reach memory (not a
 * fixed sleep), so the next decision chooses another VF; 4 were too few at
 * 32 clients on two controllers packing the same PFs (409s with VFs free).
 */
const RACE_ATTEMPTS = 12;
/** The longest a loser waits for the winner's change to reach its memory before deciding again. */
const RACE_WAIT_MS = 1000;

/** The allocation that holds the VF a refused claim wanted (the etcd store names it), taken off the error the client may see. */
function takeHolder(err: unknown): string | undefined {
  if (!(err instanceof SriovError) || err.details.claim !== 'vf' || typeof err.details.data?.holder !== 'string') return undefined;
  const { holder, ...rest } = err.details.data;
  err.details.data = Object.keys(rest).length > 0 ? rest : undefined;
  return holder;
}

/**
 * A refusal because another controller committed first what this one chose:
 * a claim the store refused (its VF, MAC, address lease or its PF's
 * guarantee bandwidth), or the scheduler's re-check once the winner reached
 * memory. A VF, MAC or address the caller named stays taken, so that answer
 * would not change; a guarantee that no longer fits is decided again even
 * then, for the admission's own refusal (which names the PF's headroom).
 */
function lostRace(err: unknown, input: AllocationInput): boolean {
  if (!(err instanceof SriovError) || err.code !== 'CONFLICT') return false;
  const named = input.pciAddress !== undefined || input.mac !== undefined;
  switch (err.details.claim) {
    case 'bandwidth':
      return true;
    case 'vf':
    case 'mac':
    case 'group':
      return !named;
    case 'lease':
      return !named && !(input.attach?.kind === 'container' && input.attach.ips?.length);
    default:
      return false;
  }
}

/**
 * What the store checks `a`'s new holding against: its PF's capacity as
 * this controller's scheduler knows it (0 when it does not: refused, and
 * decided again). Given for a VF without a guarantee too: whether its
 * tenant has a bandwidth group (whose share its first VF on a PF commits)
 * is the store's to say, read in the insert's transaction, and a group set
 * through another controller a moment ago may not be in this one's memory
 * yet. The store checks only what it charges: nothing for such a VF of a
 * tenant without a group.
 */
export function bandwidthCheck(ctx: Context, a: Allocation): BandwidthCheck {
  return { capacityMbps: ctx.scheduler.guaranteeCapacity(a.host, a.pfPciAddress) ?? 0 };
}

/** A request's parsed parts, for the network it names (read, and visible to its actor). */
function decision(input: AllocationInput, host: string | undefined, network: Network): Decision {
  const workload = parseWorkload(input.workload);
  return {
    host,
    network,
    workload,
    attach: parseAttach(input.attach, workload.kind),
    numaNode: input.numaNode === undefined ? undefined : parseInteger(input.numaNode, 'NUMA node', 0, 63),
    pciAddress: input.pciAddress === undefined ? undefined : parsePciAddress(input.pciAddress),
  };
}

/** Every field, each present: a field added to PlacementRequest and not passed on here does not compile. */
type Complete<T> = { [K in keyof Required<T>]: T[K] };

/**
 * Field by field, not a spread of the input: a spread's copy, its network's
 * name replaced by the record, was half a KB of garbage per allocation.
 */
function placementRequest(input: AllocationInput, req: Decision): PlacementRequest {
  const request: Complete<PlacementRequest> = {
    network: req.network,
    workload: req.workload,
    numaNode: req.numaNode,
    numaPolicy: input.numaPolicy,
    group: input.group,
    groupAcrossHosts: input.groupAcrossHosts,
    policy: input.policy,
    host: req.host,
    pciAddress: req.pciAddress,
    pfPciAddress: input.pfPciAddress,
    avoidPfPciAddress: input.avoidPfPciAddress,
  };
  return request;
}

/** The allocation a placement becomes: pending, carrying the network's VLAN and guarantee. */
export function pendingAllocation(
  placement: Placement,
  network: Network,
  workload: Allocation['workload'],
  fields: Pick<Allocation, 'id' | 'mac' | 'group' | 'attachment' | 'createdAt'> & Partial<Pick<Allocation, 'deviceClaim'>>,
): Allocation {
  // Field by field, in the order a spread of `fields` gave: the spread made the record a slower, larger object on every allocation.
  return {
    deviceClaim: fields.deviceClaim ?? null,
    migration: null,
    id: fields.id,
    mac: fields.mac,
    group: fields.group,
    attachment: fields.attachment,
    createdAt: fields.createdAt,
    workload,
    network: network.name,
    tenant: network.tenant,
    host: placement.host,
    pf: placement.pf,
    pfPciAddress: placement.pfPciAddress,
    vfIndex: placement.vfIndex,
    pciAddress: placement.pciAddress,
    vlan: network.vlan,
    minTxRateMbps: network.minTxRateMbps,
    state: 'pending',
    reason: null,
    updatedAt: fields.createdAt,
  };
}

/** The other end of `a`'s migration when it still holds a VF (and so the MAC they share); null otherwise. */
async function holdingMigrationPeer(tx: StoreTx, a: Allocation): Promise<Allocation | null> {
  if (!a.migration) return null;
  const m = await tx.getMigration(a.migration.id);
  const peer = m && (a.migration.role === 'source' ? m.to?.allocation : m.from.allocation);
  const held = peer ? await tx.getAllocation(peer) : null;
  return held && HOLDING_STATES.includes(held.state) ? held : null;
}

async function leaseAttachment(tx: StoreTx, a: Allocation): Promise<void> {
  if (a.attachment?.kind === 'container' && a.attachment.ips.length) {
    await tx.leaseAddresses(a.network, a.id, a.attachment.ips.map(addressOf));
  }
}

function parseWorkload(w: AllocationInput['workload'] | undefined): Allocation['workload'] {
  if (!w || (w.kind !== 'container' && w.kind !== 'vm')) throw invalid('workload kind must be container or vm');
  if (typeof w.name !== 'string' || !WORKLOAD_NAME.test(w.name)) {
    throw invalid(`workload name must be 1-253 of A-Z a-z 0-9 _ . - , got ${JSON.stringify(w.name)}`);
  }
  return { kind: w.kind, name: w.name };
}

function parseAttach(attach: AttachInput | undefined, kind: WorkloadKind): AttachInput | null {
  if (!attach) return null;
  if (attach.kind !== kind) throw invalid(`a ${kind} workload cannot be attached as ${attach.kind}`);
  if (attach.kind === 'vm') return { kind: 'vm', vm: parseDomainName(attach.vm), failover: attach.failover === true };
  const cni = attach.cniNetwork === undefined ? {} : { cniNetwork: parseCniNetworkName(attach.cniNetwork) };
  return { kind: 'container', netns: parseNetnsPath(attach.netns), ifname: parseIfName(attach.ifname), ips: attach.ips, ...cni };
}

/**
 * What of a container attachment's identity (CNI network, network, namespace)
 * and of the request's explicit VF, MAC and addresses `a` does not match.
 */
function differences(a: Allocation, attach: Extract<AttachInput, { kind: 'container' }>, network: string, input: AllocationInput): string[] {
  const at = a.attachment as Extract<Attachment, { kind: 'container' }>;
  const out: string[] = [];
  if (at.cniNetwork !== attach.cniNetwork) out.push(`CNI network ${at.cniNetwork ?? '(none)'} and ${attach.cniNetwork ?? '(none)'}`);
  if (a.network !== network) out.push(`network ${a.network} and ${network}`);
  if (at.netns !== attach.netns) out.push(`namespace ${at.netns} and ${attach.netns}`);
  // The VF the kubelet gave the pod (Multus' deviceID): an ADD naming another one is not the same attachment.
  if (input.pciAddress !== undefined && parsePciAddress(input.pciAddress) !== a.pciAddress) out.push(`VF ${a.pciAddress} and ${parsePciAddress(input.pciAddress)}`);
  if (input.mac !== undefined && parseMac(input.mac) !== a.mac) out.push(`MAC ${a.mac} and ${parseMac(input.mac)}`);
  if (attach.ips?.length && !sameAddresses(at.ips, attach.ips)) out.push(`addresses [${at.ips.join(', ')}] and [${attach.ips.join(', ')}]`);
  return out;
}

function containerAttachment(attach: Extract<AttachInput, { kind: 'container' }>, ips: string[]): Attachment {
  const cni = attach.cniNetwork === undefined ? {} : { cniNetwork: attach.cniNetwork };
  return { kind: 'container', netns: attach.netns, ifname: attach.ifname, hostIfName: null, ips, ...cni };
}

function sameAddresses(held: string[], asked: string[]): boolean {
  return held.length === asked.length && asked.every((ip) => held.includes(ip));
}

/** The network's rates against the link of the PF the scheduler chose. */
/**
 * As checkPlacedLinkSpeed, from the scheduler's index (which the placement
 * came from) instead of the stored host record: no 100 KB inventory is read
 * and parsed per allocation, and nothing waits on the store inside the decisions.
 */
function checkLinkSpeedInMemory(ctx: Context, network: Network, placement: Placement): void {
  const speed = ctx.scheduler.reportedLinkSpeed(placement.host, placement.pfPciAddress);
  // The refusal's text is built only for a refusal: this runs for every allocation.
  if (speed != null && Math.max(network.maxTxRateMbps, network.minTxRateMbps) > speed) checkLinkSpeed(network, [speed], `${placement.host}/${placement.pf}, where VF ${placement.pciAddress} is`);
}

export async function checkPlacedLinkSpeed(ctx: Context, network: Network, placement: Placement): Promise<void> {
  const host = await ctx.store.tx.getHost(placement.host);
  const speed = host?.inventory.pfs.find((pf) => pf.pciAddress === placement.pfPciAddress)?.linkSpeedMbps;
  if (speed != null) checkLinkSpeed(network, [speed], `${placement.host}/${placement.pf}, where VF ${placement.pciAddress} is`);
}
