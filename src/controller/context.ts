/** What every control-plane service shares: the store, the in-memory indexes and the change feed. */
import type { Actor } from '../domain/actor.js';
import type { MacPool } from '../domain/mac-pool.js';
import type { Scheduler } from '../scheduler/index.js';
import type { NewAuditEvent, Store, StoreTx } from '../store/store.js';
import { Mutex } from '../util/mutex.js';
import { AllocationWaits } from './allocation-waits.js';
import { ChangeFeed } from './change-feed.js';
import type { StoreReads } from './read-mirror.js';

export interface Context {
  store: Store;
  /**
   * The API's reads (lists and gets): the store's, or memory's while the
   * store cannot answer (stale-reads.ts). Never for a read a write decides on.
   */
  reads: StoreReads;
  scheduler: Scheduler;
  macs: MacPool;
  feed: ChangeFeed;
  /**
   * Changes that concern every host (networks and physnets created, changed or
   * deleted), under the one key CATALOGUE: the device views wait on it beside
   * their host's feed. Kept apart from `feed` so that agents polling their
   * desired state (which no network change alters) are not woken by them.
   */
  catalogue: ChangeFeed;
  /**
   * Wakes the audit log's live streams (key EVENTS) when the log grows:
   * bumped by cluster-sync.ts on the store watch's news of an append, from
   * whichever controller or write path.
   */
  events: ChangeFeed;
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
  /**
   * With several controllers: resolves once the next batch of other
   * controllers' changes has reached memory (ClusterSync), or after `ms`.
   * Undefined for a controller alone on its store.
   */
  caughtUp?: (ms: number) => Promise<void>;
}

/** The catalogue feed's one key. */
export const CATALOGUE = '*';
/** The events feed's one key. */
export const EVENTS = '*';

export function newContext(parts: Omit<Context, 'decisions' | 'now' | 'waits' | 'catalogue' | 'events' | 'reads'> & { reads?: StoreReads }): Context {
  return { ...parts, reads: parts.reads ?? parts.store.tx, catalogue: new ChangeFeed(), events: new ChangeFeed(), decisions: new Mutex(), waits: new AllocationWaits(), now: isoClock() };
}

/**
 * The time as ISO 8601 text, built once per millisecond: every allocation
 * asks twice (its createdAt, its audit event), and at thousands a second a
 * Date and its text each time were garbage whose collection pauses every
 * request in flight.
 */
export function isoClock(): () => string {
  let ms = NaN;
  let text = '';
  return () => {
    const now = Date.now();
    if (now !== ms) {
      ms = now;
      text = new Date(now).toISOString();
    }
    return text;
  };
}

/** Store a change and its audit event in one transaction. Not itself async: one frame less on every write's path. */
export function recorded<T>(
  ctx: Context,
  actor: Actor,
  action: string,
  object: string,
  change: (tx: StoreTx) => Promise<{ before: unknown; after: unknown; result: T }>,
): Promise<T> {
  // The live event streams are woken by the store's watch once the event is committed (cluster-sync.ts), as for
  // every other write path: no wake here, which was a promise and a closure more on every allocation's path.
  return ctx.store.transaction(async (tx) => {
    const { before, after, result } = await change(tx);
    await tx.appendEvent(auditEvent(ctx, actor, action, object, before, after));
    return result;
  });
}

/** The audit event of a change `actor` made, as `recorded` appends it: for a write path that appends its own. */
export function auditEvent(ctx: Context, actor: Actor, action: string, object: string, before: unknown, after: unknown): NewAuditEvent & { at: string } {
  return { at: ctx.now(), actor: `${actor.role}/${actor.id}`, action, object, before, after };
}
