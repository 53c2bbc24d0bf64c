/**
 * The controller's short memory of traffic (TRAFFIC_WINDOW_S, 15 min): the
 * counter deltas agents report, summed into fixed time buckets per host, in
 * memory only (never the store: a restarted controller starts empty).
 *
 * Bounded per host: a ring of `slots` buckets, shared by all of the host's
 * series, and at most MAX_SERIES_PER_HOST series (its PFs and the VFs that
 * moved or could not be read); a bucket that falls out of the window is
 * reused, so a host's memory stops growing once its series exist. One
 * series costs slots × 7 float32 (about 2.5 KB at 10 s buckets). A host
 * forgotten (deleted) is dropped whole.
 *
 * Samples are placed on the controller's clock: a report's last sample ends
 * when the report arrives, so an agent's clock being off moves nothing.
 * Totals since the controller started (for /metrics' counters) are kept per
 * series too, as float64: exact to 2^53 bytes.
 */
import type { CounterSource } from '../host/ports.js';
import type { TrafficDeltas } from '../domain/traffic-deltas.js';
import { TRAFFIC_WINDOW_S } from '../domain/traffic.js';

/** Per bucket and series: [missing ms, rxBytes, txBytes, rxPackets, txPackets, rxDropped, txDropped]. */
const ROW = 7;
export const MAX_SERIES_PER_HOST = 4096;
export const DEFAULT_BUCKET_S = 10;

/** A series' key in its host: the PF's netdev name, or `<pf>#<vf>`. */
export const vfKey = (pf: string, vf: number) => `${pf}#${vf}`;

export interface SeriesPoint {
  /** Bucket end, ms (the last sample's end for the bucket still filling). */
  t: number;
  /** Per second over the time the series was read in the bucket: the 6 counters. */
  rates: [number, number, number, number, number, number];
  /** Bucket id (start / bucket length). */
  bucket: number;
}

class Series {
  readonly rows: Float32Array;
  readonly totals = new Float64Array(6);

  constructor(slots: number) {
    this.rows = new Float32Array(slots * ROW);
  }
}

interface Notes {
  /** VF → why its counters cannot be read, as the last report said. */
  missing: Map<number, string>;
  pfMissing: boolean;
  /** VFs read from their own netdev. */
  netdev: Set<number>;
}

export class HostTraffic {
  readonly bucketOf: Float64Array;
  readonly endOf: Float64Array;
  readonly dtOf: Float64Array;
  readonly series = new Map<string, Series>();
  readonly notes = new Map<string, Notes>();
  simulated = false;
  intervalS = 0;
  /** Series refused for MAX_SERIES_PER_HOST. */
  dropped = 0;

  constructor(readonly slots: number) {
    this.bucketOf = new Float64Array(slots).fill(-1);
    this.endOf = new Float64Array(slots);
    this.dtOf = new Float64Array(slots);
  }

  seriesFor(key: string): Series | undefined {
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= MAX_SERIES_PER_HOST) {
        this.dropped++;
        return undefined;
      }
      s = new Series(this.slots);
      this.series.set(key, s);
    }
    return s;
  }

  /** The slot for `bucket`, emptied first when it held an older bucket; null when it holds a newer one (a late sample). */
  slotOf(bucket: number): number | null {
    const slot = bucket % this.slots;
    if (this.bucketOf[slot]! > bucket) return null;
    if (this.bucketOf[slot] !== bucket) {
      this.bucketOf[slot] = bucket;
      this.endOf[slot] = 0;
      this.dtOf[slot] = 0;
      for (const s of this.series.values()) s.rows.fill(0, slot * ROW, slot * ROW + ROW);
    }
    return slot;
  }
}

export interface TrafficWindowOptions {
  windowS?: number;
  bucketS?: number;
  now?: () => number;
}

export class TrafficWindow {
  readonly windowS: number;
  readonly bucketMs: number;
  readonly slots: number;
  private readonly now: () => number;
  private readonly hosts = new Map<string, HostTraffic>();

  constructor(opts: TrafficWindowOptions = {}) {
    this.windowS = opts.windowS ?? TRAFFIC_WINDOW_S;
    this.bucketMs = (opts.bucketS ?? DEFAULT_BUCKET_S) * 1000;
    this.slots = Math.ceil((this.windowS * 1000) / this.bucketMs) + 1;
    this.now = opts.now ?? Date.now;
  }

  host(name: string): HostTraffic | undefined {
    return this.hosts.get(name);
  }

  hostNames(): IterableIterator<string> {
    return this.hosts.keys();
  }

  forget(name: string): void {
    this.hosts.delete(name);
  }

