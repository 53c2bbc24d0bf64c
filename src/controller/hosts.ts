/**
 * Hosts as the controller knows them: registered by their agents, labelled
 * by their node policies (physnet, device type per PF), and marked
 * unreachable when heartbeats stop, which takes them out of scheduling.
 */
import { parseHostName } from '../host/validate.js';
import { agentHostOf, forbidden, isAdmin, notFound, requireStaff, type Actor } from '../domain/actor.js';
import type { Allocation, DeviceType, HostRecord } from '../domain/types.js';
import { SriovError } from '../host/errors.js';
import { inventoryHash } from '../host/inventory-hash.js';
import type { HostInventory } from '../host/model.js';
import type { TrafficDeltas } from '../domain/traffic-deltas.js';
import { disturbsVfs, matches, planPolicies, type PfPlan } from '../policy/plan.js';
import { parsePolicyFile, type NodePolicy } from '../policy/schema.js';
import type { StoreTx } from '../store/store.js';
import type { AgentCounters } from '../domain/agent-counters.js';
import { AgentCounterBook, checkCounters } from './agent-counters.js';
import { recorded, type Context } from './context.js';
import {
  vfConfigFor,
  type AgentEvent,
  type AllocationStatus,
  type DesiredMigration,
  type DesiredState,
  type HypervisorTask,
  type HypervisorTaskResult,
} from './desired-state.js';
import { desiredRateGroups } from './rate-groups.js';
import { checkInventory, claimedElsewhere, pfIdentities } from './inventory-check.js';
import { claimAtStart } from './contested-pfs.js';
import { HeartbeatBatch } from './heartbeat-batch.js';

export interface HostServiceOptions {
  /** A host whose last heartbeat is older than this is unreachable. */
  heartbeatTimeoutMs: number;
  orphanGraceMs: number;
  /**
   * SQLite only: a liveness-only report of a ready host is written at most this
   * often (default 60 s), the others only noted in memory. There one
   * controller decides liveness, from memory; the stored lastHeartbeat is for
   * reading, and each write costs a 4 KiB WAL page whatever its size. On etcd
   * every report is written: it is how the other controllers see the host alive.
   */
  heartbeatWriteMs?: number;
  /**
   * SQLite only: due liveness writes are gathered and written in one
   * transaction this often (heartbeat-batch.ts), not one commit per host.
   * Default 5 s when heartbeatWriteMs > 0; 0 writes each at once (so does
   * heartbeatWriteMs: 0, "every report written, as on etcd").
   */
  heartbeatFlushMs?: number;
}

const HEARTBEAT_WRITE_MS = 60_000;
const HEARTBEAT_FLUSH_MS = 5_000;

/** What migrations add to the agent protocol: task results in, migration marks and tasks out. */
export interface HostMigrationHooks {
  onResults(host: string, results: HypervisorTaskResult[]): Promise<void>;
  migrationsOf(host: string, allocations: Allocation[]): Promise<{ marks: Map<string, DesiredMigration | null>; tasks: HypervisorTask[] }>;
}

const NO_MIGRATIONS: HostMigrationHooks = {
  onResults: async () => {},
  migrationsOf: async () => ({ marks: new Map(), tasks: [] }),
};

/** What an agent sends (POST /v1/agent/report); see HostService.receive. */
export interface AgentReport {
  /** The reporting host; needed without an inventory when the caller is not the host's agent. */
  host?: string;
  /** Only when it changed since the last report, or the controller asked for it (inventoryNeeded). */
  inventory?: HostInventory;
  /** sha256 hex of the inventory JSON (host/inventory-hash.ts); agents always send it. */
  inventoryHash?: string;
  statuses?: AllocationStatus[];
  events?: AgentEvent[];
  results?: HypervisorTaskResult[];
  /** The agent's own counters, cumulative since it started (domain/agent-counters.ts): for /metrics. */
  counters?: AgentCounters;
  /** Traffic counter deltas since the last report (agent/traffic-sampler.ts); kept in memory only (traffic-window.ts). */
  traffic?: TrafficDeltas;
}

/** Where reports' traffic goes, and is forgotten with its host. */
export interface TrafficSink {
  ingest(host: string, traffic: TrafficDeltas, receivedAt: number): void;
  forget(host: string): void;
}

