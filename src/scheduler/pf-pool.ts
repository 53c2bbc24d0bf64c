/**
 * The PFs that share one (physnet, device type), filed by free VF count.
 * Each bucket is kept sorted by (host, PF PCI address), so walking buckets in
 * policy order and taking the first PF that admits the request gives the
 * deterministic best choice without looking at PFs that cannot win.
 *
 * Each bucket also keeps an upper bound on its PFs' bandwidth headroom, so a
 * guarantee that cannot fit skips whole buckets. The index refiles a PF
 * whenever its free count or committed bandwidth changes, and refiling raises
 * the bound, so it stays an upper bound; a scan that finds no fit makes it
 * exact again.
 */
import { admits, headroomMbps, type Admission } from './admission.js';
import { precedes, schedulable, type PfEntry } from './entries.js';
import type { PlacementPolicy } from './types.js';

interface Bucket {
  /** Sorted by (host, PF PCI address). */
  readonly pfs: PfEntry[];
  /** Bound on the headroom of its PFs with a known link speed. */
  maxHeadroom: number;
  /** The same, over PFs whose driver enforces min_tx_rate. */
  maxEnforcedHeadroom: number;
}

export class PfPool {
  /** Every PF of this pool, ready or not, drained or not; refusals explain themselves from it. */
  readonly members = new Set<PfEntry>();
  /** buckets[n]: schedulable PFs (ready host, not drained) with n free VFs. */
  private readonly buckets: Bucket[] = [];

  constructor(private readonly bandwidthRatio: number) {}

  add(pf: PfEntry): void {
    this.members.add(pf);
    if (schedulable(pf)) this.file(pf);
  }

  remove(pf: PfEntry): void {
    this.members.delete(pf);
    this.unfile(pf);
  }

  /** After its host's state or its drained flag changed: file it when schedulable, else take it out. */
  refresh(pf: PfEntry): void {
    if (!schedulable(pf)) this.unfile(pf);
    else if (pf.filedAt < 0) this.file(pf);
  }

  /** Refile after the PF's free count or committed bandwidth changed. */
  refile(pf: PfEntry): void {
    if (pf.filedAt < 0) return;
    if (pf.filedAt === pf.free.size) {
      // A holding on a VF the inventory no longer lists changes bandwidth only.
      this.raise(this.buckets[pf.filedAt]!, pf);
      return;
    }
    this.unfile(pf);
    this.file(pf);
  }

  /**
   * The first PF, in policy order, that admits `a`: pack walks from the
   * fewest free VFs up (fill the most used PF), spread from the most down.
   */
  find(policy: PlacementPolicy, a: Admission): PfEntry | undefined {
    const pack = policy === 'pack';
    const last = this.buckets.length - 1;
    for (let i = pack ? 1 : last; pack ? i <= last : i >= 1; pack ? i++ : i--) {
      const bucket = this.buckets[i]!;
      if (bucket.pfs.length === 0 || mayNotFit(bucket, a)) continue;
      const pf = this.scan(bucket, a);
      if (pf) return pf;
    }
    return undefined;
  }

  private scan(bucket: Bucket, a: Admission): PfEntry | undefined {
    for (const pf of bucket.pfs) if (admits(pf, a)) return pf;
    if (a.guaranteeMbps > 0) this.tighten(bucket);
    return undefined;
  }

  private tighten(bucket: Bucket): void {
    bucket.maxHeadroom = bucket.maxEnforcedHeadroom = -Infinity;
    for (const pf of bucket.pfs) this.raise(bucket, pf);
  }

  private raise(bucket: Bucket, pf: PfEntry): void {
    const headroom = headroomMbps(pf, this.bandwidthRatio);
    if (headroom === null) return;
    bucket.maxHeadroom = Math.max(bucket.maxHeadroom, headroom);
    if (pf.enforcesMinTxRate) bucket.maxEnforcedHeadroom = Math.max(bucket.maxEnforcedHeadroom, headroom);
  }

  private file(pf: PfEntry): void {
    const n = pf.free.size;
    while (this.buckets.length <= n) this.buckets.push({ pfs: [], maxHeadroom: -Infinity, maxEnforcedHeadroom: -Infinity });
    const bucket = this.buckets[n]!;
    insertAt(bucket.pfs, lowerBound(bucket.pfs, pf), pf);
    this.raise(bucket, pf);
    pf.filedAt = n;
  }

  private unfile(pf: PfEntry): void {
    if (pf.filedAt < 0) return;
    const pfs = this.buckets[pf.filedAt]!.pfs;
    const at = lowerBound(pfs, pf);
    if (pfs[at] === pf) removeAt(pfs, at);
    pf.filedAt = -1;
  }
}

/**
 * Whether no PF of the bucket can have the headroom `a`'s guarantee needs.
 * Not decided for a tenant with a bandwidth group: on a PF where it already
 * holds VFs a new one may add nothing to the committed bandwidth.
 */
function mayNotFit(bucket: Bucket, a: Admission): boolean {
  return a.tenantGroup === undefined && a.guaranteeMbps > 0 && a.guaranteeMbps > bound(bucket, a);
}

/** The bucket's headroom bound for the PFs that may carry `a`'s guarantee. */
function bound(bucket: Bucket, a: Admission): number {
  return a.accountingOnly ? bucket.maxHeadroom : bucket.maxEnforcedHeadroom;
}

/**
 * Every allocation moves its PF from one bucket to the next: shifted by hand,
 * as splice's array of what it removed (or of nothing) was garbage each time.
 */
function insertAt(pfs: PfEntry[], at: number, pf: PfEntry): void {
  pfs.push(pf);
  for (let i = pfs.length - 1; i > at; i--) pfs[i] = pfs[i - 1]!;
  pfs[at] = pf;
}

function removeAt(pfs: PfEntry[], at: number): void {
  for (let i = at; i < pfs.length - 1; i++) pfs[i] = pfs[i + 1]!;
  pfs.pop();
}

/** Index of the first PF in `pfs` that does not precede `pf`. */
function lowerBound(pfs: PfEntry[], pf: PfEntry): number {
  let lo = 0;
  let hi = pfs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (precedes(pfs[mid]!, pf)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
