/**
 * The link side of a Linux host through iproute2 (field notes §2): VF
 * settings are read from `ip -j -d link show <PF>` and written as
 * `ip -batch -` lines, one line per group of attributes.
 */
import { errnoFromMessage, invalid } from '../errors.js';
import type { LinkState, VfStats, VlanProto } from '../model.js';
import { KernelError } from '../ports.js';
import type { BatchResult, LinkConfig, PfLinkFacts, VfLinkEntry, VfOp } from '../ports.js';
import {
  ZERO_MAC,
  parseIfName,
  parseInteger,
  parseLinkState,
  parseMac,
  parseMtu,
  parseQos,
  parseRateMbps,
  parseVlan,
  parseVlanProto,
} from '../validate.js';
import { run } from './exec.js';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const asObject = (v: unknown): Json => (isObject(v) ? v : {});
const num = (v: unknown, fallback = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
const bool = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);

function operState(v: unknown): PfLinkFacts['operState'] {
  return v === 'UP' ? 'up' : v === 'DOWN' ? 'down' : 'unknown';
}

function vlanProto(v: unknown): VlanProto {
  return typeof v === 'string' && v.toLowerCase() === '802.1ad' ? '802.1ad' : '802.1Q';
}

function linkState(v: unknown): LinkState {
  return v === 'enable' || v === 'disable' ? v : 'auto';
}

/** `stats` of one VF; `tx` names its counters `tx_bytes`/`tx_packets` in iproute2 ≥ 5.x. */
function vfStats(v: unknown): VfStats | undefined {
  if (!isObject(v)) return undefined;
  const rx = asObject(v.rx);
  const tx = asObject(v.tx);
  return {
    rxBytes: num(rx.bytes),
    rxPackets: num(rx.packets),
    rxDropped: num(rx.dropped),
    txBytes: num(tx.tx_bytes ?? tx.bytes),
    txPackets: num(tx.tx_packets ?? tx.packets),
    txDropped: num(tx.dropped),
  };
}

/**
 * One `vfinfo_list` entry. iproute2 omits zero VLAN fields (`vlan_list: [{}]`)
 * and the protocol unless it is 802.1ad; old versions print `vlan`/`qos` and
 * `tx_rate` on the entry itself.
 */
function vfEntry(v: unknown): VfLinkEntry {
  const e = asObject(v);
  const vlan = Array.isArray(e.vlan_list) ? asObject(e.vlan_list[0]) : e;
  const rate = asObject(e.rate);
  const stats = vfStats(e.stats);
  return {
    index: num(e.vf, -1),
    mac: typeof e.address === 'string' ? e.address.toLowerCase() : ZERO_MAC,
    vlan: num(vlan.vlan),
    qos: num(vlan.qos),
    vlanProto: vlanProto(vlan.protocol),
    minTxRateMbps: num(rate.min_tx),
    maxTxRateMbps: num(rate.max_tx ?? e.tx_rate),
    spoofChk: bool(e.spoofchk),
    trust: bool(e.trust),
    linkState: linkState(e.link_state),
    ...(stats ? { stats } : {}),
  };
}

/** The parsed output of `ip -j -d [-s] link show dev <PF>` (an array of one link). */
export function parseIpLinkJson(json: unknown): PfLinkFacts {
  const link = Array.isArray(json) ? json[0] : json;
  if (!isObject(link)) throw new KernelError('EPROTO', 'ip link show', 'ip link show: no link in the JSON output');
  return {
    mac: typeof link.address === 'string' ? link.address.toLowerCase() : null,
    mtu: typeof link.mtu === 'number' ? link.mtu : null,
    operState: operState(link.operstate),
    vfs: Array.isArray(link.vfinfo_list) ? link.vfinfo_list.map(vfEntry) : [],
  };
}

/** The JSON `ip -j -d link show dev <PF>` printed (alone, or as the only show line of a batch). */
function parsePfShow(dev: string, stdout: string): PfLinkFacts {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new KernelError('EPROTO', 'ip link show', `ip link show dev ${dev}: output is not JSON`);
  }
  return parseIpLinkJson(json);
}

/**
 * A batch's read-back. iproute2 6.1 prints one JSON array per show line; an
 * ip that frames batch output otherwise gets no `after`, and the caller
 * reads the PF with a show of its own: the writes have happened either way.
 */
function readBackOf(dev: string, stdout: string): BatchResult {
  try {
    return { ok: true, after: parsePfShow(dev, stdout) };
  } catch {
    return { ok: true };
  }
}

