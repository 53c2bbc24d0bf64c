/**
 * Whether the store answers, as this controller last saw it. A store call
 * that fails UNAVAILABLE (etcd without quorum) marks it unreachable, from
 * then on; a probe (one small read) says when it answers again.
 *
 * Reads that fall back on memory (stale-reads.ts) go there at once while it
 * is unreachable, instead of waiting out the store's timeout each time, and
 * the API marks every answer it gives meanwhile as possibly stale. While the
 * store answers, reads cost nothing more: the probe is one read every few
 * seconds, not one per request.
 */
import { SriovError } from '../host/errors.js';

export interface StoreHealthOptions {
  /** One small read through the store: resolves when the store answers. */
  probe: () => Promise<unknown>;
  /** Between probes while the store answers (default 5 s); 0: no probe then (a store that cannot lose quorum). */
  healthyProbeMs?: number;
  /** Between probes while it does not (default 1 s). */
  downProbeMs?: number;
  now?: () => Date;
}

export class StoreHealth {
  private since: Date | null = null;
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  private stopped = false;

  constructor(private readonly o: StoreHealthOptions) {
    this.schedule();
  }

  /** When the store stopped answering; null while it answers. */
  get unreachableSince(): Date | null {
    return this.since;
  }

  /** Notes a failure: true when `err` says the store cannot answer (UNAVAILABLE), which marks it unreachable. */
  failed(err: unknown): boolean {
    if (!(err instanceof SriovError) || err.code !== 'UNAVAILABLE') return false;
    if (this.since === null) {
      this.since = (this.o.now ?? (() => new Date()))();
      this.schedule();
    }
    return true;
  }

  /** The store answered. */
  answered(): void {
    if (this.since === null) return;
    this.since = null;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.stopped || this.probing) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ms = this.since === null ? (this.o.healthyProbeMs ?? 5_000) : (this.o.downProbeMs ?? 1_000);
    if (ms <= 0) return;
    this.timer = setTimeout(() => void this.probe(), ms);
    // A probe never keeps the process alive.
    this.timer.unref();
  }

  private async probe(): Promise<void> {
    this.timer = null;
    this.probing = true;
    let ok = false;
    try {
      await this.o.probe();
      ok = true;
    } catch (err) {
      this.failed(err);
    } finally {
      this.probing = false;
    }
    if (ok) this.answered();
    this.schedule();
  }
}

/** The refusal of a read that memory cannot answer while the store is unreachable. */
export function unreachable(since: Date, what: string): SriovError {
  return new SriovError('UNAVAILABLE', `the store has not answered since ${since.toISOString()}, and this controller's memory does not hold ${what}; retry once it answers`, {
    nothingChanged: true,
  });
}
