/**
 * What the batches still committing will write, so that the next batch can
 * be built while they commit (pipelining) instead of after. A key one of them
 * writes reads, in a later batch, as that batch will leave it; the later
 * batch's commit then compares the key's value (not its mod revision, which
 * is not known yet), so it lands only if what it assumed is what etcd holds.
 * That is how a key several batches in flight write (a PF's committed
 * guarantees) stays exact: each adds to what the last one left.
 */

/** Key → value a batch in flight writes (null: deletes). Frozen for one build (view). */
export type Ahead = ReadonlyMap<string, string | null>;

export const NOTHING_AHEAD: Ahead = new Map();

/**
 * Values above this are not assumed: the compare would carry the value
 * (a host record is ~100 KB). Such a key reads from the snapshot, and a
 * commit of the batch ahead makes this one's fail and run again.
 */
const MAX_ASSUMED = 1024;

export class InFlight {
  private readonly writes = new Map<string, { value: string | null; batch: number }>();
  private readonly pending = new Map<number, Promise<unknown>>();
  private next = 0;

  /** Registers a batch's writes and its commit; they are assumed until the commit settles. */
  add(writes: ReadonlyMap<string, string | null>, commit: Promise<unknown>): void {
    const batch = this.next++;
    for (const [key, value] of writes) this.writes.set(key, { value, batch });
    const done = commit.then(
      () => this.release(batch),
      () => this.release(batch),
    );
    this.pending.set(batch, done);
  }

  get size(): number {
    return this.pending.size;
  }

  /** The writes ahead, frozen: a batch sees one state of them while it is built. */
  view(): Ahead {
    const out = new Map<string, string | null>();
    for (const [key, { value }] of this.writes) if (value === null || value.length <= MAX_ASSUMED) out.set(key, value);
    return out;
  }

  /** Settles once every batch now in flight has. */
  settled(): Promise<void> {
    return Promise.all(this.pending.values()).then(() => undefined);
  }

  private release(batch: number): void {
    this.pending.delete(batch);
    // A later batch's write of the same key stays until that batch settles.
    for (const [key, w] of this.writes) if (w.batch === batch) this.writes.delete(key);
  }
}
