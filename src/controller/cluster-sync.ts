/**
 * Several controllers on one store: each keeps its in-memory state (the
 * scheduler's index, the MAC pool, host liveness) and wakes its own waiters
 * (agents long-polling their desired state, device views, callers waiting on
 * an allocation or a migration, live event streams) from the changes the
 * store's watch delivers, whichever controller committed them.
 *
 * This controller's own changes come back too, after it already applied
 * them, and a change may arrive after a later one made here: every apply is
 * idempotent, and the index converges once the watch has caught up (the
 * store, not memory, enforces the invariants between controllers).
 */
import { createHash } from 'node:crypto';
import { HOLDING_STATES, type Allocation, type HostRecord, type Migration } from '../domain/types.js';
import type { StoreChange } from '../store/store.js';
import { CATALOGUE, EVENTS, type Context } from './context.js';
import { reportedVfs } from './hosts.js';
import { readCatalogue, type ReadMirror } from './read-mirror.js';

/** What of the other services the sync updates. */
export interface SyncTargets {
  /** Host liveness (HostService). */
  hosts: {
    observe(record: HostRecord): void;
    heard(name: string, state: HostRecord['state'], at: string | null): void;
    forget(name: string): void;
  };
  /** Unfinished migrations whose ends' reports drive them here (MigrationDriver). */
  migrations: { track(m: Migration): void; untrack(m: Migration): void };
  /** A change that could not be applied (the store unreachable for a read): it is said, and the next ones go on. */
  onError(err: unknown): void;
  /** What the API reads, kept for when the store cannot answer (read-mirror.ts); none on a store alone. */
  mirror?: ReadMirror;
  /**
   * Reads the whole state from the store again and rebuilds memory from it
   * (ControlPlane.load): after the watch lost changes. Returns what each host
   * record read shows (shownDigest), by host.
   */
  reload?: () => Promise<Map<string, string>>;
}

/** Between attempts to read the state again while the store does not answer. */
const RELOAD_RETRY_MS = 1_000;

export class ClusterSync {
  /** Changes apply one revision at a time, in the watch's order. */
  private queue: Promise<void> = Promise.resolve();
  /** Held until the controller has loaded its state, so no change is applied to a half-built index. */
  private gate: Promise<void>;
  private open!: () => void;
  /** `gate` has opened: changes queued before still wait behind it, in order; later ones need not. */
  private loaded = false;
  /**
   * Host → digest of what a host record shows agents and device views
   * (labels, reported VFs, drained PFs): a record re-put with none of them
   * changed (a heartbeat, a state) wakes nobody, as a report here would not.
   */
  private shown = new Map<string, string>();
  private unsubscribe: () => void = () => {};
  private stopped = false;
  private readonly appliedWaiters = new Set<() => void>();

