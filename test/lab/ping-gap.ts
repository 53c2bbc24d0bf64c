/**
 * A namespace that pings an address every `intervalMs` (iputils `ping -i`,
 * `-D` for a timestamp per reply), and what its replies say about an outage:
 * the lab suites' blackout figure, "lost or late replies × interval".
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Reply {
  seq: number;
  /** When the reply arrived (ping's -D timestamp), in ms since the epoch. */
  at: number;
  rttMs: number;
}

export interface PingStats {
  transmitted: number;
  replies: Reply[];
  /** Sequence numbers sent without a reply, as runs [first, last]. */
  lostRuns: Array<[number, number]>;
  lost: number;
  /**
   * The round trip that counts as late: the interval, or the 99th percentile
   * of the replies before the event if that is more (the emulated lab is slow
   * all the time; only what the event adds is its cost).
   */
  lateMs: number;
  /** Replies from the event on that came back later than `lateMs`. */
  late: number;
  /** (lost + late) × interval, in ms: the blackout as the issue defines it. */
  gapMs: number;
  /** The longest time between two replies, in ms (ping's own timestamps). */
  longestSilenceMs: number;
}

export class Pinger {
  private out = '';
  private readonly proc: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(
    readonly ns: string,
    readonly target: string,
    readonly intervalMs = 10,
  ) {
    // ping -i below 0.2 s needs root, which the lab guest is; -W 1: a reply waited for 1 s at most.
    this.proc = spawn('ip', ['netns', 'exec', ns, 'ping', '-n', '-D', '-W', '1', '-i', String(intervalMs / 1000), target], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d: Buffer) => (this.out += d));
    this.proc.stderr!.on('data', (d: Buffer) => (this.out += d));
    this.exited = new Promise((resolve) => this.proc.once('exit', () => resolve()));
  }

  /** The replies so far. */
  replies(): Reply[] {
    return parseReplies(this.out);
  }

  /** The highest sequence number that has a reply, or 0. */
  lastSeq(): number {
    return this.replies().reduce((n, r) => Math.max(n, r.seq), 0);
  }

  /** Stops ping with SIGINT (so it prints its summary) and reads the whole run; `eventSeq` as pingStats takes it. */
  async stop(eventSeq: number): Promise<PingStats> {
    this.proc.kill('SIGINT');
    await this.exited;
    const m = /(\d+) packets transmitted/.exec(this.out);
    if (!m) throw new Error(`ping printed no summary:\n${this.out.slice(-2000)}`);
    return pingStats(Number(m[1]), parseReplies(this.out), this.intervalMs, eventSeq);
  }

  /** Ends it without a summary (cleanup after a failure). */
  async kill(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
  }

  output(): string {
    return this.out;
  }
}

/** `[1701234567.123456] 64 bytes from 198.18.7.10: icmp_seq=5 ttl=64 time=0.512 ms` lines; duplicates (DUP!) left out. */
export function parseReplies(text: string): Reply[] {
  const re = /^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms$/gm;
  const replies: Reply[] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) replies.push({ seq: Number(m[2]), at: Number(m[1]) * 1000, rttMs: Number(m[3]) });
  return replies;
}

/** The run's figures; `eventSeq`: the first sequence number sent once the event (the unplug, the drain) began. */
export function pingStats(transmitted: number, replies: Reply[], intervalMs: number, eventSeq: number): PingStats {
  const baseline = replies.filter((r) => r.seq < eventSeq).map((r) => r.rttMs).sort((a, b) => a - b);
  const p99 = baseline.length ? baseline[Math.min(baseline.length - 1, Math.floor(baseline.length * 0.99))]! : 0;
  const lateMs = Math.max(intervalMs, p99);
  const late = replies.filter((r) => r.seq >= eventSeq && r.rttMs > lateMs).length;
  const got = new Set(replies.map((r) => r.seq));
  const lostRuns: Array<[number, number]> = [];
  // iputils numbers from 1.
  for (let seq = 1; seq <= transmitted; seq++) {
    if (got.has(seq)) continue;
    const last = lostRuns[lostRuns.length - 1];
    if (last && last[1] === seq - 1) last[1] = seq;
    else lostRuns.push([seq, seq]);
  }
  const lost = lostRuns.reduce((n, [a, b]) => n + b - a + 1, 0);
  const byArrival = [...replies].sort((a, b) => a.at - b.at);
  let longestSilenceMs = 0;
  for (let i = 1; i < byArrival.length; i++) longestSilenceMs = Math.max(longestSilenceMs, byArrival[i]!.at - byArrival[i - 1]!.at);
  return { transmitted, replies, lostRuns, lost, lateMs, late, gapMs: (lost + late) * intervalMs, longestSilenceMs };
}

export function describeStats(s: PingStats, intervalMs: number): string {
  const runs = s.lostRuns.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ') || 'none';
  return (
    `gap ${s.gapMs} ms = (${s.lost} lost + ${s.late} late) × ${intervalMs} ms; ` +
    `${s.transmitted} sent, ${s.replies.length} replies; lost icmp_seq: ${runs}; late: over ${s.lateMs.toFixed(1)} ms (the interval or the p99 before the event); ` +
    `longest silence between replies ${s.longestSilenceMs.toFixed(0)} ms`
  );
}
