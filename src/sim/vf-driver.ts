/**
 * What a PF driver does with its VFs on the simulated host: the values a new
 * VF starts with, which driver it binds to, its traffic counters, and each
 * `ip link set <PF> vf N ...` op — refused with the errno the real driver
 * answers. Refusals come from `host/capabilities.ts` plus the profile's quirks.
 */
import { randomBytes } from 'node:crypto';
import { capabilitiesOf, type DriverCapabilities, type VfField } from '../host/capabilities.js';
import { SCRUBBED_VF_CONFIG, type LinkState, type VfStats, type VlanProto } from '../host/model.js';
import { KernelError, type VfOp } from '../host/ports.js';
import { ZERO_MAC } from '../host/validate.js';
import { simProfile, type SimProfile } from './profiles.js';
import { vfPciAddress, type SimPf, type SimVf } from './state.js';
import { pfOperState } from './cable.js';
import { refusesIpLinkRates } from './devlink.js';

export const VFIO_DRIVER = 'vfio-pci';

/** A refused op: the errno and the line the driver would log. */
export interface Refusal {
  errno: string;
  reason: string;
}

interface OpContext {
  pf: SimPf;
  vf: SimVf;
  profile: SimProfile;
  caps: DriverCapabilities;
  now: number;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const LINK_STATES: readonly LinkState[] = ['auto', 'enable', 'disable'];

const hex2 = (n: number) => (n & 0xff).toString(16).padStart(2, '0');
const refuse = (errno: string, reason: string): Refusal => ({ errno, reason });

// ---- creation and binding ------------------------------------------------------

/** A VF as the driver creates it: reset values, bound only if autoprobe is on. */
export function createVf(pf: SimPf, index: number, now: number): SimVf {
  const profile = simProfile(pf.profile);
  const vf: SimVf = {
    index,
    pciAddress: vfPciAddress(pf.pciAddress, profile.totalVfs, index),
    driver: null,
    driverOverride: null,
    netdev: null,
    netdevMtu: 1500,
    netdevUp: false,
    iommuGroup: pf.vfIommuGroupBase + index,
    ...SCRUBBED_VF_CONFIG,
    pendingReset: profile.quirks.resetAfterCreate === true,
    stats: { rxBytes: 0, rxPackets: 0, txBytes: 0, txPackets: 0, rxDropped: 0, txDropped: 0 },
    statsSince: null,
  };
  if (pf.autoprobe) attach(pf, vf, profile.vfDriver, now);
  return vf;
}

/** Drivers loaded on the simulated host that a VF of this PF could name. */
function loadedDrivers(profile: SimProfile): Set<string> {
  return new Set([profile.vfDriver, VFIO_DRIVER, profile.pfDriver]);
}

/**
 * driver_override + unbind + drivers_probe, as the kernel does it. A driver
 * that is not loaded is refused (thrown) before anything changes. A loaded
 * driver that cannot drive this VF (igb on an igbvf VF) fails in probe after
 * the override and unbind took effect: that error is returned, not thrown, so
 * the caller can keep the changed state and then report it.
 */
export function bindVf(pf: SimPf, vf: SimVf, driver: string | null, now: number): KernelError | null {
  const profile = simProfile(pf.profile);
  const op = `bind ${vf.pciAddress}`;
  if (driver !== null && !loadedDrivers(profile).has(driver)) {
    throw new KernelError('ENODEV', op, `${op}: driver ${driver} is not loaded`);
  }
  vf.driverOverride = driver;
  detach(vf, now);
  // With autoprobe off the kernel probes a VF only when driver_override names a driver.
  const target = driver ?? (pf.autoprobe ? profile.vfDriver : null);
  if (target === null) return null;
  if (target !== profile.vfDriver && target !== VFIO_DRIVER) {
    return new KernelError('EINVAL', op, `${op}: ${target} probe failed, device left unbound`);
  }
  attach(pf, vf, target, now);
  return null;
}

function attach(pf: SimPf, vf: SimVf, driver: string, now: number): void {
  const profile = simProfile(pf.profile);
  withTraffic(vf, now, () => {
    vf.driver = driver;
    if (vf.mac === ZERO_MAC) vf.mac = driverChosenMac(profile, vf);
    // Only the netdev VF driver makes an interface; vfio-pci hands the device to a VM.
    vf.netdev = driver === profile.vfDriver ? `${pf.name}v${vf.index}` : null;
    vf.netdevUp = false;
    vf.netdevMtu = 1500;
  });
}

export function detach(vf: SimVf, now: number): void {
  withTraffic(vf, now, () => {
    vf.driver = null;
    vf.netdev = null;
    vf.netdevUp = false;
  });
}

/** The VF netdev's own MAC: the admin MAC when set, else a stable locally administered one. */
export function vfNetdevMac(pf: SimPf, vf: SimVf): string {
  if (vf.mac !== '00:00:00:00:00:00') return vf.mac;
  const host = pf.mac.split(':').slice(3).join(':');
  return `02:${host}:${hex2(vf.index >> 8)}:${hex2(vf.index)}`;
}

// ---- traffic counters ----------------------------------------------------------

const passesTraffic = (vf: SimVf) => vf.driver !== null && vf.linkState !== 'disable';

/** Synthetic traffic: a steady per-VF packet rate while a driver is bound and the link is not disabled. */
function growth(vf: SimVf, sinceMs: number, now: number): VfStats {
  const elapsed = Math.max(0, now - sinceMs);
  const rxPackets = Math.floor((elapsed * (200 + 50 * (vf.index % 8))) / 1000);
  const txPackets = Math.floor((rxPackets * 3) / 4);
  return {
    rxPackets,
    txPackets,
    rxBytes: rxPackets * 700,
    txBytes: txPackets * 900,
    rxDropped: Math.floor(rxPackets / 5000),
    txDropped: 0,
  };
}

function add(a: VfStats, b: VfStats): VfStats {
  return {
    rxBytes: a.rxBytes + b.rxBytes,
    rxPackets: a.rxPackets + b.rxPackets,
    txBytes: a.txBytes + b.txBytes,
    txPackets: a.txPackets + b.txPackets,
    rxDropped: a.rxDropped + b.rxDropped,
    txDropped: a.txDropped + b.txDropped,
  };
}

export function currentStats(vf: SimVf, now: number): VfStats {
  return vf.statsSince === null ? { ...vf.stats } : add(vf.stats, growth(vf, vf.statsSince, now));
}

/** Fold traffic so far into the counters, change the VF, restart the clock if it still passes traffic. */
function withTraffic(vf: SimVf, now: number, change: () => void): void {
  vf.stats = currentStats(vf, now);
  change();
  vf.statsSince = passesTraffic(vf) ? now : null;
}

// ---- ip link set <PF> vf N ... ---------------------------------------------------

/**
 * Apply one op to `pf`, or say why the driver refuses it (leaving the VF as
 * it was, except that an i40e VF's pending reset is consumed by the refusal).
 */
export function applyVfOp(pf: SimPf, op: VfOp, now: number): Refusal | null {
  const vf = Number.isInteger(op.vf) ? pf.vfs[op.vf] : undefined;
  if (!vf) return refuse('EINVAL', `VF ${op.vf} does not exist (${pf.vfs.length} VFs enabled)`);
  if (vf.pendingReset) {
    vf.pendingReset = false;
    return refuse('EAGAIN', `VF ${vf.index} still in reset. Try again.`);
  }
  const profile = simProfile(pf.profile);
  const ctx: OpContext = { pf, vf, profile, caps: capabilitiesOf(profile.pfDriver), now };
  switch (op.field) {
    case 'mac':
      return setMac(ctx, op.mac);
    case 'vlan':
      return setVlan(ctx, op.vlan, op.qos, op.vlanProto);
    case 'rate':
      return setRate(ctx, op.minTxRateMbps, op.maxTxRateMbps);
    case 'spoofChk':
    case 'trust':
      return setFlag(ctx, op.field, op.on);
    case 'linkState':
      return setLinkState(ctx, op.state);
    default:
      return refuse('EINVAL', `unknown VF attribute ${(op as { field: string }).field}`);
  }
}

/** The errno a driver answers for a field it cannot set (capability entries that are not errnos are quirks). */
function errnoFor(caps: DriverCapabilities, field: VfField): string | undefined {
  const errno = caps.unsupported[field];
  return errno && /^E[A-Z]+$/.test(errno) ? errno : undefined;
}

function setMac({ vf, profile }: OpContext, mac: string): Refusal | null {
  const v = typeof mac === 'string' ? mac.toLowerCase() : '';
  if (!MAC.test(v)) return refuse('EINVAL', `"${String(mac)}" is not a MAC address`);
  // All-zero clears the admin MAC; multicast (and broadcast) is never valid for a VF.
  if (parseInt(v.slice(0, 2), 16) & 1) return refuse('EINVAL', `VF ${vf.index}: ${v} is a multicast address`);
  vf.mac = v === ZERO_MAC ? driverChosenMac(profile, vf) : v;
  if (profile.quirks.macChangeResetsVf) delete vf.netdevMac;
  return null;
}

/**
 * What the PF reports once the admin MAC is gone: zero, or on igb/ixgbe with
 * the VF driver bound, the random locally administered MAC that driver picks.
 */
function driverChosenMac(profile: SimProfile, vf: SimVf): string {
  if (!profile.quirks.vfDriverPicksMac || vf.driver !== profile.vfDriver) return ZERO_MAC;
  const bytes = randomBytes(6);
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return [...bytes].map(hex2).join(':');
}

function setVlan({ vf, caps }: OpContext, vlan: number, qos: number, proto: VlanProto): Refusal | null {
  if (!Number.isInteger(vlan) || vlan < 0 || vlan > 4095 || !Number.isInteger(qos) || qos < 0 || qos > 7) {
    return refuse('EINVAL', `VF ${vf.index}: invalid port VLAN ${vlan} qos ${qos}`);
  }
  if (!caps.vlanProtos.includes(proto)) {
    return refuse('EPROTONOSUPPORT', `VF ${vf.index}: VLAN protocol ${proto} is not supported`);
  }
  const qosErrno = errnoFor(caps, 'qos');
  if (qos !== 0 && qosErrno) return refuse(qosErrno, `VF ${vf.index}: ${caps.driver} cannot set a VLAN priority`);
  Object.assign(vf, { vlan, qos, vlanProto: proto });
  return null;
}

function setRate(ctx: OpContext, min: number, max: number): Refusal | null {
  // mlx5, ice, netdevsim in switchdev: VF rates are devlink rate leaves; the ndo answers even 0/0 so.
  if (refusesIpLinkRates(ctx.pf)) return refuse('EOPNOTSUPP', `VF ${ctx.vf.index}: Not supported in switchdev mode. Please use devlink API.`);
  const refusal = checkRate(ctx, min, max);
  if (refusal) return refusal;
  const { vf, caps, profile } = ctx;
  // i40e: "Setting max tx rate to minimum usable value of 50Mbps" — larger values are kept as asked.
  const raise = profile.quirks.raiseMaxRateToStep && max > 0 && max < caps.rateStepMbps;
  vf.minTxRateMbps = min;
  vf.maxTxRateMbps = raise ? caps.rateStepMbps : max;
  return null;
}

function checkRate({ pf, vf, caps, profile }: OpContext, min: number, max: number): Refusal | null {
  const at = `VF ${vf.index}`;
  if (![min, max].every((r) => Number.isInteger(r) && r >= 0)) return refuse('EINVAL', `${at}: invalid rate`);
  const minErrno = errnoFor(caps, 'minTxRateMbps');
  if (min !== 0 && minErrno) return refuse(minErrno, `${at}: ${caps.driver} has no min_tx_rate`);
  // A down link has no speed, so every limit is out of range (igb: "max rate needs link up").
  const link = pfOperState(pf) === 'up' ? pf.speedMbps : 0;
  if (max > link) return refuse('EINVAL', `${at}: max tx rate ${max} exceeds link speed ${link}`);
  const floor = profile.quirks.maxRateFloorMbps;
  if (floor !== undefined && max !== 0 && max <= floor) return refuse('EINVAL', `${at}: max tx rate ${max} too low`);
  if (max !== 0 && min > max) return refuse('EINVAL', `${at}: min tx rate ${min} above max tx rate ${max}`);
  if (min > link) return refuse('EINVAL', `${at}: min tx rate ${min} exceeds link speed ${link}`);
  if (profile.quirks.minRateSumWithinLink && min !== 0) {
    const others = pf.vfs.reduce((sum, v) => sum + (v === vf ? 0 : v.minTxRateMbps), 0);
    if (others + min > link) {
      return refuse('EINVAL', `${at}: min_tx_rate ${min} would oversubscribe the link by ${others + min - link} Mbps`);
    }
  }
  return null;
}

function setFlag({ pf, vf, caps }: OpContext, field: 'spoofChk' | 'trust', on: boolean): Refusal | null {
  if (typeof on !== 'boolean') return refuse('EINVAL', `VF ${vf.index}: ${field} must be on or off`);
  // ice_set_vf_trust: "Trusted VF is forbidden in switchdev mode" (EOPNOTSUPP), whatever the value.
  if (field === 'trust' && caps.driver === 'ice' && pf.eswitchMode === 'switchdev') return refuse('EOPNOTSUPP', `VF ${vf.index}: Trusted VF is forbidden in switchdev mode`);
  vf[field] = on;
  return null;
}

function setLinkState({ vf, caps, profile, now }: OpContext, state: LinkState): Refusal | null {
  // igb has no ndo_set_vf_link_state at all: rtnetlink answers EOPNOTSUPP for any value, auto included.
  const errno = errnoFor(caps, 'linkState');
  if (errno) return refuse(errno, `VF ${vf.index}: ${caps.driver} cannot set the VF link state`);
  if (!LINK_STATES.includes(state)) return refuse('EINVAL', `VF ${vf.index}: invalid link state ${String(state)}`);
  // ixgbe logs "not supported" for enable yet returns success: nothing changes.
  if (state === 'enable' && profile.quirks.linkStateEnableIgnored) return null;
  withTraffic(vf, now, () => {
    vf.linkState = state;
  });
  return null;
}
