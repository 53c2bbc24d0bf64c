/**
 * The etcd store's watch: one etcd watch over the store's prefix, its
 * events decoded (keys.ts) into `StoreChange`s and delivered one call per
 * revision, in revision order. One revision is one committed etcd Txn, so
 * a listener sees a transaction's changes together.
 *
 * After a reconnect the watch resumes from the revision after the last one
 * delivered: no change is lost, and none is delivered twice. etcd3 would
 * resume from the last response's header revision instead, which runs ahead
 * of the events while a watcher catches up (etcd sends at most 1,000
 * revisions per response, stamped with the current revision): a reconnect
 * there would skip the rest. So the resume point is set here, from events.
 */
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import type { HostRecord } from '../../domain/types.js';
import type { StoreChange } from '../store.js';
import type { Keys } from './keys.js';

export interface WatchOptions {
  /**
   * The first revision to deliver: one past the revision the caller's state
   * was read at, so nothing committed in between is missed (a change
   * delivered that the state already holds is harmless: listeners are
   * idempotent). Default: changes after the watch is created.
   */
  startRevision?: number;
  /**
   * A record that does not decode, or the watch ended by etcd (its resume
   * revision was compacted away: changes were lost and the listener's state
   * must be read again; the watch goes on from the current revision).
   */
  onError?: (err: Error) => void;
  /** After such an end: the new watch is in place, so a state read now misses nothing (store.ts, WatchHooks). */
  onResync?: () => void;
}

/**
 * The kinds of keys that carry a change; every other key (claims, indexes,
 * the audit sequence and the events not numbered yet under audit/in/,
 * election) is bookkeeping.
 */
const CATALOGUE = new Set(['tenants', 'physnets', 'networks', 'segments']);

/** Decodes one event; null for a key no listener needs. */
export function decodeEvent(k: Keys, kv: IKeyValue, deleted: boolean): StoreChange | null {
  const key = kv.key.toString();
  if (!key.startsWith(k.prefix)) return null;
  const path = key.slice(k.prefix.length);
  const slash = path.indexOf('/');
  if (slash < 0) return null;
  const [kind, name] = [path.slice(0, slash), path.slice(slash + 1)];
  const value = () => (deleted ? null : JSON.parse(kv.value.toString()));
  if (CATALOGUE.has(kind)) return { kind: 'catalogue' };
  switch (kind) {
    case 'allocations':
      return { kind: 'allocation', id: name, value: value() };
    case 'hosts':
      return { kind: 'host', name, value: value() };
    case 'alive': {
      if (deleted) return null; // goes with its host
      const beat = value() as { state: HostRecord['state']; at: string };
      return { kind: 'heartbeat', name, state: beat.state, at: beat.at };
    }
    case 'migrations':
      return { kind: 'migration', id: name, value: value() };
    case 'policies':
      return { kind: 'policy', host: name };
    case 'tokens':
      return { kind: 'token', id: name, value: value() };
    case 'audit':
      // A batch's numbered events are one record (keys.ts), put by the sequencer: that put is the news
      // (audit/in/, what a batch appended before it is numbered, is not). Not decoded: readers read the log.
      return name.startsWith('events/') && !deleted ? { kind: 'audit' } : null;
    default:
      return null;
  }
}

/** Kinds said once per revision, however many of their keys it wrote. */
const ONCE = new Set<StoreChange['kind']>(['catalogue', 'audit']);

/** One revision's changes, the catalogue and the audit log once each. */
function decodeRevision(k: Keys, events: IWatchResponse['events'], onError: (err: Error) => void): StoreChange[] {
  const changes: StoreChange[] = [];
  const said = new Set<StoreChange['kind']>();
  for (const ev of events) {
    let change: StoreChange | null;
    try {
      change = decodeEvent(k, ev.kv, ev.type === 'Delete');
    } catch (err) {
      onError(new Error(`watch: ${ev.kv.key.toString()} at revision ${ev.kv.mod_revision} does not decode: ${(err as Error).message}`));
      continue;
    }
    if (change && ONCE.has(change.kind)) {
      if (said.has(change.kind)) continue;
      said.add(change.kind);
    }
    if (change) changes.push(change);
  }
  return changes;
}

/** Splits a response's events by revision (they come in revision order). */
function byRevision(events: IWatchResponse['events']): Array<[number, IWatchResponse['events']]> {
  const groups: Array<[number, IWatchResponse['events']]> = [];
  for (const ev of events) {
    const rev = Number(ev.kv.mod_revision);
    const last = groups[groups.length - 1];
    if (last && last[0] === rev) last[1].push(ev);
    else groups.push([rev, [ev]]);
  }
  return groups;
}

/** etcd3 keeps the revision a reconnect resumes from in the watcher's request; this is the one place that sets it. */
function resumeFrom(watcher: Watcher, revision: number): void {
  (watcher as unknown as { request: { start_revision?: string | number } }).request.start_revision = String(revision);
}

/** Watches the store under `k.prefix`; returns the unsubscribe. */
export function watchChanges(client: Etcd3, k: Keys, listener: (changes: StoreChange[]) => void, opts: WatchOptions = {}): () => void {
  const onError = opts.onError ?? (() => {});
  /** The last revision delivered (or known to hold nothing for us); null until the watch knows where it starts. */
  let delivered: number | null = opts.startRevision === undefined ? null : opts.startRevision - 1;
  let watcher: Watcher | null = null;
  let stopped = false;
  /** Changes were lost: the listener reads its state again once the new watch has its start revision. */
  let lost = false;

  const deliver = (changes: StoreChange[], rev: number) => {
    try {
      listener(changes);
    } catch (err) {
      // A listener's bug must not end the watch (etcd3 would rethrow it out of the stream).
      onError(new Error(`watch listener failed on revision ${rev}: ${(err as Error).message}`));
    }
  };
  const onData = (res: IWatchResponse) => {
    for (const [rev, events] of byRevision(res.events)) {
      if (delivered !== null && rev <= delivered) continue;
      delivered = rev;
      const changes = decodeRevision(k, events, onError);
      if (changes.length) deliver(changes, rev);
    }
    if (delivered !== null && watcher) resumeFrom(watcher, delivered + 1);
  };
  const onConnected = (res: IWatchResponse) => {
    // A watch created without a start revision begins after the one it was created at.
    delivered ??= Number(res.header.revision);
    if (watcher) resumeFrom(watcher, delivered + 1);
    if (lost) {
      lost = false;
      opts.onResync?.();
    }
  };
  const start = () => {
    if (stopped) return;
    const b = client.watch().prefix(k.prefix);
    if (delivered !== null) b.startRevision(String(delivered + 1));
    const w = b.watcher();
    watcher = w;
    w.on('data', onData);
    w.on('connected', onConnected);
    w.on('error', (err: Error) => {
      // etcd cancelled the watch (its start revision was compacted): what was between is gone.
      if (watcher !== w || stopped) return;
      onError(new Error(`watch on ${k.prefix} ended by etcd, changes may be lost (read the state again): ${err.message}`));
      delivered = null;
      lost = true;
      void w.cancel().catch(() => {});
      setTimeout(start, 1_000).unref();
    });
  };
  start();
  return () => {
    stopped = true;
    void watcher?.cancel().catch(() => {});
  };
}
