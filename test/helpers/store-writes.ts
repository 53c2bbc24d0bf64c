/**
 * A Store that tells `onWrite` of every StoreTx write (method name and
 * arguments), in or out of transactions, before passing it on: for tests and
 * benches that assert or measure what a code path writes.
 */
import type { Store, StoreTx } from '../../src/store/store.js';

const WRITE = /^(put|insert|update|touch|delete|append|set|lease|release|bind)/;

export function watchWrites(store: Store, onWrite: (method: string, args: unknown[]) => void): Store {
  const wrap = (tx: StoreTx): StoreTx =>
    new Proxy(tx, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof prop !== 'string' || typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (WRITE.test(prop)) onWrite(prop, args);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'tx') return wrap(target.tx);
      if (prop === 'transaction') return <T>(fn: (tx: StoreTx) => Promise<T>) => target.transaction((tx) => fn(wrap(tx)));
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}