/** What a report carries besides the inventory and the outcomes: the agent's counters and its traffic deltas. */
export type ReportExtras = Pick<AgentReport, 'counters' | 'traffic'>;

export class HostService {
  /** In memory only: a restarted controller gives every host a fresh grace period. */
  private readonly lastSeen = new Map<string, number>();
  /** Hosts already marked unreachable, so a sweep reads nothing from the store for them. */
  private readonly unreachable = new Set<string>();
  /** PF identity (see pfIdentities) → the host whose accepted inventory holds it, and back. */
  private readonly pfOwner = new Map<string, string>();
  private readonly identitiesOf = new Map<string, string[]>();
  /** PF identity → its claimants, for one that several stored records held at start and no report has taken since (contested-pfs.ts). */
  private readonly contested = new Map<string, Set<string>>();
  /** The last refusal recorded per host: an agent repeating one bad report every heartbeat is logged once. */
  private readonly lastRefusal = new Map<string, string>();
  /** Whole-host reconciles asked for, per host (DesiredState.resync); in memory: a restarted agent reconciles whole anyway. */
  private readonly resyncs = new Map<string, number>();
  /**
   * Per host: the inventory hash its stored record carries (HostRecord.inventoryHash),
   * whichever controller wrote it: read with the hosts at start, set by
   * acceptInventory, and learnt from the watch (hostChanged). A liveness-only
   * report carrying it is taken without the inventory.
   */
  private readonly inventories = new Map<string, string>();
  /** Per host: when its heartbeat was last written to the store (Date.now()), for heartbeatWriteMs. */
  private readonly heartbeatWritten = new Map<string, number>();
  /** The agents' counters, per host, as reported here (for /metrics). */
  readonly agentCounters = new AgentCounterBook();
  /** SQLite's due liveness writes, batched (undefined: each written at once). */
  private readonly batch: HeartbeatBatch | undefined;

  constructor(
    private readonly ctx: Context,
    private readonly opts: HostServiceOptions,
    /** Applies an agent's allocation reports; set by the allocation service. */
    private readonly onStatus: (host: string, reports: AllocationStatus[]) => Promise<void>,
    /** More periodic work for the same sweep (stale device claims). */
    private readonly onSweep: (now: number) => Promise<void> = async () => {},
    private readonly migrations: HostMigrationHooks = NO_MIGRATIONS,
    private readonly traffic?: TrafficSink,
  ) {
    const writeMs = opts.heartbeatWriteMs ?? HEARTBEAT_WRITE_MS;
    const flushMs = opts.heartbeatFlushMs ?? (writeMs > 0 ? HEARTBEAT_FLUSH_MS : 0);
    // A touch that finds no record (the host was deleted): its next report is answered inventoryNeeded.
    if (ctx.store.kind === 'sqlite' && flushMs > 0) this.batch = new HeartbeatBatch(ctx.store, flushMs, (name) => this.inventories.delete(name));
  }

  /** Writes the batched heartbeats now (a daemon that stops does, before it closes the store). */
  async flushHeartbeats(): Promise<void> {
    await this.batch?.flush();
  }

  async list(actor: Actor): Promise<HostRecord[]> {
    requireStaff(actor, 'list hosts');
    return this.ctx.store.tx.listHosts();
  }

  async get(actor: Actor, name: string): Promise<HostRecord> {
    if (agentHostOf(actor) !== name) requireStaff(actor, 'read hosts');
    const host = await this.ctx.reads.getHost(name);
    if (!host) throw notFound('host', name);
    return host;
  }

  /**
   * A report with its inventory (an agent's first call, and any report after
   * its host changed): see `receive`. Kept for callers that hold the whole
   * inventory anyway (tests, tools); the hash is computed here.
   */
  async report(actor: Actor, inventory: HostInventory, statuses: AllocationStatus[] = [], events: AgentEvent[] = [], results: HypervisorTaskResult[] = []): Promise<HostRecord> {
    const host = await this.acceptInventory(actor, inventory, inventoryHash(inventory));
    await this.applyOutcomes(actor, host.name, statuses, events, results);
    return host;
  }

