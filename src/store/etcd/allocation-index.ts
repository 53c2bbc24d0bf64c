/**
 * Which allocations each host, tenant, network, workload and state has, in
 * this process's memory, kept by a watch on `allocations/`: a filtered list finds its
 * candidates here instead of in index keys, which etcd wrote four of with
 * every allocation (and two more with every change of state).
 *
 * An allocation's host, tenant and network never change, so an id once seen
 * stays in its sets: they are supersets, and a list reads each candidate's
 * record at its snapshot and filters (tx.ts). What makes them complete at a
 * snapshot is `added/<field>/<value>` (keys.ts), which every insert writes,
 * blind, with its id: its mod revision at the snapshot is the last insert
 * of that value up to the snapshot, so once this memory has seen that
 * revision it holds every candidate (`ids` waits for it); and the list's
 * commit compares that key, so an insert after its snapshot fails it.
 *
 * A state changes, so the ids by state are kept otherwise: each id's state
 * as of `revision`, and per state a superset, in id order (sorted-ids.ts),
 * of the ids in that state since the set was last rebuilt. An id that
 * leaves a state stays in its set (a list at a snapshot older than this
 * memory may still need it; it reads the record and filters) until that set
 * holds more ids that left than ids in the state: then it is rebuilt
 * without them, and complete only for snapshots from that revision on
 * (`validFrom`); an older one lists from the records. `added/state/<state>`,
 * written with every allocation entering the state, does what the other
 * `added/` keys do.
 *
 * Loaded on the first filtered list, not at open: a controller reads every
 * allocation at start anyway, and a process that never filters (the CLI's
 * export, a bench) pays nothing. Records an older build wrote are loaded
 * as any: this memory is built from the records, no key of theirs.
 */
import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import { SriovError } from '../../host/errors.js';
import type { Keys } from './keys.js';
import { prefixEnd } from './kv.js';
import { SortedIds } from './sorted-ids.js';

export type IndexedField = 'host' | 'tenant' | 'network' | 'workload';
/**
 * In the order a list picks its candidates by (the first field the filter
 * names). `workload` is last: it serves a container ADD without a host
 * (allocations.ts' existingAttachment), which otherwise read every record.
 */
export const INDEXED_FIELDS: readonly IndexedField[] = ['host', 'network', 'tenant', 'workload'];

/** An allocation record's value for `field`, as a list filters on it (the workload's name). */
export function indexedValue(a: { host: unknown; tenant: unknown; network: unknown; workload: unknown }, field: IndexedField): string {
  return field === 'workload' ? String((a.workload as { name?: unknown } | null)?.name) : String(a[field]);
}

/** Records per range page while loading (each ~1 KB). */
const LOAD_PAGE = 1000;

/**
 * Ids that left a state a set keeps, beyond as many as are in it, before it
 * is rebuilt: a list by state reads at most twice its state's ids and this
 * many more. A rebuild costs the set's size, so it is paid for by as many
 * departures.
 */
const LEFT_SLACK = 256;

const STATE_FIELD = '"state":"';
const STATE_FIELD_BYTES = Buffer.from(STATE_FIELD);

/**
 * The record's state, found without decoding it (every event of a state
 * change would otherwise parse ~1 KB): no object inside an allocation has a
 * `state` field, and a quote inside a string value is escaped, so the first
 * match is the record's own. Null when it has none.
 */
export function stateIn(value: string | Buffer): string | null {
  if (typeof value === 'string') {
    const at = value.indexOf(STATE_FIELD);
    if (at < 0) return null;
    const from = at + STATE_FIELD.length;
    return value.slice(from, value.indexOf('"', from));
  }
  const at = value.indexOf(STATE_FIELD_BYTES);
  if (at < 0) return null;
  const from = at + STATE_FIELD_BYTES.length;
  return value.toString('latin1', from, value.indexOf(0x22, from));
}

/** A superset of the ids in one state (see the top), complete for snapshots from `validFrom` on. */
interface StateSet {
  ids: SortedIds;
  validFrom: number;
}

/** The ids in one state, and how many of them are in it. */
interface InState {
  current: StateSet;
  /**
   * The set before the last rebuild, which no longer grows: still complete
   * for a snapshot taken before that rebuild (what entered the state later
   * is newer than the snapshot), so a list that read its snapshot just
   * before a rebuild does not fall back to the records.
   */
  previous: StateSet | null;
  members: number;
}

