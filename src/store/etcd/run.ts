/**
 * Running a transaction: `fn` on a fresh buffer, then one commit; a commit
 * refused because something read changed meanwhile (another controller won
 * a race) runs `fn` again on a new snapshot, a bounded number of times.
 */
import { SriovError } from '../../host/errors.js';
import type { StoreTx } from '../store.js';
import { TxnBuffer } from './buffer.js';
import type { Keys } from './keys.js';
import { type EtcdKv, SnapshotGone } from './kv.js';
import { EtcdTx } from './tx.js';

const TX_METHODS = Object.getOwnPropertyNames(EtcdTx.prototype).filter((name) => name !== 'constructor' && !name.startsWith('_')) as Array<keyof StoreTx>;

type AnyMethod = (...args: unknown[]) => Promise<unknown>;

/** A StoreTx whose every method call is `run(tx => tx.method(...))`. */
export function scopedTx(run: (call: (tx: StoreTx) => Promise<unknown>) => Promise<unknown>): StoreTx {
  const wrapped: Record<string, AnyMethod> = {};
  for (const name of TX_METHODS) {
    wrapped[name] = (...args) => run((tx) => (tx[name] as unknown as AnyMethod).apply(tx, args));
  }
  return wrapped as unknown as StoreTx;
}

/** Waits a little, more after each lost race, with jitter so the losers do not collide again in step. */
function backoff(attempt: number): Promise<void> {
  const ms = Math.min(50, 2 ** Math.min(attempt, 6)) * Math.random();
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function runTransaction<T>(kv: EtcdKv, keys: Keys, fn: (tx: StoreTx) => Promise<T>, maxRetries: number): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const buffer = new TxnBuffer(kv);
    let open = true;
    const inner = new EtcdTx(buffer, keys);
    // Refuses calls made after the end (a leaked tx): they would land in no transaction.
    const tx = scopedTx((call) => (open ? call(inner) : Promise.reject(new Error('transaction already ended; use store.tx'))));
    let committed = false;
    let result: T;
    try {
      result = await fn(tx);
      committed = await buffer.commit();
    } catch (err) {
      if (!(err instanceof SnapshotGone) || attempt >= maxRetries) throw err;
    } finally {
      open = false;
    }
    if (committed) return result!;
    if (attempt >= maxRetries) {
      throw new SriovError('CONFLICT', `the store transaction lost ${attempt + 1} races with other writers in a row; retry`, { nothingChanged: true });
    }
    await backoff(attempt);
  }
}