  /**
   * An agent's report, which is also its heartbeat. With the inventory: the
   * inventory is checked and written whole (see acceptInventory). Without it,
   * a liveness-only report: when `inventoryHash` is the one this controller
   * last accepted for the host, only `touchHost` is written (plus the
   * statuses, events and results that came with it); otherwise nothing is
   * written and the answer is 409 CONFLICT with `data.inventoryNeeded`, on
   * which the agent sends the report again, whole.
   */
  async receive(actor: Actor, r: AgentReport): Promise<{ name: string; state: HostRecord['state'] }> {
    if (r.counters) checkCounters(r.counters, r.host ?? r.inventory?.hostname ?? '');
    const host = r.inventory ? await this.acceptInventory(actor, r.inventory, r.inventoryHash ?? inventoryHash(r.inventory), r.host) : await this.liveness(actor, r);
    await this.applyOutcomes(actor, host.name, r.statuses ?? [], r.events ?? [], r.results ?? []);
    if (r.counters) this.agentCounters.record(host.name, r.counters);
    // After the report was accepted: a refused one (inventoryNeeded) comes again, traffic and all.
    if (r.traffic) this.traffic?.ingest(host.name, r.traffic, Date.now());
    return { name: host.name, state: host.state };
  }

  /**
   * Inventory + heartbeat: one whole write of the host record. An inventory
   * that contradicts itself, or claims a NIC another live host reported, is
   * refused whole (400 / 409) and said so in the audit log
   * (`host.report.refused`); it counts as no heartbeat.
   */
  private async acceptInventory(actor: Actor, inventory: HostInventory, hash: string, named?: string): Promise<HostRecord> {
    const name = this.agentHost(actor, inventory.hostname);
    if (named !== undefined && named !== name) throw reportError(`field "host" is ${named} but the inventory's hostname is ${name}; they must agree`, name);
    try {
      checkInventory(inventory);
      this.checkIdentities(name, inventory);
    } catch (err) {
      if (err instanceof SriovError) await this.refuseReport(actor, name, err);
      throw err;
    }
    this.claimIdentities(name, inventory);
    this.lastRefusal.delete(name);
    this.lastSeen.set(name, Date.now());
    this.unreachable.delete(name);
    // Forgotten first: should the write fail, a liveness report must not vouch for an inventory that is not stored.
    this.inventories.delete(name);
    this.batch?.drop(name);
    const record = await this.ctx.store.transaction(async (tx) => {
      const before = await tx.getHost(name);
      const policies = await this.policiesOf(tx, name);
      // Drained PFs are staff's decision, not the agent's: the report keeps them (even one missing from it, which may come back).
      const drainedPfs = before?.drainedPfs ?? [];
      // The hash goes with the inventory, in one write: no controller can take a liveness report for an inventory not stored.
      const host: HostRecord = { name, state: 'ready', lastHeartbeat: this.ctx.now(), inventory, ...labels(inventory, policies), drainedPfs, inventoryHash: hash, updatedAt: this.ctx.now() };
      await tx.putHost(host);
      if (!before || before.state !== 'ready') {
        await tx.appendEvent({ at: host.updatedAt, actor: actor.role, action: before ? 'host.ready' : 'host.register', object: `host/${name}`, before: before?.state ?? null, after: 'ready' });
      }
      return { host, relabelled: !before || !sameLabels(before, host) || !sameVfs(before, host) };
    });
    this.inventories.set(name, hash);
    this.heartbeatWritten.set(name, Date.now());
    this.ctx.scheduler.loadHost(record.host);
    // A PF or VF that appeared (or went) changes the labels and VFs the host's device view carries.
    if (record.relabelled) this.ctx.feed.bump(name);
    return record.host;
  }

