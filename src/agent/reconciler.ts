/**
 * Makes this host match its desired state: node policies first, then every
 * allocation (VF settings, driver, container namespace), then releases
 * (detach, scrub, verify), then leftovers. Re-running it is harmless: every
 * step is a no-op when the host already matches, which makes crash
 * recovery, reboot recovery and drift repair one code path.
 */
import type { AgentEvent, AllocationStatus, DesiredAllocation, DesiredState } from '../controller/desired-state.js';
import type { SriovHost } from '../host/configurator.js';
import { SriovError } from '../host/errors.js';
import { SCRUBBED_VF_CONFIG, type HostInventory, type PfInfo } from '../host/model.js';
import { describeOp } from '../host/vf-ops.js';
import { applyPlan } from '../policy/apply.js';
import { excludingVfs, isEmpty, planPolicies, type PfPlan } from '../policy/plan.js';
import { parsePolicyFile, type NodePolicy } from '../policy/schema.js';
import { containerAttachment, ensureAttached, ensureDetached } from './container.js';
import { GraceClock, baselineOf, leftoverSettings, managedPfs } from './orphans.js';

export interface ReconcileResult {
  inventory: HostInventory;
  statuses: AllocationStatus[];
  events: AgentEvent[];
  /** Problems that are not about one allocation (a policy that could not be applied). */
  errors: string[];
  /** Leftovers still in their grace period: worth another pass soon. */
  pending: number;
}

export type Log = (level: 'info' | 'warn' | 'error', message: string) => void;

interface Pass {
  desired: DesiredState;
  policies: NodePolicy[];
  statuses: AllocationStatus[];
  events: AgentEvent[];
  errors: string[];
  leftovers: Set<string>;
  /** Whether this pass changed the host (so the inventory must be read again). */
  changed: boolean;
}

export class Reconciler {
  private readonly grace = new GraceClock();

  constructor(
    private readonly host: SriovHost,
    private readonly log: Log = () => {},
  ) {}

  async reconcile(desired: DesiredState): Promise<ReconcileResult> {
    const pass: Pass = { desired, policies: [], statuses: [], events: [], errors: [], leftovers: new Set(), changed: false };
    let inventory = await this.host.inventory();
    await this.applyPolicies(pass, inventory);
    inventory = await this.fresh(pass, inventory);
    for (const a of desired.allocations) {
      const status = await this.reconcileAllocation(pass, inventory, a);
      if (status) pass.statuses.push(status);
    }
    inventory = await this.fresh(pass, inventory);
    await this.collectUnallocated(pass, inventory);
    this.grace.retain(pass.leftovers);
    for (const e of pass.errors) this.log('error', e);
    return { inventory: await this.fresh(pass, inventory), statuses: pass.statuses, events: pass.events, errors: pass.errors, pending: pass.leftovers.size };
  }

  /** A full inventory is the costly part of a pass: read it again only after a change. */
  private async fresh(pass: Pass, inventory: HostInventory): Promise<HostInventory> {
    if (!pass.changed) return inventory;
    pass.changed = false;
    return this.host.inventory();
  }

  private async applyPolicies(pass: Pass, inventory: HostInventory): Promise<void> {
    try {
      pass.policies = pass.desired.policies.flatMap(parsePolicyFile);
      const plans = planPolicies(inventory, pass.policies).map((p) => excludingVfs(p, heldVfs(p, pass.desired)));
      const applicable = plans.filter((p) => !isEmpty(p) && this.safeToApply(p, pass));
      pass.changed = applicable.length > 0;
      await applyPlan(this.host, applicable);
    } catch (err) {
      pass.changed = true;
      pass.errors.push(`node policy: ${describe(err)}`);
      pass.events.push({ action: 'policy.failed', object: 'policy', detail: describe(err) });
    }
  }

  /**
   * Changing the VF count destroys every VF, so never on a PF with
   * allocations — unless its VFs are already gone (a reboot, a driver reload,
   * `echo 0 > sriov_numvfs`): then re-creating them is the recovery.
   */
  private safeToApply(plan: PfPlan, pass: Pass): boolean {
    if (!plan.numVfs || plan.numVfs.from === 0) return true;
    const held = pass.desired.allocations.filter((a) => a.pfPciAddress === plan.pf.pciAddress).length;
    if (held === 0) return true;
    pass.errors.push(
      `policy ${plan.policy.name} would change the VF count of ${plan.pf.name} (${plan.numVfs.from} → ${plan.numVfs.to}) while ${held} allocations hold its VFs; release them first`,
    );
    return false;
  }

  private async reconcileAllocation(pass: Pass, inventory: HostInventory, a: DesiredAllocation): Promise<AllocationStatus | null> {
    const pf = inventory.pfs.find((p) => p.pciAddress === a.pfPciAddress);
    const vf = pf?.vfs[a.vfIndex];
    if (!pf || !vf || vf.pciAddress !== a.pciAddress) {
      if (a.state === 'releasing') return { id: a.id, state: 'released', reason: 'its VF no longer exists' };
      return { id: a.id, state: 'failed', reason: `VF ${a.vfIndex} of ${a.pfPciAddress} no longer exists` };
    }
    try {
      if (a.state === 'releasing') return await this.release(pass, pf, a);
      return await this.hold(pass, pf, a);
    } catch (err) {
      pass.changed = true;
      this.log('error', `allocation ${a.id}: ${describe(err)}`);
      if (a.state !== 'pending') return null;
      // A failed attach is rolled back: the VF is scrubbed and free again.
      await this.release(pass, pf, a).catch((e) => this.log('error', `rollback of ${a.id}: ${describe(e)}`));
      return { id: a.id, state: 'failed', reason: describe(err) };
    }
  }

