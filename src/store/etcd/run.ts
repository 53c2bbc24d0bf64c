/**
 * Running transactions: group commit. Transactions queued together run on
 * one buffer, one after the other (each sees those before it), each inside
 * its own savepoint: one that throws is undone alone and gets its own error.
 * The batch commits as ONE etcd Txn. A commit refused because something read
 * changed meanwhile (another controller won a race, or a batch ahead of it
 * did not land) runs its transactions again on a new snapshot, a bounded
 * number of times. pipeline.ts keeps several batches committing at once.
 *
 * Why batch: one etcd Txn costs a Raft round whatever it carries, so many
 * transactions share one; and transactions of one controller that write a
 * key another reads (a PF's committed guarantees, a claim) see each other's
 * writes in the batch instead of losing races to each other on it. (The
 * audit log is no such key: a batch appends to a key of its own, keys.ts.)
 *
 * So `fn` may run more than once (a lost race, the prefetch pass): it must
 * only use its tx, and do what it does elsewhere after the commit.
 */
import { SriovError } from '../../host/errors.js';
import type { AllocationFilter, StoreTx } from '../store.js';
import type { Ahead } from './ahead.js';
import { type TxnLimits, TxnBuffer } from './buffer.js';
import type { Keys } from './keys.js';
import { type EtcdKv, SnapshotGone } from './kv.js';
import { Snapshot } from './snapshot.js';
import { EtcdTx } from './tx.js';

const TX_METHODS = Object.getOwnPropertyNames(EtcdTx.prototype).filter((name) => name !== 'constructor' && !name.startsWith('_')) as Array<keyof StoreTx>;

type AnyMethod = (...args: unknown[]) => Promise<unknown>;

/** A StoreTx whose every method call is `run(tx => tx.method(...args), name, args)`. */
export function scopedTx(run: (call: (tx: StoreTx) => Promise<unknown>, method: keyof StoreTx, args: unknown[]) => Promise<unknown>): StoreTx {
  const wrapped: Record<string, AnyMethod> = {};
  for (const name of TX_METHODS) {
    wrapped[name] = (...args) => run((tx) => (tx[name] as unknown as AnyMethod).apply(tx, args), name, args);
  }
  return wrapped as unknown as StoreTx;
}

/** Methods that only read: outside a transaction they need no queue and no commit. */
export const isRead = (method: string) => /^(list|get|find)/.test(method);

/**
 * Reads of a few small keys, which share a snapshot with those beside them
 * (SharedReads). The others (scans, host records of ~70 KB, pages of the
 * audit log) read alone: a token check that shared a snapshot with a page of
 * host records waited for megabytes before its answer.
 */
const SMALL_READS = new Set(['getTenant', 'getNetwork', 'getAllocation', 'getMigration', 'findTokenByHash', 'getLastEventSeq', 'listTenants', 'listPhysnets', 'listNetworks']);

/**
 * Also small: one host's policy document, and a workload's allocations (a
 * container ADD's check of the interfaces its workload holds, on every
 * allocation: alone, it was one round trip of its own per request, 1.5 of
 * the 2.7 etcd calls an allocation through the API cost).
 */
export function isSmallRead(method: string, args: readonly unknown[]): boolean {
  if (SMALL_READS.has(method)) return true;
  if (method === 'listPolicies') return args[0] !== undefined;
  return method === 'listAllocations' && (args[0] as AllocationFilter | undefined)?.workload !== undefined;
}