  /**
   * A report without inventory: proves liveness, writes `touchHost` only.
   * Refused with inventoryNeeded (nothing written) when the hash is not the
   * one the host's stored record carries (as this controller knows it), the
   * host is not in the store, or another live host now reports one of its
   * PFs (the whole report goes through that check).
   */
  private async liveness(actor: Actor, r: AgentReport): Promise<{ name: string; state: HostRecord['state'] }> {
    const named = r.host ?? agentHostOf(actor);
    if (named === null) throw reportError('a report without "inventory" names its host in field "host"');
    const name = this.agentHost(actor, named);
    if (r.inventoryHash === undefined) throw reportError('a report without "inventory" needs "inventoryHash" (sha256 hex of the inventory JSON it last sent)', name);
    const known = this.inventories.get(name);
    if (known !== r.inventoryHash) {
      throw inventoryNeeded(name, known === undefined ? 'its stored record carries no inventory hash (none stored yet, or a record from before hashes were stored)' : `its inventory hash ${r.inventoryHash.slice(0, 12)} is not the last one accepted (${known.slice(0, 12)})`);
    }
    const taken = this.identitiesOf.get(name)?.find((id) => this.pfOwner.get(id) !== name);
    if (taken) {
      const owner = this.pfOwner.get(taken);
      throw inventoryNeeded(name, owner === undefined ? `its PF ${taken} is in another stored host's inventory too` : `its PF ${taken} was reported by host ${owner} since`);
    }
    const wasUnreachable = this.unreachable.has(name);
    if (!wasUnreachable && !this.heartbeatDue(name)) {
      this.seen(name);
      return { name, state: 'ready' };
    }
    const at = this.ctx.now();
    if (this.batch && !wasUnreachable) {
      // Written with the other due hosts' within the flush interval; a deleted host's is answered inventoryNeeded next time.
      this.batch.add(name, at);
      this.heartbeatWritten.set(name, Date.now());
      this.seen(name);
      return { name, state: 'ready' };
    }
    const touched = await this.ctx.store.transaction(async (tx) => {
      if (!(await tx.touchHost(name, 'ready', at))) return false;
      if (wasUnreachable) await tx.appendEvent({ at, actor: actor.role, action: 'host.ready', object: `host/${name}`, before: 'unreachable', after: 'ready' });
      return true;
    });
    if (!touched) {
      this.inventories.delete(name);
      throw inventoryNeeded(name, 'the store has no record of it (deleted?)');
    }
    this.heartbeatWritten.set(name, Date.now());
    this.seen(name);
    if (wasUnreachable) this.ctx.scheduler.setHostState(name, 'ready');
    return { name, state: 'ready' };
  }

  /** Whether a liveness-only report of a ready host is written to the store (see heartbeatWriteMs). */
  private heartbeatDue(name: string): boolean {
    if (this.ctx.store.kind !== 'sqlite') return true;
    return Date.now() - (this.heartbeatWritten.get(name) ?? -Infinity) >= (this.opts.heartbeatWriteMs ?? HEARTBEAT_WRITE_MS);
  }

  private seen(name: string): void {
    this.lastRefusal.delete(name);
    this.lastSeen.set(name, Date.now());
    this.unreachable.delete(name);
  }

  /** What came with a report besides the inventory: allocation statuses, agent events, hypervisor task results. */
  private async applyOutcomes(actor: Actor, name: string, statuses: AllocationStatus[], events: AgentEvent[], results: HypervisorTaskResult[]): Promise<void> {
    if (statuses.length) await this.onStatus(name, statuses);
    if (events.length) await this.recordEvents(actor, name, events);
    // Hypervisor task results (a VM migrated, a VF plugged) move their migrations on.
    if (results.length) await this.migrations.onResults(name, results);
  }

  /**
   * A host record committed by any controller (cluster-sync calls this with
   * every host change of the watch, in the store's order): the inventory hash
   * is the record's, so an agent that failed over from the controller that
   * wrote it goes on with liveness reports. A hash this controller took
   * itself is no longer taken once another controller stored another
   * inventory (one that changed, and maybe changed back, while the agent
   * reported there); a record without a hash (from before they were stored)
   * leaves none.
   */
  hostChanged(name: string, value: HostRecord | null): void {
    if (value?.inventoryHash === undefined) this.inventories.delete(name);
    else this.inventories.set(name, value.inventoryHash);
  }

  /**
   * A PF identity reported by another host that is still live (reporting) is
   * not this host's to claim; nor one contested at start (see seed) while one
   * of its claimants is live, unless this host is one of them.
   */
  private checkIdentities(name: string, inventory: HostInventory): void {
    for (const identity of pfIdentities(inventory)) {
      const owner = this.pfOwner.get(identity);
      if (owner !== undefined && owner !== name && this.live(owner)) throw claimedElsewhere(identity, owner);
      const claimants = this.contested.get(identity);
      const rival = claimants?.has(name) === false ? [...claimants].find((h) => this.live(h)) : undefined;
      if (rival !== undefined) throw claimedElsewhere(identity, rival);
    }
  }

  private live(host: string): boolean {
    return !this.unreachable.has(host) && this.lastSeen.has(host);
  }

