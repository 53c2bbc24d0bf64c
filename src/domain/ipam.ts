/**
 * IPv4 address pools for container attachments. Pure: the caller passes the
 * addresses already leased (from the store) and stores what it picks in the
 * same transaction, where the lease table's primary key forbids duplicates.
 */
import { SriovError, invalid } from '../host/errors.js';
import { shown } from '../host/validate.js';
import type { IpPool } from './types.js';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function ipv4ToInt(address: string): number {
  if (!IPV4.test(address)) throw invalid(`${shown(address)} is not an IPv4 address`, address);
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

interface Subnet {
  base: number;
  prefix: number;
  size: number;
}

export function parseIpv4Cidr(cidr: string): Subnet & { address: number } {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr);
  const prefix = m ? Number(m[2]) : NaN;
  if (!m || !(prefix >= 0 && prefix <= 32)) throw invalid(`${shown(cidr)} is not an IPv4 CIDR like 198.18.0.10/24`, cidr);
  const address = ipv4ToInt(m[1]!);
  const size = 2 ** (32 - prefix);
  return { address, base: address - (address % size), prefix, size };
}

const contains = (s: Subnet, n: number) => n >= s.base && n < s.base + s.size;

/** The pool as given, checked: range and gateway inside the subnet, routes well-formed. */
export function parsePool(pool: IpPool): IpPool {
  const subnet = parseIpv4Cidr(pool.cidr);
  if (subnet.address !== subnet.base) throw invalid(`pool CIDR ${pool.cidr} has host bits set (subnet is ${intToIpv4(subnet.base)}/${subnet.prefix})`);
  // /31 and /32 leave no address between network and broadcast; below /8 is the whole internet, never one L2 segment.
  if (subnet.prefix > 30 || subnet.prefix < 8) {
    throw invalid(`pool CIDR ${pool.cidr} must be a /8 to /30 subnet (a /${subnet.prefix} ${subnet.prefix > 30 ? 'leaves no address to hand out' : 'is not one network'})`);
  }
  for (const [what, value] of [['rangeStart', pool.rangeStart], ['rangeEnd', pool.rangeEnd], ['gateway', pool.gateway]] as const) {
    if (value !== undefined && !contains(subnet, ipv4ToInt(value))) throw invalid(`pool ${what} ${value} is outside ${pool.cidr}`);
  }
  const [lo, hi] = range(pool, subnet);
  if (lo > hi) throw invalid(`pool range ${intToIpv4(lo)}-${intToIpv4(hi)} is empty`);
  for (const r of pool.routes) checkRoute(r, pool.cidr, subnet);
  return { cidr: pool.cidr, rangeStart: pool.rangeStart, rangeEnd: pool.rangeEnd, gateway: pool.gateway, routes: pool.routes };
}

/** A destination is a subnet (no host bits) or `default`; a gateway is on the pool's subnet, where the container can reach it. */
function checkRoute(r: IpPool['routes'][number], cidr: string, subnet: Subnet): void {
  if (r.dst !== 'default') {
    const dst = parseIpv4Cidr(r.dst);
    if (dst.address !== dst.base) throw invalid(`route destination ${r.dst} has host bits set; write ${intToIpv4(dst.base)}/${dst.prefix}`);
  }
  if (r.gw !== undefined && !contains(subnet, ipv4ToInt(r.gw))) {
    throw invalid(`route gateway ${r.gw} is outside the pool ${cidr}; a container reaches only gateways on its own subnet`);
  }
}

/** First and last usable address: never the network or broadcast address. */
function range(pool: IpPool, subnet: Subnet): [number, number] {
  const lo = pool.rangeStart ? ipv4ToInt(pool.rangeStart) : subnet.base + 1;
  const hi = pool.rangeEnd ? ipv4ToInt(pool.rangeEnd) : subnet.base + subnet.size - 2;
  return [Math.max(lo, subnet.base + 1), Math.min(hi, subnet.base + subnet.size - 2)];
}

/** The lowest free address of the pool, as CIDR (`198.18.0.10/24`). */
export function nextAddress(pool: IpPool, leased: Iterable<string>): string {
  const subnet = parseIpv4Cidr(pool.cidr);
  const taken = new Set([...leased].map(ipv4ToInt));
  if (pool.gateway) taken.add(ipv4ToInt(pool.gateway));
  const [lo, hi] = range(pool, subnet);
  for (let n = lo; n <= hi; n++) if (!taken.has(n)) return `${intToIpv4(n)}/${subnet.prefix}`;
  throw invalid(`the IP pool ${pool.cidr} is exhausted`);
}

/**
 * A requested address: inside the pool's subnet and range when the network
 * has a pool, not the gateway, not leased. Returns it as CIDR.
 */
export function checkRequestedAddress(cidr: string, pool: IpPool | null, leased: Iterable<string>): string {
  const req = parseIpv4Cidr(cidr);
  const host = intToIpv4(req.address);
  if (req.address === req.base || req.address === req.base + req.size - 1) throw invalid(`${cidr} is the network or broadcast address`);
  if (pool) {
    const subnet = parseIpv4Cidr(pool.cidr);
    const [lo, hi] = range(pool, subnet);
    if (req.prefix !== subnet.prefix || req.address < lo || req.address > hi) {
      throw invalid(`${cidr} is outside the pool ${pool.cidr} (${intToIpv4(lo)}-${intToIpv4(hi)})`);
    }
    if (pool.gateway === host) throw invalid(`${cidr} is the pool's gateway`);
  }
  if ([...leased].includes(host)) throw new SriovError('CONFLICT', `${host} is already in use`, { object: host, nothingChanged: true });
  return `${host}/${req.prefix}`;
}

export const addressOf = (cidr: string) => cidr.split('/')[0]!;
