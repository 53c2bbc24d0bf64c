/**
 * An etcd of a few lines in memory, for unit tests of the etcd store's
 * transactions without a real etcd: multi-version keys, ranges at a
 * revision, and Txns whose compares (mod revision, range, value) are checked
 * as etcd checks them. Commits can be held back, to see what the store does
 * while its Txns are in flight, and a foreign writer can slip in between.
 */
import type { ICompare, IRangeRequest, IRequestOp } from 'etcd3';
import type { EtcdKv, Kv } from '../../src/store/etcd/kv.js';

interface Version {
  rev: number;
  value: string | null;
}

const text = (b: Buffer | string | undefined) => (b === undefined ? undefined : b.toString());

export class MemEtcd {
  revision = 1;
  /** Read-only Txns served, Txns that wrote and Txns whose compares failed, so far; Txns waiting for `release` now. */
  reads = 0;
  writes = 0;
  lost = 0;
  waiting = 0;
  private readonly history = new Map<string, Version[]>();
  private gate: Promise<void> | null = null;
  private open: () => void = () => {};
  /** As EtcdKv's: what caches the keys a Txn wrote is told of them (nothing here). */
  onWrite: (keys: Iterable<string>) => void = () => {};

  /** The EtcdKv the store would use. */
  get kv(): EtcdKv {
    return this as unknown as EtcdKv;
  }

  /** Txns that write wait from now on until `release`. */
  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.gate = null;
    this.open();
  }

  /** A write by another controller, at once (not held). */
  put(key: string, value: string): void {
    this.apply([[key, value]]);
  }

  get(key: string): string | null {
    return this.at(key, this.revision)?.value ?? null;
  }

  keys(prefix: string): string[] {
    return [...this.history.keys()].filter((k) => k.startsWith(prefix) && this.get(k) !== null).sort();
  }

  async rangeMany(reqs: IRangeRequest[]): Promise<{ revision: string; results: Array<{ kvs: Kv[]; more: boolean }> }> {
    this.reads++;
    await Promise.resolve();
    return { revision: String(this.revision), results: reqs.map((r) => this.range(r)) };
  }

  async txn(compare: ICompare[], success: IRequestOp[]): Promise<boolean> {
    this.waiting++;
    while (this.gate) await this.gate;
    this.waiting--;
    if (!compare.every((c) => this.holds(c))) {
      this.lost++;
      return false;
    }
    this.writes++;
    this.apply(success.map((op) => (op.request_put ? [text(op.request_put.key)!, text(op.request_put.value)!] : [text(op.request_delete_range!.key)!, null])));
    return true;
  }

  private apply(writes: Array<[string, string | null]>): void {
    this.revision++;
    for (const [key, value] of writes) {
      const versions = this.history.get(key) ?? [];
      versions.push({ rev: this.revision, value });
      this.history.set(key, versions);
    }
  }

  /** The key's version at `rev` (null when absent then). */
  private at(key: string, rev: number): { value: string; mod: number } | null {
    const v = (this.history.get(key) ?? []).filter((x) => x.rev <= rev).at(-1);
    return v && v.value !== null ? { value: v.value, mod: v.rev } : null;
  }

  private range(r: IRangeRequest): { kvs: Kv[]; more: boolean } {
    const rev = r.revision === undefined ? this.revision : Number(r.revision);
    const start = text(r.key as Buffer)!;
    const end = text(r.range_end as Buffer | undefined);
    const names = end === undefined ? [start] : [...this.history.keys()].filter((k) => k >= start && k < end).sort();
    const kvs: Kv[] = [];
    for (const key of names) {
      const v = this.at(key, rev);
      if (v) kvs.push({ key, value: r.keys_only ? '' : v.value, mod: String(v.mod) });
    }
    if (r.sort_target === 'Mod') kvs.sort((a, b) => (Number(a.mod) - Number(b.mod)) * (r.sort_order === 'Descend' ? -1 : 1));
    const limit = Number(r.limit ?? 0);
    return limit > 0 && kvs.length > limit ? { kvs: kvs.slice(0, limit), more: true } : { kvs, more: false };
  }

  private holds(c: ICompare): boolean {
    const key = text(c.key as Buffer)!;
    const end = text(c.range_end as Buffer | undefined);
    const names = end === undefined ? [key] : [...this.history.keys()].filter((k) => k >= key && k < end);
    return names.every((name) => {
      const v = this.at(name, this.revision);
      if (c.target === 'Value') return v !== null && v.value === text(c.value as Buffer);
      const mod = v?.mod ?? 0;
      if (end !== undefined && v === null) return true;
      return c.result === 'Equal' ? mod === Number(c.mod_revision) : mod < Number(c.mod_revision);
    });
  }
}