export interface Queued {
  fn: (tx: StoreTx) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** Commits it was in that did not land (a race lost, or a batch ahead that did not commit). */
  lost?: number;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** A batch run on its buffer, ready to commit. */
export interface Built {
  buffer: TxnBuffer;
  /** Those the commit settles, with what each gave. */
  entries: Queued[];
  outcomes: Outcome[];
  /** Those that did not fit in one etcd Txn: queued again, first. */
  deferred: Queued[];
  /** Those that failed on a value assumed from a batch ahead: run again once those batches settle. */
  waiting: Queued[];
  /** The snapshot was compacted away: nothing to commit, every entry but the waiting runs again. */
  stale: boolean;
}

/** Waits a little, more after each lost race, with jitter so the losers do not collide again in step. */
export function backoff(attempt: number): Promise<void> {
  const ms = Math.min(50, 2 ** Math.min(attempt, 6)) * Math.random();
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `fn` with a tx that refuses calls once `fn` has returned (a leaked tx would land in no transaction). */
async function runScoped(buffer: TxnBuffer, keys: Keys, fn: (tx: StoreTx) => Promise<unknown>, inbox?: string): Promise<unknown> {
  let open = true;
  const inner = new EtcdTx(buffer, keys, inbox);
  const tx = scopedTx((call) => (open ? call(inner) : Promise.reject(new Error('transaction already ended; use store.tx'))));
  try {
    return await fn(tx);
  } finally {
    open = false;
  }
}

/**
 * Reads outside a transaction, each at one snapshot; a small one shares it
 * with the small reads that start in the same turn of the event loop: their ranges go to
 * etcd as one read-only Txn, not one round trip each (a request's token,
 * network and allocation reads, and those of every other request beside it).
 * A snapshot takes no reader once its first range went out (Snapshot.joinable),
 * so no read sees a revision from before it began.
 */
export class SharedReads {
  private current: Snapshot | null = null;

  constructor(
    private readonly kv: EtcdKv,
    private readonly keys: Keys,
    private readonly maxRetries: number,
  ) {}

  /** `shared`: whether `fn` reads few small keys; a read of many or large ones (a scan, host records) goes alone, so none waits for its answer. */
  async run<T>(fn: (tx: StoreTx) => Promise<T>, shared: boolean): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await runScoped(new TxnBuffer(this.kv, undefined, shared ? this.snapshot() : undefined), this.keys, fn)) as T;
      } catch (err) {
        if (!(err instanceof SnapshotGone) || attempt >= this.maxRetries) throw err;
      }
    }
  }

  private snapshot(): Snapshot {
    if (this.current === null || !this.current.joinable) this.current = new Snapshot(this.kv);
    return this.current;
  }
}

/**
 * Runs `batch` on one buffer, each entry in its own savepoint, reading
 * what the batches still committing write as they will leave it (`ahead`).
 * Its audit events go to `inbox`, a key no other batch writes (audit-sequencer.ts).
 */
export async function buildBatch(kv: EtcdKv, keys: Keys, batch: Queued[], limits: TxnLimits, ahead: Ahead, inbox: string): Promise<Built> {
  const buffer = new TxnBuffer(kv, limits, undefined, ahead);
  const built: Built = { buffer, entries: [], outcomes: [], deferred: [], waiting: [], stale: false };
  if (batch.length > 1) {
    // A first pass side by side, each on a fork of the snapshot, only to fetch what each reads (results
    // dropped): the real pass below, one after the other, then finds its reads cached, without a round trip.
    await Promise.all(batch.map((q) => runScoped(buffer.fork(), keys, q.fn, inbox).catch(() => undefined)));
  }
  for (const [i, q] of batch.entries()) {
    const sp = buffer.savepoint();
    try {
      const value = await runScoped(buffer, keys, q.fn, inbox);
      if (!buffer.fits() && built.entries.length > 0) {
        buffer.rollbackTo(sp);
        built.deferred = batch.slice(i);
        break;
      }
      built.entries.push(q);
      built.outcomes.push({ ok: true, value });
    } catch (err) {
      const assumed = buffer.assumed > sp.assumed;
      buffer.rollbackTo(sp);
      if (err instanceof SnapshotGone) {
        return { ...built, entries: [], outcomes: [], deferred: [...built.entries, ...batch.slice(i)], stale: true };
      }
      // A refusal decided on a write that may never land is not an answer yet.
      if (assumed) {
        built.waiting.push(q);
        continue;
      }
      built.entries.push(q);
      built.outcomes.push({ ok: false, error: err });
    }
  }
  return built;
}

/**
 * Commits a built batch and settles its entries; returns those to run again
 * (the commit lost a race: something read changed), each at most
 * `maxRetries` times, then CONFLICT. `counts` says whether this loss counts
 * toward that (not when a batch it was built on lost first).
 */
export async function commitBatch(built: Built, maxRetries: number, counts: () => boolean = () => true): Promise<Queued[]> {
  const { entries, outcomes } = built;
  let committed: boolean;
  try {
    committed = await built.buffer.commit();
  } catch (err) {
    // Nothing was written (one Txn): every entry that had succeeded fails with the commit's error.
    settle(entries, outcomes.map((o) => (o.ok ? { ok: false, error: err } : o)));
    return [];
  }
  if (committed) {
    settle(entries, outcomes);
    return [];
  }
  const again: Queued[] = [];
  const count = counts() ? 1 : 0;
  for (const [i, q] of entries.entries()) {
    q.lost = (q.lost ?? 0) + count;
    if (q.lost <= maxRetries) {
      again.push(q);
      continue;
    }
    const o = outcomes[i]!;
    q.reject(o.ok ? new SriovError('CONFLICT', `the store transaction lost ${q.lost} races with other writers in a row; retry`, { nothingChanged: true }) : o.error);
  }
  return again;
}

function settle(entries: Queued[], outcomes: Outcome[]): void {
  for (const [i, q] of entries.entries()) {
    const o = outcomes[i]!;
    if (o.ok) q.resolve(o.value);
    else q.reject(o.error);
  }
}