  constructor(
    private readonly ctx: Context,
    private readonly targets: SyncTargets,
  ) {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  /** Subscribes to the store's watch; changes queue until `ready`. Call before loading the state, so nothing between is missed. */
  subscribe(): void {
    this.unsubscribe = this.ctx.store.watch((changes) => this.enqueue(changes), { onResync: () => this.resync() });
  }

  /**
   * The watch lost changes (etcd compacted its resume point) and goes on
   * from now: memory may have drifted from the store, so the state is read
   * again and memory rebuilt from it, before any change of the new watch
   * applies (they queue behind; those the read already saw apply harmlessly
   * again). Every waiter is woken to look again.
   */
  resync(): void {
    const reload = this.targets.reload;
    if (!reload) return;
    this.queue = this.queue
      .then(() => this.gate)
      .then(async () => {
        const shown = await this.untilRead(reload);
        if (shown === null) return;
        const before = [...this.shown.keys()];
        this.shown = shown;
        for (const name of new Set([...before, ...this.shown.keys()])) this.ctx.feed.bump(name);
        this.ctx.catalogue.bump(CATALOGUE);
        this.ctx.events.bump(EVENTS);
        this.ctx.waits.wakeAll();
        this.wakeApplied();
      })
      .catch((err: unknown) => this.targets.onError(err));
  }

  /** `reload`, again after each failure (the store may not answer yet), until it reads or the sync stops (null). */
  private async untilRead<T>(reload: () => Promise<T>): Promise<T | null> {
    for (;;) {
      if (this.stopped) return null;
      try {
        return await reload();
      } catch (err) {
        this.targets.onError(err);
        await new Promise((resolve) => setTimeout(resolve, RELOAD_RETRY_MS).unref());
      }
    }
  }

  /** The state is loaded, with what each host record shows (shownDigest): the queued changes apply (those the load already saw, harmlessly again). */
  ready(shown: Map<string, string>): void {
    this.shown = shown;
    this.loaded = true;
    this.open();
  }

  /** Resolves once every change delivered so far has been applied. */
  settled(): Promise<void> {
    return this.queue;
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    this.wakeApplied();
  }

  /** Resolves when the next batch has been applied, or after `ms` (a request that lost a race waits for the winner). */
  applied(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.appliedWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.appliedWaiters.add(done);
    });
  }

  private wakeApplied(): void {
    if (this.appliedWaiters.size === 0) return;
    for (const done of [...this.appliedWaiters]) done();
  }

  enqueue(changes: StoreChange[]): void {
    // Once the state is loaded, no step waits for the gate: a closure and a promise more per batch of writes.
    const loaded = this.loaded ? this.queue : this.queue.then(() => this.gate);
    this.queue = loaded.then(() => this.apply(changes)).catch((err: unknown) => this.targets.onError(err));
  }

  /**
   * One revision's changes. Hosts' feeds are bumped once each, after all of
   * them. Only a change that reads waits: the SQLite store's watch says the
   * audit log grew once per batch of allocations, and an await per change
   * was garbage there, whose collection pauses every request in flight.
   */
  async apply(changes: StoreChange[]): Promise<void> {
    const bump = new Set<string>();
    for (const c of changes) {
      try {
        const reading = this.applyOne(c, bump);
        if (reading) await reading;
      } catch (err) {
        this.targets.onError(err);
      }
    }
    for (const host of bump) this.ctx.feed.bump(host);
    this.wakeApplied();
  }

  private applyOne(c: StoreChange, bump: Set<string>): Promise<void> | undefined {
    switch (c.kind) {
      case 'allocation':
        return this.allocation(c.id, c.value, bump);
      case 'host':
        this.host(c.name, c.value, bump);
        return;
      case 'heartbeat':
        this.targets.mirror?.heard(c.name, c.state, c.at);
        this.targets.hosts.heard(c.name, c.state, c.at);
        this.ctx.scheduler.setHostState(c.name, c.state);
        return;
      case 'migration':
        this.migration(c.value, bump);
        return;
      case 'policy':
        bump.add(c.host);
        return;
      case 'token':
        this.targets.mirror?.putToken(c.id, c.value);
        return;
      case 'catalogue':
        return this.catalogue();
      case 'audit':
        // Whoever appended (another controller, or a write path here): the live event streams read on.
        this.ctx.events.bump(EVENTS);
        return;
    }
  }

  /**
   * A holding allocation takes its VF and MAC; one that stopped holding gives
   * them back, if the index still has them (else this controller released it
   * already, and its MAC may have gone to another allocation since).
   */
  private async allocation(id: string, a: Allocation | null, bump: Set<string>): Promise<void> {
    this.targets.mirror?.putAllocation(id, a);
    if (a && HOLDING_STATES.includes(a.state)) {
      if (this.ctx.scheduler.adopt(a)) this.ctx.macs.markUsed(a.mac);
    } else if (this.ctx.scheduler.holds(id)) {
      this.ctx.scheduler.release({ id });
      if (a && !(await this.peerHoldsMac(a))) this.ctx.macs.release(a.mac);
    }
    if (a) bump.add(a.host);
    this.ctx.waits.wake(id);
  }

  /** A migration's two ends share one MAC: it stays used while the other end holds its VF. */
  private async peerHoldsMac(a: Allocation): Promise<boolean> {
    if (!a.migration) return false;
    const m = await this.ctx.store.tx.getMigration(a.migration.id);
    const peer = m && (a.migration.role === 'source' ? m.to?.allocation : m.from.allocation);
    return peer ? this.ctx.scheduler.holds(peer) : false;
  }

  private host(name: string, record: HostRecord | null, bump: Set<string>): void {
    this.targets.mirror?.putHost(name, record);
    if (!record) {
      this.ctx.scheduler.removeHost(name);
      this.targets.hosts.forget(name);
      this.shown.delete(name);
      bump.add(name);
      return;
    }
    this.ctx.scheduler.loadHost(record);
    this.ctx.scheduler.setDrained(name, record.drainedPfs);
    this.targets.hosts.observe(record);
    const shown = shownDigest(record);
    if (this.shown.get(name) === shown) return;
    this.shown.set(name, shown);
    bump.add(name);
  }

  private migration(m: Migration | null, bump: Set<string>): void {
    if (!m) return;
    if (m.state === 'running' || m.state === 'rolling-back') this.targets.migrations.track(m);
    else this.targets.migrations.untrack(m);
    bump.add(m.from.host);
    if (m.to) bump.add(m.to.host);
    this.ctx.waits.wake(`migration/${m.id}`);
  }

  /** Tenants, physnets and networks: the scheduler re-reads the physnets (few) and tenants' groups, the mirror all three, the device views wake. */
  private async catalogue(): Promise<void> {
    const mirror = this.targets.mirror;
    // Read until the store answers: etcd can lose its quorum between the change and this read, and the
    // mirror must not keep the catalogue from before the change (it answers reads through the next outage).
    const catalogue = await this.untilRead(() => readCatalogue(this.ctx.store.tx).then((c) => (mirror?.putCatalogue(c), c)));
    for (const p of catalogue?.physnets ?? []) this.ctx.scheduler.putPhysnet(p);
    // Only a tenant whose group changed costs anything (capacity-index.ts, putTenant).
    for (const t of catalogue?.tenants ?? []) this.ctx.scheduler.putTenant(t);
    this.ctx.catalogue.bump(CATALOGUE);
  }
}

/** A digest of what of a host record agents and device views see (see `shown`). */
export function shownDigest(h: HostRecord): string {
  const seen = [h.physnets, h.deviceTypes, [...h.drainedPfs].sort(), reportedVfs(h)];
  return createHash('sha1').update(JSON.stringify(seen)).digest('base64');
}
