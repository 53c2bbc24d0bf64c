/**
 * The container attachments this controller is writing, so that a request can
 * look for "is this interface already allocated" in the store BEFORE it takes
 * the decisions, and still find what a request ahead of it decided.
 *
 * On etcd that look-up is a round trip (or two); made inside the decisions it
 * made every allocation of the controller wait for one, one after the other.
 * Made outside, a request's store read may have started before a request ahead
 * of it committed the same interface: it did not see it there, so it must see
 * it here. An attachment is therefore kept from its decision until every
 * request whose store read began before its write settled has decided
 * (`begin` ... `end`), then dropped: later reads find it in the store.
 * A refused write is dropped at once (there is nothing to find).
 *
 * Other controllers' writes are not here: as before, the store's read (at the
 * current revision) finds what they committed.
 */
import type { Allocation } from '../domain/types.js';

interface Entry {
  a: Allocation;
  /** The epoch its write settled at; Infinity while it is being written. */
  settled: number;
}

export class AttachmentsInFlight {
  private epoch = 0;
  /** Workload name → its interfaces being written or just written. */
  private readonly entries = new Map<string, Entry[]>();
  /** The epochs requests began their store reads at, with how many at each. */
  private readonly readers = new Map<number, number>();

  /** A request is about to read the store for its interface; hand the result to `end` once it has decided. */
  begin(): number {
    this.readers.set(this.epoch, (this.readers.get(this.epoch) ?? 0) + 1);
    return this.epoch;
  }

  end(started: number): void {
    const n = (this.readers.get(started) ?? 1) - 1;
    if (n > 0) this.readers.set(started, n);
    else this.readers.delete(started);
    this.prune();
  }

  /** Decided (inside the decisions): found by the requests deciding after it, until its write settles and they have read. */
  add(a: Allocation): void {
    const list = this.entries.get(a.workload.name);
    if (list) list.push({ a, settled: Infinity });
    else this.entries.set(a.workload.name, [{ a, settled: Infinity }]);
  }

  /** Its write committed (kept for the reads begun before now) or was refused (dropped). */
  settle(a: Allocation, committed: boolean): void {
    const list = this.entries.get(a.workload.name);
    const entry = list?.find((e) => e.a === a);
    if (!list || !entry) return;
    if (committed) entry.settled = ++this.epoch;
    else this.drop(a.workload.name, list, entry);
    this.prune();
  }

  /** The attachments of `workload` this controller decided and a store read may have missed. */
  find(workload: string): Allocation[] {
    return this.entries.get(workload)?.map((e) => e.a) ?? [];
  }

  /** Drops what every reader still deciding began reading after. */
  private prune(): void {
    let oldest = Infinity;
    for (const started of this.readers.keys()) oldest = Math.min(oldest, started);
    for (const [workload, list] of this.entries) {
      for (const entry of [...list]) if (entry.settled !== Infinity && entry.settled <= oldest) this.drop(workload, list, entry);
    }
  }

  private drop(workload: string, list: Entry[], entry: Entry): void {
    list.splice(list.indexOf(entry), 1);
    if (list.length === 0) this.entries.delete(workload);
  }

  /** How many attachments are kept (for tests: nothing is kept for ever). */
  get size(): number {
    let n = 0;
    for (const list of this.entries.values()) n += list.length;
    return n;
  }
}
