/**
 * The audit log's sequencer. A write transaction appends its batch's events,
 * not numbered, to a key of its own, `audit/in/<writer>/<n>` (tx.ts), so no
 * write transaction reads the one key every append used to read and bump,
 * `audit/seq`, and two controllers' commits no longer invalidate each other
 * through it. A pass here moves those keys into the log: it reads
 * `audit/in/` ordered by mod revision (commit order) and `audit/seq` at one
 * revision, numbers the events on from `audit/seq`, and writes them as
 * `audit/events/<seq>` records (one per batch, the layout listEvents reads,
 * keys.ts), the new `audit/seq`, and the deletes of the keys moved, in ONE
 * Txn under a compare of `audit/seq`. So of two passes (two controllers) one
 * lands and the other reads again, and the log stays gap-free and in commit
 * order. A controller of main's code numbers its events in its own write
 * Txn, under the same compare: its events take their numbers at its commit,
 * and a pass racing it reads again.
 *
 * When a pass runs: COALESCE_MS after a commit of this store that wrote an
 * in-key (one pass at a time, one more if a commit came during it), at once
 * for a reader of the log (settled); at start (what
 * a controller that crashed left); and for an in-key another writer left
 * (heard on a watch), after FOREIGN_DELAY_MS, as its writer normally
 * numbers it first. A pass that fails (etcd unavailable) is tried again
 * later; no request fails on it.
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3, ICompare, IRequestOp, Watcher } from 'etcd3';
import type { TxnLimits } from './buffer.js';
import * as codec from './codec.js';
import type { Keys } from './keys.js';
import { type EtcdKv, type Kv, prefixEnd } from './kv.js';

export interface SequencerOptions {
  limits: TxnLimits;
  /** A pass that failed (it is tried again), or the watch ended: for the log. */
  onError?: (err: Error) => void;
}

