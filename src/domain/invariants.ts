/**
 * Isolation invariants between tenants, checked when a network is created
 * and when a VF is allocated on one. Pure: the caller passes what the store
 * holds, so the checks can run inside the store transaction that writes.
 */
import { invalid, SriovError } from '../host/errors.js';
import { isAdmin, isStaff, tenantOf, type HasRole } from './actor.js';
import type { Network, Physnet } from './types.js';

/**
 * May `actor` create (or update) `network`? Throws INVALID_ARGUMENT, NOT_FOUND, FORBIDDEN or CONFLICT.
 * `before`, for an update: admin-only settings it already had are not re-checked (an admin granted them).
 */
export function checkNetwork(network: Network, actor: HasRole, physnets: Iterable<Physnet>, existingNetworks: Iterable<Network>, before?: Network): void {
  checkRates(network);
  if (network.qos !== 0 && network.vlan === 0) {
    throw invalid(`qos ${network.qos} needs a VLAN: the 802.1p priority travels in the VLAN tag, and VLAN 0 sends frames untagged`, network.name, 'qos');
  }
  checkPhysnet(network, physnets);
  checkPrivileged(network, actor, before);
  checkVlanOwner(network, actor, existingNetworks);
}

/**
 * May `actor` allocate a VF on `network`? The network's physnet must still
 * exist and its (physnet, VLAN) still belong to its tenant alone; a tenant
 * allocates only on its own networks. Settings that needed an admin to create
 * the network (trust, VLAN 0) are not re-checked: the admin granted them.
 */
export function checkAllocation(network: Network, actor: HasRole, physnets: Iterable<Physnet>, existingNetworks: Iterable<Network>): void {
  checkPhysnet(network, physnets);
  const tenant = tenantOf(actor);
  if (tenant !== null && tenant !== network.tenant) {
    throw forbidden(`network ${network.name} belongs to tenant ${network.tenant}; ${actor.role} may not allocate on it`, network);
  }
  checkVlanOwner(network, actor, existingNetworks);
}

/**
 * A rate the VF cannot reach is refused before the agent fails to apply it:
 * at network creation against the fastest PF of its physnet (`linkSpeeds`, Mbps;
 * unknown speeds are left out), at allocation against the PF chosen.
 */
export function checkLinkSpeed(n: Network, linkSpeeds: number[], where: string): void {
  if (linkSpeeds.length === 0) return;
  const fastest = Math.max(...linkSpeeds);
  for (const [what, rate] of [['maxTxRateMbps', n.maxTxRateMbps], ['minTxRateMbps', n.minTxRateMbps]] as const) {
    if (rate > fastest) throw new SriovError('OUT_OF_RANGE', `${what} ${rate} exceeds the ${fastest} Mbps link of ${where}`, { object: n.name, field: what, nothingChanged: true });
  }
}

function checkRates(n: Network): void {
  for (const [what, rate] of [['minTxRateMbps', n.minTxRateMbps], ['maxTxRateMbps', n.maxTxRateMbps]] as const) {
    if (!(rate >= 0)) throw invalid(`${what} must not be negative, got ${rate}`, n.name, what);
  }
  if (n.maxTxRateMbps > 0 && n.minTxRateMbps > n.maxTxRateMbps) {
    throw invalid(`minTxRateMbps ${n.minTxRateMbps} exceeds maxTxRateMbps ${n.maxTxRateMbps}`, n.name, 'minTxRateMbps');
  }
}

function checkPhysnet(n: Network, physnets: Iterable<Physnet>): void {
  physnetOf(n.physnet, physnets);
}

/** The physnet named `name`; NOT_FOUND when no node policy or admin created it. */
export function physnetOf(name: string, physnets: Iterable<Physnet>): Physnet {
  for (const p of physnets) if (p.name === name) return p;
  throw new SriovError('NOT_FOUND', `physnet ${name} does not exist`, { object: name, nothingChanged: true });
}

/** Settings that break L2 isolation between tenants, so only an admin may grant them. */
function checkPrivileged(n: Network, actor: HasRole, before?: Network): void {
  if (isAdmin(actor)) return;
  const granted = (k: 'vlan' | 'trust' | 'spoofChk' | 'vlanProto') => before !== undefined && before[k] === n[k];
  if (n.vlan === 0 && !granted('vlan')) throw forbidden(`untagged (VLAN 0) networks are admin-only; ${actor.role} may not create ${n.name}`, n);
  if (n.trust && !granted('trust')) throw forbidden(`trust on is admin-only; ${actor.role} may not create ${n.name} with it`, n);
  if (!n.spoofChk && !granted('spoofChk')) throw forbidden(`spoof checking off is admin-only; ${actor.role} may not create ${n.name} with it`, n);
  // An 802.1Q switch port does not read an 802.1ad (0x88a8) tag: it takes the frame as untagged, into the native VLAN.
  if (n.vlanProto === '802.1ad' && !granted('vlanProto')) {
    throw forbidden(`VLAN protocol 802.1ad is admin-only (an 802.1Q switch port takes its frames as untagged); ${actor.role} may not create ${n.name} with it`, n);
  }
}

/**
 * One (physnet, VLAN) carries one tenant's traffic. Another network of the
 * same tenant may share it. A tenant learns only that the VLAN is taken, never
 * whose it is; staff are told the owner.
 */
function checkVlanOwner(n: Network, actor: HasRole, existingNetworks: Iterable<Network>): void {
  for (const other of existingNetworks) {
    if (other.name === n.name || other.physnet !== n.physnet || other.vlan !== n.vlan) continue;
    if (other.tenant === n.tenant) continue;
    const taken = `VLAN ${n.vlan} on physnet ${n.physnet} is taken`;
    if (!isStaff(actor)) throw new SriovError('CONFLICT', `${taken}; choose another VLAN`, { object: n.name, nothingChanged: true });
    throw new SriovError('CONFLICT', `${taken} by tenant ${other.tenant} (network ${other.name})`, {
      object: n.name,
      nothingChanged: true,
      data: { owner: other.tenant, network: other.name },
    });
  }
}

function forbidden(message: string, n: Network): SriovError {
  return new SriovError('FORBIDDEN', message, { object: n.name, nothingChanged: true });
}
