/**
 * The controller: every service over one store, with the in-memory indexes
 * (scheduler, MAC pool) rebuilt from the store on start and kept current
 * from the store's watch (other controllers' changes), and the background
 * work run while this controller leads.
 */
import { requireStaff, type Actor } from '../domain/actor.js';
import { MacPool } from '../domain/mac-pool.js';
import type { AuditEvent } from '../domain/types.js';
import { Scheduler, type PlacementPolicy } from '../scheduler/index.js';
import type { Leadership, Store } from '../store/store.js';
import { AllocationService } from './allocations.js';
import { ChangeFeed } from './change-feed.js';
import { ClusterSync, shownDigest } from './cluster-sync.js';
import { newContext, type Context } from './context.js';
import { DEFAULT_CLAIM_GRACE_MS, DeviceClaimService } from './device-claims.js';
import { HookSignals } from './hook-hypervisor.js';
import { HostService } from './hosts.js';
import { TrafficService } from './traffic.js';
import { auditIsolation, type IsolationReport } from './isolation-audit.js';
import { LeaderWork, type LeaderWorkOptions } from './leader-work.js';
import { DrainService } from './drain.js';
import { MigrationService } from './migrations.js';
import { NetworkService } from './networks.js';
import { PfDrainService } from './pf-drain.js';
import { PackedHosts, readCatalogue, ReadMirror } from './read-mirror.js';
import { staleReads } from './stale-reads.js';
import { StoreHealth } from './store-health.js';
import { TokenService } from './tokens.js';

export interface ControlPlaneOptions {
  macPrefix?: string;
  bandwidthRatio?: number;
  placementPolicy?: PlacementPolicy;
  heartbeatTimeoutMs?: number;
  /** SQLite: how often an idle host's heartbeat is written (HostServiceOptions.heartbeatWriteMs; default 60 s). */
  heartbeatWriteMs?: number;
  /** SQLite: how often due heartbeats are written together (HostServiceOptions.heartbeatFlushMs; default 5 s). */
  heartbeatFlushMs?: number;
  /** Grace period before the agents collect orphans (vanished namespaces, unallocated configured VFs). */
  orphanGraceMs?: number;
  /** How long a device-plugin claim may wait for its pod's CNI ADD before the sweep releases it (default 10 min). */
  claimGraceMs?: number;
  /**
   * Resume unfinished migrations at open (default true: a controller alone
   * on its store). The daemon says false and resumes on gaining leadership
   * (`lead`), so that only one of several controllers drives them.
   */
  resume?: boolean;
  /** A change from the store's watch that could not be applied (default: ignored; the next ones still apply). */
  onSyncError?: (err: unknown) => void;
}

export class ControlPlane {
  readonly networks: NetworkService;
  readonly allocations: AllocationService;
  readonly hosts: HostService;
  /** Agents' traffic counters over the last 15 minutes, in memory only (GET /v1/traffic, /metrics). */
  readonly traffic: TrafficService;
  readonly tokens: TokenService;
  /** The kubelet device plugins' view of their host, and their claims. */
  readonly devices: DeviceClaimService;
  /** PFs drained (no new allocation) and undrained by staff. */
  readonly drains: PfDrainService;
  /** Live migrations of allocations' workloads (Migrations, for the API and drains). */
  readonly migrations: MigrationService;
  /** What orchestrators moving VMs through the hook said (POST .../complete, .../abort). */
  readonly hook = new HookSignals();
  /** Drains that move every allocation off a PF or a host (`sriovctl drain`), over the migrations. */
  readonly drainer: DrainService;
  /** Other controllers' changes (and this one's, again), applied to this one's memory. */
  readonly sync: ClusterSync;
  /** Whether the store answers: while it does not, the API's reads come from memory, marked as possibly stale. */
  readonly health: StoreHealth;

  private constructor(readonly ctx: Context, opts: ControlPlaneOptions, private readonly mirror: ReadMirror | undefined, health: StoreHealth) {
    this.health = health;
    this.networks = new NetworkService(ctx);
    this.allocations = new AllocationService(ctx, this.networks);
    this.devices = new DeviceClaimService(ctx, this.allocations, {
      bandwidthRatio: opts.bandwidthRatio ?? 1,
      claimGraceMs: opts.claimGraceMs ?? DEFAULT_CLAIM_GRACE_MS,
    });
    this.migrations = new MigrationService(ctx, this.allocations, this.hook);
    const driver = this.migrations.driver;
    this.traffic = new TrafficService(ctx);
    this.hosts = new HostService(
      ctx,
      { heartbeatTimeoutMs: opts.heartbeatTimeoutMs ?? 30_000, orphanGraceMs: opts.orphanGraceMs ?? 60_000, heartbeatWriteMs: opts.heartbeatWriteMs, heartbeatFlushMs: opts.heartbeatFlushMs },
      async (host, reports) => {
        await this.allocations.applyStatus(host, reports);
        // A destination configured or attached, a source released: the migrations they belong to move on.
        await driver.onStatus(reports);
      },
      // The daemon's periodic sweep (hosts.sweep) also releases stale device claims, and rolls back migrations whose destination went.
      async (now) => {
        await this.devices.sweep(now);
        await driver.sweep();
      },
      { onResults: (host, results) => driver.onResults(host, results), migrationsOf: (host, allocations) => driver.desiredFor(host, allocations) },
      this.traffic,
    );
    this.tokens = new TokenService(ctx);
    this.drains = new PfDrainService(ctx);
    this.drainer = new DrainService(ctx, this.drains, this.migrations);
    this.sync = new ClusterSync(ctx, { hosts: this.hosts, migrations: driver, onError: opts.onSyncError ?? (() => {}), mirror, reload: () => this.load(false) });
  }