  private claimIdentities(name: string, inventory: HostInventory): void {
    for (const identity of this.identitiesOf.get(name) ?? []) if (this.pfOwner.get(identity) === name) this.pfOwner.delete(identity);
    const identities = pfIdentities(inventory);
    for (const identity of identities) {
      this.pfOwner.set(identity, name);
      this.contested.delete(identity);
    }
    this.identitiesOf.set(name, identities);
  }

  private async refuseReport(actor: Actor, host: string, err: SriovError): Promise<void> {
    if (this.lastRefusal.get(host) === err.message) return;
    this.lastRefusal.set(host, err.message);
    await this.ctx.store.transaction(async (tx) => {
      await tx.appendEvent({ at: this.ctx.now(), actor: actor.role, action: 'host.report.refused', object: `host/${host}`, before: null, after: err.message });
    });
  }

  private async recordEvents(actor: Actor, host: string, events: AgentEvent[]): Promise<void> {
    await this.ctx.store.transaction(async (tx) => {
      for (const e of events) {
        await tx.appendEvent({ at: this.ctx.now(), actor: actor.role, action: e.action, object: `host/${host}/${e.object}`, before: null, after: e.detail });
      }
    });
  }

  /** Asks the host's agent to reconcile now (drift repair, recovery, orphan collection). */
  async reconcile(actor: Actor, host: string): Promise<void> {
    requireStaff(actor, 'reconcile hosts');
    if (!(await this.ctx.store.tx.getHost(host))) throw notFound('host', host);
    await recorded(this.ctx, actor, 'host.reconcile', `host/${host}`, async () => ({ before: null, after: null, result: undefined }));
    this.resyncs.set(host, (this.resyncs.get(host) ?? 0) + 1);
    this.ctx.feed.bump(host);
  }

  private agentHost(actor: Actor, hostname: string): string {
    const own = agentHostOf(actor);
    if (own === null && actor.id !== 'local') throw new SriovError('FORBIDDEN', `${actor.role} is not an agent`);
    const name = parseHostName(hostname);
    if (own !== null && own !== name) {
      throw new SriovError('FORBIDDEN', `agent of ${own} may not report for host ${name}`, { object: name });
    }
    return name;
  }

  async putPolicy(actor: Actor, host: string, document: string): Promise<NodePolicy[]> {
    requireStaff(actor, 'change node policies');
    parseHostName(host);
    const policies = parsePolicyFile(document);
    checkPolicyPrivileges(actor, policies);
    await recorded(this.ctx, actor, 'policy.put', `host/${host}/policy`, async (tx) => {
      const reported = await tx.getHost(host);
      // What the agent could not apply is refused now, not found failing later on the host.
      if (reported) checkPlans(planPolicies(reported.inventory, policies), await tx.listAllocations({ host, holding: true }), host, reported.drainedPfs);
      const before = (await tx.listPolicies(host))[0]?.document ?? null;
      await tx.putPolicy({ host, document, updatedAt: this.ctx.now() });
      await this.ensurePhysnets(tx, policies);
      if (reported) await tx.putHost({ ...reported, ...labels(reported.inventory, policies), updatedAt: this.ctx.now() });
      return { before, after: document, result: undefined };
    });
    const record = await this.ctx.store.tx.getHost(host);
    if (record) this.ctx.scheduler.loadHost(record);
    this.ctx.feed.bump(host);
    return policies;
  }

  /**
   * What putPolicy would change on the host, against its last report, without
   * storing anything: the console shows it as a diff before the operator
   * applies it. What putPolicy would refuse is refused here the same way.
   */
  async planPolicy(actor: Actor, host: string, document: string): Promise<PfPlan[]> {
    requireStaff(actor, 'plan node policies');
    const policies = parsePolicyFile(document);
    checkPolicyPrivileges(actor, policies);
    const reported = await this.ctx.store.tx.getHost(parseHostName(host));
    if (!reported) throw notFound('host', host);
    const plans = planPolicies(reported.inventory, policies);
    checkPlans(plans, await this.ctx.store.tx.listAllocations({ host, holding: true }), host, reported.drainedPfs);
    return plans;
  }

  async getPolicy(actor: Actor, host: string): Promise<string | null> {
    requireStaff(actor, 'read node policies');
    return (await this.ctx.store.tx.listPolicies(host))[0]?.document ?? null;
  }