  /** Adds one report's deltas (already checked by the API's schema). */
  ingest(name: string, deltas: TrafficDeltas, receivedAt = this.now()): void {
    const last = deltas.samples.at(-1);
    let h = this.hosts.get(name);
    if (!h) this.hosts.set(name, (h = new HostTraffic(this.slots)));
    h.simulated = deltas.simulated === true;
    h.intervalS = deltas.intervalS;
    this.note(h, deltas);
    if (!last) return;
    const offset = receivedAt - last.t;
    const oldest = Math.floor(receivedAt / this.bucketMs) - this.slots + 1;
    const gaps = gapKeys(deltas);
    for (const sample of deltas.samples) {
      const at = sample.t + offset;
      const bucket = Math.floor(at / this.bucketMs);
      if (bucket < oldest) continue;
      const slot = h.slotOf(bucket);
      if (slot === null) continue;
      h.endOf[slot] = Math.max(h.endOf[slot]!, at);
      h.dtOf[slot]! += sample.dt;
      for (const key of gaps) {
        const s = h.seriesFor(key);
        if (s) s.rows[slot * ROW]! += sample.dt;
      }
      for (const p of sample.pfs ?? []) {
        if (p.d) add(h.seriesFor(p.pf), slot, p.d, 0);
        for (const row of p.vfs ?? []) add(h.seriesFor(vfKey(p.pf, row[0]!)), slot, row, 1);
      }
    }
  }

  private note(h: HostTraffic, deltas: TrafficDeltas): void {
    h.notes.clear();
    for (const n of deltas.notes ?? []) {
      const missing = new Map<number, string>();
      for (const m of n.missing ?? []) for (const vf of m.vfs) missing.set(vf, m.why);
      h.notes.set(n.pf, { missing, pfMissing: n.pfMissing === true, netdev: new Set(n.netdev ?? []) });
    }
  }

  /** Where a VF's counters came from, as its host's last report said. */
  source(h: HostTraffic, pf: string, vf: number): CounterSource {
    if (h.simulated) return 'simulated';
    return h.notes.get(pf)?.netdev.has(vf) ? 'netdev' : 'vf-stats';
  }

  /** The bucket ids in the window, oldest first, with their slots, for `h`. */
  buckets(h: HostTraffic, now = this.now()): Array<{ bucket: number; slot: number }> {
    const newest = Math.floor(now / this.bucketMs);
    const out: Array<{ bucket: number; slot: number }> = [];
    for (let slot = 0; slot < h.slots; slot++) {
      const bucket = h.bucketOf[slot]!;
      if (bucket >= 0 && bucket > newest - h.slots && bucket <= newest + 1 && h.dtOf[slot]! > 0) out.push({ bucket, slot });
    }
    return out.sort((a, b) => a.bucket - b.bucket);
  }

  /**
   * A series' points: per bucket, the counters per second over the time it
   * was read (a bucket where it never was is left out: a gap, not a zero).
   * `from`: only buckets starting at or after this time (ms). A host's
   * series that never moved reads as zeros wherever the host reported.
   */
  points(h: HostTraffic, key: string, opts: { from?: number; now?: number } = {}): SeriesPoint[] {
    const s = h.series.get(key);
    const out: SeriesPoint[] = [];
    for (const { bucket, slot } of this.buckets(h, opts.now)) {
      if (opts.from !== undefined && bucket * this.bucketMs < opts.from) continue;
      const missing = s ? s.rows[slot * ROW]! : 0;
      const readMs = h.dtOf[slot]! - missing;
      if (readMs <= 0) continue;
      const rates = [0, 0, 0, 0, 0, 0] as SeriesPoint['rates'];
      if (s) for (let i = 0; i < 6; i++) rates[i] = (s.rows[slot * ROW + 1 + i]! * 1000) / readMs;
      out.push({ t: h.endOf[slot]!, rates, bucket });
    }
    return out;
  }

  /** Why a VF's (or with vf undefined, the PF's) counters could not be read, as its host's last report said; null if they could. */
  missing(h: HostTraffic, pf: string, vf?: number): string | null {
    const n = h.notes.get(pf);
    if (!n) return null;
    if (vf === undefined) return n.pfMissing ? 'the PF’s own counters could not be read' : null;
    return n.missing.get(vf) ?? null;
  }
}

function add(s: { rows: Float32Array; totals: Float64Array } | undefined, slot: number, d: ArrayLike<number>, from: number): void {
  if (!s) return;
  const base = slot * ROW + 1;
  for (let i = 0; i < 6; i++) {
    const v = d[from + i]!;
    s.rows[base + i]! += v;
    s.totals[i]! += v;
  }
}

/** The series a report says could not be read (or restarted) during its samples. */
function gapKeys(deltas: TrafficDeltas): string[] {
  const keys: string[] = [];
  for (const n of deltas.notes ?? []) {
    if (n.pfMissing) keys.push(n.pf);
    for (const m of n.missing ?? []) for (const vf of m.vfs) keys.push(vfKey(n.pf, vf));
    for (const vf of n.reset ?? []) keys.push(vfKey(n.pf, vf));
  }
  return keys;
}
