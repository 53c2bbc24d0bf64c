/**
 * Draining a PF or a host: every holding allocation on it moves elsewhere by
 * a live migration, and the PFs take nothing new meanwhile.
 *
 * The plan (drain-plan.ts) is made and every move checked by the migration
 * service's own dry run before anything changes: one move with nowhere to go
 * refuses the whole drain, nothing changed. Then the PFs are drained (no
 * new allocation lands on them while they empty) and the migrations start,
 * at most `concurrency` at a time. Re-running a drain continues it: the
 * allocations a migration already moves are followed, not moved twice, and
 * what is already off the PF is not in the plan any more.
 */
import { requireStaff, type Actor } from '../domain/actor.js';
import type { HypervisorKind, Migration, MigrationState, MigrationStep } from '../domain/types.js';
import { invalid, SriovError } from '../host/errors.js';
import { isIfName, isPciAddress, parseHostName, shown } from '../host/validate.js';
import { Mutex } from '../util/mutex.js';
import type { Context } from './context.js';
import { planDrain, type DrainSnapshot, type DrainTarget, type PlannedDrain } from './drain-plan.js';
import type { DrainMove, Migrations } from './migration-request.js';
import type { PfDrainService } from './pf-drain.js';

const HYPERVISORS: readonly HypervisorKind[] = ['libvirt', 'qemu', 'hook'];
const ENDED: readonly MigrationState[] = ['completed', 'failed', 'aborted'];
/** Longest `migrateUri` taken; the migration service checks its form. */
const MIGRATE_URI_MAX = 512;

/** What `POST /v1/drains` takes. */
export interface DrainInput {
  host: string;
  /** A PF's netdev name or PCI address; absent drains every PF of the host. */
  pf?: string | null;
  dryRun?: boolean;
  hypervisor?: HypervisorKind;
  migrateUri?: string;
}

/** Where a started move's migration is. */
export interface MoveProgress {
  state: MigrationState;
  step: MigrationStep;
  reason: string | null;
}

/**
 * A drain's plan and how far it got: `planned` (a dry run), `refused` (a dry
 * run in which a move has nowhere to go), `running`, then `completed` (every
 * move's migration completed) or `failed` (a move refused or a migration
 * failed or aborted: drain again to retry what is left).
 */
export interface DrainReport extends PlannedDrain {
  state: 'planned' | 'refused' | 'running' | 'completed' | 'failed';
  /** By migration id. */
  progress: Record<string, MoveProgress>;
}

export interface DrainOptions {
  /** Migrations at a time (default 2): each one is a VM's memory on the wire, or a container's re-home. */
  concurrency?: number;
  /** One long poll of a running migration (default 30 s). */
  waitMs?: number;
}

export class DrainService {
  /** The drains running in this controller, by id: a second request for one joins it. */
  private readonly runs = new Map<string, DrainRun>();
  /** How each drain that ran here last ended, by id (one per PF or host: bounded by the fleet). */
  private readonly ended = new Map<string, DrainReport>();
  private readonly concurrency: number;
  private readonly waitMs: number;
  private stopped = false;
  /** One drain starts at a time here: two requests for one drain must not both find it not running and start it twice. */
  private readonly starting = new Mutex();

  constructor(
    private readonly ctx: Context,
    private readonly pfDrains: PfDrainService,
    private readonly migrations: Migrations,
    opts: DrainOptions = {},
  ) {
    this.concurrency = opts.concurrency ?? 2;
    this.waitMs = opts.waitMs ?? 30_000;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw invalid(`drain concurrency must be a whole number of at least 1, got ${opts.concurrency}`);
  }

  /** Plans, checks and (unless a dry run) starts the drain; answers once the first migrations started. */
  async drain(actor: Actor, input: DrainInput): Promise<DrainReport> {
    requireStaff(actor, 'drain hosts and PFs');
    const target = parseInput(input);
    if (target.dryRun) return this.plan(actor, target);
    return this.starting.run(async () => {
      if (this.stopped) throw new SriovError('TRY_AGAIN', 'the controller is shutting down; drain again once it is back', { nothingChanged: true });
      const plan = await this.plan(actor, target);
      // The same drain already runs here: what it does is the answer, and nothing starts twice.
      const running = this.runs.get(plan.id);
      if (running) return running.report();
      const refused = plan.moves.filter((m) => m.refusal !== null);
      if (refused.length) throw refusal(plan, refused);
      for (const pf of plan.pfs) await this.pfDrains.drainPf(actor, plan.host, pf);
      const run = new DrainRun(plan, target, actor, this.migrations, this.waitMs, () => this.stopped);
      this.runs.set(plan.id, run);
      const started = run.start(this.concurrency);
      // start() set `done` before its first await.
      void run.done.then(() => {
        this.ended.set(plan.id, run.report());
        this.runs.delete(plan.id);
      });
      await started;
      return run.report();
    });
  }

