/**
 * Node policy → plan: which PFs each policy selects, and what would change on
 * each, computed against the current inventory. An empty plan means the host
 * already matches and `apply` touches nothing.
 */
import { capabilitiesOf } from '../host/capabilities.js';
import { checkMacsFree, checkVfRequest, type VfRequest } from '../host/configurator.js';
import { invalid } from '../host/errors.js';
import { checkEswitchChange, describeStep, eswitchSteps, type EswitchStep } from '../host/eswitch.js';
import { SCRUBBED_VF_CONFIG, type EswitchMode, type HostInventory, type PfInfo, type VfConfig } from '../host/model.js';
import { describeOp, opsForSettings } from '../host/vf-ops.js';
import type { NodePolicy, PfSelector } from './schema.js';

export interface Change<T> {
  from: T;
  to: T;
}

export interface PfPlan {
  pf: PfInfo;
  policy: NodePolicy;
  numVfs?: Change<number>;
  mtu?: Change<number | null>;
  autoprobe?: Change<boolean>;
  /**
   * The eswitch mode change and the steps it takes on this PF's driver, in
   * order; a VF count change due in the same plan is among them.
   */
  eswitchMode?: Change<EswitchMode> & { steps: EswitchStep[] };
  /** Settings for every VF the policy names (applying them is a no-op where they match). */
  vfRequests: VfRequest[];
  /** Human-readable diff lines for VF settings, by VF. */
  vfChanges: Array<{ vf: number; text: string }>;
  /** VF index → driver it must be bound to. */
  binds: Array<{ vf: number } & Change<string | null>>;
}

export function matches(sel: PfSelector, pf: PfInfo): boolean {
  return (
    (!sel.pfNames || sel.pfNames.includes(pf.name)) &&
    (!sel.pciAddresses || sel.pciAddresses.includes(pf.pciAddress)) &&
    (!sel.vendor || sel.vendor === pf.vendorId) &&
    (!sel.device || sel.device === pf.deviceId) &&
    (!sel.drivers || (pf.driver !== null && sel.drivers.includes(pf.driver)))
  );
}

/**
 * Each PF matched by at most one policy; every request checked before
 * anything is applied. Refuses, with the limit named, what this host cannot
 * take: numVfs above a PF's sriov_totalvfs, settings its driver refuses,
 * rates above its link speed, a MAC another VF of the PF keeps, a PF two
 * policies select. `host apply` plans with it, and the controller checks a
 * stored policy against the host's last inventory with it.
 */
export function planPolicies(inventory: HostInventory, policies: NodePolicy[]): PfPlan[] {
  const plans: PfPlan[] = [];
  for (const pf of inventory.pfs) {
    const matched = policies.filter((p) => matches(p.selector, pf));
    if (matched.length > 1) {
      throw invalid(`${pf.name} is selected by more than one policy: ${matched.map((p) => p.name).join(', ')}`, pf.name);
    }
    if (matched[0]) plans.push(planPf(pf, matched[0]));
  }
  return plans;
}

/** Policies whose selector matches none of the host's PFs. */
export function unmatchedPolicies(inventory: HostInventory, policies: NodePolicy[]): NodePolicy[] {
  return policies.filter((p) => !inventory.pfs.some((pf) => matches(p.selector, pf)));
}

/** `pfNames=ens9f0 drivers=ice`, for messages. */
export function describeSelector(sel: PfSelector): string {
  return Object.entries(sel)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
    .join(' ');
}

function planPf(pf: PfInfo, policy: NodePolicy): PfPlan {
  if (policy.numVfs > pf.totalVfs) {
    throw invalid(`policy ${policy.name}: numVfs ${policy.numVfs} is above ${pf.name}'s sriov_totalvfs of ${pf.totalVfs}`, pf.name);
  }
  const recreate = policy.numVfs !== pf.numVfs;
  const vfRequests = [...policy.vfs].map(([vf, settings]) => ({ vf, settings }));
  for (const r of vfRequests) checkVfRequest(pf, r, policy.numVfs);
  // Re-created VFs start without MACs; kept ones must not collide with a VF the policy leaves alone.
  if (!recreate) checkMacsFree(pf, vfRequests, `policy ${policy.name}`);
  // VFs created by this plan start from the driver's reset values, unbound.
  const currentOf = (vf: number): VfConfig => (recreate ? SCRUBBED_VF_CONFIG : pf.vfs[vf]!);
  const driverOf = (vf: number): string | null => (recreate ? null : pf.vfs[vf]!.driver);
  const vfChanges = vfRequests.flatMap((r) => opsForSettings(r.vf, currentOf(r.vf), r.settings).map((op) => ({ vf: r.vf, text: describeOp(op) })));
  const target = policy.deviceType === 'vfio-pci' ? 'vfio-pci' : capabilitiesOf(pf.driver).vfDriver;
  const binds = target === null ? [] : indexes(policy.numVfs).filter((vf) => driverOf(vf) !== target).map((vf) => ({ vf, from: driverOf(vf), to: target }));
  const plan: PfPlan = { pf, policy, vfRequests, vfChanges, binds };
  if (recreate) plan.numVfs = { from: pf.numVfs, to: policy.numVfs };
  if (policy.mtu !== undefined && policy.mtu !== pf.mtu) plan.mtu = { from: pf.mtu, to: policy.mtu };
  if (policy.autoprobe !== undefined && policy.autoprobe !== pf.autoprobe) plan.autoprobe = { from: pf.autoprobe, to: policy.autoprobe };
  const eswitch = planEswitch(pf, policy);
  if (eswitch) plan.eswitchMode = eswitch;
  return plan;
}

