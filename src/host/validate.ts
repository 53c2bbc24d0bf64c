/**
 * Validation of everything a user can hand us. The agent runs as root and
 * builds sysfs paths and iproute2 arguments from these values, so nothing
 * reaches the host layer without passing through here first.
 */
import { SocketAddress, isIPv4, isIPv6 } from 'node:net';
import { posix } from 'node:path';
import { invalid } from './errors.js';
import type { LinkState, VfSettings, VlanProto } from './model.js';
import { isIfSysctl, type ContainerLinkSpec, type IfSysctl, type NetnsRoute } from './ports.js';

const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
const SHORT_PCI_ADDRESS = /^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
// The kernel allows more (dev_valid_name), but '/', ':', whitespace and '%'
// have no place in names we pass to sysfs or iproute2.
const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
const DRIVER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;
// Host names may be FQDNs (node1.example.com); lower case, as Kubernetes node names are.
const HOST_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export const ZERO_MAC = '00:00:00:00:00:00';

/**
 * A user's value as a message quotes it: JSON-escaped (no control characters
 * reach the terminal) and cut to `max` characters, so a pasted file or a
 * megabyte argument never becomes the error line.
 */
export function shown(value: unknown, max = 40): string {
  const text = typeof value === 'string' ? value : String(value);
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return JSON.stringify(cut);
}

/** Full `dddd:bb:ss.f` form; `bb:ss.f` is taken as domain 0000. */
export function parsePciAddress(value: string): string {
  const v = value.trim().toLowerCase();
  if (PCI_ADDRESS.test(v)) return v;
  if (SHORT_PCI_ADDRESS.test(v)) return `0000:${v}`;
  throw invalid(`${shown(value)} is not a PCI address (expected dddd:bb:ss.f)`, value);
}

/**
 * netdevsim, the kernel's test driver, is not PCI: its device is
 * `/sys/bus/netdevsim/devices/netdevsim<N>`, and its VFs exist only as ports
 * (no PCI function, no netdev). The inventory names such a PF by its device
 * name and its VFs `netdevsim<N>:vf<M>` where a PCI address would go.
 */
const NSIM_DEVICE = /^netdevsim\d{1,5}$/;
const NSIM_VF = /^(netdevsim\d{1,5}):vf(\d{1,4})$/;

export const isNsimDevice = (value: string): boolean => NSIM_DEVICE.test(value);
export const isNsimVf = (value: string): boolean => NSIM_VF.test(value);
export const nsimVfAddress = (device: string, index: number): string => `${device}:vf${index}`;

/** A PF's device address: a PCI address (normalised) or a netdevsim device name. */
export function parseDeviceAddress(value: string): string {
  const v = value.trim();
  return isNsimDevice(v) ? v : parsePciAddress(v);
}

/** A VF's address: a PCI address (normalised) or `netdevsim<N>:vf<M>`. */
export function parseVfAddress(value: string): string {
  const v = value.trim();
  return isNsimVf(v) ? v : parsePciAddress(v);
}

/** The devlink handle of a PF's device: `pci/<BDF>` or `netdevsim/netdevsim<N>`. */
export function devlinkHandle(device: string): string {
  const v = parseDeviceAddress(device);
  return isNsimDevice(v) ? `netdevsim/${v}` : `pci/${v}`;
}

// devlink takes `<dev>/<name>` as a node when the name is not a port index (all digits).
const RATE_NODE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** A devlink rate node's name; vfleet's own are `vfleet-<tenant>`. */
export function parseRateNodeName(value: string): string {
  if (!RATE_NODE_NAME.test(value)) throw invalid(`${shown(value)} is not a devlink rate node name (a letter, then letters, digits, _ . -; at most 64)`, value);
  return value;
}

export function isPciAddress(value: string): boolean {
  return PCI_ADDRESS.test(value.trim().toLowerCase()) || SHORT_PCI_ADDRESS.test(value.trim().toLowerCase());
}

export const isIfName = (value: unknown): value is string => typeof value === 'string' && IFNAME.test(value);

export function parseIfName(value: string): string {
  if (!isIfName(value)) {
    throw invalid(`interface name ${shown(value)} is not valid (1-15 of A-Z a-z 0-9 _ . -, not starting with . or -)`, value);
  }
  return value;
}

export const isHostName = (value: unknown): value is string => typeof value === 'string' && HOST_NAME.test(value);

export function parseHostName(value: unknown): string {
  if (!isHostName(value)) {
    throw invalid(`host name must be a lower-case DNS name (letters, digits, '-' and '.'), got ${shown(value)}`);
  }
  return value;
}

export function parseDriverName(value: string): string {
  if (!DRIVER_NAME.test(value)) throw invalid(`driver name ${shown(value)} is not valid (letters, digits, _ and -)`, value);
  return value;
}

export interface MacOptions {
  /** Allow 00:00:00:00:00:00, which clears the admin MAC. */
  allowZero?: boolean;
}