  static async open(store: Store, opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    // Several controllers (etcd): each picks VFs and counts MACs from its own point, so their requests in flight
    // do not all pick the same VF of the PF their policy prefers, nor one MAC.
    const scheduler = new Scheduler({ bandwidthRatio: opts.bandwidthRatio, policy: opts.placementPolicy, vfStart: store.kind !== 'sqlite' ? Math.random() : undefined });
    const macs = new MacPool({ prefix: opts.macPrefix, randomStart: store.kind !== 'sqlite' });
    // A store shared through a watch (etcd) can lose its quorum while this controller runs: its reads then
    // come from memory. SQLite, in this process, cannot: it keeps no second copy and is never probed.
    const shared = store.kind !== 'sqlite';
    const health = new StoreHealth({ probe: () => store.tx.listPhysnets(), healthyProbeMs: shared ? undefined : 0 });
    const mirror = shared ? new ReadMirror(() => health.unreachableSince ?? new Date()) : undefined;
    // Committed reads: an API read waits behind no queued write (SQLite's group commit).
    const reads = mirror ? staleReads(store.committed, mirror, health) : store.committed;
    const control = new ControlPlane(newContext({ store, reads, scheduler, macs, feed: new ChangeFeed() }), opts, mirror, health);
    // Watching before reading: a change committed between the reads and the subscription would be lost.
    control.sync.subscribe();
    control.sync.ready(await control.load(true));
    // Other controllers' commits can beat this one's requests to a VF: those decide again once memory has caught up.
    if (store.kind !== 'sqlite') control.ctx.caughtUp = (ms) => control.sync.applied(ms);
    // Every running or rolling-back migration goes on from the step it recorded last.
    if (opts.resume ?? true) await control.migrations.resume();
    return control;
  }

  /**
   * Reads the state from the store and builds memory from it: the scheduler's
   * index, the MAC pool, host liveness, the unfinished migrations' ends and
   * the read mirror. `start`: this controller's start (every host gets a full
   * grace period); else a resync after the watch lost changes (liveness as the
   * records say, and hosts gone are forgotten). Returns what each host record
   * read shows (shownDigest), by host.
   */
  private async load(start: boolean): Promise<Map<string, string>> {
    const { store, scheduler, macs } = this.ctx;
    const [holding, catalogue, active, tokens] = await Promise.all([
      store.tx.listAllocations({ holding: true }),
      readCatalogue(store.tx),
      store.tx.listMigrations({ active: true }),
      this.mirror ? store.tx.listTokens() : [],
    ]);
    const index = scheduler.rebuild(holding, catalogue.physnets, catalogue.tenants);
    const packed = new PackedHosts();
    const shown = new Map<string, string>();
    // Each record decoded once, folded into every part of memory that keeps something of it, and dropped with its
    // page: a fleet's records (~100 KB of JSON each) are never all held at once.
    await store.tx.listHostPages((page) => {
      for (const host of page) {
        index.addHost(host.record);
        if (this.mirror) packed.add(host);
        shown.set(host.record.name, shownDigest(host.record));
      }
      if (start) this.hosts.seed(page.map((h) => h.record));
      else for (const { record } of page) this.hosts.observe(record);
    });
    if (!start) for (const h of scheduler.hosts()) if (!shown.has(h.name)) this.hosts.forget(h.name);
    index.commit();
    macs.reset(holding.map((a) => a.mac));
    this.migrations.driver.trackOnly(active);
    this.mirror?.load({ hosts: packed, holding, catalogue, tokens });
    return shown;
  }

  /**
   * Runs the background work (heartbeat sweep, stale claims, stuck and
   * unfinished migrations) while `leadership` says this controller leads.
   */
  lead(leadership: Leadership, opts: LeaderWorkOptions): LeaderWork {
    return new LeaderWork(leadership, { resume: () => this.migrations.resume(), sweep: () => this.hosts.sweep() }, opts).start();
  }

  auditIsolation(actor: Actor): Promise<IsolationReport> {
    return auditIsolation(this.ctx, actor);
  }

  async events(actor: Actor, opts: { afterSeq?: number; limit?: number; object?: string } = {}): Promise<AuditEvent[]> {
    requireStaff(actor, 'read the audit log');
    return this.ctx.store.tx.listEvents(opts);
  }

  /** The audit log's last seq (0 when empty): where a reader of only what comes next starts. */
  async lastEventSeq(actor: Actor): Promise<number> {
    requireStaff(actor, 'read the audit log');
    return this.ctx.store.committed.getLastEventSeq();
  }

  /** Wakes long-polling agents and allocation waiters so that a shutdown is not held up by them. */
  shutdown(): void {
    this.sync.stop();
    this.health.stop();
    this.drainer.shutdown();
    this.devices.shutdown();
    this.ctx.feed.wakeAll();
    this.ctx.catalogue.wakeAll();
    this.ctx.events.wakeAll();
    this.ctx.waits.wakeAll();
  }
}
