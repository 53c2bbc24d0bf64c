/**
 * Drives migrations on: after every agent report that concerns one, every
 * task result, every API call, and once for each unfinished migration when
 * the controller opens. Each pass reads the record and both allocations,
 * puts the allocations where the step wants them, decides, and writes the
 * next step before anything acts on it.
 */
import type { Allocation, Migration } from '../domain/types.js';
import type { HypervisorTaskResult } from '../hypervisor/hypervisor.js';
import { Mutex } from '../util/mutex.js';
import type { AllocationService } from './allocations.js';
import type { Context } from './context.js';
import type { AllocationStatus, DesiredMigration, HypervisorTask } from './desired-state.js';
import { clearMarks, isActive, saveChange, type Change } from './migration-records.js';
import { decide, rollback, wanted } from './migration-steps.js';
import { hypervisorTask, withResult } from './migration-tasks.js';

/** Enough for the longest chain of steps one pass can take (prepare → switch → release → done). */
const MAX_STEPS_PER_PASS = 8;
const CONTROLLER = 'controller';

export class MigrationDriver {
  /** Allocation id → the unfinished migration it is an end of: reports about other allocations cost nothing. */
  private readonly ends = new Map<string, string>();
  /** One pass at a time: two reports about one migration must not both decide its next step. */
  readonly mutex = new Mutex();

  constructor(
    private readonly ctx: Context,
    private readonly allocations: AllocationService,
  ) {}

  /** Marks `m`'s allocations as ends of an unfinished migration. */
  track(m: Migration): void {
    this.ends.set(m.from.allocation, m.id);
    if (m.to) this.ends.set(m.to.allocation, m.id);
  }

  /** Exactly `active` are unfinished (memory rebuilt from the store): other migrations' ends are forgotten. */
  trackOnly(active: Migration[]): void {
    this.ends.clear();
    for (const m of active) this.track(m);
  }

  /** `m` ended: reports about its allocations no longer concern it. */
  untrack(m: Migration): void {
    for (const id of [m.from.allocation, m.to?.allocation]) if (id && this.ends.get(id) === m.id) this.ends.delete(id);
  }

  /** Every unfinished migration, where it stopped (ControlPlane.open). */
  async resume(): Promise<void> {
    const active = await this.ctx.store.tx.listMigrations({ active: true });
    for (const m of active) this.track(m);
    for (const m of active) await this.drive(m.id);
  }

  /**
   * The periodic sweep: a migration still preparing on a destination whose
   * agent stopped reporting rolls back, rather than waiting for it forever.
   * (Later steps wait: a half-done switch is the agents' to finish.)
   */
  async sweep(): Promise<void> {
    const preparing = (await this.ctx.store.tx.listMigrations({ state: 'running' })).filter((m) => m.step === 'prepare' && m.to);
    for (const m of preparing) {
      const host = await this.ctx.store.tx.getHost(m.to!.host);
      if (host?.state !== 'unreachable') continue;
      await this.mutex.run(async () => {
        const current = await this.ctx.store.tx.getMigration(m.id);
        if (current?.state !== 'running' || current.step !== 'prepare') return;
        const d = rollback(current, `the destination host ${m.to!.host} stopped reporting while preparing ${m.to!.pciAddress} (its agent is down?)`);
        if (d.kind === 'change') await this.write(current, d.change, false, CONTROLLER);
      });
      await this.drive(m.id);
    }
  }

  /** After an agent's allocation reports were applied. */
  async onStatus(reports: AllocationStatus[]): Promise<void> {
    const ids = new Set(reports.flatMap((r) => this.ends.get(r.id) ?? []));
    for (const id of ids) await this.drive(id);
  }

  /** An agent's hypervisor task results: each settles its pending task, then the migration moves on. */
  async onResults(host: string, results: HypervisorTaskResult[]): Promise<void> {
    const ids = new Set(results.map((r) => r.id.split(':')[0]!));
    for (const id of ids) {
      await this.mutex.run(async () => {
        const m = await this.ctx.store.tx.getMigration(id);
        if (m && isActive(m)) await this.settle(m, host, results.filter((r) => r.id.startsWith(`${id}:`)));
      });
      await this.drive(id);
    }
  }

  private async settle(m: Migration, host: string, results: HypervisorTaskResult[]): Promise<void> {
    let current = m;
    for (const r of results) {
      const applied = withResult(current, host, r);
      if (!applied) continue;
      const { task } = applied;
      const downtimeMs = task.op === 'migrate' && r.ok ? (r.result?.downtimeMs ?? null) : undefined;
      const change: Change = { tasks: applied.tasks, downtimeMs, entries: [{ step: m.state === 'rolling-back' ? 'rollback' : 'switch', outcome: r.ok ? 'done' : 'failed', detail: `${task.op} on ${host}: ${task.detail}` }] };
      current = await this.write(current, change, false, `agent:${host}`);
    }
  }

