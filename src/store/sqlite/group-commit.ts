/**
 * Group commit: the transactions queued behind the one in flight run
 * together in ONE `BEGIN IMMEDIATE ... COMMIT`, each inside its own
 * SAVEPOINT. One that throws is rolled back to its savepoint alone and gets
 * its own error; the others commit. Every caller's promise settles after the
 * COMMIT, so durability is what one transaction per caller gave.
 *
 * Why: a commit writes every page it touched to the WAL. Allocations that
 * arrive together touch the same index pages, so one commit for all of them
 * writes each page once instead of once per allocation.
 *
 * Members of a batch run one after another on the one connection (a member
 * reads what the members before it wrote, as it would have after their
 * commits), so the schema's constraints check them exactly as before.
 */
import type Database from 'better-sqlite3';
import { SriovError } from '../../host/errors.js';
import type { StoreTx } from '../store.js';
import { OPEN, scopedViews, type ScopedTx, type SqliteTx } from './tx.js';

/** Enough to share the WAL writes; small enough that no caller waits long behind the others. */
export const MAX_BATCH = 64;

interface Settle {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

type Work = { kind: 'tx'; fn: (tx: StoreTx) => Promise<unknown> } | { kind: 'alone'; fn: () => unknown };
type Job = Work & Settle;
type TxJob = Extract<Job, { kind: 'tx' }>;
type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

const SQL = {
  // IMMEDIATE takes the write lock up front, so a read-then-write in a member cannot be raced.
  begin: 'BEGIN IMMEDIATE',
  commit: 'COMMIT',
  rollback: 'ROLLBACK',
  savepoint: 'SAVEPOINT member',
  release: 'RELEASE member',
  rollbackTo: 'ROLLBACK TO member',
} as const;

export class GroupCommit {
  private readonly queue: Job[] = [];
  private draining = false;
  private closed = false;
  private readonly view: () => ScopedTx;

  constructor(
    private readonly db: Database.Database,
    inner: SqliteTx,
    private readonly maxBatch = MAX_BATCH,
    /** Called as each batch commits or rolls back, before anything else runs. */
    private readonly onSettled: () => void = () => {},
  ) {
    this.view = scopedViews(inner);
  }

  /**
   * Through exec, not prepared statements: a statement's run() returns a
   * result object ({ changes, lastInsertRowid }, 56 bytes) that nobody here
   * reads, and a member's SAVEPOINT and RELEASE made two per allocation.
   * Preparing them again costs ~0.1 us.
   */
  private exec(statement: keyof typeof SQL): void {
    this.db.exec(SQL[statement]);
  }

  /** Runs `fn` in a transaction of its own or shared; settles after the COMMIT that makes it durable. */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.enqueue('tx', fn) as Promise<T>;
  }

  /** Runs `fn` alone, between transactions (a WAL checkpoint, closing the file). */
  alone<T>(fn: () => T): Promise<T> {
    return this.enqueue('alone', fn) as Promise<T>;
  }

  /** Refuses what is queued after this; what is queued before still runs. */
  close(): void {
    this.closed = true;
  }

  /** One job object per call, built in place: every allocation passes here, and its garbage is the GC's pauses. */
  private enqueue(kind: Work['kind'], fn: Work['fn']): Promise<unknown> {
    if (this.closed) return Promise.reject(new SriovError('UNAVAILABLE', 'the store is closed; nothing was written', { nothingChanged: true }));
    this.nextKind = kind;
    this.nextFn = fn;
    const settled = new Promise(this.push);
    if (!this.draining) {
      this.draining = true;
      // Never synchronously inside the caller: a transaction always starts after the call returns, as with a mutex.
      queueMicrotask(this.drainLater);
    }
    return settled;
  }

