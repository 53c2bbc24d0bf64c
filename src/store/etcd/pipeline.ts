/**
 * Group commit with several batches committing at once. One etcd Txn takes
 * a Raft round (the leader's log reaching a majority), and a batch is built
 * by a read round trip plus CPU: one batch at a time leaves etcd idle while
 * the next one is built, and the controller idle while etcd commits. So
 * batches are built one after the other (each on what those ahead of it
 * write: ahead.ts) and committed without waiting for those ahead, up to
 * `depth` at a time. A batch whose assumption fails (one ahead did not land,
 * or another controller wrote meanwhile) loses its compares and runs again,
 * as any lost race. After a race lost to another writer the pipeline
 * commits one batch at a time again, and deepens by one per batch that
 * lands: under contention, batches built on one that lost only lose too.
 */
import type { TxnLimits } from './buffer.js';
import { InFlight } from './ahead.js';
import type { Keys } from './keys.js';
import type { EtcdKv } from './kv.js';
import { backoff, type Built, buildBatch, commitBatch, type Queued } from './run.js';

export interface PipelineOptions {
  maxRetries: number;
  limits: TxnLimits;
  /** Transactions per batch at most. */
  maxBatch: number;
  /** Batches committing at once at most. */
  depth: number;
  /** A new audit/in/ key for a batch's events (audit-sequencer.ts): one per build, so no two commits write one. */
  inbox: () => string;
}

export class CommitPipeline {
  private readonly queue: Queued[] = [];
  private readonly inFlight = new InFlight();
  private building = false;
  /**
   * Transactions taken for the next batch: one more after a batch that all
   * fitted, as many as fitted after one that did not (each taken runs its
   * reads, so taking far more than fit wastes them).
   */
  private take: number;
  /** Batches that may commit at once now (options.depth at most). */
  private depth: number;
  /** Commits lost so far. */
  private losses = 0;

  constructor(
    private readonly kv: EtcdKv,
    private readonly keys: Keys,
    private readonly options: PipelineOptions,
  ) {
    this.take = options.maxBatch;
    this.depth = options.depth;
  }

  push(q: Queued): void {
    this.queue.push(q);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.building) return;
    this.building = true;
    try {
      while (this.ready()) await this.next();
    } finally {
      this.building = false;
    }
  }

  /**
   * Whether to build a batch now: when none is committing, or when a full
   * one is queued. A part batch behind one committing waits for it: the
   * commit's clients queue their next transactions meanwhile, and one Txn
   * of many costs etcd far less than several of few.
   */
  private ready(): boolean {
    const committing = this.inFlight.size;
    if (this.queue.length === 0 || committing >= this.depth) return false;
    return committing === 0 || this.queue.length >= this.take;
  }

  private async next(): Promise<void> {
    const batch = this.queue.splice(0, this.take);
    const settledAhead = this.inFlight.settled();
    const [ahead, lossesBefore] = [this.inFlight.size, this.losses];
    const built = await buildBatch(this.kv, this.keys, batch, this.options.limits, this.inFlight.view(), this.options.inbox());
    this.resize(batch.length, built);
    this.queue.unshift(...built.deferred);
    if (built.waiting.length > 0) void settledAhead.then(() => this.requeue(built.waiting));
    if (built.stale) return;
    const commit = commitBatch(built, this.options.maxRetries, () => this.lost(ahead > 0 && this.losses > lossesBefore));
    this.inFlight.add(built.buffer.pending, commit);
    void commit.then(async (again) => {
      if (again.length > 0) await backoff(Math.max(0, ...again.map((q) => q.lost ?? 0)));
      else this.depth = Math.min(this.options.depth, this.depth + 1);
      this.requeue(again);
    });
  }

  /**
   * A commit lost: whether it counts toward the transaction's retries. Not
   * when a batch it was built on lost before it (it lost for that one); else
   * another writer won, and the pipeline narrows to one batch.
   */
  private lost(aheadLost: boolean): boolean {
    this.losses++;
    if (!aheadLost) this.depth = 1;
    return !aheadLost;
  }

  private resize(taken: number, built: Built): void {
    if (built.stale) return;
    const fitted = taken - built.deferred.length;
    if (built.deferred.length > 0) this.take = Math.max(1, fitted);
    else if (taken >= this.take) this.take = Math.min(this.options.maxBatch, this.take + 1);
  }

  /** First in the queue: they were queued before what is there. */
  private requeue(entries: Queued[]): void {
    this.queue.unshift(...entries);
    void this.pump();
  }
}
