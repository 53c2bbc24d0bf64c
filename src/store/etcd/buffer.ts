/**
 * One etcd transaction as it is built: reads at one snapshot revision, each
 * remembered (with the key's mod revision) for the commit's compares; writes
 * held back until the commit, and read back by later reads of the same
 * transaction. Savepoints let a part of it be undone alone. Values come
 * from the snapshot (snapshot.ts), shared by the buffers of one batch, or
 * for keys a batch still committing writes, from that batch (ahead.ts).
 */
import type { ICompare, IRequestOp } from 'etcd3';
import { SriovError } from '../../host/errors.js';
import { type Ahead, NOTHING_AHEAD } from './ahead.js';
import type { AllocationIndex } from './allocation-index.js';
import { type EtcdKv, type Kv, RANGE_PAGE } from './kv.js';
import { Snapshot, type Page } from './snapshot.js';

/** etcd's defaults: --max-txn-ops (compares, and ops, per Txn) and --max-request-bytes (1.5 MiB, less room for the compares). */
export interface TxnLimits {
  ops: number;
  bytes: number;
}
export const ETCD_DEFAULT_LIMITS: TxnLimits = { ops: 128, bytes: 1_400_000 };

/** What the commit compares a key read with: its mod revision at the snapshot ('0': absent), or a value assumed from a batch ahead. */
type Check = { mod: string } | { value: string };

export interface Savepoint {
  writes: Map<string, string | null>;
  seen: Map<string, Check>;
  ranges: number;
  assumed: number;
}

export class TxnBuffer {
  /** Key → what the commit compares it with. */
  private seen = new Map<string, Check>();
  /** Reads answered from a batch still committing: what was decided on them holds only if it commits. */
  assumed = 0;
  /** Ranges read: the commit requires no key in them modified after the snapshot. */
  private readonly ranges: Array<{ start: string; end: string }> = [];
  private writes = new Map<string, string | null>();

  constructor(
    private readonly kv: EtcdKv,
    private readonly limits: TxnLimits = ETCD_DEFAULT_LIMITS,
    readonly snapshot: Snapshot = new Snapshot(kv),
    private readonly ahead: Ahead = NOTHING_AHEAD,
  ) {}

  /** A buffer of its own on the same snapshot: what it reads, this one reads without a round trip. */
  fork(): TxnBuffer {
    return new TxnBuffer(this.kv, this.limits, this.snapshot, this.ahead);
  }

  /** A key a batch ahead writes: read as that batch leaves it, and compared by value (absent: mod 0). */
  private assume(key: string): string | null | undefined {
    if (!this.ahead.has(key)) return undefined;
    const value = this.ahead.get(key)!;
    this.seen.set(key, value === null ? { mod: '0' } : { value });
    this.assumed++;
    return value;
  }

  /** The store's allocation index (filtered lists), if it has one. */
  get index(): AllocationIndex | null {
    return this.kv.index;
  }

  get revision(): string | null {
    return this.snapshot.revision;
  }

  async get(key: string): Promise<string | null> {
    if (this.writes.has(key)) return this.writes.get(key)!;
    const assumed = this.assume(key);
    if (assumed !== undefined) return assumed;
    const { value, mod } = await this.snapshot.point(key, false);
    this.seen.set(key, { mod });
    return value ?? null;
  }

  /**
   * A key's value as this transaction sees it, with no compare when it comes
   * from the snapshot: for a caller whose commit depends on it another way
   * (a range compare over keys that change with it). A batch ahead's write
   * is read as `get` reads it, compared, since that batch may not land.
   */
  async peek(key: string): Promise<string | null> {
    if (this.writes.has(key)) return this.writes.get(key)!;
    if (this.ahead.has(key)) return this.get(key);
    const { value } = await this.snapshot.point(key, false);
    return value ?? null;
  }

  /** Whether the key exists, without fetching its value (a host's record is ~100 KB). */
  async has(key: string): Promise<boolean> {
    if (this.writes.has(key)) return this.writes.get(key) !== null;
    const assumed = this.assume(key);
    if (assumed !== undefined) return assumed !== null;
    const { mod } = await this.snapshot.point(key, true);
    this.seen.set(key, { mod });
    return mod !== '0';
  }

  /**
   * The keys of [start, end) in order, page by page (this transaction's own
   * writes, and those of the batches ahead, included), at the snapshot.
   * Stopping early (break) records only the part read, so the commit
   * compares no more than that. `whole`: a read of the whole range (a
   * controller's start listing every host): the next page is asked for
   * while the caller decodes this one, and no page is remembered
   * (Snapshot.page), so only two pages of text are held at a time.
   */
  async *scan(start: string, end: string, opts: { keysOnly?: boolean; pageSize?: number; whole?: boolean } = {}): AsyncGenerator<Kv[]> {
    const over = new Map<string, string | null>();
    for (const k of this.ahead.keys()) {
      if (k >= start && k < end && !this.writes.has(k)) over.set(k, this.assume(k)!);
    }
    for (const [k, v] of this.writes) if (k >= start && k < end) over.set(k, v);
    const pending = [...over].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    let from = start;
    let readTo = start;
    const whole = opts.whole ?? false;
    const pageAt = (key: string) => this.snapshot.page(key, end, opts.pageSize ?? RANGE_PAGE, opts.keysOnly ?? false, !whole);
    let next: Promise<Page> | null = null;
    try {
      for (;;) {
        const page = await (next ?? pageAt(from));
        next = null;
        const last = page.kvs.at(-1);
        const upto = page.more && last ? last.key : null;
        const mine = takeWhile(pending, (k) => upto === null || k <= upto);
        const merged = merge(page.kvs, mine);
        if (upto !== null) {
          from = `${upto}\0`;
          if (whole) {
            next = pageAt(from);
            // Awaited on the next turn; a caller that stops early leaves it unread, and its failure unheard.
            next.catch(() => {});
          }
        }
        readTo = upto === null ? end : from;
        if (merged.length > 0) yield merged;
        if (upto === null) return;
      }
    } finally {
      this.ranges.push({ start, end: readTo });
    }
  }

