/**
 * Group commit with several batches committing at once. One etcd Txn takes
 * a Raft round (the leader's log reaching a majority), and a batch is built
 * by a read round trip plus CPU: one batch at a time leaves etcd idle while
 * the next one is built, and the controller idle while etcd commits. So
 * batches are built one after the other (each on what those ahead of it
 * write: ahead.ts) and committed without waiting for those ahead, up to
 * `depth` at a time. A batch whose assumption fails (one ahead did not land,
 * or another controller wrote meanwhile) loses its compares and runs again,
 * as any lost race.
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

  constructor(
    private readonly kv: EtcdKv,
    private readonly keys: Keys,
    private readonly options: PipelineOptions,
  ) {
    this.take = options.maxBatch;
  }

  push(q: Queued): void {
    this.queue.push(q);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.building) return;
    this.building = true;
    try {
      while (this.queue.length > 0 && this.inFlight.size < this.options.depth) await this.next();
    } finally {
      this.building = false;
    }
  }

  private async next(): Promise<void> {
    const batch = this.queue.splice(0, this.take);
    const settledAhead = this.inFlight.settled();
    const built = await buildBatch(this.kv, this.keys, batch, this.options.limits, this.inFlight.view());
    this.resize(batch.length, built);
    this.queue.unshift(...built.deferred);
    if (built.waiting.length > 0) void settledAhead.then(() => this.requeue(built.waiting));
    if (built.stale) return;
    const commit = commitBatch(built, this.options.maxRetries);
    this.inFlight.add(built.buffer.pending, commit);
    void commit.then(async (again) => {
      if (again.length > 0) await backoff(Math.max(...again.map((q) => q.lost ?? 0)) - 1);
      this.requeue(again);
    });
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
