/**
 * Tenant VLAN ranges of a physnet (Neutron's `network_vlan_ranges`): the VLANs
 * a tenant's network gets when nobody picks one. Tenants never pick a VLAN
 * themselves; only admins and operators do, inside the ranges or not (the
 * VLANs outside them are the infrastructure's). Pure: the caller passes the
 * VLANs in use, read in the transaction that stores the network.
 */
import { invalid, SriovError } from '../host/errors.js';
import { parseInteger } from '../host/validate.js';
import { isStaff, type HasRole } from './actor.js';
import type { Physnet, VlanRange } from './types.js';

/** `1000-1999,2100-2199` (a single VLAN may stand alone: `3000`); `none` is no ranges. */
export function parseVlanRanges(text: string): VlanRange[] {
  const t = text.trim();
  if (t === 'none') return [];
  return checkVlanRanges(
    t.split(',').map((part) => {
      const m = /^\s*(\d{1,4})\s*(?:-\s*(\d{1,4})\s*)?$/.exec(part);
      if (!m) throw invalid(`tenant VLANs must be ranges like 1000-1999,2100-2199 (or none), got "${text}"`);
      return { from: Number(m[1]), to: Number(m[2] ?? m[1]) };
    }),
  );
}

/** Each range within 1-4094, from <= to, none overlapping another; returned sorted. */
export function checkVlanRanges(ranges: readonly VlanRange[]): VlanRange[] {
  const sorted = ranges
    .map((r) => ({ from: parseInteger(r.from, 'tenant VLAN range start', 1, 4094), to: parseInteger(r.to, 'tenant VLAN range end', 1, 4094) }))
    .sort((a, b) => a.from - b.from);
  for (const [i, r] of sorted.entries()) {
    if (r.from > r.to) throw invalid(`tenant VLAN range ${r.from}-${r.to} runs backwards; write it ${r.to}-${r.from}`);
    const prev = sorted[i - 1];
    if (prev && r.from <= prev.to) throw invalid(`tenant VLAN ranges ${formatVlanRanges([prev])} and ${formatVlanRanges([r])} overlap`);
  }
  return sorted;
}

export function formatVlanRanges(ranges: readonly VlanRange[]): string {
  return ranges.length === 0 ? 'none' : ranges.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`)).join(',');
}

/**
 * The VLAN a new network of `actor` on `physnet` gets: the requested one
 * (admins and operators only), else the lowest VLAN of the physnet's tenant
 * ranges that no network uses. One network per VLAN keeps each network its
 * own L2 segment, even between a tenant's own networks.
 */
export function chooseVlan(requested: number | undefined, actor: HasRole, physnet: Physnet, inUse: ReadonlySet<number>, network: string): number {
  const ranges = formatVlanRanges(physnet.tenantVlans);
  if (requested !== undefined) {
    if (isStaff(actor)) return requested;
    throw new SriovError(
      'FORBIDDEN',
      `only an admin or operator may pick a VLAN; ${actor.role} leaves vlan out and gets the next free one of physnet ${physnet.name} (tenant VLANs ${ranges})`,
      { object: network, nothingChanged: true },
    );
  }
  if (physnet.tenantVlans.length === 0) {
    throw invalid(
      `physnet ${physnet.name} has no tenant VLAN ranges, so network ${network} needs a vlan: an admin sets ranges with ` +
        `\`sriovctl physnet set ${physnet.name} --tenant-vlans FROM-TO\`, or an admin or operator gives --vlan`,
      network,
      'vlan',
    );
  }
  for (const r of physnet.tenantVlans) {
    for (let vlan = r.from; vlan <= r.to; vlan++) if (!inUse.has(vlan)) return vlan;
  }
  throw new SriovError('NO_CAPACITY', `every tenant VLAN of physnet ${physnet.name} (${ranges}) is in use; an admin can widen them with \`sriovctl physnet set ${physnet.name} --tenant-vlans\``, {
    object: network,
    nothingChanged: true,
  });
}