  put(key: string, value: string): void {
    this.writes.set(key, value);
  }

  del(key: string): void {
    this.writes.set(key, null);
  }

  /** What this transaction itself writes to `key` (undefined: nothing), neither the snapshot's nor a batch ahead's. */
  written(key: string): string | null | undefined {
    return this.writes.get(key);
  }

  /**
   * Makes the commit depend on `key` as the snapshot holds it, even when
   * this transaction writes it too (a read would return the write and record
   * nothing): a blind writer elsewhere then fails this commit. Returns the
   * key's mod revision at the snapshot ('0': absent).
   */
  async depend(key: string): Promise<string> {
    const { mod } = await this.snapshot.point(key, true);
    if (!this.seen.has(key) && this.assume(key) === undefined) this.seen.set(key, { mod });
    return mod;
  }

  /** Keys in [start, end) this transaction or a batch ahead writes (deletes included): not in the snapshot yet. */
  pendingIn(start: string, end: string): string[] {
    const out: string[] = [];
    for (const k of this.writes.keys()) if (k >= start && k < end) out.push(k);
    for (const k of this.ahead.keys()) if (k >= start && k < end && !this.writes.has(k)) out.push(k);
    return out;
  }

  savepoint(): Savepoint {
    return { writes: new Map(this.writes), seen: new Map(this.seen), ranges: this.ranges.length, assumed: this.assumed };
  }

  /**
   * Undoes what was done since `sp`: the writes, and the reads too (what the
   * undone part read need not hold for the rest to commit).
   */
  rollbackTo(sp: Savepoint): void {
    this.writes = new Map(sp.writes);
    this.seen = new Map(sp.seen);
    this.ranges.length = sp.ranges;
    this.assumed = sp.assumed;
  }

  /** The writes as they stand: what a batch behind this one may assume (ahead.ts). */
  get pending(): ReadonlyMap<string, string | null> {
    return this.writes;
  }

  /** Whether one etcd Txn can carry it. */
  fits(): boolean {
    const { compares, ops, bytes } = this.size;
    return compares <= this.limits.ops && ops <= this.limits.ops && bytes <= this.limits.bytes;
  }

  get size(): { compares: number; ops: number; bytes: number } {
    let bytes = 0;
    for (const [key, value] of this.writes) bytes += key.length + (value?.length ?? 0);
    for (const [key, check] of this.seen) bytes += key.length + ('value' in check ? check.value.length : 0);
    return { compares: this.seen.size + this.ranges.length, ops: this.writes.size, bytes };
  }

  /** One Txn; false when something read changed since the snapshot (nothing was written then). */
  async commit(): Promise<boolean> {
    if (this.writes.size === 0) return true;
    if (!this.fits()) {
      const { compares, ops, bytes } = this.size;
      throw new SriovError(
        'OUT_OF_RANGE',
        `a transaction of ${compares} reads and ${ops} writes (${bytes} bytes) exceeds one etcd Txn (${this.limits.ops} reads, ${this.limits.ops} writes, ${this.limits.bytes} bytes); ` +
          'split it, or raise etcd\'s --max-txn-ops/--max-request-bytes and the store\'s txnLimits with them',
        { nothingChanged: true },
      );
    }
    const compare: ICompare[] = [];
    for (const [key, check] of this.seen) {
      compare.push(
        'value' in check
          ? { key: Buffer.from(key), target: 'Value', result: 'Equal', value: Buffer.from(check.value) }
          : { key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: check.mod },
      );
    }
    const next = String(BigInt(this.revision ?? '0') + 1n);
    for (const r of this.ranges) {
      if (r.start >= r.end) continue;
      compare.push({ key: Buffer.from(r.start), range_end: Buffer.from(r.end), target: 'Mod', result: 'Less', mod_revision: next });
    }
    const success: IRequestOp[] = [];
    for (const [key, value] of this.writes) {
      success.push(value === null ? { request_delete_range: { key: Buffer.from(key) } } : { request_put: { key: Buffer.from(key), value: Buffer.from(value) } });
    }
    let landed: boolean | undefined;
    try {
      landed = await this.kv.txn(compare, success);
      return landed;
    } finally {
      // A Txn whose answer was lost may have landed: what caches its keys forgets them either way.
      if (landed !== false) this.kv.onWrite(this.writes.keys());
    }
  }
}

/** Removes and returns the leading entries of `sorted` whose key passes `ok`. */
function takeWhile(sorted: Array<[string, string | null]>, ok: (key: string) => boolean): Array<[string, string | null]> {
  let n = 0;
  while (n < sorted.length && ok(sorted[n]![0])) n++;
  return sorted.splice(0, n);
}

/** etcd's page with this transaction's writes over it (a delete hides the key, a put replaces or adds it). */
function merge(page: Kv[], mine: Array<[string, string | null]>): Kv[] {
  if (mine.length === 0) return page;
  const byKey = new Map(page.map((kv) => [kv.key, kv]));
  for (const [key, value] of mine) {
    if (value === null) byKey.delete(key);
    else byKey.set(key, { key, value, mod: byKey.get(key)?.mod ?? '0' });
  }
  return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
