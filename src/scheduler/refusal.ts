/**
 * Why no PF could take a request. Runs only after the fast search found
 * nothing: one pass over the candidates finds how far each PF gets through
 * the admission stages, and the first stage no PF passes is the reason given,
 * with the best bandwidth headroom among the PFs that got that far.
 */
import { capabilitiesOf, knownDrivers } from '../host/capabilities.js';
import { SriovError } from '../host/errors.js';
import { carriesGuarantee, headroomMbps, inGroup, type Admission } from './admission.js';
import { precedes, type PfEntry } from './entries.js';
import { notEnforcing } from './group-refusal.js';
import { addedChargeMbps, carriesGroup, describeGroup, fitsInsideGroup, groupLimitMbps } from './tenant-groups.js';
import type { PlacementRequest } from './types.js';

/** The admission stages in order; a PF's depth is how many it passes. */
const Stage = { Ready: 0, Drained: 1, Numa: 2, FreeVf: 3, Group: 4, GroupEnforcing: 5, Enforcing: 6, GroupShare: 7, LinkSpeed: 8, Headroom: 9 } as const;

/**
 * Why the scheduler refused, as one word of a fixed list (`data.reason` of
 * its NO_CAPACITY): what `/metrics` counts refusals by, so its label values
 * stay bounded whatever the message says. `held` is a pinned VF another
 * allocation holds; `placement` a pinned VF on a PF of another physnet or
 * device type. `group-not-enforced`: PFs that cannot enforce the tenant's
 * bandwidth group (and its physnet does not only account groups);
 * `group-share`: the VF's guarantee does not fit inside the group.
 */
