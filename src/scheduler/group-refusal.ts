/**
 * Why one PF does not take a VF of a tenant with a bandwidth group, naming
 * the PF's headroom where bandwidth is the reason: for a pinned VF's refusal
 * and for `reserve`'s re-check.
 */
import { capabilitiesOf } from '../host/capabilities.js';
import { carriesGuarantee, headroomMbps, type Admission } from './admission.js';
import type { PfEntry } from './entries.js';
import type { RefusalReason } from './refusal.js';
import { addedChargeMbps, carriesGroup, describeGroup, fitsInsideGroup, groupLimitMbps, type TenantGroup } from './tenant-groups.js';

export interface GroupRefusal {
  reason: RefusalReason;
  why: string;
}

/** Null when the PF takes the VF as far as the group goes. */
export function groupRefusal(pf: PfEntry, a: Admission, group: TenantGroup, physnet: string): GroupRefusal | null {
  if (!carriesGroup(pf, a.groupsAccountingOnly)) {
    return { reason: 'group-not-enforced', why: `which cannot enforce ${describeGroup(group)}: ${notEnforcing(pf)}, and physnet ${physnet} is not groupsAccountingOnly` };
  }
  if (a.guaranteeMbps > 0 && !carriesGuarantee(pf, a.accountingOnly)) return null;
  const inside = insideRefusal(pf, group, a.guaranteeMbps);
  if (inside) return { reason: 'group-share', why: inside };
  const headroom = shareRefusal(pf, group, a.guaranteeMbps, a.bandwidthRatio);
  return headroom ? { reason: 'headroom', why: headroom } : null;
}

/** `reserve`'s re-check: what changed meanwhile so the VF no longer fits; null when it fits. */
export function reserveGroupConflict(pf: PfEntry, group: TenantGroup, guaranteeMbps: number, bandwidthRatio: number): string | null {
  return insideRefusal(pf, group, guaranteeMbps) ?? shareRefusal(pf, group, guaranteeMbps, bandwidthRatio);
}

/** Why the PF cannot hold a devlink rate node: its driver, or its eswitch mode. */
export function notEnforcing(pf: PfEntry): string {
  if (!capabilitiesOf(pf.driver).rateNodes) return `its driver ${pf.driver ?? 'unknown'} has no devlink rate nodes`;
  return `it is in ${pf.eswitchMode ?? 'no'} eswitch mode, and devlink rate nodes need switchdev`;
}

function insideRefusal(pf: PfEntry, group: TenantGroup, guaranteeMbps: number): string | null {
  if (fitsInsideGroup(pf, group, guaranteeMbps)) return null;
  const held = pf.tenants.get(group.tenant)?.minTxRateMbps ?? 0;
  return (
    `where a guarantee of ${guaranteeMbps} Mbps does not fit inside ${describeGroup(group)}: ` +
    `the tenant's VFs there already guarantee ${held} of its ${groupLimitMbps(group)} Mbps`
  );
}

function shareRefusal(pf: PfEntry, group: TenantGroup, guaranteeMbps: number, bandwidthRatio: number): string | null {
  const added = addedChargeMbps(pf, group, guaranteeMbps);
  if (added <= 0) return null;
  const headroom = headroomMbps(pf, bandwidthRatio);
  if (headroom !== null && added <= headroom) return null;
  const room = headroom === null ? 'unknown (link down?)' : `${Math.max(0, Math.floor(headroom))} Mbps`;
  return `where ${describeGroup(group)} would add ${added} Mbps of guarantee: the PF's headroom is ${room}`;
}