/** The policy's eswitch mode on `pf`: refused where the PF has no eswitch to change, whatever its mode. */
function planEswitch(pf: PfInfo, policy: NodePolicy): PfPlan['eswitchMode'] {
  if (policy.eswitchMode === undefined) return undefined;
  checkEswitchChange(pf, `policy ${policy.name}`);
  const steps = eswitchSteps(pf, policy.eswitchMode, policy.numVfs);
  return steps.length ? { from: pf.eswitchMode!, to: policy.eswitchMode, steps } : undefined;
}

/** Whether the plan takes the PF's VFs away or from their drivers (a mode change by remove/unbind, or a count change). */
export function disturbsVfs(plan: PfPlan): boolean {
  return !!plan.numVfs || !!plan.eswitchMode?.steps.some((s) => s.action === 'remove-vfs' || s.action === 'unbind-vfs' || s.action === 'create-vfs');
}

const indexes = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * The plan without its per-VF settings and bindings for `vfs`: VFs that
 * allocations hold take their driver and settings from the allocation. An
 * eswitch mode change that would remove or unbind them waits until they are
 * released (the controller refuses it, unless the PF is drained).
 */
export function excludingVfs(plan: PfPlan, vfs: ReadonlySet<number>): PfPlan {
  const waits = vfs.size > 0 && plan.eswitchMode !== undefined && disturbsVfs(plan);
  return {
    ...plan,
    eswitchMode: waits ? undefined : plan.eswitchMode,
    vfRequests: plan.vfRequests.filter((r) => !vfs.has(r.vf)),
    vfChanges: plan.vfChanges.filter((c) => !vfs.has(c.vf)),
    binds: plan.binds.filter((b) => !vfs.has(b.vf)),
  };
}

export function isEmpty(plan: PfPlan): boolean {
  return !plan.numVfs && !plan.mtu && !plan.autoprobe && !plan.eswitchMode && plan.vfChanges.length === 0 && plan.binds.length === 0;
}

/** The plan as a diff, one line per change. */
export function renderPlan(plans: PfPlan[]): string[] {
  const lines: string[] = [];
  for (const p of plans.filter((plan) => !isEmpty(plan))) {
    lines.push(`${p.pf.name} (${p.pf.pciAddress}) ← policy ${p.policy.name}`);
    if (p.numVfs) lines.push(`  ~ numVfs: ${p.numVfs.from} → ${p.numVfs.to}`);
    if (p.eswitchMode) lines.push(`  ~ ${describeEswitch(p)}`);
    if (p.mtu) lines.push(`  ~ mtu: ${p.mtu.from ?? '-'} → ${p.mtu.to}`);
    if (p.autoprobe) lines.push(`  ~ autoprobe: ${onOff(p.autoprobe.from)} → ${onOff(p.autoprobe.to)}`);
    for (const c of p.vfChanges) lines.push(`  ~ ${c.text}`);
    for (const b of p.binds) lines.push(`  ~ vf ${b.vf} driver: ${b.from ?? '(none)'} → ${b.to}`);
  }
  return lines;
}

/** `eswitchMode: legacy → switchdev (ice: 1. remove the VFs ...; 2. devlink dev eswitch set ...; 3. create 8 VFs ...)`, one line. */
function describeEswitch(p: PfPlan): string {
  const e = p.eswitchMode!;
  const steps = e.steps.map((s, i) => `${i + 1}. ${describeStep(p.pf, s)}`).join('; ');
  return `eswitchMode: ${e.from} → ${e.to} (${p.pf.driver ?? 'unknown driver'}: ${steps})`;
}

const onOff = (v: boolean) => (v ? 'on' : 'off');
