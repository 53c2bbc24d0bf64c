/**
 * Makes this host match its desired state: node policies first, then every
 * allocation's VF configuration, then scrubs of released VFs. Re-running it
 * is harmless (every step is a no-op when the host already matches), which
 * is what makes crash recovery and drift repair the same code path.
 */
import type { AllocationStatus, DesiredAllocation, DesiredState } from '../controller/desired-state.js';
import type { SriovHost } from '../host/configurator.js';
import { SriovError } from '../host/errors.js';
import { SCRUBBED_VF_CONFIG, type HostInventory, type PfInfo } from '../host/model.js';
import { applyPlan } from '../policy/apply.js';
import { planPolicies, type PfPlan } from '../policy/plan.js';
import { parsePolicyFile } from '../policy/schema.js';

export interface ReconcileResult {
  inventory: HostInventory;
  statuses: AllocationStatus[];
  /** Problems that are not about one allocation (a policy that could not be applied). */
  errors: string[];
}

export type Log = (level: 'info' | 'warn' | 'error', message: string) => void;

export class Reconciler {
  constructor(
    private readonly host: SriovHost,
    private readonly log: Log = () => {},
  ) {}

  async reconcile(desired: DesiredState): Promise<ReconcileResult> {
    const errors = await this.applyPolicies(desired);
    const inventory = await this.host.inventory();
    const statuses: AllocationStatus[] = [];
    for (const a of desired.allocations) {
      const status = await this.reconcileAllocation(inventory, a);
      if (status) statuses.push(status);
    }
    return { inventory: await this.host.inventory(), statuses, errors };
  }

  private async applyPolicies(desired: DesiredState): Promise<string[]> {
    const errors: string[] = [];
    try {
      const policies = desired.policies.flatMap(parsePolicyFile);
      const plans = planPolicies(await this.host.inventory(), policies);
      await applyPlan(this.host, plans.filter((p) => this.safeToApply(p, desired, errors)));
    } catch (err) {
      errors.push(`node policy: ${describe(err)}`);
    }
    for (const e of errors) this.log('error', e);
    return errors;
  }

  /** Changing the VF count destroys every VF, so never on a PF with allocations. */
  private safeToApply(plan: PfPlan, desired: DesiredState, errors: string[]): boolean {
    if (!plan.numVfs) return true;
    const held = desired.allocations.filter((a) => a.pfPciAddress === plan.pf.pciAddress).length;
    if (held === 0) return true;
    errors.push(`policy ${plan.policy.name} would change the VF count of ${plan.pf.name} (${plan.numVfs.from} → ${plan.numVfs.to}) while ${held} allocations hold its VFs; release them first`);
    return false;
  }

  private async reconcileAllocation(inventory: HostInventory, a: DesiredAllocation): Promise<AllocationStatus | null> {
    const pf = inventory.pfs.find((p) => p.pciAddress === a.pfPciAddress);
    const vf = pf?.vfs[a.vfIndex];
    if (!pf || !vf || vf.pciAddress !== a.pciAddress) {
      return a.state === 'releasing' ? { id: a.id, state: 'released' } : { id: a.id, state: 'failed', reason: `VF ${a.vfIndex} of ${a.pfPciAddress} no longer exists` };
    }
    try {
      if (a.state === 'releasing') {
        await this.scrub(pf, a.vfIndex);
        return { id: a.id, state: 'released' };
      }
      await this.configure(pf, a);
      return a.state === 'pending' ? { id: a.id, state: 'configured' } : null;
    } catch (err) {
      this.log('error', `allocation ${a.id}: ${describe(err)}`);
      if (a.state !== 'pending') return null;
      await this.scrub(pf, a.vfIndex).catch((e) => this.log('error', `scrub after failure of ${a.id}: ${describe(e)}`));
      return { id: a.id, state: 'failed', reason: describe(err) };
    }
  }

  private async configure(pf: PfInfo, a: DesiredAllocation): Promise<void> {
    const ops = await this.host.setVfSettings(pf.pciAddress, [{ vf: a.vfIndex, settings: a.config }]);
    if (ops.length && a.state !== 'pending') this.log('warn', `allocation ${a.id}: repaired drift on ${pf.name} vf ${a.vfIndex} (${ops.length} settings)`);
    const driver = a.deviceType === 'vfio-pci' ? 'vfio-pci' : 'kernel';
    if (a.deviceType === 'vfio-pci' || pf.vfs[a.vfIndex]!.driver === null) await this.host.bindVf(pf.pciAddress, a.vfIndex, driver);
  }

  /** Every field back to its reset value, verified by read-back inside setVfSettings. */
  private async scrub(pf: PfInfo, vf: number): Promise<void> {
    await this.host.setVfSettings(pf.pciAddress, [{ vf, settings: { ...SCRUBBED_VF_CONFIG } }]);
  }
}

function describe(err: unknown): string {
  return err instanceof SriovError ? err.toString() : err instanceof Error ? err.message : String(err);
}
