/**
 * What etcd holds at one revision, as far as a batch of transactions has
 * read it: every read of the batch is at that revision, so what one read
 * fetched another may reuse (group commit's second pass runs on this cache
 * with no round trip). Which reads a transaction's commit depends on is the
 * buffer's business (buffer.ts), not this cache's.
 */
import type { IRangeRequest } from 'etcd3';
import type { EtcdKv, Kv } from './kv.js';

/** Ranges per read-only Txn (etcd's --max-txn-ops). */
const MAX_READS = 128;

export interface Point {
  /** Null when absent; undefined when only its existence was read (keys only). */
  value: string | null | undefined;
  /** Mod revision ('0': absent). */
  mod: string;
}

export interface Page {
  kvs: Kv[];
  more: boolean;
}

export class Snapshot {
  revision: string | null = null;
  private readonly points = new Map<string, Point>();
  private readonly pages = new Map<string, Page>();

  constructor(private readonly kv: EtcdKv) {}

  /** Reads asked for in this turn of the event loop: sent together, as one read-only Txn. */
  private pending: Array<{ req: IRangeRequest; resolve(r: Page): void; reject(e: unknown): void }> = [];
  private flushing = false;
  private sent = false;

  /**
   * Whether a read that starts now may use this snapshot: only until its first
   * read goes out. The revision is taken then, so a read that joined before
   * sees everything committed before it began.
   */
  get joinable(): boolean {
    return !this.sent;
  }

  /**
   * A range at the snapshot revision. Reads asked for together go as one
   * Txn (a batch's prefetch asks for dozens at once); the first read is at
   * the newest revision, which becomes the snapshot's.
   */
  private read(req: IRangeRequest): Promise<Page> {
    return new Promise((resolve, reject) => {
      this.pending.push({ req, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    try {
      this.sent = true;
      while (this.pending.length > 0) {
        // The first group alone while the revision is not pinned yet (it pins it); then the rest side by side at it.
        const groups = this.revision === null ? [this.pending.splice(0, MAX_READS)] : [];
        while (this.revision !== null && this.pending.length > 0) groups.push(this.pending.splice(0, MAX_READS));
        await Promise.all(groups.map((group) => this.readGroup(group)));
      }
    } finally {
      this.flushing = false;
    }
  }

  private async readGroup(group: Snapshot['pending']): Promise<void> {
    try {
      const revision = this.revision ?? undefined;
      const { revision: at, results } = await this.kv.rangeMany(group.map((p) => ({ ...p.req, revision })));
      this.revision ??= at;
      group.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      group.forEach((p) => p.reject(err));
    }
  }

  async point(key: string, keysOnly: boolean): Promise<Point> {
    const known = this.points.get(key);
    if (known && (keysOnly || known.value !== undefined)) return known;
    // A key the transactions of a batch all read (tenant-groups) goes out once, not once each.
    const asked = this.asked.get(key) ?? (keysOnly ? this.asked.get(`${key}\0keys`) : undefined);
    if (asked) return asked;
    const reading = this.readPoint(key, keysOnly);
    const id = keysOnly ? `${key}\0keys` : key;
    this.asked.set(id, reading);
    try {
      return await reading;
    } finally {
      this.asked.delete(id);
    }
  }

  /** Point reads in flight, by key (`<key>\0keys` for keys only). */
  private readonly asked = new Map<string, Promise<Point>>();

  private async readPoint(key: string, keysOnly: boolean): Promise<Point> {
    const { kvs } = await this.read({ key: Buffer.from(key), keys_only: keysOnly });
    const kv = kvs[0];
    const point = { value: kv ? (keysOnly ? undefined : kv.value) : null, mod: kv?.mod ?? '0' };
    this.points.set(key, point);
    return point;
  }

  /**
   * `keep` false: the page is not remembered for the batch's other reads.
   * Host records (~100 KB each) are read whole only by a list of every host
   * (a controller's start): remembered, the whole fleet's records would stay
   * in memory as text until the read ends, beside their decoded copies.
   */
  async page(from: string, end: string, limit: number, keysOnly: boolean, keep = true): Promise<Page> {
    const id = `${from}\0${end}\0${limit}\0${keysOnly}`;
    const known = this.pages.get(id);
    if (known) return known;
    const { kvs, more } = await this.read({ key: Buffer.from(from), range_end: Buffer.from(end), limit, keys_only: keysOnly });
    const page = { kvs, more };
    if (keep) this.pages.set(id, page);
    return page;
  }
}
