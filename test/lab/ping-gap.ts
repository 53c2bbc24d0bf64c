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
  /** Sequence numbers sent without a reply. */
  lost: number;
  /** Replies that came back later than one interval. */
  late: number;
  /** (lost + late) × interval, in ms: the blackout as the issue defines it. */
  gapMs: number;
  /** The longest run of consecutive sequence numbers without a timely reply. */
  longestRun: number;
  /** The longest time between two timely replies, in ms (ping's own timestamps). */
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

  /** The highest sequence number that has a reply, or -1. */
  lastSeq(): number {
    const r = this.replies();
    return r.length ? r[r.length - 1]!.seq : -1;
  }

  /** Stops ping with SIGINT (so it prints its summary) and reads the whole run. */
  async stop(): Promise<PingStats> {
    this.proc.kill('SIGINT');
    await this.exited;
    const m = /(\d+) packets transmitted/.exec(this.out);
    if (!m) throw new Error(`ping printed no summary:\n${this.out.slice(-2000)}`);
    return pingStats(Number(m[1]), parseReplies(this.out), this.intervalMs);
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

export function pingStats(transmitted: number, replies: Reply[], intervalMs: number): PingStats {
  const timely = replies.filter((r) => r.rttMs <= intervalMs);
  const late = replies.length - timely.length;
  const lost = Math.max(0, transmitted - replies.length);
  let longestRun = 0;
  let longestSilenceMs = 0;
  // iputils numbers from 1; a run before the first timely reply counts too.
  let prev: Reply | undefined;
  for (const r of timely) {
    longestRun = Math.max(longestRun, r.seq - (prev?.seq ?? 0) - 1);
    if (prev) longestSilenceMs = Math.max(longestSilenceMs, r.at - prev.at);
    prev = r;
  }
  return { transmitted, replies, lost, late, gapMs: (lost + late) * intervalMs, longestRun, longestSilenceMs };
}

export function describeStats(s: PingStats, intervalMs: number): string {
  return (
    `${s.transmitted} sent every ${intervalMs} ms, ${s.replies.length} replies, ${s.lost} lost, ${s.late} late (> ${intervalMs} ms): ` +
    `gap ${s.gapMs} ms; longest run without a timely reply ${s.longestRun} (${s.longestRun * intervalMs} ms); ` +
    `longest silence between timely replies ${s.longestSilenceMs.toFixed(0)} ms`
  );
}
