/**
 * Traffic counters on a Linux host. One `ip -s -j -d link show dev <PF>`
 * gives the PF's own counters (`stats64`) and, per VF, the PF's view of it
 * (`vfinfo_list[].stats`, the kernel's IFLA_VF_STATS).
 *
 * The kernel puts IFLA_VF_STATS in every VF entry, zeros included, whether
 * or not the driver has `ndo_get_vf_stats` (igb, ixgbe have none). Zeros from
 * such a driver mean "not counted", not "idle": those VFs are read from their
 * own netdev (`/sys/class/net/<vf>/statistics/`) when it is in the host's
 * namespace, and are reported unreadable otherwise, never as zeros.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VfStats } from '../model.js';
import { KernelError, type CounterPort, type PfCounterRead, type VfCounterRead } from '../ports.js';
import { isIfName, parseIfName } from '../validate.js';
import { run } from './exec.js';

/** PF drivers with ndo_get_vf_stats: their IFLA_VF_STATS are real counters (mlx4's netdev is mlx4_en over mlx4_core). */
const DRIVERS_WITH_VF_STATS = new Set(['mlx5_core', 'mlx4_core', 'mlx4_en', 'ice', 'i40e']);

const COUNTER_FILES = {
  rxBytes: 'rx_bytes',
  txBytes: 'tx_bytes',
  rxPackets: 'rx_packets',
  txPackets: 'tx_packets',
  rxDropped: 'rx_dropped',
  txDropped: 'tx_dropped',
} as const satisfies Record<keyof VfStats, string>;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A counter, or undefined: a field iproute2 did not print is unknown, not zero. */
const counter = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

function complete(c: { [K in keyof VfStats]: number | undefined }): VfStats | null {
  return Object.values(c).every((v) => v !== undefined) ? (c as VfStats) : null;
}

/** `stats64` of a link (`ip -s -j`): rx/tx bytes, packets, dropped. */
function linkStats(v: unknown): VfStats | null {
  if (!isObject(v) || !isObject(v.rx) || !isObject(v.tx)) return null;
  return complete({
    rxBytes: counter(v.rx.bytes),
    txBytes: counter(v.tx.bytes),
    rxPackets: counter(v.rx.packets),
    txPackets: counter(v.tx.packets),
    rxDropped: counter(v.rx.dropped),
    txDropped: counter(v.tx.dropped),
  });
}

/** A `vfinfo_list[].stats` entry; iproute2 ≥ 5.x names the tx side `tx_bytes`/`tx_packets`. */
function vfStats(v: unknown): VfStats | null {
  if (!isObject(v) || !isObject(v.rx) || !isObject(v.tx)) return null;
  return complete({
    rxBytes: counter(v.rx.bytes),
    txBytes: counter(v.tx.tx_bytes ?? v.tx.bytes),
    rxPackets: counter(v.rx.packets),
    txPackets: counter(v.tx.tx_packets ?? v.tx.packets),
    rxDropped: counter(v.rx.dropped),
    txDropped: counter(v.tx.dropped),
  });
}

const isZero = (s: VfStats) => Object.values(s).every((v) => v === 0);

export interface ParsedCounters {
  pf: VfStats | null;
  /** IFLA_VF_STATS by VF index, only when the driver fills them. */
  vfStats: Map<number, VfStats>;
  /** Whether the driver fills IFLA_VF_STATS: a known driver, or any VF counted something. */
  vfStatsFilled: boolean;
}

/** The parsed JSON of `ip -s -j -d link show dev <PF>` (an array of one link). */
export function parsePfCounters(json: unknown, driver: string | null): ParsedCounters {
  const link = Array.isArray(json) ? json[0] : json;
  if (!isObject(link)) throw new KernelError('EPROTO', 'ip link show', 'ip -s link show: no link in the JSON output');
  const entries = Array.isArray(link.vfinfo_list) ? link.vfinfo_list.filter(isObject) : [];
  const all = new Map<number, VfStats>();
  for (const e of entries) {
    const stats = vfStats(e.stats);
    if (typeof e.vf === 'number' && stats) all.set(e.vf, stats);
  }
  const vfStatsFilled = (driver !== null && DRIVERS_WITH_VF_STATS.has(driver)) || [...all.values()].some((s) => !isZero(s));
  return { pf: linkStats(link.stats64 ?? link.stats), vfStats: vfStatsFilled ? all : new Map(), vfStatsFilled };
}

export class LinuxCounters implements CounterPort {
  constructor(
    private readonly sysfsRoot = '/sys',
    private readonly ipPath = 'ip',
  ) {}

  async read(pfNetdev: string, driver: string | null, vfs: ReadonlyArray<{ index: number; netdev: string | null }>): Promise<PfCounterRead> {
    const dev = parseIfName(pfNetdev);
    // The same as `ip -s -j -d link show dev <PF>` typed by hand.
    const res = await run(this.ipPath, ['-s', '-j', '-d', 'link', 'show', 'dev', dev]);
    if (res.code !== 0) throw new KernelError('EIO', 'ip -s link show', res.stderr.trim() || `ip -s link show dev ${dev}: exit ${res.code}`);
    let json: unknown;
    try {
      json = JSON.parse(res.stdout);
    } catch {
      throw new KernelError('EPROTO', 'ip -s link show', `ip -s link show dev ${dev}: output is not JSON`);
    }
    const parsed = parsePfCounters(json, driver);
    const reads = await Promise.all(vfs.map((vf) => this.vf(parsed, driver, vf)));
    return { pf: parsed.pf, vfs: reads, simulated: false };
  }

  private async vf(parsed: ParsedCounters, driver: string | null, vf: { index: number; netdev: string | null }): Promise<VfCounterRead> {
    const fromPf = parsed.vfStats.get(vf.index);
    if (fromPf) return { index: vf.index, counters: fromPf, source: 'vf-stats' };
    const noStats = parsed.vfStatsFilled ? 'the PF reports no counters for it' : `${driver ?? 'its PF driver'} does not report per-VF counters (IFLA_VF_STATS)`;
    if (vf.netdev === null || !isIfName(vf.netdev)) {
      return { index: vf.index, counters: null, source: null, missing: `${noStats} and the VF has no netdev in the host namespace` };
    }
    try {
      return { index: vf.index, counters: await this.netdevStats(vf.netdev), source: 'netdev' };
    } catch (err) {
      const why = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
      return { index: vf.index, counters: null, source: null, missing: `${noStats} and /sys/class/net/${vf.netdev}/statistics: ${why}` };
    }
  }

  /** `/sys/class/net/<netdev>/statistics/{rx,tx}_{bytes,packets,dropped}`: `name` is a checked interface name. */
  private async netdevStats(name: string): Promise<VfStats> {
    const dir = join(this.sysfsRoot, 'class', 'net', parseIfName(name), 'statistics');
    const keys = Object.keys(COUNTER_FILES) as Array<keyof VfStats>;
    const values = await Promise.all(keys.map(async (k) => Number((await readFile(join(dir, COUNTER_FILES[k]), 'utf8')).trim())));
    const stats = Object.fromEntries(keys.map((k, i) => [k, counter(values[i])])) as { [K in keyof VfStats]: number | undefined };
    const done = complete(stats);
    if (!done) throw Object.assign(new Error(`${dir}: not a counter`), { code: 'EPROTO' });
    return done;
  }
}
