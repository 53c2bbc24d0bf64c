/**
 * The agent's traffic sampler: every few seconds it reads each PF's counters
 * and its VFs' (host layer, CounterPort), and keeps the deltas from the
 * previous read until the next report takes them (`take`). Only what moved
 * is kept. A counter that went backwards (driver reload, VF re-created, a
 * 32-bit counter wrapping) or jumped beyond any link's speed gives no delta:
 * the VF is named in the report's notes as reset, and counting starts again
 * from the new value, so a reset never arrives as a huge delta.
 */
import type { PfInfo, VfStats } from '../host/model.js';
import type { CounterSource, PfCounterRead } from '../host/ports.js';
import type { CounterDeltas, PfCounterNotes, PfSampleDeltas, TrafficDeltas, TrafficSampleDeltas } from '../domain/traffic-deltas.js';
import { TRAFFIC_LIMITS } from '../domain/traffic-deltas.js';

export interface CounterReader {
  counters(pf: PfInfo): Promise<PfCounterRead>;
}

export interface SamplerOptions {
  intervalMs: number;
  clock?: () => number;
}

/** Faster than any NIC (400 Gbit/s) by far: a delta above this is a counter reset, not traffic. */
const MAX_BYTES_PER_S = 100e9;
const FIELDS: ReadonlyArray<keyof VfStats> = ['rxBytes', 'txBytes', 'rxPackets', 'txPackets', 'rxDropped', 'txDropped'];

interface Reading {
  counters: VfStats;
  source: CounterSource | null;
}

interface PfState {
  pf: VfStats | null;
  vfs: Map<number, Reading>;
}

interface NoteBuilder {
  pfMissing: boolean;
  missing: Map<number, string>;
  reset: Set<number>;
  netdev: Set<number>;
}

/** cur - prev per field; null when any went backwards or grew implausibly fast. */
export function counterDeltas(prev: VfStats, cur: VfStats, dtMs: number): CounterDeltas | null {
  const d = FIELDS.map((f) => cur[f] - prev[f]) as CounterDeltas;
  if (d.some((v) => v < 0 || !Number.isFinite(v))) return null;
  if (d[0] + d[1] > (MAX_BYTES_PER_S * Math.max(dtMs, 1)) / 1000) return null;
  return d;
}

const moved = (d: CounterDeltas) => d.some((v) => v !== 0);

