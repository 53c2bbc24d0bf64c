/**
 * A PF's VF PCI addresses, by VF index, as the scheduler's index keeps them.
 * SR-IOV gives VF n the routing ID of the PF's first VF plus n × the VF
 * stride, so a PF whose inventory follows that (the usual case) is kept as
 * its first address and stride, and each address is written out when a
 * placement needs it: a string and a map entry per VF were ~60 bytes each,
 * 15 MB of a controller's heap at 256k VFs. Any other PF (gaps, a VF out of
 * step, netdevsim's `netdevsim10:vf0`) keeps its addresses as listed.
 */
import type { VfInfo } from '../host/model.js';
import { writeHexOctet } from '../util/hex-text.js';

const BDF = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/;

/** The routing ID (bus, device, function) of a domain:bus:device.function address, or null for another form. */
function routingId(pciAddress: string): { domain: string; rid: number } | null {
  const m = BDF.exec(pciAddress);
  if (!m) return null;
  return { domain: m[1]!, rid: (parseInt(m[2]!, 16) << 8) | (parseInt(m[3]!, 16) << 3) | Number(m[4]) };
}

/** The text `addressOf` writes (util/hex-text.ts): one flat string per placement, where its pieces were five more. */
const ADDRESS = Buffer.from('0000:00:00.0', 'latin1');

/** domain:bus:device.function of a routing ID; `domain` is 4 hex digits (BDF). */
function addressOf(domain: string, rid: number): string {
  for (let i = 0; i < 4; i++) ADDRESS[i] = domain.charCodeAt(i);
  writeHexOctet(ADDRESS, 5, rid >> 8);
  writeHexOctet(ADDRESS, 8, (rid >> 3) & 31);
  ADDRESS[11] = 0x30 + (rid & 7);
  return ADDRESS.toString('latin1');
}

export interface VfAddresses {
  /** VFs the inventory lists. */
  readonly size: number;
  has(index: number): boolean;
  /** The VF's PCI address; undefined for an index the inventory does not list. */
  get(index: number): string | undefined;
  /** The index of the VF at `pciAddress`; undefined when none of this PF's is. */
  indexOf(pciAddress: string): number | undefined;
}

/** VFs 0..size-1 at the first VF's routing ID plus index × stride. */
class Strided implements VfAddresses {
  constructor(
    readonly size: number,
    private readonly domain: string,
    private readonly first: number,
    private readonly stride: number,
  ) {}

  has(index: number): boolean {
    return Number.isInteger(index) && index >= 0 && index < this.size;
  }

  get(index: number): string | undefined {
    return this.has(index) ? addressOf(this.domain, this.first + index * this.stride) : undefined;
  }

  indexOf(pciAddress: string): number | undefined {
    const at = routingId(pciAddress);
    if (!at || at.domain !== this.domain) return undefined;
    const index = (at.rid - this.first) / this.stride;
    return this.has(index) ? index : undefined;
  }
}

/** Each VF's address as listed. */
class Listed implements VfAddresses {
  private readonly byIndex: Map<number, string>;

  constructor(vfs: readonly VfInfo[]) {
    this.byIndex = new Map(vfs.map((vf) => [vf.index, vf.pciAddress]));
  }

  get size(): number {
    return this.byIndex.size;
  }

  has(index: number): boolean {
    return this.byIndex.has(index);
  }

  get(index: number): string | undefined {
    return this.byIndex.get(index);
  }

  indexOf(pciAddress: string): number | undefined {
    for (const [index, pci] of this.byIndex) if (pci === pciAddress) return index;
    return undefined;
  }
}

/** The table for a PF's inventory VFs: strided when every VF's address is the one its index gives, exactly as written. */
export function vfAddresses(vfs: readonly VfInfo[]): VfAddresses {
  const first = vfs[0] && routingId(vfs[0].pciAddress);
  const second = vfs[1] && routingId(vfs[1].pciAddress);
  const stride = second && first ? second.rid - first.rid : 1;
  if (!first || stride <= 0) return new Listed(vfs);
  const strided = new Strided(vfs.length, first.domain, first.rid, stride);
  return vfs.every((vf, i) => vf.index === i && strided.get(i) === vf.pciAddress) ? strided : new Listed(vfs);
}