  /** The plan, each new move checked by the migration service; a dry run's answer. */
  private async plan(actor: Actor, target: DrainTarget): Promise<DrainReport> {
    const plan = planDrain(await this.snapshot(actor), target, this.ctx.scheduler.options);
    // Moves a run here already started are followed, so they are not checked again.
    const running = this.runs.get(plan.id);
    if (!running) await this.check(actor, plan, target);
    const refused = plan.moves.some((m) => m.refusal !== null);
    return { ...plan, state: refused ? 'refused' : 'planned', progress: {} };
  }

  /** The drain `id` as it stands (running), or as it last ended here; null when it never ran here. */
  current(id: string): DrainReport | null {
    return this.runs.get(id)?.report() ?? this.ended.get(id) ?? null;
  }

  /** Drain `id` once it has ended (now, when it is not running). */
  async settled(id: string): Promise<DrainReport | null> {
    await this.runs.get(id)?.done;
    return this.current(id);
  }

  /** Starts no more migrations; the ones running go on (the migration service resumes them). */
  shutdown(): void {
    this.stopped = true;
  }

  private async snapshot(actor: Actor): Promise<DrainSnapshot> {
    const tx = this.ctx.store.tx;
    const [hosts, allocations, physnets, networks, tenants, running, rollingBack] = await Promise.all([
      tx.listHosts(),
      tx.listAllocations({ holding: true }),
      tx.listPhysnets(),
      tx.listNetworks(),
      tx.listTenants(),
      this.migrations.list(actor, { state: 'running' }),
      this.migrations.list(actor, { state: 'rolling-back' }),
    ]);
    return { hosts, allocations, physnets, networks, tenants, migrations: [...running, ...rollingBack] };
  }

  /**
   * Each new move through the migration service's dry run, pinned to the PF
   * the plan chose: what only it knows (a VM's standby or migration driver,
   * the URI's form, the destination's link) refuses here, before anything.
   */
  private async check(actor: Actor, plan: PlannedDrain, target: DrainTarget): Promise<void> {
    for (const move of plan.moves) {
      if (move.refusal !== null || move.migration !== null || move.to === null) continue;
      try {
        await this.migrations.start(actor, { ...requestOf(move, target, plan.id), dryRun: true });
      } catch (err) {
        if (!(err instanceof SriovError)) throw err;
        move.refusal = err.message;
      }
    }
  }
}

/** One drain's migrations, `concurrency` at a time, each followed to its end. */
class DrainRun {
  private readonly queue: DrainMove[];
  private readonly progress: Record<string, MoveProgress> = {};
  private ended = false;
  private failed = false;
  done: Promise<void> = Promise.resolve();

  constructor(
    private readonly plan: PlannedDrain,
    private readonly target: DrainTarget,
    private readonly actor: Actor,
    private readonly migrations: Migrations,
    private readonly waitMs: number,
    private readonly stopped: () => boolean,
  ) {
    // Those already moving first: they hold a slot already.
    this.queue = [...plan.moves].sort((a, b) => Number(b.migration !== null) - Number(a.migration !== null));
  }

  /** Starts the workers; resolves once each has started (or followed) its first migration. */
  async start(concurrency: number): Promise<void> {
    const workers = Math.min(concurrency, this.queue.length);
    const firsts: Promise<void>[] = [];
    const all: Promise<void>[] = [];
    for (let i = 0; i < workers; i++) {
      let first!: () => void;
      firsts.push(new Promise<void>((resolve) => (first = resolve)));
      all.push(this.work(first));
    }
    this.done = Promise.all(all).then(() => void (this.ended = true));
    await Promise.all(firsts);
  }

  report(): DrainReport {
    const state = !this.ended ? 'running' : this.failed ? 'failed' : 'completed';
    return { ...this.plan, moves: this.plan.moves.map((m) => ({ ...m })), state, progress: { ...this.progress } };
  }

  private async work(started: () => void): Promise<void> {
    try {
      for (let move = this.queue.shift(); move; move = this.queue.shift()) {
        // Shutting down: what is left is not done, and a drain run again later continues it.
        if (this.stopped()) return void (this.failed = true);
        await this.carry(move, started);
      }
    } finally {
      started();
    }
  }

