/**
 * Running transactions: group commit. Transactions queued behind the one in
 * flight run together on one buffer, one after the other (each sees those
 * before it), each inside its own savepoint: one that throws is undone alone
 * and gets its own error. The batch commits as ONE etcd Txn. A commit refused
 * because something read changed meanwhile (another controller won a race)
 * runs the batch again on a new snapshot, a bounded number of times.
 *
 * Why batch: every audited change bumps `audit/seq`, so transactions of one
 * controller would otherwise lose races to each other on that one key.
 *
 * So `fn` may run more than once (a lost race, the prefetch pass): it must
 * only use its tx, and do what it does elsewhere after the commit.
 */
import { SriovError } from '../../host/errors.js';
import type { StoreTx } from '../store.js';
import { type TxnLimits, TxnBuffer } from './buffer.js';
import type { Keys } from './keys.js';
import { type EtcdKv, SnapshotGone } from './kv.js';
import { EtcdTx } from './tx.js';

const TX_METHODS = Object.getOwnPropertyNames(EtcdTx.prototype).filter((name) => name !== 'constructor' && !name.startsWith('_')) as Array<keyof StoreTx>;

type AnyMethod = (...args: unknown[]) => Promise<unknown>;

/** A StoreTx whose every method call is `run(tx => tx.method(...), name)`. */
export function scopedTx(run: (call: (tx: StoreTx) => Promise<unknown>, method: keyof StoreTx) => Promise<unknown>): StoreTx {
  const wrapped: Record<string, AnyMethod> = {};
  for (const name of TX_METHODS) {
    wrapped[name] = (...args) => run((tx) => (tx[name] as unknown as AnyMethod).apply(tx, args), name);
  }
  return wrapped as unknown as StoreTx;
}

/** Methods that only read: outside a transaction they need no queue and no commit. */
export const isRead = (method: string) => /^(list|get|find)/.test(method);

export interface Queued {
  fn: (tx: StoreTx) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Waits a little, more after each lost race, with jitter so the losers do not collide again in step. */
function backoff(attempt: number): Promise<void> {
  const ms = Math.min(50, 2 ** Math.min(attempt, 6)) * Math.random();
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `fn` with a tx that refuses calls once `fn` has returned (a leaked tx would land in no transaction). */
async function runScoped(buffer: TxnBuffer, keys: Keys, fn: (tx: StoreTx) => Promise<unknown>): Promise<unknown> {
  let open = true;
  const inner = new EtcdTx(buffer, keys);
  const tx = scopedTx((call) => (open ? call(inner) : Promise.reject(new Error('transaction already ended; use store.tx'))));
  try {
    return await fn(tx);
  } finally {
    open = false;
  }
}

/** A read outside a transaction: at one snapshot, nothing to commit. */
export async function runRead<T>(kv: EtcdKv, keys: Keys, fn: (tx: StoreTx) => Promise<T>, maxRetries: number): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await runScoped(new TxnBuffer(kv), keys, fn)) as T;
    } catch (err) {
      if (!(err instanceof SnapshotGone) || attempt >= maxRetries) throw err;
    }
  }
}

/**
 * Runs `batch` and settles each entry; returns those that did not fit in
 * one etcd Txn (the caller queues them again, first).
 */
export async function runBatch(kv: EtcdKv, keys: Keys, batch: Queued[], maxRetries: number, limits?: TxnLimits): Promise<Queued[]> {
  let entries = batch;
  for (let attempt = 0; ; attempt++) {
    const buffer = new TxnBuffer(kv, limits);
    const outcomes: Outcome[] = [];
    let deferred: Queued[] = [];
    let stale = false;
    if (entries.length > 1) {
      // A first pass side by side, each on a fork of the snapshot, only to fetch what each reads (results
      // dropped): the real pass below, one after the other, then finds its reads cached, without a round trip.
      await Promise.all(entries.map((q) => runScoped(buffer.fork(), keys, q.fn).catch(() => undefined)));
    }
    for (const [i, q] of entries.entries()) {
      const sp = buffer.savepoint();
      try {
        const value = await runScoped(buffer, keys, q.fn);
        if (!buffer.fits() && i > 0) {
          buffer.rollbackTo(sp);
          deferred = entries.slice(i);
          break;
        }
        outcomes.push({ ok: true, value });
      } catch (err) {
        buffer.rollbackTo(sp);
        if (err instanceof SnapshotGone) {
          stale = true;
          break;
        }
        outcomes.push({ ok: false, error: err });
      }
    }
    entries = entries.slice(0, outcomes.length);
    let committed = false;
    if (!stale) {
      try {
        committed = await buffer.commit();
      } catch (err) {
        // Nothing was written (one Txn): every entry that had succeeded fails with the commit's error.
        settle(entries, outcomes.map((o) => (o.ok ? { ok: false, error: err } : o)));
        return deferred;
      }
    }
    if (committed) {
      settle(entries, outcomes);
      return deferred;
    }
    if (attempt >= maxRetries) {
      const lost = new SriovError('CONFLICT', `the store transaction lost ${attempt + 1} races with other writers in a row; retry`, { nothingChanged: true });
      settle(entries, outcomes.map((o) => (o.ok ? { ok: false, error: lost } : o)));
      return deferred;
    }
    entries = entries.concat(deferred);
    await backoff(attempt);
  }
}

function settle(entries: Queued[], outcomes: Outcome[]): void {
  for (const [i, q] of entries.entries()) {
    const o = outcomes[i]!;
    if (o.ok) q.resolve(o.value);
    else q.reject(o.error);
  }
}