function onOff(on: boolean, what: string): string {
  // Typed as boolean, but ops can come from parsed JSON: check at runtime too.
  if (typeof on !== 'boolean') throw invalid(`${what} must be true or false, got "${String(on)}"`);
  return on ? 'on' : 'off';
}

/** The VF part of a batch line; every value is re-validated, so none can inject words. */
function vfOpArgs(op: VfOp): string {
  switch (op.field) {
    case 'mac':
      return `mac ${parseMac(op.mac, { allowZero: true })}`;
    case 'vlan':
      return `vlan ${parseVlan(op.vlan)} qos ${parseQos(op.qos)} proto ${parseVlanProto(op.vlanProto)}`;
    case 'rate':
      return `min_tx_rate ${parseRateMbps(op.minTxRateMbps, 'min_tx_rate')} max_tx_rate ${parseRateMbps(op.maxTxRateMbps, 'max_tx_rate')}`;
    case 'spoofChk':
      return `spoofchk ${onOff(op.on, 'spoofchk')}`;
    case 'trust':
      return `trust ${onOff(op.on, 'trust')}`;
    case 'linkState':
      return `state ${parseLinkState(op.state)}`;
  }
  throw invalid(`unknown VF setting "${String((op as { field: unknown }).field)}"`);
}

/** `link set dev <PF> vf N ...`: one `ip -batch` line (`ip link set ...` without the `ip`). */
export function vfOpToBatchLine(pf: string, op: VfOp): string {
  const vf = parseInteger(op.vf, 'VF index', 0, 4095);
  return `link set dev ${parseIfName(pf)} vf ${vf} ${vfOpArgs(op)}`;
}

/** The errno in iproute2's stderr ("RTNETLINK answers: Device or resource busy"). */
function errnoOf(stderr: string): string {
  return errnoFromMessage(stderr) ?? (/does not exist/.test(stderr) ? 'ENODEV' : 'EIO');
}

export class IprouteLinkConfig implements LinkConfig {
  constructor(private readonly ipPath = 'ip') {}

  async showPf(pfNetdev: string, opts: { stats?: boolean } = {}): Promise<PfLinkFacts> {
    const dev = parseIfName(pfNetdev);
    const args = ['-j', '-d', ...(opts.stats ? ['-s'] : []), 'link', 'show', 'dev', dev];
    return parsePfShow(dev, await this.ip(args, 'ip link show'));
  }

  /**
   * `ip -batch -` without `-force`, so it stops at the first failing line and
   * names it (`Command failed -:N`); the ops before it have taken effect.
   * With `readBack`, `ip -j -d -batch -` and a last line `link show dev <PF>`:
   * set lines print nothing, so the output is that show's JSON alone.
   */
  async applyVfOps(pfNetdev: string, ops: VfOp[], opts: { readBack?: boolean } = {}): Promise<BatchResult> {
    const lines = ops.map((op) => vfOpToBatchLine(pfNetdev, op));
    if (lines.length === 0) return { ok: true };
    const dev = parseIfName(pfNetdev);
    const show = opts.readBack ? [`link show dev ${dev}`] : [];
    const args = [...(opts.readBack ? ['-j', '-d'] : []), '-batch', '-'];
    const res = await run(this.ipPath, args, { input: `${[...lines, ...show].join('\n')}\n` });
    if (res.code === 0) return opts.readBack ? readBackOf(dev, res.stdout) : { ok: true };
    const message = res.stderr.trim();
    const line = /Command failed -:(\d+)/.exec(res.stderr)?.[1];
    // Without a line number we cannot say which ops took effect: not a BatchResult.
    if (line === undefined) throw new KernelError(errnoOf(res.stderr), 'ip -batch', message || `ip -batch exited ${res.code}`);
    return { ok: false, failedAt: Number(line) - 1, errno: errnoOf(res.stderr), message };
  }

  /** `ip link set dev <netdev> mtu N` */
  async setMtu(netdev: string, mtu: number): Promise<void> {
    await this.ip(['link', 'set', 'dev', parseIfName(netdev), 'mtu', String(parseMtu(mtu))], 'ip link set mtu');
  }

  /** `ip link set dev <netdev> up` */
  async setUp(netdev: string): Promise<void> {
    await this.ip(['link', 'set', 'dev', parseIfName(netdev), 'up'], 'ip link set up');
  }

  /** Runs ip; stdout on success, a KernelError with the errno from stderr otherwise. */
  private async ip(args: string[], operation: string): Promise<string> {
    const res = await run(this.ipPath, args);
    if (res.code !== 0) throw new KernelError(errnoOf(res.stderr), operation, res.stderr.trim() || `${operation}: exit ${res.code}`);
    return res.stdout;
  }
}
