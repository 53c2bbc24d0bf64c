/**
 * One SQLite store shared by several in-process controllers, with the watch
 * a distributed store gives: every committed write comes back to every
 * subscriber as `StoreChange`s, one batch per transaction, in commit order.
 * For unit tests of what controllers do with each other's changes, without
 * an etcd (the system tests run the real one).
 */
import type { Allocation, HostRecord, Migration, TokenRecord } from '../../src/domain/types.js';
import type { Leadership, Store, StoreChange, StoreTx } from '../../src/store/store.js';

type Method = (...args: unknown[]) => Promise<unknown>;

/** What each writing method changed, from its arguments and its result. */
const CHANGES: Partial<Record<keyof StoreTx, (args: unknown[], result: unknown) => StoreChange[]>> = {
  putTenant: () => [{ kind: 'catalogue' }],
  deleteTenant: () => [{ kind: 'catalogue' }],
  putPhysnet: () => [{ kind: 'catalogue' }],
  putNetwork: () => [{ kind: 'catalogue' }],
  deleteNetwork: () => [{ kind: 'catalogue' }],
  putHost: ([h]) => [{ kind: 'host', name: (h as HostRecord).name, value: h as HostRecord }],
  deleteHost: ([name]) => [{ kind: 'host', name: name as string, value: null }],
  touchHost: ([name, state, at], ok) => (ok ? [{ kind: 'heartbeat', name: name as string, state: state as HostRecord['state'], at: at as string }] : []),
  insertAllocation: ([a]) => [{ kind: 'allocation', id: (a as Allocation).id, value: a as Allocation }],
  updateAllocationState: (_, a) => allocation(a),
  setAllocationAttachment: (_, a) => allocation(a),
  bindClaim: (_, a) => allocation(a),
  setAllocationMigration: (_, a) => allocation(a),
  putPolicy: ([p]) => [{ kind: 'policy', host: (p as { host: string }).host }],
  putToken: ([t]) => [{ kind: 'token', id: (t as TokenRecord).id, value: t as TokenRecord }],
  deleteToken: ([id], ok) => (ok ? [{ kind: 'token', id: id as string, value: null }] : []),
  insertMigration: ([m]) => [{ kind: 'migration', id: (m as Migration).id, value: m as Migration }],
  updateMigration: ([m], ok) => (ok ? [{ kind: 'migration', id: (m as Migration).id, value: m as Migration }] : []),
  appendEvent: () => [{ kind: 'audit' }],
};

function allocation(a: unknown): StoreChange[] {
  return a ? [{ kind: 'allocation', id: (a as Allocation).id, value: structuredClone(a as Allocation) }] : [];
}

export interface WatchedStore extends Store {
  /** Every batch delivered so far, in order (to deliver again: applying twice must be harmless). */
  readonly delivered: StoreChange[][];
}

/** `inner` with a watch; `campaign` answers with `leadership` (default: always the leader). */
export function watched(inner: Store, leadership?: Leadership): WatchedStore {
  const listeners = new Set<(changes: StoreChange[]) => void>();
  const delivered: StoreChange[][] = [];
  const deliver = (changes: StoreChange[]) => {
    if (changes.length === 0) return;
    delivered.push(changes);
    for (const l of listeners) l(changes);
  };
  const recording = (tx: StoreTx, into: StoreChange[]): StoreTx => {
    const out: Record<string, Method> = {};
    // for...in: a store's tx may keep its methods on a prototype (SQLite's batch members do).
    for (const name in tx) {
      const method = (tx[name as keyof StoreTx] as Method).bind(tx);
      const change = CHANGES[name as keyof StoreTx];
      out[name] = change ? async (...args) => {
        const result = await method(...args);
        into.push(...change(structuredClone(args), result));
        return result;
      } : method;
    }
    return out as unknown as StoreTx;
  };
  const single: StoreTx = new Proxy(inner.tx, {
    get: (target, name: string) => {
      const change = CHANGES[name as keyof StoreTx];
      const method = (target as unknown as Record<string, Method>)[name]!;
      if (!change) return method;
      return async (...args: unknown[]) => {
        const batch: StoreChange[] = [];
        const result = await (recording(target, batch)[name as keyof StoreTx] as Method)(...args);
        deliver(batch);
        return result;
      };
    },
  });
  return {
    kind: 'etcd',
    tx: single,
    committed: inner.committed,
    delivered,
    async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
      const batch: StoreChange[] = [];
      const result = await inner.transaction((tx) => fn(recording(tx, batch)));
      deliver(batch);
      return result;
    },
    watch(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    campaign: async (candidate) => leadership ?? inner.campaign(candidate),
    close: () => inner.close(),
  };
}
