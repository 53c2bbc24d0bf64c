/** What every control-plane service shares: the store, the in-memory indexes and the change feed. */
import type { Actor } from '../domain/actor.js';
import type { MacPool } from '../domain/mac-pool.js';
import type { Scheduler } from '../scheduler/index.js';
import type { Store, StoreTx } from '../store/store.js';
import { Mutex } from '../util/mutex.js';
import { AllocationWaits } from './allocation-waits.js';
import type { ChangeFeed } from './change-feed.js';

export interface Context {
  store: Store;
  scheduler: Scheduler;
  macs: MacPool;
  feed: ChangeFeed;
  /** Callers long-polling one allocation's state (GET ...?wait=S), woken when it changes. */
  waits: AllocationWaits;
  /**
   * Serialises changes that decide on in-memory state (choose a VF, pick a
   * MAC) with the store write that makes them durable, so two requests in
   * this controller never decide on the same VF. The store's own unique
   * constraints cover other controllers.
   */
  decisions: Mutex;
  now(): string;
}

export function newContext(parts: Omit<Context, 'decisions' | 'now' | 'waits'>): Context {
  return { ...parts, decisions: new Mutex(), waits: new AllocationWaits(), now: () => new Date().toISOString() };
}

/** Store a change and its audit event in one transaction. */
export async function recorded<T>(
  ctx: Context,
  actor: Actor,
  action: string,
  object: string,
  change: (tx: StoreTx) => Promise<{ before: unknown; after: unknown; result: T }>,
): Promise<T> {
  return ctx.store.transaction(async (tx) => {
    const { before, after, result } = await change(tx);
    await tx.appendEvent({ at: ctx.now(), actor: `${actor.role}/${actor.id}`, action, object, before, after });
    return result;
  });
}
