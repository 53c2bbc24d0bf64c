/**
 * The embedded store: one SQLite file written by one process, one
 * transaction at a time on its one connection.
 */
import type Database from 'better-sqlite3';
import { Mutex } from '../../util/mutex.js';
import type { Leadership, Store, StoreChange, StoreTx } from '../store.js';
import { prepareStatements } from './statements.js';
import { SqliteTx, wrapMethods } from './tx.js';

const CHECKPOINT_MS = 1000;

/** The embedded store has one controller: it leads from the start, and nobody takes over. */
const SOLE_LEADER: Leadership = {
  leader: true,
  onChange: () => () => {},
  resign: async () => {},
};

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly tx: StoreTx;
  /**
   * One SQLite connection has one transaction: while a `transaction` awaits,
   * nothing else may run SQL on the connection, or it would silently join it.
   */
  private readonly mutex = new Mutex();
  private readonly inner: SqliteTx;
  private readonly begin: Database.Statement;
  private readonly commit: Database.Statement;
  private readonly rollback: Database.Statement;

  private readonly checkpointer: NodeJS.Timeout;

  constructor(private readonly db: Database.Database) {
    this.inner = new SqliteTx(db, prepareStatements(db));
    // Checkpoints copy the WAL into the database file; run here, off the
    // request path, instead of inside whichever commit crosses 1000 pages.
    db.pragma('wal_autocheckpoint = 0');
    this.checkpointer = setInterval(() => void this.mutex.run(async () => db.pragma('wal_checkpoint(PASSIVE)')), CHECKPOINT_MS);
    this.checkpointer.unref();
    this.tx = wrapMethods(this.inner, (call) => this.mutex.run(call));
    // IMMEDIATE takes the write lock up front, so a read-then-write in `fn` cannot be raced.
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
  }

  /** `fn` must use the `tx` it is given: `store.tx` waits for this transaction, so it would deadlock. */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      let open = true;
      // Refuses calls made after the end (a leaked tx), which would otherwise run in someone else's transaction.
      const scoped = wrapMethods(this.inner, (call) =>
        open ? call() : Promise.reject(new Error('transaction already ended; use store.tx')),
      );
      this.begin.run();
      try {
        const result = await fn(scoped);
        this.commit.run();
        return result;
      } catch (err) {
        // SQLite itself rolls back on some errors (e.g. SQLITE_FULL); ROLLBACK would then fail.
        if (this.db.inTransaction) this.rollback.run();
        throw err;
      } finally {
        open = false;
      }
    });
  }

  /** One controller writes the file (the daemon holds it), so no change comes from elsewhere. */
  watch(_listener: (changes: StoreChange[]) => void): () => void {
    return () => {};
  }

  async campaign(_candidate: string): Promise<Leadership> {
    return SOLE_LEADER;
  }

  close(): Promise<void> {
    clearInterval(this.checkpointer);
    return this.mutex.run(async () => {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      this.db.close();
    });
  }
}

