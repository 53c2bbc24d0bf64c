/**
 * The CNI result for an attached allocation, in the shape of the
 * configuration's cniVersion: 0.3.x and 0.4.0 tag each address with its IP
 * version; 1.0.0 dropped the tag; 1.1.0 added the interface's `mtu` and
 * `pciID` (and `socketPath`, which a VF netdev has none of).
 */
import type { Network } from '../domain/types.js';
import type { CniVersion } from './config.js';
import type { ContainerAllocation } from './sriovd.js';

export interface CniInterface {
  name: string;
  mac?: string;
  /** 1.1.0 */
  mtu?: number;
  sandbox?: string;
  /** 1.1.0 */
  pciID?: string;
}

export interface CniIp {
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
  version?: '4' | '6';
}

interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniResult {
  cniVersion: CniVersion;
  interfaces: CniInterface[];
  ips: CniIp[];
  routes: CniRoute[];
  dns: Record<string, unknown>;
}

const isV6 = (address: string) => address.includes(':');
const isLegacy = (v: CniVersion) => v.startsWith('0.');

export function resultFor(a: ContainerAllocation, network: Network, cniVersion: CniVersion): CniResult {
  const pool = network.ipam;
  const iface: CniInterface = { name: a.attachment.ifname, mac: a.mac, sandbox: a.attachment.netns };
  if (cniVersion === '1.1.0') Object.assign(iface, network.mtu === null ? {} : { mtu: network.mtu }, { pciID: a.pciAddress });
  return {
    cniVersion,
    interfaces: [iface],
    ips: a.attachment.ips.map((address) => ipFor(address, pool?.gateway, cniVersion)),
    // The pool's routes say `default`; CNI consumers want a CIDR.
    routes: (pool?.routes ?? []).map((r) => ({ dst: r.dst === 'default' ? '0.0.0.0/0' : r.dst, ...(r.gw ? { gw: r.gw } : {}) })),
    dns: {},
  };
}

function ipFor(address: string, gateway: string | undefined, cniVersion: CniVersion): CniIp {
  const sameFamily = gateway !== undefined && isV6(gateway) === isV6(address);
  return {
    ...(isLegacy(cniVersion) ? { version: isV6(address) ? '6' : '4' } : {}),
    address,
    ...(sameFamily ? { gateway } : {}),
    interface: 0,
  };
}

/**
 * A plugin behind others in a chain must pass their result on: ours is
 * appended, its address indexes shifted past the earlier interfaces.
 */
export function appendTo(prev: unknown, ours: CniResult): CniResult {
  if (typeof prev !== 'object' || prev === null) return ours;
  const p = prev as Partial<CniResult>;
  const offset = p.interfaces?.length ?? 0;
  return {
    ...p,
    cniVersion: ours.cniVersion,
    interfaces: [...(p.interfaces ?? []), ...ours.interfaces],
    ips: [...(p.ips ?? []), ...ours.ips.map((ip) => ({ ...ip, interface: (ip.interface ?? 0) + offset }))],
    routes: [...(p.routes ?? []), ...ours.routes],
    dns: p.dns ?? ours.dns,
  };
}
