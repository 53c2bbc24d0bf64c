/**
 * The embedded store: one SQLite file written by one process. Every call,
 * a transaction or a single `store.tx` one, goes through the group commit
 * queue: one connection has one transaction, and nothing may run SQL on it
 * outside the queue, or it would silently join the batch in flight.
 */
import Database from 'better-sqlite3';
import type { CommittedReads, Leadership, Store, StoreChange, StoreTx } from '../store.js';
import { Checkpointer } from './checkpointer.js';
import { CatalogueCache } from '../catalogue-cache.js';
import { GroupCommit, MAX_BATCH } from './group-commit.js';
import { prepareStatements } from './statements.js';
import { readMethods, SqliteTx, wrapMethods } from './tx.js';

/** Only if the checkpoint thread fails: then the store checkpoints between its own transactions. */
const FALLBACK_CHECKPOINT_MS = 1000;

/** The embedded store has one controller: it leads from the start, and nobody takes over. */
/** What the watch says: the audit log is the one change this store reports (see watch). */
const AUDIT: StoreChange[] = [{ kind: 'audit' }];

const SOLE_LEADER: Leadership = {
  leader: true,
  onChange: () => () => {},
  resign: async () => {},
};

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly tx: StoreTx;
  readonly committed: CommittedReads;
  private readonly queue: GroupCommit;
  private readonly checkpointer: Checkpointer;
  private fallback: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(changes: StoreChange[]) => void>();
  /** An event was appended in the batch in flight. */
  private appended = false;

  /** The committed reads' own connection: WAL lets it read while the queue's connection writes. */
  private readonly reader: Database.Database;

  constructor(private readonly db: Database.Database) {
    const cache = new CatalogueCache();
    const inner = new SqliteTx(db, prepareStatements(db), () => cache.wrote(), () => (this.appended = true));
    this.queue = new GroupCommit(db, inner, MAX_BATCH, () => {
      cache.settled();
      inner.settled();
      this.auditSettled();
    });
    // A single call is a one-call transaction: it may share a batch, and settles after its COMMIT.
    this.tx = wrapMethods(inner, (call) => this.queue.transaction(call));
    // Not through the queue: the queue's connection has the batch in flight open,
    // so a read there either waits for the batch or sees its uncommitted writes.
    this.reader = new Database(db.name, { readonly: true, fileMustExist: true });
    this.reader.pragma('busy_timeout = 5000');
    this.committed = cache.over(readMethods(new SqliteTx(this.reader, prepareStatements(this.reader))));
    // Checkpoints copy the WAL into the database file; they run on a thread
    // of their own, instead of inside whichever commit crosses 1000 pages.
    db.pragma('wal_autocheckpoint = 0');
    this.checkpointer = new Checkpointer(db.name, () => this.checkpointHere());
  }

  private checkpointHere(): void {
    this.fallback ??= setInterval(() => void this.queue.alone(() => this.db.pragma('wal_checkpoint(PASSIVE)')).catch(() => {}), FALLBACK_CHECKPOINT_MS);
    this.fallback.unref();
  }

  /** `fn` must use the `tx` it is given: `store.tx` waits for this transaction's batch, so it would deadlock. */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.queue.transaction(fn);
  }

  /**
   * One controller writes the file (the daemon holds it), so no change comes
   * from elsewhere, and every change but one is in its memory as it writes
   * it. The exception is the audit log, which only the store holds: the
   * watch says when it grew, so that its live readers (the event stream)
   * wait for that instead of polling, whichever path appended the event.
   */
  watch(listener: (changes: StoreChange[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The batch in flight has committed or rolled back: if it appended events,
   * the log grew (or, rolled back, did not: a reader woken for nothing reads
   * nothing new). Told before the batch's callers resume, so no reader can
   * see a writer's return before the news of its event.
   */
  private auditSettled(): void {
    if (!this.appended) return;
    this.appended = false;
    for (const listener of this.listeners) {
      try {
        listener(AUDIT);
      } catch {
        // A listener's failure is its own: the batch has committed, and the others must still hear.
      }
    }
  }

  async campaign(_candidate: string): Promise<Leadership> {
    return SOLE_LEADER;
  }

  async close(): Promise<void> {
    clearInterval(this.fallback);
    // Queued before the queue refuses more: what was queued before close() still commits.
    const drained = this.queue.alone(() => {});
    this.queue.close();
    await Promise.all([drained, this.checkpointer.stop()]);
    // Nothing else uses the file now: the checkpoint thread has closed its connection.
    this.reader.close();
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}
