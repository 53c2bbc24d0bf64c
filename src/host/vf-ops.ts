/**
 * Turns requested VF settings into the smallest list of iproute2 ops, and
 * checks a read-back against them. Only fields that differ from the current
 * configuration become ops, so re-applying a setting touches nothing.
 */
import { invalid } from './errors.js';
import { ZERO_MAC } from './validate.js';
import type { VfConfig, VfSettings } from './model.js';
import type { VfOp } from './ports.js';

export function opsForSettings(vf: number, current: VfConfig, wanted: VfSettings): VfOp[] {
  const ops: VfOp[] = [];
  if (wanted.mac !== undefined && wanted.mac !== current.mac) ops.push({ vf, field: 'mac', mac: wanted.mac });
  const vlan = mergedVlan(current, wanted);
  if (vlan.vlan !== current.vlan || vlan.qos !== current.qos || vlan.vlanProto !== current.vlanProto) {
    ops.push({ vf, field: 'vlan', ...vlan });
  }
  const minTxRateMbps = wanted.minTxRateMbps ?? current.minTxRateMbps;
  const maxTxRateMbps = wanted.maxTxRateMbps ?? current.maxTxRateMbps;
  if (maxTxRateMbps > 0 && minTxRateMbps > maxTxRateMbps) {
    throw invalid(`vf ${vf}: min tx rate ${minTxRateMbps} Mbps is above max tx rate ${maxTxRateMbps} Mbps`);
  }
  if (minTxRateMbps !== current.minTxRateMbps || maxTxRateMbps !== current.maxTxRateMbps) {
    ops.push({ vf, field: 'rate', minTxRateMbps, maxTxRateMbps });
  }
  if (wanted.spoofChk != null && wanted.spoofChk !== current.spoofChk) ops.push({ vf, field: 'spoofChk', on: wanted.spoofChk });
  if (wanted.trust != null && wanted.trust !== current.trust) ops.push({ vf, field: 'trust', on: wanted.trust });
  if (wanted.linkState !== undefined && wanted.linkState !== current.linkState) {
    ops.push({ vf, field: 'linkState', state: wanted.linkState });
  }
  return ops;
}

/** As `ip link set ... vf N vlan V` does: a new VLAN without qos/proto resets them. */
function mergedVlan(current: VfConfig, wanted: VfSettings): Pick<VfConfig, 'vlan' | 'qos' | 'vlanProto'> {
  const newVlan = wanted.vlan !== undefined;
  const vlan = wanted.vlan ?? current.vlan;
  const qos = wanted.qos ?? (newVlan ? 0 : current.qos);
  const vlanProto = wanted.vlanProto ?? (newVlan ? '802.1Q' : current.vlanProto);
  if (vlan === 0 && (qos !== 0 || vlanProto !== '802.1Q')) {
    throw invalid('QoS and VLAN protocol need a VLAN id (1-4094)');
  }
  return { vlan, qos, vlanProto };
}

/** The settings an op asked for, as VfConfig fields, for read-back checks. */
export function expectedOf(op: VfOp): Partial<VfConfig> {
  switch (op.field) {
    case 'mac':
      return { mac: op.mac };
    case 'vlan':
      return { vlan: op.vlan, qos: op.qos, vlanProto: op.vlanProto };
    case 'rate':
      return { minTxRateMbps: op.minTxRateMbps, maxTxRateMbps: op.maxTxRateMbps };
    case 'spoofChk':
      return { spoofChk: op.on };
    case 'trust':
      return { trust: op.on };
    case 'linkState':
      return { linkState: op.state };
  }
}

export function describeOp(op: VfOp): string {
  const value = Object.entries(expectedOf(op))
    .map(([k, v]) => `${k}=${typeof v === 'boolean' ? (v ? 'on' : 'off') : v}`)
    .join(' ');
  return `vf ${op.vf} ${value}`;
}

/**
 * Fields of `actual` that do not match what `op` set. Clearing the admin MAC
 * is an exception: igb/ixgbe VF drivers then pick a random MAC that the PF
 * reports, so any MAC other than the one `before` counts as cleared.
 */
export function mismatches(op: VfOp, actual: VfConfig, before: VfConfig): string[] {
  if (op.field === 'mac' && op.mac === ZERO_MAC && actual.mac !== before.mac) return [];
  return Object.entries(expectedOf(op))
    .filter(([k, v]) => actual[k as keyof VfConfig] !== v)
    .map(([k, v]) => `vf ${op.vf} ${k}: wanted ${v}, reads ${actual[k as keyof VfConfig]}`);
}
