/**
 * Leadership over etcd3's `Election` (under `<prefix>election/`): each
 * controller campaigns with a lease of `ttlS` seconds; the oldest live
 * candidate leads. A leader that dies stops renewing its lease, etcd drops
 * its key after the TTL, and the next candidate is elected then;
 * `resign()` revokes the lease, so the next one is elected at once.
 *
 * A leader cut off from etcd must stop leading before etcd lets another take
 * over. etcd3 only reports a lease lost twice its TTL after the last renewal,
 * by when a standby has led for a whole TTL; so leadership here also ends
 * when no renewal succeeded for `STALE_FRACTION` of the TTL. Leadership that
 * ends, for whatever reason, is given up (the lease revoked where etcd can be
 * reached) and a new campaign begins: a candidate that merely stopped
 * leading while keeping its key would leave the election without a leader.
 */
import type { Campaign, Election, Etcd3 } from 'etcd3';
import { invalid } from '../../host/errors.js';
import type { Leadership } from '../store.js';
import type { Keys } from './keys.js';

export const DEFAULT_TTL_S = 5;
/** Renewals run every third of the TTL: this leaves one to miss, and etcd's expiry a margin. */
const STALE_FRACTION = 0.8;
const RETRY_MS = 1_000;
const ELECTION = 'controllers';

export interface CampaignOptions {
  /** The lease's TTL: how long a dead leader keeps leadership. At least 1 (etcd's minimum). */
  ttlS?: number;
  /** Why leadership ended or a campaign failed (they go on by themselves). */
  onError?: (err: Error) => void;
}

/** The lease etcd3 keeps inside a campaign; its renewals are what tells a leader it still is one. */
interface CampaignLease {
  on(event: 'keepaliveSucceeded', listener: () => void): unknown;
}

class EtcdLeadership implements Leadership {
  private current = false;
  private readonly listeners = new Set<(leader: boolean) => void>();
  private campaign: Campaign | null = null;
  private staleTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly election: Election,
    private readonly candidate: string,
    private readonly ttlMs: number,
    private readonly onError: (err: Error) => void,
  ) {}

  get leader(): boolean {
    return this.current;
  }

  onChange(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.stopped) return;
    const c = this.election.campaign(this.candidate);
    this.campaign = c;
    (c as unknown as { lease: CampaignLease }).lease.on('keepaliveSucceeded', () => {
      if (this.campaign === c && this.current) this.armStale(c);
    });
    c.on('elected', () => {
      if (this.campaign !== c || this.stopped) return;
      this.armStale(c);
      this.set(true);
    });
    c.on('error', (err: Error) => this.end(c, err));
  }

  async resign(): Promise<void> {
    this.stopped = true;
    this.clearTimers();
    const c = this.campaign;
    this.campaign = null;
    this.set(false);
    await c?.resign();
  }

  private armStale(c: Campaign): void {
    if (this.staleTimer) clearTimeout(this.staleTimer);
    this.staleTimer = setTimeout(() => this.end(c, new Error(`no lease renewal from etcd for ${Math.round(this.ttlMs * STALE_FRACTION)} ms`)), this.ttlMs * STALE_FRACTION);
    this.staleTimer.unref();
  }

  /** Leadership (or the bid for it) ended: give it up and campaign again. */
  private end(c: Campaign, err: Error): void {
    if (this.campaign !== c || this.stopped) return;
    this.campaign = null;
    this.clearTimers();
    const was = this.current;
    this.set(false);
    this.onError(new Error(`${was ? 'leadership lost' : 'campaign failed'} (${this.candidate}): ${err.message}; campaigning again`));
    // Revoking tells etcd at once where it can be reached; where it cannot, the lease expires.
    void c.resign().catch(() => {});
    this.retryTimer = setTimeout(() => this.start(), RETRY_MS);
    this.retryTimer.unref();
  }

  private clearTimers(): void {
    if (this.staleTimer) clearTimeout(this.staleTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.staleTimer = this.retryTimer = null;
  }

  private set(leader: boolean): void {
    if (leader === this.current) return;
    this.current = leader;
    for (const l of [...this.listeners]) l(leader);
  }
}

/** Joins the election under `k.prefix`; leadership comes later, through `onChange`. */
export function campaign(client: Etcd3, k: Keys, candidate: string, opts: CampaignOptions = {}): Leadership {
  const ttlS = opts.ttlS ?? DEFAULT_TTL_S;
  if (!Number.isInteger(ttlS) || ttlS < 1) throw invalid(`the election's lease TTL must be a whole number of seconds, at least 1, got ${ttlS}`);
  // etcd3's Election adds `election/<name>/` under the namespace: `<prefix>election/controllers/<lease>`, as keys.ts has it.
  const election = client.namespace(k.prefix).election(ELECTION, ttlS);
  const leadership = new EtcdLeadership(election, candidate, ttlS * 1000, opts.onError ?? (() => {}));
  leadership.start();
  return leadership;
}