  /** One pass, under the mutex. */
  drive(id: string): Promise<void> {
    return this.mutex.run(() => this.pass(id));
  }

  /** Runs `fn` on the migration under the mutex, then drives it on. */
  async with<T>(fn: () => Promise<T>, id: string): Promise<T> {
    const out = await this.mutex.run(fn);
    await this.drive(id);
    return out;
  }

  private async pass(id: string): Promise<void> {
    for (let i = 0; i < MAX_STEPS_PER_PASS; i++) {
      const m = await this.ctx.store.tx.getMigration(id);
      if (!m || !isActive(m)) return;
      let [source, dest] = await this.endsOf(m);
      if (await this.ensure(m, source, dest)) [source, dest] = await this.endsOf(m);
      const d = decide(m, source, dest);
      if (d.kind === 'wait') return;
      await this.write(m, d.change, d.ends, CONTROLLER);
    }
  }

  private async endsOf(m: Migration): Promise<[Allocation | null, Allocation | null]> {
    const tx = this.ctx.store.tx;
    return Promise.all([tx.getAllocation(m.from.allocation), m.to ? tx.getAllocation(m.to.allocation) : Promise.resolve(null)]);
  }

  /** Moves the allocations where the step wants them; true when one moved. */
  private async ensure(m: Migration, source: Allocation | null, dest: Allocation | null): Promise<boolean> {
    let moved = false;
    for (const w of wanted(m, source, dest)) {
      const reason = w.state === 'releasing' ? `migration ${m.id}: ${w.id === m.from.allocation ? 'the workload moved off it' : 'rolled back'}` : null;
      if (await this.allocations.moveFor(CONTROLLER, w.id, w.state, reason)) moved = true;
    }
    return moved;
  }

  /** Writes a step (clearing both marks when it ends the migration), then wakes the agents and waiters. */
  async write(m: Migration, change: Change, ends: boolean, actor: string): Promise<Migration> {
    const after = await this.ctx.store.transaction(async (tx) => {
      const saved = await saveChange(tx, actor, m, change, this.ctx.now());
      if (ends) await clearMarks(tx, saved, this.ctx.now());
      return saved;
    });
    if (ends) this.untrack(after);
    this.woke(after);
    return after;
  }

  /** The hosts of both ends re-read their desired state; callers waiting on it re-read the migration. */
  woke(m: Migration): void {
    this.ctx.feed.bump(m.from.host);
    if (m.to && m.to.host !== m.from.host) this.ctx.feed.bump(m.to.host);
    this.ctx.waits.wake(`migration/${m.id}`);
  }

  /** The desired state's migration marks and hypervisor tasks for `host`. */
  async desiredFor(host: string, allocations: Allocation[]): Promise<{ marks: Map<string, DesiredMigration | null>; tasks: HypervisorTask[] }> {
    const marks = new Map<string, DesiredMigration | null>();
    const tasks: HypervisorTask[] = [];
    // Every task is on a host where one end is: with no marked allocation here, there is nothing to read.
    if (!allocations.some((a) => a.migration)) return { marks, tasks };
    const active = new Map((await this.ctx.store.tx.listMigrations({ active: true, host })).map((m) => [m.id, m]));
    for (const a of allocations) if (a.migration) marks.set(a.id, markOf(active.get(a.migration.id), a));
    for (const m of active.values()) tasks.push(...(await this.tasksOn(m, host)));
    return { marks, tasks };
  }

  private async tasksOn(m: Migration, host: string): Promise<HypervisorTask[]> {
    const pending = (m.tasks ?? []).filter((t) => t.host === host && t.outcome === 'pending');
    if (pending.length === 0) return [];
    const source = await this.ctx.store.tx.getAllocation(m.from.allocation);
    return source ? pending.flatMap((t) => hypervisorTask(m, t, source) ?? []) : [];
  }
}

/** What the agent is told of `a`'s migration: nothing once it rolls back (the source is plain again, the destination a plain release). */
function markOf(m: Migration | undefined, a: Allocation): DesiredMigration | null {
  if (!m || m.state !== 'running' || !a.migration) return null;
  const peer = a.migration.role === 'source' ? m.to?.allocation : m.from.allocation;
  return peer ? { id: m.id, role: a.migration.role, step: m.step, peer } : null;
}