  private async ensurePhysnets(tx: StoreTx, policies: NodePolicy[]): Promise<void> {
    const known = new Set((await tx.listPhysnets()).map((p) => p.name));
    for (const name of new Set(policies.flatMap((p) => (p.physnet ? [p.physnet] : [])))) {
      if (known.has(name)) continue;
      const physnet = { name, accountingOnly: false, groupsAccountingOnly: false, tenantVlans: [] };
      await tx.putPhysnet(physnet);
      this.ctx.scheduler.putPhysnet(physnet);
    }
  }

  private async policiesOf(tx: StoreTx, host: string): Promise<NodePolicy[]> {
    const doc = (await tx.listPolicies(host))[0]?.document;
    return doc ? parsePolicyFile(doc) : [];
  }

  /** The desired state of `host`, once its revision differs from `after` (long poll). */
  async desired(actor: Actor, host: string, after?: string, waitMs = 0): Promise<DesiredState> {
    // 403, not 404: whether the host exists is no secret to an authenticated caller, its desired state is.
    if (agentHostOf(actor) !== host && actor.id !== 'local') throw forbidden(actor, `read the desired state of host ${host}; an agent reads only its own host's`);
    await this.ctx.feed.waitForChange(host, after, waitMs);
    const revision = this.ctx.feed.revision(host);
    const tx = this.ctx.store.tx;
    const [policies, allocations, networks] = await Promise.all([tx.listPolicies(host), tx.listAllocations({ host, holding: true }), tx.listNetworks()]);
    const byName = new Map(networks.map((n) => [n.name, n]));
    const { marks, tasks } = await this.migrations.migrationsOf(host, allocations);
    const groups = desiredRateGroups(this.ctx.scheduler, host, allocations);
    return {
      host,
      revision,
      macPrefix: this.ctx.macs.prefix,
      orphanGraceMs: this.opts.orphanGraceMs,
      resync: this.resyncs.get(host) ?? 0,
      policies: policies.map((p) => p.document),
      allocations: allocations.flatMap((a) => {
        const network = byName.get(a.network);
        if (!network) return [];
        return [
          {
            id: a.id,
            state: a.state,
            attachment: a.attachment,
            mtu: network.mtu,
            routes: network.ipam?.routes ?? [],
            pfPciAddress: a.pfPciAddress,
            vfIndex: a.vfIndex,
            pciAddress: a.pciAddress,
            deviceType: network.deviceType,
            config: vfConfigFor(network, a),
            migration: marks.get(a.id) ?? null,
            rateGroup: groups.nodeOf(a),
          },
        ];
      }),
      tasks,
      rateGroups: groups.rateGroups,
    };
  }

  /**
   * When this controller last heard from the host (ms since the epoch; a
   * restarted controller counts from its start): the heartbeat age of host
   * summaries. Undefined for a host it never heard of.
   */
  lastSeenAt(name: string): number | undefined {
    return this.lastSeen.get(name);
  }

  /**
   * Hosts the store knows at start, in any order and any number of calls
   * (a start reads them a page at a time): each gets a full grace period
   * from `now`, and its stored inventory hash, so its agent's next liveness
   * report is taken without the inventory. A PF identity in several stored
   * inventories goes to the ready host of them (an unreachable host's claim
   * never stood in a report's way), and to none when several are ready
   * (contested-pfs.ts): the store cannot say which is right, and an owner
   * picked by name order would refuse the right one half the time.
   */
  seed(hosts: Iterable<HostRecord>, now = Date.now()): void {
    for (const h of hosts) {
      this.lastSeen.set(h.name, now);
      // A record seen again (the read started over) as it is now.
      if (h.state !== 'ready') this.unreachable.add(h.name);
      else this.unreachable.delete(h.name);
      const identities = pfIdentities(h.inventory);
      this.identitiesOf.set(h.name, identities);
      claimAtStart({ owners: this.pfOwner, contested: this.contested, ready: (name) => !this.unreachable.has(name) }, h.name, identities);
      this.hostChanged(h.name, h);
    }
  }

  /**
   * A host record committed through any controller (seen through the store's
   * watch, this controller's own writes included): its liveness as the record
   * says, and the PF identities its inventory claims.
   */
  observe(record: HostRecord, now = Date.now()): void {
    this.heard(record.name, record.state, record.lastHeartbeat, now);
    this.claimIdentities(record.name, record.inventory);
    this.hostChanged(record.name, record);
  }