/** One value's ids: appended as seen, sorted when asked for (lists are in id order). */
class Ids {
  private ids: string[] = [];
  private sorted = true;

  add(id: string): void {
    if (this.ids.length > 0 && id < this.ids[this.ids.length - 1]!) this.sorted = false;
    this.ids.push(id);
  }

  list(): readonly string[] {
    if (!this.sorted) {
      this.ids.sort();
      this.sorted = true;
    }
    return this.ids;
  }
}

export class AllocationIndex {
  /**
   * Each id's state. An id here that is no claim has indexed fields that
   * can no longer change: its record is decoded once.
   */
  private readonly stateOf = new Map<string, string>();
  private readonly byState = new Map<string, InState>();
  /** The revision of the last load: a state first seen later had no id before it. */
  private loadedAt = 0;
  /**
   * Device-plugin claims, by id, with the workload name they were last
   * indexed under: binding one to its pod (bindClaim) renames its workload,
   * so their records are decoded on every change.
   */
  private readonly claims = new Map<string, string>();
  private readonly by: Record<IndexedField, Map<string, Ids>> = { host: new Map(), tenant: new Map(), network: new Map(), workload: new Map() };
  /** The last revision this memory holds everything of (0: not loaded). */
  private revision = 0;
  private loading: Promise<void> | null = null;
  private watcher: Watcher | null = null;
  private closed = false;
  private waiters: Array<{ revision: number; resolve(): void }> = [];

