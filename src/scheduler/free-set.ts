/**
 * The free VF indexes of one PF as a bitset: the lowest free index costs one
 * pass over ⌈VFs/32⌉ words (2 words for 64 VFs), never a scan of VF records.
 */
export class FreeVfSet {
  private readonly words: Uint32Array;
  private count = 0;

  /** `capacity`: one more than the highest VF index this set may hold. */
  constructor(capacity: number) {
    this.words = new Uint32Array(Math.max(1, Math.ceil(capacity / 32)));
  }

  get size(): number {
    return this.count;
  }

  has(index: number): boolean {
    const word = this.words[index >>> 5];
    return word !== undefined && index >= 0 && (word & (1 << (index & 31))) !== 0;
  }

  /** Returns false when the index was already free or is out of range. */
  add(index: number): boolean {
    const w = index >>> 5;
    const word = this.words[w];
    const bit = 1 << (index & 31);
    if (word === undefined || index < 0 || (word & bit) !== 0) return false;
    this.words[w] = word | bit;
    this.count++;
    return true;
  }

  /** Returns false when the index was not free. */
  delete(index: number): boolean {
    if (!this.has(index)) return false;
    this.words[index >>> 5]! &= ~(1 << (index & 31));
    this.count--;
    return true;
  }

  /**
   * The first free index at or after `start`, else the lowest (wrapping);
   * -1 when none is free. One pass over the words, as `lowest`.
   */
  firstFrom(start: number): number {
    const bits = this.words.length * 32;
    const s = Math.min(Math.max(0, Math.floor(start)), bits - 1);
    let w = s >>> 5;
    // The start's word with the bits below the start cleared.
    const head = this.words[w]! & (-1 << (s & 31));
    if (head !== 0) return w * 32 + (31 - Math.clz32(head & -head));
    for (w++; w < this.words.length; w++) {
      const word = this.words[w]!;
      if (word !== 0) return w * 32 + (31 - Math.clz32(word & -word));
    }
    return this.lowest();
  }

  /** The lowest free index, or -1 when none is free. */
  lowest(): number {
    for (let w = 0; w < this.words.length; w++) {
      const word = this.words[w]!;
      // word & -word isolates the lowest set bit; clz32 turns it into a position.
      if (word !== 0) return w * 32 + (31 - Math.clz32(word & -word));
    }
    return -1;
  }
}