  /**
   * A heartbeat committed through any controller: the leader's sweep must
   * not time out a host that reports to another one. The time is the
   * record's, capped at `now` (a clock ahead must not buy a host grace), and
   * never moves back: an old change seen late changes nothing.
   */
  heard(name: string, state: HostRecord['state'], at: string | null, now = Date.now()): void {
    if (state !== 'ready') {
      this.unreachable.add(name);
      if (!this.lastSeen.has(name)) this.lastSeen.set(name, now);
      return;
    }
    const stamp = at === null ? now : Date.parse(at);
    const seen = Math.min(now, Number.isNaN(stamp) ? now : stamp);
    this.lastSeen.set(name, Math.max(this.lastSeen.get(name) ?? seen, seen));
    this.unreachable.delete(name);
  }

  /** A host deleted through any controller: nothing of it is kept. */
  forget(name: string): void {
    this.traffic?.forget(name);
    this.hostChanged(name, null);
    this.agentCounters.forget(name);
    this.lastSeen.delete(name);
    this.unreachable.delete(name);
    this.lastRefusal.delete(name);
    for (const identity of this.identitiesOf.get(name) ?? []) if (this.pfOwner.get(identity) === name) this.pfOwner.delete(identity);
    this.identitiesOf.delete(name);
    this.batch?.drop(name);
  }

  /**
   * Marks hosts whose heartbeats stopped as unreachable; returns their names.
   * Decided from memory: the store is read only for a host that goes now.
   */
  async sweep(now = Date.now()): Promise<string[]> {
    const silent = (name: string) => now - (this.lastSeen.get(name) ?? now) > this.opts.heartbeatTimeoutMs;
    const lost: string[] = [];
    for (const name of [...this.lastSeen.keys()].filter((n) => !this.unreachable.has(n) && silent(n))) {
      const marked = await this.ctx.store.transaction(async (tx) => {
        const host = await tx.getHost(name);
        // A report may have come in since the decision above.
        if (!host || host.state !== 'ready' || !silent(name)) return false;
        await tx.putHost({ ...host, state: 'unreachable', updatedAt: this.ctx.now() });
        await tx.appendEvent({ at: this.ctx.now(), actor: 'controller', action: 'host.unreachable', object: `host/${name}`, before: 'ready', after: 'unreachable' });
        return true;
      });
      if (!marked) continue;
      this.batch?.drop(name);
      this.unreachable.add(name);
      this.ctx.scheduler.setHostState(name, 'unreachable');
      lost.push(name);
    }
    await this.onSweep(now);
    return lost;
  }
}

/** 409: the controller cannot vouch for the host's inventory; the agent sends the report again with it. */
function inventoryNeeded(host: string, why: string): SriovError {
  return new SriovError('CONFLICT', `report for host ${host} came without inventory, and ${why}: send it again with the inventory`, {
    object: host,
    nothingChanged: true,
    data: { inventoryNeeded: true },
  });
}

function reportError(message: string, host?: string): SriovError {
  return new SriovError('INVALID_ARGUMENT', message, { object: host, nothingChanged: true });
}

/** PF labels from the node policies: which physnet, and which device type its VFs are bound to. */
function labels(inventory: HostInventory, policies: NodePolicy[]): Pick<HostRecord, 'physnets' | 'deviceTypes'> {
  const physnets: Record<string, string> = {};
  const deviceTypes: Record<string, DeviceType> = {};
  for (const pf of inventory.pfs) {
    const policy = policies.find((p) => matches(p.selector, pf));
    if (!policy) continue;
    if (policy.physnet) physnets[pf.pciAddress] = policy.physnet;
    deviceTypes[pf.pciAddress] = policy.deviceType;
  }
  return { physnets, deviceTypes };
}

function sameLabels(a: Pick<HostRecord, 'physnets' | 'deviceTypes'>, b: Pick<HostRecord, 'physnets' | 'deviceTypes'>): boolean {
  return JSON.stringify([a.physnets, a.deviceTypes]) === JSON.stringify([b.physnets, b.deviceTypes]);
}

/** The same VFs (PCI addresses) in both reports: what the device view offers depends on them. */
function sameVfs(a: Pick<HostRecord, 'inventory'>, b: Pick<HostRecord, 'inventory'>): boolean {
  return reportedVfs(a).join(',') === reportedVfs(b).join(',');
}