  constructor(
    private readonly client: Etcd3,
    private readonly keys: Keys,
    private readonly timeoutMs: number,
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  /**
   * The ids with `field` = `value`, sorted, as this memory holds them once it
   * has seen `atLeast` (a revision; waits for the watch, up to the timeout).
   */
  async ids(field: IndexedField, value: string, atLeast: number): Promise<readonly string[]> {
    this.loading ??= this.load();
    await this.loading;
    if (this.revision < atLeast) await this.reach(atLeast);
    return this.by[field].get(value)?.list() ?? [];
  }

  /**
   * A superset of the ids in `state` at snapshot `snapshot`, in id order, once
   * this memory has seen `atLeast`; null when the set was rebuilt after that
   * snapshot (it may lack an id that left the state since): list the records.
   */
  async stateIds(state: string, atLeast: number, snapshot: number): Promise<SortedIds | null> {
    this.loading ??= this.load();
    await this.loading;
    if (this.revision < atLeast) await this.reach(atLeast);
    const entry = this.byState.get(state);
    if (entry === undefined) return snapshot >= this.loadedAt ? new SortedIds() : null;
    const set = [entry.current, entry.previous].find((s) => s !== null && snapshot >= s.validFrom);
    return set?.ids ?? null;
  }

  /**
   * Whether `states` hold at least half of the allocations this memory knows:
   * then a list of them reads fewer records, and fewer round trips, by
   * scanning every record (256 a page) than by reading its candidates one by
   * one (128 a round trip), as a list of the attached in a settled fleet does.
   */
  mostlyIn(states: readonly string[]): boolean {
    let members = 0;
    for (const state of states) members += this.byState.get(state)?.members ?? 0;
    return 2 * members >= this.stateOf.size;
  }

  close(): void {
    this.closed = true;
    void this.watcher?.cancel().catch(() => {});
    this.watcher = null;
  }

  private reach(revision: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new SriovError('UNAVAILABLE', `the etcd store's allocation index did not reach revision ${revision} within ${this.timeoutMs} ms (its watch lags or etcd is unreachable); retry later`, { nothingChanged: true }));
      }, this.timeoutMs);
      const waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.waiters.push(waiter);
    });
  }

  private advance(revision: number): void {
    if (revision <= this.revision) return;
    this.revision = revision;
    const ready = this.waiters.filter((w) => w.revision <= revision);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.revision > revision);
    ready.forEach((w) => w.resolve());
  }

  /** Every record at one revision, then a watch from the next. */
  private async load(): Promise<void> {
    const prefix = this.keys.ranges.allocations;
    const end = Buffer.from(prefixEnd(prefix));
    let from = Buffer.from(prefix);
    let at: string | undefined;
    const deadline = () => ({ deadline: new Date(Date.now() + this.timeoutMs) });
    try {
      for (;;) {
        const res = await this.client.kv.range({ key: from, range_end: end, limit: LOAD_PAGE, revision: at }, deadline());
        at ??= res.header.revision;
        for (const kv of res.kvs) this.addRecord(kv.key.toString().slice(prefix.length), kv.value.toString(), Number(at));
        if (!res.more || res.kvs.length === 0) break;
        from = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
      }
    } catch (err) {
      this.loading = null; // the next list tries again
      throw new SriovError('UNAVAILABLE', `the etcd store could not load its allocation index (${err instanceof Error ? err.message : String(err)}); retry later`, { nothingChanged: true, cause: err });
    }
    // A reload after a gap in the watch: what entered and left a state inside the gap is in no set.
    this.loadedAt = Number(at);
    for (const entry of this.byState.values()) {
      entry.current.validFrom = Math.max(entry.current.validFrom, this.loadedAt);
      entry.previous = null;
    }
    this.advance(Number(at));
    this.watch(Number(at) + 1);
  }

  private watch(from: number): void {
    if (this.closed) return;
    const prefix = this.keys.ranges.allocations;
    const w = this.client.watch().prefix(prefix).startRevision(String(from)).watcher();
    this.watcher = w;
    w.on('data', (res: IWatchResponse) => {
      let last = 0;
      for (const ev of res.events) {
        if (ev.type === 'Put') this.addRecord(ev.kv.key.toString().slice(prefix.length), ev.kv.value, Number(ev.kv.mod_revision));
        last = Math.max(last, Number(ev.kv.mod_revision));
      }
      if (last > 0) {
        // etcd3 resumes a reconnect from the response's header revision, which may run ahead of the events (watch.ts).
        (w as unknown as { request: { start_revision?: string } }).request.start_revision = String(last + 1);
        this.advance(last);
      }
    });
    w.on('error', (err: Error) => {
      // The resume revision was compacted away: read everything again (the sets only grow, so nothing is undone).
      if (this.watcher !== w || this.closed) return;
      this.onError(new Error(`allocation index: watch on ${prefix} ended by etcd, reloading: ${err.message}`));
      void w.cancel().catch(() => {});
      this.watcher = null;
      this.loading = this.load().catch((e: Error) => this.onError(e));
    });
  }

  /**
   * An allocation's record (text or bytes), written at `revision`. Host,
   * tenant and network never change, nor the workload of anything but an
   * unbound device-plugin claim: a known id is decoded again only while it
   * is a claim. A renamed claim is added under its new name too (the sets
   * stay supersets).
   */
  private addRecord(id: string, value: string | Buffer, revision: number): void {
    if ((!this.stateOf.has(id) || this.claims.has(id)) && !this.indexFields(id, value)) return;
    // A record without a state (none is written so) is known all the same: it is not indexed twice.
    this.moveState(id, stateIn(value) ?? '', revision);
  }

  /** False when the record does not decode. */
  private indexFields(id: string, value: string | Buffer): boolean {
    let a: Record<IndexedField | 'deviceClaim', unknown>;
    try {
      a = JSON.parse(value.toString()) as Record<IndexedField | 'deviceClaim', unknown>;
    } catch (err) {
      this.onError(new Error(`allocation index: allocations/${id} does not decode: ${(err as Error).message}`));
      return false;
    }
    const workload = indexedValue(a, 'workload');
    const claimed = this.claims.get(id);
    if (claimed === undefined) for (const field of INDEXED_FIELDS) this.index(field, indexedValue(a, field), id);
    else if (claimed !== workload) this.index('workload', workload, id);
    if (a.deviceClaim === null || a.deviceClaim === undefined) this.claims.delete(id);
    else this.claims.set(id, workload);
    return true;
  }

  private moveState(id: string, state: string, revision: number): void {
    const was = this.stateOf.get(id);
    if (was === state) return;
    this.stateOf.set(id, state);
    let entry = this.byState.get(state);
    if (!entry) this.byState.set(state, (entry = { current: { ids: new SortedIds(), validFrom: this.loadedAt }, previous: null, members: 0 }));
    entry.current.ids.add(id);
    entry.members++;
    if (was === undefined) return;
    const left = this.byState.get(was)!;
    left.members--;
    if (left.current.ids.size - left.members > left.members + LEFT_SLACK) {
      // A new set: a list paging through the old one goes on with it, which still has every id it needs.
      left.previous = left.current;
      left.current = { ids: left.current.ids.filter((other) => this.stateOf.get(other) === was), validFrom: revision };
    }
  }

  private index(field: IndexedField, value: string, id: string): void {
    let ids = this.by[field].get(value);
    if (!ids) this.by[field].set(value, (ids = new Ids()));
    ids.add(id);
  }
}
