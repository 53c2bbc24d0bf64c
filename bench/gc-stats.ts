/**
 * What the garbage collector did over a stretch of a bench: load-independent
 * measures beside the wall-clock ones, which move with a shared machine's load.
 *
 * - Bytes allocated in the young generation, from V8's heap statistics around
 *   each collection (what was used before it, less what was left after the one
 *   before): the garbage that makes scavenges happen.
 * - Scavenges (young-generation collections): how many, and their pauses.
 *   Each stops every request in flight, so their count sets how many requests
 *   meet one, and their length how long those wait.
 * - Bytes a scavenge kept (copied within the young generation or promoted to
 *   the old one): what a scavenge's pause is mostly made of.
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { setImmediate as tick } from 'node:timers/promises';
import { getHeapSpaceStatistics, GCProfiler } from 'node:v8';

export interface GcStats {
  youngBytesAllocated: number;
  scavenges: number;
  scavengeMsTotal: number;
  scavengeMsMax: number;
  /** Mean bytes a scavenge left alive (young generation after, plus old-space growth during it). */
  keptBytesPerScavenge: number;
  /** Mark-compact (full) collections, and their pauses. */
  fullGcs: number;
  fullGcMsTotal: number;
  /** Each scavenge's pause as [start, end] on performance.now()'s clock: which requests it stopped. */
  scavengePauses: [number, number][];
}

interface SpaceStat {
  spaceName: string;
  spaceUsedSize: number;
}

interface GcRecord {
  gcType: string;
  cost: number;
  beforeGC: { heapSpaceStatistics: SpaceStat[] };
  afterGC: { heapSpaceStatistics: SpaceStat[] };
}

const YOUNG = new Set(['new_space', 'new_large_object_space']);

function used(spaces: SpaceStat[], names: (name: string) => boolean): number {
  let sum = 0;
  for (const s of spaces) if (names(s.spaceName)) sum += s.spaceUsedSize;
  return sum;
}

const young = (name: string) => YOUNG.has(name);
const old = (name: string) => name === 'old_space';

function youngUsedNow(): number {
  return used(
    getHeapSpaceStatistics().map((s) => ({ spaceName: s.space_name, spaceUsedSize: s.space_used_size })),
    young,
  );
}

/** Starts recording; the function it returns stops and sums up. */
export function recordGc(): () => Promise<GcStats> {
  const profiler = new GCProfiler();
  const pauses: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => pauses.push(...list.getEntries()));
  const youngAtStart = youngUsedNow();
  observer.observe({ entryTypes: ['gc'] });
  profiler.start();
  return async () => {
    const youngAtEnd = youngUsedNow();
    const records = (profiler.stop()?.statistics ?? []) as GcRecord[];
    // The observer hears of a collection two turns of the loop later (node records the entry on one, delivers it on the next).
    await tick();
    await tick();
    observer.disconnect();
    const stats: GcStats = {
      youngBytesAllocated: 0,
      scavenges: 0,
      scavengeMsTotal: 0,
      scavengeMsMax: 0,
      keptBytesPerScavenge: 0,
      fullGcs: 0,
      fullGcMsTotal: 0,
      scavengePauses: pauses
        .filter((p) => (p as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR)
        .map((p) => [p.startTime, p.startTime + p.duration]),
    };
    let youngAfterLast = youngAtStart;
    let kept = 0;
    for (const r of records) {
      const before = r.beforeGC.heapSpaceStatistics;
      const after = r.afterGC.heapSpaceStatistics;
      stats.youngBytesAllocated += used(before, young) - youngAfterLast;
      youngAfterLast = used(after, young);
      const ms = r.cost / 1000;
      if (r.gcType === 'Scavenge' || r.gcType === 'MinorMarkSweep') {
        stats.scavenges++;
        stats.scavengeMsTotal += ms;
        stats.scavengeMsMax = Math.max(stats.scavengeMsMax, ms);
        kept += youngAfterLast + Math.max(0, used(after, old) - used(before, old));
      } else if (r.gcType === 'MarkSweepCompact') {
        stats.fullGcs++;
        stats.fullGcMsTotal += ms;
      }
    }
    stats.youngBytesAllocated += youngAtEnd - youngAfterLast;
    stats.keptBytesPerScavenge = stats.scavenges === 0 ? 0 : kept / stats.scavenges;
    return stats;
  };
}

/** Whether a scavenge paused an operation that ran from `start` to `end`: its latency has the pause in it. */
export function pausedByScavenge(stats: GcStats, start: number, end: number): boolean {
  return stats.scavengePauses.some(([from, to]) => from < end && to > start);
}

/** One line: per-operation garbage and the collections' count and pauses. */
export function gcLine(s: GcStats, operations: number): string {
  return (
    `${(s.youngBytesAllocated / operations / 1024).toFixed(1)} KB young garbage per op; ` +
    `${s.scavenges} scavenges (${(s.scavengeMsTotal).toFixed(1)} ms, max ${s.scavengeMsMax.toFixed(2)} ms, ` +
    `${Math.round(s.keptBytesPerScavenge / 1024)} KB kept each); ${s.fullGcs} full GCs (${s.fullGcMsTotal.toFixed(1)} ms)`
  );
}