export const REFUSAL_REASONS = [
  'no-pf',
  'host-unreachable',
  'drained',
  'numa',
  'full',
  'held',
  'placement',
  'group',
  'not-enforcing',
  'link-speed-unknown',
  'headroom',
  'group-not-enforced',
  'group-share',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** The reason of the stage every candidate PF stopped at (stage - 1 of `refusal`); `no-pf` when there was none. */
const STAGE_REASONS: readonly RefusalReason[] = ['host-unreachable', 'drained', 'numa', 'full', 'group', 'group-not-enforced', 'not-enforcing', 'group-share', 'link-speed-unknown', 'headroom'];

/** How many drained PFs a refusal names; the rest are counted. */
const NAMED_DRAINED = 3;

function depth(pf: PfEntry, a: Admission): number {
  if (pf.host.state !== 'ready') return Stage.Ready;
  if (pf.drained) return Stage.Drained;
  if (a.numaNode !== undefined && pf.numaNode !== a.numaNode) return Stage.Numa;
  if (pf.free.size === 0) return Stage.FreeVf;
  if (inGroup(pf, a)) return Stage.Group;
  if (a.tenantGroup !== undefined) return groupDepth(pf, a);
  if (a.guaranteeMbps <= 0) return Stage.Headroom;
  if (!carriesGuarantee(pf, a.accountingOnly)) return Stage.Enforcing;
  if (pf.linkSpeedMbps === null) return Stage.LinkSpeed;
  return Stage.Headroom;
}

/** The same for a tenant with a bandwidth group: what the placement adds is the group's share, not the VF's guarantee. */
function groupDepth(pf: PfEntry, a: Admission): number {
  const group = a.tenantGroup!;
  if (!carriesGroup(pf, a.groupsAccountingOnly)) return Stage.GroupEnforcing;
  if (a.guaranteeMbps > 0 && !carriesGuarantee(pf, a.accountingOnly)) return Stage.Enforcing;
  if (!fitsInsideGroup(pf, group, a.guaranteeMbps)) return Stage.GroupShare;
  if (addedChargeMbps(pf, group, a.guaranteeMbps) > 0 && pf.linkSpeedMbps === null) return Stage.LinkSpeed;
  return Stage.Headroom;
}

/** Whether the PF could carry `a`'s bandwidth at all (its headroom is worth naming). */
function carries(pf: PfEntry, a: Admission): boolean {
  if (a.tenantGroup !== undefined && !carriesGroup(pf, a.groupsAccountingOnly)) return false;
  return (a.tenantGroup !== undefined && a.guaranteeMbps <= 0) || carriesGuarantee(pf, a.accountingOnly);
}

interface Funnel {
  /** reached[k]: PFs that passed the first k stages. */
  reached: Int32Array;
  /** best[k]: the PF with the most headroom among those that stopped at stage k. */
  best: Array<{ pf: PfEntry; headroom: number } | undefined>;
  /** Drivers of the PFs stopped for not enforcing min_tx_rate. */
  drivers: Set<string>;
  /** The first PF (in host and PCI order) stopped for not enforcing the tenant's group. */
  notEnforcing: PfEntry | undefined;
  /** The drained PFs on ready hosts: a refusal names them, whatever stage it gives, since undraining one may be the fix. */
  drained: PfEntry[];
}

function funnel(candidates: Iterable<PfEntry>, a: Admission): Funnel {
  const stopped = new Int32Array(Stage.Headroom + 2);
  const f: Funnel = { reached: new Int32Array(Stage.Headroom + 2), best: new Array(Stage.Headroom + 1).fill(undefined), drivers: new Set(), notEnforcing: undefined, drained: [] };
  for (const pf of candidates) {
    const d = depth(pf, a);
    stopped[d]!++;
    if (d === Stage.Enforcing) f.drivers.add(pf.driver ?? 'unknown');
    if (d === Stage.Drained) f.drained.push(pf);
    if (d === Stage.GroupEnforcing && (f.notEnforcing === undefined || precedes(pf, f.notEnforcing))) f.notEnforcing = pf;
    const headroom = carries(pf, a) ? headroomMbps(pf, a.bandwidthRatio) : null;
    const best = f.best[d];
    if (headroom !== null && (best === undefined || headroom > best.headroom)) f.best[d] = { pf, headroom };
  }
  for (let k = Stage.Headroom; k >= 0; k--) f.reached[k] = f.reached[k + 1]! + stopped[k]!;
  return f;
}

export function refusal(candidates: Iterable<PfEntry>, req: PlacementRequest, a: Admission): SriovError {
  const f = funnel(candidates, a);
  // The first k no PF reached: every PF stopped at stage k - 1 or before. reached[Headroom + 1] is always 0.
  const stage = f.reached.findIndex((n, k) => k > 0 && n === 0);
  const seen = f.reached[stage - 1]!;
  const best = f.best[stage - 1];
  // Drained PFs that are not the reason given are still named: undraining one may be what helps.
  const note = f.drained.length > 0 && stage - 1 !== Stage.Drained ? `; ${drainedNote(f.drained)}` : '';
  return new SriovError('NO_CAPACITY', `cannot place a VF of network ${req.network.name}: ${reason(stage, seen, f, req, a)}${note}`, {
    object: req.network.name,
    nothingChanged: true,
    data: {
      reason: f.reached[0] === 0 ? 'no-pf' : STAGE_REASONS[stage - 1]!,
      physnet: req.network.physnet,
      deviceType: req.network.deviceType,
      guaranteeMbps: a.guaranteeMbps,
      candidates: seen,
      headroomMbps: best === undefined ? null : Math.floor(best.headroom),
      bestPf: best ? { host: best.pf.host.name, pf: best.pf.name, pfPciAddress: best.pf.pciAddress } : null,
      drainedPfs: f.drained.length,
    },
  });
}

/** Why the `seen` PFs that reached `stage` all stopped there. */
function reason(stage: number, seen: number, f: Funnel, req: PlacementRequest, a: Admission): string {
  const { physnet, deviceType } = req.network;
  const where = `physnet ${physnet} with device type ${deviceType}${req.host ? ` on host ${req.host}` : ''}`;
  const g = a.guaranteeMbps;
  if (f.reached[0] === 0) return `no PF on ${where}`;
  switch (stage - 1) {
    case Stage.Ready:
      return `all ${seen} PFs on ${where} are on unreachable hosts`;
    case Stage.Drained:
      return `no PF on ${where} takes new allocations: ${drainedNote(f.drained)}`;
    case Stage.Numa:
      return `none of the ${seen} ready PFs on ${where} is on NUMA node ${a.numaNode}`;
    case Stage.FreeVf:
      return `all ${seen} candidate PFs on ${where} are full`;
    case Stage.Group:
      return `redundancy group "${req.group}" of ${req.workload.kind} ${req.workload.name} already uses ${req.groupAcrossHosts ? 'the hosts of all' : 'all'} ${seen} candidate PFs with a free VF`;
    case Stage.Enforcing: {
      const enforcing = knownDrivers().filter((d) => capabilitiesOf(d).enforcesMinTxRate);
      return (
        `the drivers of the ${seen} candidate PFs (${[...f.drivers].sort().join(', ')}) do not enforce min_tx_rate, which a guarantee of ${g} Mbps ` +
        `needs (${enforcing.join(', ')} do), and physnet ${physnet} is not accountingOnly`
      );
    }
    case Stage.GroupEnforcing: {
      const pf = f.notEnforcing!;
      return (
        `none of the ${seen} candidate PFs can enforce ${describeGroup(a.tenantGroup!)} (${pf.host.name}/${pf.name}: ${notEnforcing(pf)}), ` +
        `and physnet ${physnet} is not groupsAccountingOnly (sriovctl physnet set ${physnet} --groups-accounting-only on)`
      );
    }
    case Stage.GroupShare:
      return `a guarantee of ${g} Mbps does not fit inside ${describeGroup(a.tenantGroup!)} on any of the ${seen} candidate PFs where it fits otherwise (at most ${groupLimitMbps(a.tenantGroup!)} Mbps per PF)`;
    case Stage.LinkSpeed:
      return `a guarantee of ${g} Mbps needs a known link speed; it is unknown on all ${seen} candidate PFs`;
    default: {
      const best = f.best[Stage.Headroom]!;
      const what = a.tenantGroup?.shareMbps != null ? `the share of ${describeGroup(a.tenantGroup)}` : `guarantee of ${g} Mbps`;
      return `${what} does not fit: best headroom is ${Math.floor(best.headroom)} Mbps on ${best.pf.host.name}/${best.pf.name} (${seen} candidate PFs)`;
    }
  }
}

/**
 * `node1/ens1f0 is drained (sriovctl pf undrain node1/ens1f0)`, or for more
 * than one, up to NAMED_DRAINED of them in host and PCI order and a count of
 * the rest: what to undrain to make room, in words the operator can paste.
 */
export function drainedNote(pfs: readonly PfEntry[]): string {
  const sorted = [...pfs].sort((x, y) => (precedes(x, y) ? -1 : precedes(y, x) ? 1 : 0));
  const names = sorted.map((pf) => `${pf.host.name}/${pf.name}`);
  if (names.length === 1) return `${names[0]} is drained (sriovctl pf undrain ${names[0]})`;
  const shown = names.slice(0, NAMED_DRAINED).join(', ');
  const more = names.length > NAMED_DRAINED ? ` and ${names.length - NAMED_DRAINED} more` : '';
  return `${shown}${more} are drained (sriovctl pf undrain <host>/<pf> for each)`;
}