/** Lower-cased unicast MAC; multicast/broadcast never, all-zero only when allowed. */
export function parseMac(value: string, opts?: MacOptions): string {
  // A MAC already in canonical form (every allocation's, from the MAC pool) is checked without copies of it.
  const v = MAC.test(value) ? value : value.trim().toLowerCase().replace(/-/g, ':');
  if (!MAC.test(v)) throw invalid(`MAC ${shown(value)} is not a MAC address (expected xx:xx:xx:xx:xx:xx)`, value);
  if (v === ZERO_MAC && !opts?.allowZero) throw invalid(`MAC ${v} is all-zero`, value);
  // The multicast bit is the first octet's lowest: its second hex digit's.
  if (parseInt(v[1]!, 16) & 1) throw invalid(`MAC ${v} is multicast; a VF needs a unicast MAC`, value);
  return v;
}

/** Plain decimal: `010` (octal to some tools), `0x10`, `1e3`, `+5` and ` 5` are not. */
const DECIMAL = /^(0|-?[1-9][0-9]*)$/;

export function isDecimal(text: string): boolean {
  return DECIMAL.test(text);
}

/** A whole number written in decimal digits only, within `min`..`max`. */
export function parseInteger(value: string | number, what: string, min: number, max: number): number {
  if (typeof value === 'string' && !DECIMAL.test(value)) {
    throw invalid(`${what} must be a whole number in decimal digits only (no leading zeros, 0x, exponent, sign or spaces), got ${shown(value)}`);
  }
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw invalid(`${what} must be a whole number, got ${shown(value)}`);
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
  throw invalid(`VLAN protocol must be 802.1Q or 802.1ad, got ${shown(value)}`);
}

export function parseOnOff(value: string | boolean, what: string): boolean {
  if (typeof value === 'boolean') return value;
  const v = value.trim().toLowerCase();
  if (v === 'on' || v === 'true' || v === 'yes') return true;
  if (v === 'off' || v === 'false' || v === 'no') return false;
  throw invalid(`${what} must be on or off, got ${shown(value)}`);
}

export function parseLinkState(value: string): LinkState {
  const v = value.trim().toLowerCase();
  if (v === 'auto' || v === 'enable' || v === 'disable') return v;
  throw invalid(`link state must be auto, enable or disable, got ${shown(value)}`);
}

/** VF settings as a user writes them (command-line strings, or YAML numbers and booleans). */
export interface RawVfSettings {
  mac?: string;
  vlan?: string | number;
  qos?: string | number;
  vlanProto?: string;
  maxTxRateMbps?: string | number;
  minTxRateMbps?: string | number;
  spoofChk?: string | boolean;
  trust?: string | boolean;
  linkState?: string;
}

/** Every given field validated; an all-zero MAC is allowed (it clears the admin MAC). */
export function parseVfSettings(raw: RawVfSettings): VfSettings {
  const s: VfSettings = {};
  if (raw.mac !== undefined) s.mac = parseMac(raw.mac, { allowZero: true });
  if (raw.vlan !== undefined) s.vlan = parseVlan(raw.vlan);
  if (raw.qos !== undefined) s.qos = parseQos(raw.qos);
  if (raw.vlanProto !== undefined) s.vlanProto = parseVlanProto(raw.vlanProto);
  if (raw.maxTxRateMbps !== undefined) s.maxTxRateMbps = parseRateMbps(raw.maxTxRateMbps, 'max tx rate');
  if (raw.minTxRateMbps !== undefined) s.minTxRateMbps = parseRateMbps(raw.minTxRateMbps, 'min tx rate');
  if (raw.spoofChk !== undefined) s.spoofChk = parseOnOff(raw.spoofChk, 'spoofChk');
  if (raw.trust !== undefined) s.trust = parseOnOff(raw.trust, 'trust');
  if (raw.linkState !== undefined) s.linkState = parseLinkState(raw.linkState);
  return s;
}