export class TrafficSampler {
  private readonly clock: () => number;
  private readonly state = new Map<string, PfState>();
  private samples: TrafficSampleDeltas[] = [];
  private notes = new Map<string, NoteBuilder>();
  private lastAt: number | null = null;
  private simulated = false;
  private busy = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: CounterReader,
    private readonly pfs: () => readonly PfInfo[],
    private readonly opts: SamplerOptions,
  ) {
    this.clock = opts.clock ?? Date.now;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.sample(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One sample of every PF; skipped while the previous one still runs (a slow `ip`). */
  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const pfs = this.pfs();
      const reads = await Promise.all(pfs.map((pf) => this.host.counters(pf).catch((err: unknown) => err)));
      this.record(pfs, reads, this.clock());
    } finally {
      this.busy = false;
    }
  }

  /** The deltas since the last call, for a report; undefined when nothing was sampled since. */
  take(): TrafficDeltas | undefined {
    const notes = [...this.notes].map(([pf, n]) => noteOf(pf, n)).filter((n) => Object.keys(n).length > 1);
    if (this.samples.length === 0 && notes.length === 0) return undefined;
    const out: TrafficDeltas = {
      intervalS: this.opts.intervalMs / 1000,
      ...(this.simulated ? { simulated: true } : {}),
      samples: this.samples,
      ...(notes.length ? { notes } : {}),
    };
    this.samples = [];
    this.notes = new Map();
    return out;
  }

  private record(pfs: readonly PfInfo[], reads: unknown[], now: number): void {
    const dt = this.lastAt === null ? null : now - this.lastAt;
    this.lastAt = now;
    const sample: PfSampleDeltas[] = [];
    pfs.forEach((pf, i) => {
      const read = reads[i];
      const deltas = read instanceof Error || !isRead(read) ? this.unreadable(pf, read) : this.compare(pf, read, dt);
      if (deltas) sample.push(deltas);
    });
    for (const name of this.state.keys()) if (!pfs.some((p) => p.name === name)) this.state.delete(name);
    if (dt === null || dt <= 0) return;
    this.samples.push({ t: now, dt, ...(sample.length ? { pfs: sample } : {}) });
    // Reports not getting through: the oldest samples go (a gap in the charts, not a backlog).
    if (this.samples.length > TRAFFIC_LIMITS.samples) this.samples.splice(0, this.samples.length - TRAFFIC_LIMITS.samples);
  }

  private noteFor(pf: string): NoteBuilder {
    let n = this.notes.get(pf);
    if (!n) this.notes.set(pf, (n = { pfMissing: false, missing: new Map(), reset: new Set(), netdev: new Set() }));
    return n;
  }

  private unreadable(pf: PfInfo, err: unknown): null {
    const n = this.noteFor(pf.name);
    n.pfMissing = true;
    const why = `reading ${pf.name}'s counters failed: ${err instanceof Error ? err.message : String(err)}`;
    for (const vf of pf.vfs) n.missing.set(vf.index, why);
    this.state.delete(pf.name);
    return null;
  }

  private compare(pf: PfInfo, read: PfCounterRead, dt: number | null): PfSampleDeltas | null {
    this.simulated ||= read.simulated;
    const before = this.state.get(pf.name);
    const now: PfState = { pf: read.pf, vfs: new Map() };
    const n = this.noteFor(pf.name);
    const out: PfSampleDeltas = { pf: pf.name };
    const pfDelta = read.pf && before?.pf && dt ? counterDeltas(before.pf, read.pf, dt) : null;
    if (pfDelta && moved(pfDelta)) out.d = pfDelta;
    if (dt !== null && (!read.pf || !pfDelta)) n.pfMissing = true;
    const vfs: number[][] = [];
    for (const vf of read.vfs) {
      if (!vf.counters) {
        n.missing.set(vf.index, vf.missing ?? 'counters not reported');
        continue;
      }
      if (vf.source === 'netdev') n.netdev.add(vf.index);
      now.vfs.set(vf.index, { counters: vf.counters, source: vf.source });
      if (dt === null) continue;
      const prev = before?.vfs.get(vf.index);
      // Another source counts other packets: no delta between the two.
      const d = prev && prev.source === vf.source ? counterDeltas(prev.counters, vf.counters, dt) : null;
      if (!d) n.reset.add(vf.index);
      else if (moved(d)) vfs.push([vf.index, ...d]);
    }
    this.state.set(pf.name, now);
    if (vfs.length) out.vfs = vfs;
    return out.d || out.vfs ? out : null;
  }
}

function isRead(v: unknown): v is PfCounterRead {
  return typeof v === 'object' && v !== null && Array.isArray((v as PfCounterRead).vfs);
}

function noteOf(pf: string, n: NoteBuilder): PfCounterNotes {
  const byWhy = new Map<string, number[]>();
  for (const [vf, why] of n.missing) {
    const key = why.slice(0, TRAFFIC_LIMITS.whyLength);
    const list = byWhy.get(key);
    if (list) list.push(vf);
    else byWhy.set(key, [vf]);
  }
  const missing = [...byWhy].map(([why, vfs]) => ({ why, vfs }));
  const reset = [...n.reset].filter((i) => !n.missing.has(i));
  return {
    pf,
    ...(n.pfMissing ? { pfMissing: true } : {}),
    ...(missing.length ? { missing } : {}),
    ...(reset.length ? { reset } : {}),
    ...(n.netdev.size ? { netdev: [...n.netdev] } : {}),
  };
}
