/**
 * A set of allocation ids in id order, for a list by state to page through
 * (allocation-index.ts). Held in chunks: an id arriving in random order (ids
 * are UUIDs) moves the entries of one chunk, not of a set of 100k, and a
 * page starts by binary search, with no sort of the whole set per list.
 */

/** Ids per chunk before it splits in two. */
const CHUNK = 512;

export class SortedIds {
  private chunks: string[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(id: string): void {
    const last = this.chunks[this.chunks.length - 1];
    // Past the last id (a load reads the records in id order): no search.
    if (last === undefined || id > last[last.length - 1]!) {
      this.append(id);
      return;
    }
    const c = this.chunkOf(id);
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk, id);
    if (chunk[i] === id) return;
    chunk.splice(i, 0, id);
    this.count++;
    if (chunk.length > CHUNK) this.chunks.splice(c, 1, chunk.slice(0, CHUNK / 2), chunk.slice(CHUNK / 2));
  }

  /** Up to `n` ids greater than `after` (from the first when undefined), in order. A cursor, not an iterator: adds between two calls do not upset it. */
  after(after: string | undefined, n: number): string[] {
    const out: string[] = [];
    let c = after === undefined ? 0 : this.chunkOf(after);
    let i = after === undefined ? 0 : upperBound(this.chunks[c] ?? [], after);
    for (; c < this.chunks.length && out.length < n; c++, i = 0) {
      const chunk = this.chunks[c]!;
      for (; i < chunk.length && out.length < n; i++) out.push(chunk[i]!);
    }
    return out;
  }

  /** A new set of the ids `keep` keeps (this one is left as it is: a list paging through it goes on). */
  filter(keep: (id: string) => boolean): SortedIds {
    const next = new SortedIds();
    for (const chunk of this.chunks) for (const id of chunk) if (keep(id)) next.append(id);
    return next;
  }

  /** `id`, greater than every id here, at the end; a full last chunk is left half full, so inserts into it do not split it at once. */
  private append(id: string): void {
    const last = this.chunks[this.chunks.length - 1];
    if (last === undefined || last.length >= CHUNK / 2) this.chunks.push([id]);
    else last.push(id);
    this.count++;
  }

  /** The last chunk whose first id is at most `id` (the first chunk when none is). */
  private chunkOf(id: string): number {
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.chunks[mid]![0]! <= id) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** The first index whose id is not below `id`. */
function lowerBound(ids: string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ids[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index whose id is above `id`. */
function upperBound(ids: string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ids[mid]! <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