  private async hold(pass: Pass, pf: PfInfo, a: DesiredAllocation): Promise<AllocationStatus | null> {
    const at = containerAttachment(a);
    const nsExists = at ? await this.host.ports.netns.exists(at.netns) : false;
    if (at && !nsExists && a.state === 'attached') return this.orphan(pass, pf, a);
    const ops = await this.host.setVfSettings(pf.pciAddress, [{ vf: a.vfIndex, settings: a.config }]);
    if (ops.length) pass.changed = true;
    if (ops.length && a.state !== 'pending') {
      const detail = `${pf.name} vf ${a.vfIndex}: ${ops.map(describeOp).join('; ')}`;
      this.log('warn', `allocation ${a.id}: repaired drift on ${detail}`);
      pass.events.push({ action: 'drift.repaired', object: `allocation/${a.id}`, detail });
    }
    const vm = a.attachment?.kind === 'vm' || a.deviceType === 'vfio-pci';
    if (await this.host.bindVf(pf.pciAddress, a.vfIndex, vm ? 'vfio-pci' : 'kernel')) pass.changed = true;
    if (!a.attachment) return a.state === 'pending' ? { id: a.id, state: 'configured' } : null;
    const movedFrom = at ? await ensureAttached(this.host, pf, a, at, nsExists) : null;
    if (movedFrom) pass.changed = true;
    if (a.state === 'attached') {
      if (movedFrom) pass.events.push({ action: 'allocation.recovered', object: `allocation/${a.id}`, detail: `${movedFrom} moved back into ${at!.netns}` });
      return null;
    }
    return { id: a.id, state: 'attached', ...(movedFrom ? { hostIfName: movedFrom } : {}) };
  }

  /** An attached container whose namespace vanished: collected once the grace period has passed. */
  private async orphan(pass: Pass, pf: PfInfo, a: DesiredAllocation): Promise<AllocationStatus | null> {
    const key = `netns:${a.id}`;
    pass.leftovers.add(key);
    if (!this.grace.expired(key, pass.desired.orphanGraceMs)) return null;
    await this.release(pass, pf, a);
    pass.events.push({ action: 'orphan.scrubbed', object: `allocation/${a.id}`, detail: `namespace ${containerAttachment(a)!.netns} vanished` });
    return { id: a.id, state: 'released', reason: 'its container namespace vanished (teardown never ran)' };
  }

  /** Detach, give the VF back to its kernel driver, and scrub every field (verified by read-back). */
  private async release(pass: Pass, pf: PfInfo, a: DesiredAllocation): Promise<AllocationStatus> {
    pass.changed = true;
    const at = containerAttachment(a);
    if (at) await ensureDetached(this.host, a, at);
    if (a.attachment?.kind === 'vm' && a.deviceType !== 'vfio-pci') await this.host.bindVf(pf.pciAddress, a.vfIndex, 'kernel');
    await this.host.setVfSettings(pf.pciAddress, [{ vf: a.vfIndex, settings: { ...SCRUBBED_VF_CONFIG } }]);
    return { id: a.id, state: 'released' };
  }

  /** Configured VFs that no allocation holds, on PFs a node policy manages. */
  private async collectUnallocated(pass: Pass, inventory: HostInventory): Promise<void> {
    const held = new Set(pass.desired.allocations.map((a) => a.pciAddress));
    for (const pf of managedPfs(inventory.pfs, pass.policies)) {
      for (const vf of pf.vfs.filter((v) => !held.has(v.pciAddress))) {
        const settings = leftoverSettings(vf, baselineOf(pf, vf.index, pass.policies), pass.desired.macPrefix);
        if (!settings) continue;
        const key = `vf:${vf.pciAddress}`;
        pass.leftovers.add(key);
        if (!this.grace.expired(key, pass.desired.orphanGraceMs)) continue;
        try {
          const ops = await this.host.setVfSettings(pf.pciAddress, [{ vf: vf.index, settings }]);
          pass.changed = true;
          pass.events.push({ action: 'orphan.scrubbed', object: `${pf.name}/vf${vf.index}`, detail: ops.map(describeOp).join('; ') });
        } catch (err) {
          pass.errors.push(`scrub of unallocated ${pf.name} vf ${vf.index}: ${describe(err)}`);
        }
      }
    }
  }
}

/** VF indexes of `plan`'s PF that allocations hold (their driver and settings are the allocation's). */
function heldVfs(plan: PfPlan, desired: DesiredState): Set<number> {
  return new Set(desired.allocations.filter((a) => a.pfPciAddress === plan.pf.pciAddress).map((a) => a.vfIndex));
}

function describe(err: unknown): string {
  return err instanceof SriovError ? err.toString() : err instanceof Error ? err.message : String(err);
}
