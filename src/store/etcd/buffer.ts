/**
 * One etcd transaction as it is built: reads at one snapshot revision, each
 * remembered (with the key's mod revision) for the commit's compares; writes
 * held back until the commit, and read back by later reads of the same
 * transaction. Savepoints let a part of it be undone alone.
 */
import type { ICompare, IRequestOp } from 'etcd3';
import { SriovError } from '../../host/errors.js';
import { type EtcdKv, type Kv, RANGE_PAGE } from './kv.js';

/** etcd's default --max-txn-ops: more compares or ops in one Txn are refused. */
export const MAX_TXN_OPS = 128;

export interface Savepoint {
  writes: Map<string, string | null>;
}

export class TxnBuffer {
  private revision: string | null = null;
  /** Key → mod revision at the snapshot ('0': absent). */
  private readonly seen = new Map<string, string>();
  /** Key → value at the snapshot (null: absent), for keys read whole. */
  private readonly values = new Map<string, string | null>();
  /** Ranges read: the commit requires no key in them modified after the snapshot. */
  private readonly ranges: Array<{ start: string; end: string }> = [];
  private writes = new Map<string, string | null>();

  constructor(private readonly kv: EtcdKv) {}

  /** Fixes the snapshot revision (the newest), once. */
  async snapshot(): Promise<void> {
    if (this.revision !== null) return;
    const { revision } = await this.kv.range({ key: Buffer.from('\0'), count_only: true });
    this.revision ??= revision;
  }

  async get(key: string): Promise<string | null> {
    if (this.writes.has(key)) return this.writes.get(key)!;
    if (this.values.has(key)) return this.values.get(key)!;
    await this.snapshot();
    const { kvs } = await this.kv.range({ key: Buffer.from(key), revision: this.revision! });
    const kv = kvs[0];
    this.values.set(key, kv?.value ?? null);
    this.seen.set(key, kv?.mod ?? '0');
    return kv?.value ?? null;
  }

  /** Whether the key exists, without fetching its value (a host's record is ~100 KB). */
  async has(key: string): Promise<boolean> {
    if (this.writes.has(key)) return this.writes.get(key) !== null;
    if (this.values.has(key)) return this.values.get(key) !== null;
    const mod = this.seen.get(key);
    if (mod !== undefined) return mod !== '0';
    await this.snapshot();
    const { kvs } = await this.kv.range({ key: Buffer.from(key), revision: this.revision!, keys_only: true });
    this.seen.set(key, kvs[0]?.mod ?? '0');
    return kvs.length > 0;
  }

  /**
   * The keys of [start, end) in order, page by page (this transaction's own
   * writes included), at the snapshot. Stopping early (break) records only
   * the part read, so the commit compares no more than that.
   */
  async *scan(start: string, end: string, opts: { keysOnly?: boolean; pageSize?: number } = {}): AsyncGenerator<Kv[]> {
    await this.snapshot();
    const pending = [...this.writes].filter(([k]) => k >= start && k < end).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    let from = start;
    let readTo = start;
    try {
      for (;;) {
        const page = await this.kv.range({
          key: Buffer.from(from),
          range_end: Buffer.from(end),
          revision: this.revision!,
          limit: opts.pageSize ?? RANGE_PAGE,
          keys_only: opts.keysOnly ?? false,
        });
        const last = page.kvs.at(-1);
        const upto = page.more && last ? last.key : null;
        const mine = takeWhile(pending, (k) => upto === null || k <= upto);
        const merged = merge(page.kvs, mine);
        if (upto !== null) {
          from = `${upto}\0`;
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

  savepoint(): Savepoint {
    return { writes: new Map(this.writes) };
  }

  /** Undoes the writes since `sp`; its reads stay (they only make the commit's compares stricter). */
  rollbackTo(sp: Savepoint): void {
    this.writes = new Map(sp.writes);
  }

  get size(): { compares: number; ops: number } {
    return { compares: this.seen.size + this.ranges.length, ops: this.writes.size };
  }

  /** One Txn; false when something read changed since the snapshot (nothing was written then). */
  async commit(): Promise<boolean> {
    if (this.writes.size === 0) return true;
    const { compares, ops } = this.size;
    if (compares > MAX_TXN_OPS || ops > MAX_TXN_OPS) {
      throw new SriovError('OUT_OF_RANGE', `a transaction of ${compares} reads and ${ops} writes exceeds etcd's ${MAX_TXN_OPS} per Txn; split it`, { nothingChanged: true });
    }
    const compare: ICompare[] = [];
    for (const [key, mod] of this.seen) compare.push({ key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: mod });
    const next = String(BigInt(this.revision ?? '0') + 1n);
    for (const r of this.ranges) {
      if (r.start >= r.end) continue;
      compare.push({ key: Buffer.from(r.start), range_end: Buffer.from(r.end), target: 'Mod', result: 'Less', mod_revision: next });
    }
    const success: IRequestOp[] = [];
    for (const [key, value] of this.writes) {
      success.push(value === null ? { request_delete_range: { key: Buffer.from(key) } } : { request_put: { key: Buffer.from(key), value: Buffer.from(value) } });
    }
    return this.kv.txn(compare, success);
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