/** "0-3,7" → [0,1,2,3,7]; the policy file's VF ranges. */
export function parseIndexRanges(value: string, what = 'VF range'): number[] {
  const out = new Set<number>();
  for (const part of value.split(',')) {
    const m = /^\s*(0|[1-9][0-9]*)\s*(?:-\s*(0|[1-9][0-9]*)\s*)?$/.exec(part);
    if (!m) throw invalid(`${what} ${shown(value)} is not a list of decimal indexes or ranges like 0-3,7`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > 4095) throw invalid(`${what} ${shown(part.trim())} is out of order or above 4095`);
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}

// ---- network namespaces (container attachment) --------------------------------

const PATH_MAX = 4096;

/**
 * A network namespace path (`/var/run/netns/NAME`, `/proc/PID/ns/net`):
 * absolute, no `..` segment, no control characters (NUL, newline...). Returned normalized
 * (`//` collapsed, no trailing `/`) so one namespace has one spelling.
 */
export function parseNetnsPath(value: string): string {
  const ok =
    typeof value === 'string' &&
    value.length <= PATH_MAX &&
    value.startsWith('/') &&
    !/\p{Cc}/u.test(value) &&
    !value.split('/').includes('..');
  if (!ok) throw invalid(`${shown(value)} is not a network namespace path (absolute, without "..", at most ${PATH_MAX} characters)`, String(value));
  const path = posix.normalize(value);
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * An IPv4 or IPv6 address, in the canonical form iproute2 prints
 * (inet_ntop: lower case, `::` compression). IPv4 octets with leading zeros
 * (ambiguous: octal to some tools) and IPv6 zone ids are refused.
 */
export function parseIp(value: string): string {
  const family = typeof value !== 'string' || value.includes('%') ? 0 : isIPv4(value) ? 4 : isIPv6(value) ? 6 : 0;
  if (family === 0) throw invalid(`${shown(value)} is not an IPv4 or IPv6 address`, String(value));
  return new SocketAddress({ address: value, family: family === 4 ? 'ipv4' : 'ipv6' }).address;
}

/** The address as a 32- or 128-bit number (input already canonical). */
function ipBits(ip: string): bigint {
  if (isIPv4(ip)) return ip.split('.').reduce((n, octet) => (n << 8n) | BigInt(octet), 0n);
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) is two 16-bit groups.
  const text = ip.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a, b, c, d) =>
    [a * 256 + +b, c * 256 + +d].map((g: number) => g.toString(16)).join(':'),
  );
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export interface CidrOptions {
  /** A network (route destination): the bits past the prefix must be zero, as the kernel requires. */
  network?: boolean;
}

/** `ADDRESS/PREFIX` with the prefix required; returned canonical (`2001:db8::1/64`). */
export function parseCidr(value: string, opts: CidrOptions = {}): string {
  const m = typeof value === 'string' ? /^([^/]+)\/(0|[1-9]\d{0,2})$/.exec(value) : null;
  if (!m) throw invalid(`${shown(value)} is not an address with a prefix length (e.g. 198.18.0.10/24)`, String(value));
  const ip = parseIp(m[1]!);
  const bits = isIPv4(ip) ? 32 : 128;
  const len = Number(m[2]);
  if (len > bits) throw invalid(`prefix length ${len} in ${shown(value)} is above ${bits}`, value);
  if (opts.network && ipBits(ip) & ((1n << BigInt(bits - len)) - 1n)) {
    throw invalid(`${shown(value)} has bits set past its /${len} prefix; a route needs the network address`, value);
  }
  return `${ip}/${len}`;
}

const familyOf = (ip: string) => (isIPv4(ip) ? 4 : 6);

/** A route: `default` or a network CIDR, and a gateway of the same family. */
function parseRoute(route: NetnsRoute): NetnsRoute {
  if (typeof route !== 'object' || route === null) throw invalid(`route ${String(route)} is not { dst, gw? }`);
  const dst = route.dst === 'default' ? 'default' : parseCidr(route.dst, { network: true });
  if (route.gw === undefined) return { dst };
  const gw = parseIp(route.gw);
  if (dst !== 'default' && familyOf(gw) !== familyOf(dst.split('/')[0]!)) {
    throw invalid(`route ${dst}: gateway ${gw} is of the other address family`, dst);
  }
  return { dst, gw };
}

function listOf<T>(value: T[], what: string): T[] {
  if (!Array.isArray(value)) throw invalid(`${what} must be a list`);
  return value;
}

function unique(values: string[], what: string): string[] {
  const dup = values.find((v, i) => values.indexOf(v) !== i);
  // The kernel answers EEXIST to the second one, after the netdev has moved.
  if (dup !== undefined) throw invalid(`${what} ${dup} is given twice`, dup);
  return values;
}

/** Everything `NetnsPort.attach` passes to iproute2, checked and canonical. */
export function parseContainerLinkSpec(spec: ContainerLinkSpec): ContainerLinkSpec {
  const routes = listOf(spec.routes, 'routes').map(parseRoute);
  unique(routes.map((r) => r.dst), 'route');
  return {
    ifname: parseIfName(spec.ifname),
    mac: parseMac(spec.mac),
    mtu: spec.mtu === null ? null : parseMtu(spec.mtu),
    addresses: unique(listOf(spec.addresses, 'addresses').map((a) => parseCidr(a)), 'address'),
    routes,
  };
}

/** One of the per-interface sysctls vfleet sets in a namespace (`arp_notify`, `ndisc_notify`). */
export function parseSysctlKey(key: string): IfSysctl {
  if (!isIfSysctl(key)) throw invalid(`sysctl ${shown(key)} is not one vfleet sets (arp_notify, ndisc_notify)`, key);
  return key;
}

/** A boolean sysctl's value. */
export function parseSysctlValue(value: unknown, key: string): 0 | 1 {
  if (value !== 0 && value !== 1) throw invalid(`${key} takes 0 or 1, not ${shown(String(value))}`, key);
  return value;
}