  /** Starts (or follows) one move's migration to its end; what goes wrong is the move's, and the next one goes on. */
  private async carry(move: DrainMove, started: () => void): Promise<void> {
    try {
      const id = move.migration ?? (await this.begin(move));
      // One already under way (a re-run): where it is, at once, not after the first long poll.
      if (id !== null && !this.progress[id]) this.note(await this.migrations.get(this.actor, id));
      started();
      if (id !== null) await this.follow(id);
    } catch (err) {
      this.failed = true;
      const why = err instanceof Error ? err.message : String(err);
      move.refusal ??= move.migration ? `lost track of migration ${move.migration}: ${why}` : why;
    }
  }

  /** The migration id, or null when the service refused it now (the reason recorded; drain again to retry). */
  private async begin(move: DrainMove): Promise<string | null> {
    try {
      const m = await this.migrations.start(this.actor, requestOf(move, this.target, this.plan.id));
      this.note(m);
      return (move.migration = m.id);
    } catch (err) {
      // Started meanwhile by someone else: follow that one.
      const other = err instanceof SriovError && err.code === 'CONFLICT' ? await this.runningFor(move.allocation) : null;
      if (other) return (move.migration = other.id);
      this.failed = true;
      move.refusal = err instanceof Error ? err.message : String(err);
      return null;
    }
  }

  private async runningFor(allocation: string): Promise<Migration | null> {
    const found = await this.migrations.list(this.actor, { allocation, state: 'running' });
    return found[0] ?? null;
  }

  private async follow(id: string): Promise<void> {
    for (;;) {
      const m = await this.migrations.wait(this.actor, id, this.waitMs);
      this.note(m);
      if (ENDED.includes(m.state)) {
        if (m.state !== 'completed') this.failed = true;
        return;
      }
      if (this.stopped()) return void (this.failed = true);
    }
  }


  private note(m: Migration): void {
    this.progress[m.id] = { state: m.state, step: m.step, reason: m.reason };
  }
}

/** A move as the migration service takes it: the hypervisor and URI for a VM only. */
function requestOf(move: DrainMove, target: DrainTarget, drain: string) {
  const vm = move.workload.kind === 'vm';
  return {
    allocation: move.allocation,
    to: { host: move.to!.host, pf: move.to!.pf },
    ...(vm && target.hypervisor ? { hypervisor: target.hypervisor } : {}),
    ...(vm && target.migrateUri !== undefined ? { migrateUri: target.migrateUri } : {}),
    drain,
  };
}

function refusal(plan: PlannedDrain, refused: DrainMove[]): SriovError {
  const lines = refused.map((m) => `${m.allocation.slice(0, 8)} (${m.workload.kind} ${m.workload.name}): ${m.refusal}`);
  const what = `${refused.length} of ${plan.moves.length} allocation${plan.moves.length === 1 ? '' : 's'}`;
  return new SriovError('NO_CAPACITY', `drain of ${plan.id} refused, nothing changed: ${what} cannot move: ${lines.join(' | ')}`, {
    object: plan.id,
    nothingChanged: true,
    data: { plan },
  });
}

function parseInput(input: DrainInput): DrainTarget {
  const host = parseHostName(input.host);
  const pf = input.pf ?? null;
  if (pf !== null && !isIfName(pf) && !isPciAddress(pf)) throw invalid(`PF must be its netdev name like ens1f0 or its PCI address like 0000:3b:00.0, got ${shown(pf)}`, `${host}/${shown(pf)}`);
  if (input.hypervisor !== undefined && !HYPERVISORS.includes(input.hypervisor)) {
    throw invalid(`hypervisor must be one of ${HYPERVISORS.join(', ')}, got ${shown(input.hypervisor)}`, host);
  }
  if (input.migrateUri !== undefined && (typeof input.migrateUri !== 'string' || input.migrateUri.length === 0 || input.migrateUri.length > MIGRATE_URI_MAX)) {
    throw invalid(`migrateUri must be a URI of 1-${MIGRATE_URI_MAX} characters, got ${shown(input.migrateUri)}`, host);
  }
  if (input.dryRun !== undefined && typeof input.dryRun !== 'boolean') throw invalid(`dryRun must be true or false, got ${shown(input.dryRun)}`, host);
  return { host, pf, hypervisor: input.hypervisor, migrateUri: input.migrateUri, dryRun: input.dryRun === true };
}
