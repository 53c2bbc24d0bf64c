/**
 * Validation of everything a user can hand us. The agent runs as root and
 * builds sysfs paths and iproute2 arguments from these values, so nothing
 * reaches the host layer without passing through here first.
 */
import { invalid } from './errors.js';
import type { LinkState, VlanProto } from './model.js';

const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
const SHORT_PCI_ADDRESS = /^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
// The kernel allows more (dev_valid_name), but '/', ':', whitespace and '%'
// have no place in names we pass to sysfs or iproute2.
const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
const DRIVER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export const ZERO_MAC = '00:00:00:00:00:00';

/** Full `dddd:bb:ss.f` form; `bb:ss.f` is taken as domain 0000. */
export function parsePciAddress(value: string): string {
  const v = value.trim().toLowerCase();
  if (PCI_ADDRESS.test(v)) return v;
  if (SHORT_PCI_ADDRESS.test(v)) return `0000:${v}`;
  throw invalid(`"${value}" is not a PCI address (expected dddd:bb:ss.f)`, value);
}

export function isPciAddress(value: string): boolean {
  return PCI_ADDRESS.test(value.trim().toLowerCase()) || SHORT_PCI_ADDRESS.test(value.trim().toLowerCase());
}

export function parseIfName(value: string): string {
  if (!IFNAME.test(value)) {
    throw invalid(`"${value}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`, value);
  }
  return value;
}

export function parseDriverName(value: string): string {
  if (!DRIVER_NAME.test(value)) throw invalid(`"${value}" is not a valid driver name`, value);
  return value;
}

export interface MacOptions {
  /** Allow 00:00:00:00:00:00, which clears the admin MAC. */
  allowZero?: boolean;
}

/** Lower-cased unicast MAC; multicast/broadcast never, all-zero only when allowed. */
export function parseMac(value: string, opts: MacOptions = {}): string {
  const v = value.trim().toLowerCase().replace(/-/g, ':');
  if (!MAC.test(v)) throw invalid(`"${value}" is not a MAC address (expected xx:xx:xx:xx:xx:xx)`, value);
  if (v === ZERO_MAC && !opts.allowZero) throw invalid(`MAC ${v} is all-zero`, value);
  if (parseInt(v.slice(0, 2), 16) & 1) throw invalid(`MAC ${v} is multicast; a VF needs a unicast MAC`, value);
  return v;
}

export function parseInteger(value: string | number, what: string, min: number, max: number): number {
  const n = typeof value === 'number' ? value : /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw invalid(`${what} must be a whole number, got "${value}"`);
  if (n < min || n > max) throw invalid(`${what} must be between ${min} and ${max}, got ${n}`);
  return n;
}

export const parseVlan = (v: string | number) => parseInteger(v, 'VLAN', 0, 4094);
export const parseQos = (v: string | number) => parseInteger(v, 'QoS', 0, 7);
/** Rates are Mbps; 0 means unlimited (max) or no guarantee (min). 400G is the ceiling. */
export const parseRateMbps = (v: string | number, what: string) => parseInteger(v, what, 0, 400_000);
export const parseMtu = (v: string | number) => parseInteger(v, 'MTU', 68, 65535);

export function parseVlanProto(value: string): VlanProto {
  const v = value.trim().toLowerCase();
  if (v === '802.1q') return '802.1Q';
  if (v === '802.1ad') return '802.1ad';
  throw invalid(`VLAN protocol must be 802.1Q or 802.1ad, got "${value}"`);
}

export function parseOnOff(value: string | boolean, what: string): boolean {
  if (typeof value === 'boolean') return value;
  const v = value.trim().toLowerCase();
  if (v === 'on' || v === 'true' || v === 'yes') return true;
  if (v === 'off' || v === 'false' || v === 'no') return false;
  throw invalid(`${what} must be on or off, got "${value}"`);
}

export function parseLinkState(value: string): LinkState {
  const v = value.trim().toLowerCase();
  if (v === 'auto' || v === 'enable' || v === 'disable') return v;
  throw invalid(`link state must be auto, enable or disable, got "${value}"`);
}

/** "0-3,7" → [0,1,2,3,7]; the policy file's VF ranges. */
export function parseIndexRanges(value: string, what = 'VF range'): number[] {
  const out = new Set<number>();
  for (const part of value.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw invalid(`${what} "${value}" is not a list of indexes or ranges like 0-3,7`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > 4095) throw invalid(`${what} "${part.trim()}" is out of order or too large`);
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}