/** The VFs (PCI addresses, sorted) in a host's last report: the only ones the controller can place or claim. */
export function reportedVfs(host: Pick<HostRecord, 'inventory'> | null): string[] {
  return (host?.inventory.pfs ?? []).flatMap((pf) => pf.vfs.map((vf) => vf.pciAddress)).sort();
}

/** Trust on or spoof checking off lets a VF's user send as any MAC: like on a network, an admin's decision. */
function checkPolicyPrivileges(actor: Actor, policies: NodePolicy[]): void {
  if (isAdmin(actor)) return;
  for (const p of policies) {
    for (const [vf, settings] of p.vfs) {
      const what = settings.trust === true ? 'trust on' : settings.spoofChk === false ? 'spoof checking off' : null;
      if (what) {
        throw new SriovError('FORBIDDEN', `policy ${p.name} sets ${what} on VF ${vf}, which is admin-only; ${actor.role} may not apply it`, {
          object: p.name,
          nothingChanged: true,
        });
      }
    }
  }
}

/**
 * numVfs is the number of VFs the PF is to have (0: none). A change recreates
 * the VFs, so it may not take away a VF an allocation holds: the refusal names
 * the holders, and how to move them off with nothing down (drain the PF).
 * A drained PF that nothing holds any more changes at once.
 */
function checkPlans(plans: PfPlan[], holding: Allocation[], host: string, drainedPfs: string[] = []): void {
  for (const plan of plans) checkEswitchPlan(plan, holding, host, drainedPfs);
  for (const plan of plans) {
    if (!plan.numVfs) continue;
    const held = holding.filter((a) => a.pfPciAddress === plan.pf.pciAddress);
    if (held.length > 0) {
      const shown = held.slice(0, 8).map((a) => `VF ${a.vfIndex} ${a.workload.kind}/${a.workload.name} (allocation ${a.id.slice(0, 8)}, ${a.state})`);
      const more = held.length > shown.length ? ` and ${held.length - shown.length} more` : '';
      throw new SriovError(
        'BUSY',
        `policy ${plan.policy.name} changes ${plan.pf.name} from ${plan.numVfs.from} to ${plan.numVfs.to} VFs, which recreates them, and ${held.length} ` +
          `of its VFs are held: ${shown.join(', ')}${more}; move them off with sriovctl drain ${host}/${plan.pf.name} (or release them), then apply again`,
        { object: plan.pf.name, nothingChanged: true, data: { holding: held.map((a) => a.id) } },
      );
    }
  }
}

/** How many holders an eswitch refusal names before counting the rest. */
const ESWITCH_NAMED = 3;

/**
 * An eswitch mode change that removes or unbinds the PF's VFs while
 * allocations hold them is refused, naming them, unless staff drained the PF
 * first (`sriovctl pf drain`): then they accept that its VFs go away for a moment.
 */
function checkEswitchPlan(plan: PfPlan, holding: Allocation[], host: string, drainedPfs: string[]): void {
  const e = plan.eswitchMode;
  if (!e || !disturbsVfs(plan) || drainedPfs.includes(plan.pf.pciAddress)) return;
  const held = holding.filter((a) => a.pfPciAddress === plan.pf.pciAddress);
  if (held.length === 0) return;
  const shown = held.slice(0, ESWITCH_NAMED).map((a) => `VF ${a.vfIndex} ${a.workload.kind}/${a.workload.name} (allocation ${a.id.slice(0, 8)})`);
  const more = held.length > shown.length ? ` and ${held.length - shown.length} more` : '';
  const how = e.steps.some((s) => s.action === 'remove-vfs' || s.action === 'create-vfs') ? 'removes and recreates its VFs' : 'unbinds its VFs';
  throw new SriovError(
    'BUSY',
    `policy ${plan.policy.name}: eswitchMode: changing ${plan.pf.name} from ${e.from} to ${e.to} ${how} on ${plan.pf.driver ?? 'its driver'}, and ${held.length} ` +
      `of them are held: ${shown.join(', ')}${more}; drain the PF first (sriovctl pf drain ${host}/${plan.pf.name}) or release them, then apply again`,
    { object: plan.pf.name, field: 'eswitchMode', nothingChanged: true, data: { holding: held.map((a) => a.id) } },
  );
}
