/**
 * Which allocations each host, tenant, network and workload has, in this process's
 * memory, kept by a watch on `allocations/`: a filtered list finds its
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
 * Loaded on the first filtered list, not at open: a controller reads every
 * allocation at start anyway, and a process that never filters (the CLI's
 * export, a bench) pays nothing.
 */
import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import { SriovError } from '../../host/errors.js';
import type { Keys } from './keys.js';
import { prefixEnd } from './kv.js';

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
  /** Ids whose indexed fields can no longer change: decoded once. */
  private readonly known = new Set<string>();
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
        for (const kv of res.kvs) this.addRecord(kv.key.toString().slice(prefix.length), kv.value.toString());
        if (!res.more || res.kvs.length === 0) break;
        from = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
      }
    } catch (err) {
      this.loading = null; // the next list tries again
      throw new SriovError('UNAVAILABLE', `the etcd store could not load its allocation index (${err instanceof Error ? err.message : String(err)}); retry later`, { nothingChanged: true, cause: err });
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
        if (ev.type === 'Put') this.addRecord(ev.kv.key.toString().slice(prefix.length), ev.kv.value);
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
   * An allocation's record (text or bytes). Host, tenant and network never
   * change, nor the workload of anything but an unbound device-plugin claim:
   * a known id is decoded again only while it is a claim. A renamed claim is
   * added under its new name too (the sets stay supersets).
   */
  private addRecord(id: string, value: string | Buffer): void {
    if (this.known.has(id)) return;
    let a: Record<IndexedField | 'deviceClaim', unknown>;
    try {
      a = JSON.parse(value.toString()) as Record<IndexedField | 'deviceClaim', unknown>;
    } catch (err) {
      this.onError(new Error(`allocation index: allocations/${id} does not decode: ${(err as Error).message}`));
      return;
    }
    const workload = indexedValue(a, 'workload');
    const claimed = this.claims.get(id);
    if (claimed === undefined) for (const field of INDEXED_FIELDS) this.index(field, indexedValue(a, field), id);
    else if (claimed !== workload) this.index('workload', workload, id);
    if (a.deviceClaim === null || a.deviceClaim === undefined) {
      this.claims.delete(id);
      this.known.add(id);
    } else this.claims.set(id, workload);
  }

  private index(field: IndexedField, value: string, id: string): void {
    let ids = this.by[field].get(value);
    if (!ids) this.by[field].set(value, (ids = new Ids()));
    ids.add(id);
  }
}
