/**
 * The baseline of an unallocated VF: what the node policy says it carries
 * (reset values plus the policy's own per-VF settings). The agent's leftover
 * collector scrubs back to it, and the controller's isolation audit judges
 * against it, so a setting a policy declared is neither scrubbed nor reported.
 */
import { SCRUBBED_VF_CONFIG, type PfInfo, type VfConfig, type VfInfo, type VfSettings } from '../host/model.js';
import { matches } from './plan.js';
import type { NodePolicy } from './schema.js';

/** What an unallocated VF of `pf` should look like: reset values plus the node policy's own per-VF settings. */
export function baselineOf(pf: PfInfo, vf: number, policies: NodePolicy[]): VfConfig {
  const policy = policies.find((p) => matches(p.selector, pf));
  return { ...SCRUBBED_VF_CONFIG, ...(policy?.vfs.get(vf) ?? {}) } as VfConfig;
}

/** The fields where an unallocated VF departs from its baseline; a MAC counts when it is one of ours. */
export function leftoverSettings(vf: VfInfo, baseline: VfConfig, macPrefix: string): VfSettings | null {
  const fields: Array<keyof VfConfig> = ['vlan', 'qos', 'vlanProto', 'minTxRateMbps', 'maxTxRateMbps', 'spoofChk', 'trust'];
  const differs = fields.some((f) => vf[f] !== baseline[f] && !(vf[f] === null && (f === 'spoofChk' || f === 'trust')));
  const macLeft = vf.mac !== baseline.mac && vf.mac.startsWith(macPrefix);
  return differs || macLeft ? { ...baseline } : null;
}