  /** The job `enqueue` is making, for `push`: set just before the promise runs it, at once. */
  private nextKind: Work['kind'] = 'tx';
  private nextFn: Work['fn'] | undefined;
  /** The promise's executor: one function for every call, where a closure per call was garbage. */
  private readonly push = (resolve: (value: unknown) => void, reject: (err: unknown) => void): void => {
    this.queue.push({ kind: this.nextKind, fn: this.nextFn, resolve, reject } as Job);
    this.nextFn = undefined;
  };
  private readonly drainLater = (): void => void this.drain();

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (head.kind === 'alone') {
        this.queue.shift();
        settle(head, runAlone(head.fn));
      } else {
        await this.runGuarded(this.takeBatch());
      }
    }
    this.draining = false;
  }

  /** A statement of the queue's own failing (ROLLBACK TO, say) must not stall every caller behind it. */
  private async runGuarded(batch: TxJob[]): Promise<void> {
    try {
      await this.runBatch(batch);
    } catch (err) {
      if (this.db.inTransaction) this.exec('rollback');
      this.onSettled();
      // Settled promises ignore this; the others' writes are rolled back.
      for (const job of batch) job.reject(err);
    }
  }

  /** The transactions at the head of the queue, up to the first job that must run alone. */
  private takeBatch(): TxJob[] {
    let n = 0;
    while (n < this.queue.length && n < this.maxBatch && this.queue[n]!.kind === 'tx') n++;
    return this.queue.splice(0, n) as TxJob[];
  }

  private async runBatch(batch: TxJob[]): Promise<void> {
    const outcomes: Outcome[] = [];
    try {
      this.exec('begin');
    } catch (err) {
      for (const job of batch) job.reject(err);
      return;
    }
    for (const job of batch) {
      // One member in its own savepoint: its error undoes its writes alone. Here, not in a function of
      // its own: an async call per member was a frame and a promise of garbage per allocation.
      const scoped = this.view();
      let outcome: Outcome;
      this.exec('savepoint');
      try {
        outcome = { ok: true, value: await job.fn(scoped) };
        this.exec('release');
      } catch (err) {
        this.undoMember();
        outcome = { ok: false, err };
      } finally {
        // Refuses calls made after the end (a leaked tx), which would otherwise run in another member.
        scoped[OPEN] = false;
      }
      outcomes.push(outcome);
      if (!this.db.inTransaction) {
        // SQLite itself rolled the whole transaction back (e.g. SQLITE_FULL): the members before lost their writes too.
        this.failCommitted(outcomes, outcome.ok ? new Error('the transaction ended under a member') : outcome.err);
        this.queue.unshift(...batch.slice(outcomes.length));
        break;
      }
    }
    if (this.db.inTransaction) this.commitOrFail(outcomes);
    this.onSettled();
    for (let i = 0; i < outcomes.length; i++) settle(batch[i]!, outcomes[i]!);
  }

  /** A member failed: its writes go, the batch's others stay (unless SQLite ended the whole transaction). */
  private undoMember(): void {
    if (this.db.inTransaction) {
      this.exec('rollbackTo');
      this.exec('release');
    }
  }

  private commitOrFail(outcomes: Outcome[]): void {
    try {
      this.exec('commit');
    } catch (err) {
      if (this.db.inTransaction) this.exec('rollback');
      this.failCommitted(outcomes, err);
    }
  }

  /** Members whose work the batch lost fail with UNAVAILABLE: nothing of theirs was written, and a retry may succeed. */
  private failCommitted(outcomes: Outcome[], cause: unknown): void {
    const lost = new SriovError('UNAVAILABLE', `the store could not commit (${describe(cause)}); nothing was written, retry`, {
      nothingChanged: true,
      cause,
    });
    outcomes.forEach((o, i) => {
      if (o.ok) outcomes[i] = { ok: false, err: lost };
    });
  }
}

function runAlone(fn: () => unknown): Outcome {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    return { ok: false, err };
  }
}

function settle(job: Settle, o: Outcome): void {
  if (o.ok) job.resolve(o.value);
  else job.reject(o.err);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