/** How long this store's own commits wait to be numbered together (wrote). */
export const COALESCE_MS = 50;
/** How long an in-key another writer left waits before this store numbers it (its writer normally does so within COALESCE_MS). */
export const FOREIGN_DELAY_MS = 300;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
/** At close, how long the store waits for its own appends to be numbered (else the next pass anywhere does it). */
const CLOSE_WAIT_MS = 2_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export class AuditSequencer {
  /** The prefix of this store's in-keys: `audit/in/<writer>/`. */
  readonly own: string;
  /** Random per store instance: no two stores write one in-key. */
  private readonly writer: string;
  private next = 0;
  /** Commits that wrote (or may have: answer lost) one of this store's in-keys, counting the start as one. */
  private committed = 1;
  /** Of those, how many a finished pass has numbered. */
  private sequenced = 0;
  private running = false;
  private dirty = false;
  /** Resolved when the pass after the one running now has ended. */
  private waiters: Array<() => void> = [];
  /** Other writers' in-keys heard and not deleted yet, with when they were heard (oldest first). */
  private readonly foreign = new Map<string, number>();
  private foreignTimer: NodeJS.Timeout | null = null;
  /** The pass that numbers the commits of this moment (wrote). */
  private coalescing: NodeJS.Timeout | null = null;
  private watcher: Watcher | null = null;
  private closed = false;

  constructor(
    private readonly kv: Pick<EtcdKv, 'rangeMany' | 'txn'>,
    private readonly k: Keys,
    private readonly options: SequencerOptions,
  ) {
    this.writer = randomBytes(8).toString('hex');
    this.own = k.auditInbox(this.writer);
  }

  /** Numbers what is there, and (given the client) follows other writers' in-keys. */
  start(client?: Etcd3): void {
    this.kick();
    if (client) this.follow(client);
  }

  /** A key for one batch's events: a batch built again takes a new one. */
  inKey(): string {
    return this.k.auditIn(this.writer, this.next++);
  }

  /**
   * A commit wrote one of this store's in-keys (or may have: its answer was
   * lost). Numbered COALESCE_MS later, not at once: the commits of that
   * moment share one pass (two etcd calls, a Raft round) instead of one pass
   * each, which at one request at a time doubled etcd's work per allocation.
   * A reader of the log does not wait for that (settled numbers at once).
   */
  wrote(): void {
    this.committed++;
    this.coalescing ??= setTimeout(() => this.kick(), COALESCE_MS);
  }

  /**
   * Settles once the in-keys this store committed so far are numbered (and
   * what was there at start): a read of the log after it sees this store's
   * own appends. Also once a pass at it failed (etcd unavailable): the read
   * then answers what is numbered, or fails on its own.
   */
  settled(): Promise<void> {
    if (this.sequenced >= this.committed || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.kick();
    });
  }

  /**
   * Stops, once what this store appended is numbered (if it appended, and
   * etcd answers soon enough). A pass still running then fails on the closed
   * client, or lands: one Txn either way.
   */
  async close(): Promise<void> {
    if (this.next > 0) await Promise.race([this.settled(), sleep(CLOSE_WAIT_MS)]);
    this.closed = true;
    if (this.coalescing !== null) clearTimeout(this.coalescing);
    if (this.foreignTimer !== null) clearTimeout(this.foreignTimer);
    void this.watcher?.cancel().catch(() => {});
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  private kick(): void {
    if (this.coalescing !== null) clearTimeout(this.coalescing);
    this.coalescing = null;
    this.dirty = true;
    if (this.running || this.closed) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.dirty && !this.closed) {
      this.dirty = false;
      const waiting = this.waiters.splice(0);
      const upTo = this.committed;
      try {
        await this.pass();
        this.sequenced = upTo;
        failures = 0;
      } catch (err) {
        failures++;
        this.dirty = true;
        if (!this.closed) this.options.onError?.(new Error(`audit sequencer: a pass failed (${(err as Error).message}); trying again`));
        // Those who came during it go too, rather than wait out the backoff: etcd likely fails their reads as well.
        waiting.push(...this.waiters.splice(0));
      }
      for (const resolve of waiting) resolve();
      if (failures > 0) await sleep(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (failures - 1)));
    }
    // Synchronously after the last look at `dirty`: a kick from now on starts a loop of its own.
    this.running = false;
  }

  /** Moves every in-key there into the log, a Txn at a time. */
  private async pass(): Promise<void> {
    const inbox = this.k.ranges.auditIn;
    // Each in-key moved is a put and a delete; one op more for audit/seq.
    const perTxn = Math.floor((this.options.limits.ops - 1) / 2);
    for (;;) {
      const [found, seq] = (
        await this.kv.rangeMany([
          { key: Buffer.from(inbox), range_end: Buffer.from(prefixEnd(inbox)), sort_target: 'Mod', sort_order: 'Ascend', limit: perTxn },
          { key: Buffer.from(this.k.auditSeq) },
        ])
      ).results as [{ kvs: Kv[]; more: boolean }, { kvs: Kv[] }];
      if (found.kvs.length === 0) return;
      const { compare, ops, moved } = this.numbered(found.kvs, seq.kvs[0] ?? null);
      const landed = await this.kv.txn(compare, ops);
      // Lost: another pass, or a controller of main's code, numbered events meanwhile. Read again.
      if (landed && moved === found.kvs.length && !found.more) return;
    }
  }

  /** The Txn that numbers `inKeys` (in commit order) on from `seq`, as many as fit in one. */
  private numbered(inKeys: Kv[], seq: Kv | null): { compare: ICompare[]; ops: IRequestOp[]; moved: number } {
    const { bytes: maxBytes } = this.options.limits;
    const ops: IRequestOp[] = [];
    let last = seq === null ? 0 : Number(seq.value);
    let bytes = this.k.auditSeq.length + 20;
    let moved = 0;
    for (const kv of inKeys) {
      const { record, last: end } = codec.numberEvents(kv.value, last + 1);
      const key = this.k.auditEvent(end);
      const size = key.length + record.length + kv.key.length;
      // The first always goes: it was written in one Txn, and numbering adds a few bytes an event.
      if (moved > 0 && bytes + size > maxBytes) break;
      ops.push({ request_put: { key: Buffer.from(key), value: Buffer.from(record) } }, { request_delete_range: { key: Buffer.from(kv.key) } });
      bytes += size;
      last = end;
      moved++;
    }
    ops.push({ request_put: { key: Buffer.from(this.k.auditSeq), value: Buffer.from(String(last)) } });
    const compare: ICompare[] = [{ key: Buffer.from(this.k.auditSeq), target: 'Mod', result: 'Equal', mod_revision: seq?.mod ?? '0' }];
    return { compare, ops, moved };
  }

  /** Other writers' in-keys, heard as they are written and moved. */
  private follow(client: Etcd3): void {
    if (this.closed) return;
    const w = client.watch().prefix(this.k.ranges.auditIn).watcher();
    this.watcher = w;
    w.on('put', (kv) => this.heard(kv.key.toString(), true));
    w.on('delete', (kv) => this.heard(kv.key.toString(), false));
    w.on('error', (err: Error) => {
      if (this.watcher !== w || this.closed) return;
      this.options.onError?.(new Error(`audit sequencer: the watch on ${this.k.ranges.auditIn} ended (${err.message}); watching again`));
      void w.cancel().catch(() => {});
      // What was written meanwhile is numbered by a pass once the new watch runs.
      setTimeout(() => {
        this.follow(client);
        this.kick();
      }, 1_000).unref();
    });
  }

  private heard(key: string, put: boolean): void {
    if (key.startsWith(this.own)) return;
    if (!put) {
      this.foreign.delete(key);
      return;
    }
    if (!this.foreign.has(key)) this.foreign.set(key, Date.now());
    this.awaitForeign();
  }

  /** A pass once an in-key another writer left has waited FOREIGN_DELAY_MS and is still there. */
  private awaitForeign(): void {
    if (this.foreignTimer !== null || this.closed) return;
    const oldest = this.foreign.values().next();
    if (oldest.done) return;
    this.foreignTimer = setTimeout(
      () => {
        this.foreignTimer = null;
        const due = Date.now() - FOREIGN_DELAY_MS;
        let stale = false;
        for (const [key, at] of this.foreign) {
          if (at > due) break;
          this.foreign.delete(key);
          stale = true;
        }
        if (stale) this.kick();
        this.awaitForeign();
      },
      Math.max(0, oldest.value + FOREIGN_DELAY_MS - Date.now()),
    );
    this.foreignTimer.unref();
  }
}
