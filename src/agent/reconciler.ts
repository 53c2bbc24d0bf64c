/**
 * Makes this host match its desired state, in two ways:
 *
 * - a whole-host pass (`reconcile`): node policies first, then every
 *   allocation (VF settings, driver, container namespace), then releases
 *   (detach, scrub, verify), then leftovers. Re-running it is harmless: every
 *   step is a no-op when the host already matches, which makes crash
 *   recovery, reboot recovery and drift repair one code path. The agent runs
 *   it at start, periodically, and when asked (`host reconcile`);
 * - an incremental pass (`apply`): only the allocations whose desired entry
 *   changed since this host last matched it, on the model of the host kept
 *   in memory (the last inventory, updated from what each write read back),
 *   so a container's attach touches no other allocation and reads no
 *   inventory. A policy change, or a model not yet read, makes it a whole pass.
 *
 * A release that fails is retried with backoff and reported as stuck, never as done.
 */
import { keptVfSettings, type AgentEvent, type AllocationStatus, type DesiredAllocation, type DesiredState } from '../controller/desired-state.js';
import type { MigrationStep } from '../domain/types.js';
import { enforceableSettings } from '../host/capabilities.js';
import type { ApplyOptions, SriovHost } from '../host/configurator.js';
import { SriovError } from '../host/errors.js';
import { SCRUBBED_VF_CONFIG, type HostInventory, type PfInfo, type VfInfo, type VfSettings } from '../host/model.js';
import { withoutTransitNames, type NetnsLink, type VfOp } from '../host/ports.js';
import { describeOp } from '../host/vf-ops.js';
import { applyPlan } from '../policy/apply.js';
import { baselineOf, leftoverSettings } from '../policy/baseline.js';
import { excludingVfs, isEmpty, planPolicies, type PfPlan } from '../policy/plan.js';
import { parsePolicyFile, type NodePolicy } from '../policy/schema.js';
import { Backoff } from './backoff.js';
import { containerAttachment, ensureAttached, ensureDetached, inNamespace, locate, nameInHost, namespaceAlive, type ContainerAttachment } from './container.js';
import { RehomeFailed, rehome, reinstate, standbyName } from './rehome.js';
import { GraceClock, managedPfs } from './orphans.js';
import { RateGroups } from './rate-groups.js';

export interface ReconcileResult {
  inventory: HostInventory;
  statuses: AllocationStatus[];
  events: AgentEvent[];
  /** Problems that are not about one allocation (a policy that could not be applied). */
  errors: string[];
  /** Leftovers still in their grace period, and releases waiting for a retry: worth another pass soon. */
  pending: number;
}

export interface ReconcilerOptions {
  /** First wait before a failed release is tried again; it doubles up to `retryMaxMs`. */
  retryFirstMs?: number;
  retryMaxMs?: number;
}

export type Log = (level: 'info' | 'warn' | 'error', message: string) => void;

interface Pass {
  desired: DesiredState;
  /** Allocations whose step failed: not recorded as matched, so the next pass tries them again. */
  retry: Set<string>;
  policies: NodePolicy[];
  statuses: AllocationStatus[];
  events: AgentEvent[];
  errors: string[];
  leftovers: Set<string>;
  /** Releases that failed and wait for their next attempt. */
  stuck: number;
  /** Whether this pass changed the host (so the inventory must be read again). */
  changed: boolean;
}

export class Reconciler {
  private readonly grace = new GraceClock();
  private readonly releases: Backoff;
  /** The host as last read, updated from the read-back of every write since; null until the first whole pass. */
  private model: HostInventory | null = null;
  /** Per allocation: its desired entry (with the state this agent reported) when the host last matched it. */
  private readonly matched = new Map<string, string>();
  /** What the last whole pass was for: node policies and the resync request. */
  private wholeKey: string | null = null;
  /** Tenants' bandwidth groups: the PFs' devlink rate trees. */
  private readonly rates: RateGroups;

  constructor(
    private readonly host: SriovHost,
    private readonly log: Log = () => {},
    opts: ReconcilerOptions = {},
  ) {
    this.releases = new Backoff(opts.retryFirstMs ?? 10_000, opts.retryMaxMs ?? 60_000);
    this.rates = new RateGroups(host.ports.devlink);
  }

  /** The whole-host pass. */
  async reconcile(desired: DesiredState): Promise<ReconcileResult> {
    const pass = newPass(desired);
    this.model = await this.host.inventory();
    await this.applyPolicies(pass, this.model);
    await this.fresh(pass);
    this.matched.clear();
    for (const a of desired.allocations) await this.step(pass, a);
    await this.fresh(pass);
    await this.convergeRates(pass, { inventoryFresh: true });
    await this.collectUnallocated(pass, this.model);
    this.grace.retain(pass.leftovers);
    this.releases.retain(new Set(desired.allocations.filter((a) => a.state === 'releasing').map((a) => a.id)));
    for (const e of pass.errors) this.log('error', e);
    await this.fresh(pass);
    this.wholeKey = wholeKeyOf(desired);
    return this.result(pass, pass.leftovers.size + pass.stuck);
  }

  /**
   * The incremental pass: the allocations whose desired entry changed since
   * the host last matched it, nothing else; a whole pass when the policies
   * or the resync request changed, or there is no model yet.
   */
  async apply(desired: DesiredState): Promise<ReconcileResult> {
    if (!this.model || this.wholeKey !== wholeKeyOf(desired)) return this.reconcile(desired);
    const changed = desired.allocations.filter((a) => this.matched.get(a.id) !== matchKey(a, a.state));
    // A VF the model does not have is for a fresh inventory to judge, not the model.
    if (changed.some((a) => this.modelPf(a.pfPciAddress)?.vfs[a.vfIndex]?.pciAddress !== a.pciAddress)) return this.reconcile(desired);
    const pass = newPass(desired);
    const current = new Set(desired.allocations.map((a) => a.id));
    for (const id of this.matched.keys()) if (!current.has(id)) this.matched.delete(id);
    for (const a of changed) await this.step(pass, a);
    const only = this.rates.scope(desired, changed);
    if (only.size) await this.convergeRates(pass, { only });
    for (const e of pass.errors) this.log('error', e);
    return this.result(pass, pass.stuck + pass.retry.size);
  }

  private result(pass: Pass, pending: number): ReconcileResult {
    return { inventory: this.model!, statuses: pass.statuses, events: pass.events, errors: pass.errors, pending };
  }

  /** One allocation; recorded as matched in the state it is reported in, unless its step failed. */
  private async step(pass: Pass, a: DesiredAllocation): Promise<void> {
    const status = await this.reconcileAllocation(pass, a);
    if (status) pass.statuses.push(status);
    const done = status && (status.state === 'released' || status.state === 'failed');
    if (pass.retry.has(a.id) || done || status?.state === 'releasing') this.matched.delete(a.id);
    else this.matched.set(a.id, matchKey(a, status?.state ?? a.state, status?.hostIfName));
  }

  /** A full inventory is the costly part of a whole pass: read it again only after a change. */
  private async fresh(pass: Pass): Promise<void> {
    if (!pass.changed) return;
    pass.changed = false;
    this.model = await this.host.inventory();
  }

  /**
   * The model's PF `pciAddress`, replaced by `pf` when given (after a write
   * read it back). Replaced, not changed in place: the last inventory
   * reported is the controller's to keep as it was.
   */
  private modelPf(pciAddress: string, pf?: PfInfo): PfInfo | undefined {
    const model = this.model!;
    if (pf) this.model = { ...model, pfs: model.pfs.map((p) => (p.pciAddress === pciAddress ? pf : p)) };
    return this.model!.pfs.find((p) => p.pciAddress === pciAddress);
  }

  /** Applies VF settings on the model's PF, keeping the model as the read-back found it. */
  private async setVf(pf: PfInfo, vf: number, settings: VfSettings, opts?: ApplyOptions): Promise<{ ops: VfOp[]; pf: PfInfo }> {
    const current = this.modelPf(pf.pciAddress) ?? pf;
    const result = await this.host.applyVfSettings(current, [{ vf, settings }], opts);
    this.modelPf(pf.pciAddress, result.pf);
    return result;
  }

  /** Binds a VF on the model's PF; whether it changed anything. */
  private async bind(pf: PfInfo, vf: number, driver: string): Promise<boolean> {
    const after = await this.host.bindVfOn(this.modelPf(pf.pciAddress) ?? pf, vf, driver);
    if (after) this.modelPf(pf.pciAddress, after);
    return after !== null;
  }

  /** The tenants' groups on the model's PFs (all, or `only` these), after the allocations' own steps. */
  private async convergeRates(pass: Pass, opts: { only?: Set<string>; inventoryFresh?: boolean }): Promise<void> {
    const outcome = await this.rates.converge(this.model!.pfs, pass.desired, opts);
    if (outcome.changed) pass.changed = true;
    for (const e of outcome.events) if (e.action === 'drift.repaired') this.log('warn', `${e.object}: repaired drift: ${e.detail}`);
    pass.events.push(...outcome.events);
    pass.errors.push(...outcome.errors);
  }

  private async applyPolicies(pass: Pass, inventory: HostInventory): Promise<void> {
    try {
      pass.policies = pass.desired.policies.flatMap(parsePolicyFile);
      const plans = planPolicies(inventory, pass.policies).map((p) => this.withoutHeldVfs(p, pass));
      const applicable = plans.filter((p) => !isEmpty(p) && this.safeToApply(p, pass));
      pass.changed = applicable.length > 0;
      await applyPlan(this.host, applicable);
    } catch (err) {
      pass.changed = true;
      pass.errors.push(`node policy: ${describe(err)}`);
      pass.events.push({ action: 'policy.failed', object: 'policy', detail: describe(err) });
    }
  }

  /** The plan less what allocations hold; an eswitch mode change it holds back is said, not dropped silently. */
  private withoutHeldVfs(plan: PfPlan, pass: Pass): PfPlan {
    const held = heldVfs(plan, pass.desired);
    const kept = excludingVfs(plan, held);
    if (plan.eswitchMode && !kept.eswitchMode) {
      const { from, to } = plan.eswitchMode;
      pass.errors.push(
        `policy ${plan.policy.name} would change the eswitch mode of ${plan.pf.name} (${from} → ${to}) while ${held.size} allocations hold its VFs; it waits until they are released (or drain the PF)`,
      );
    }
    return kept;
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

  private async reconcileAllocation(pass: Pass, a: DesiredAllocation): Promise<AllocationStatus | null> {
    const pf = this.modelPf(a.pfPciAddress);
    const vf = pf?.vfs[a.vfIndex];
    if (!pf || !vf || vf.pciAddress !== a.pciAddress) {
      if (a.state === 'releasing') return { id: a.id, state: 'released', reason: 'its VF no longer exists' };
      return { id: a.id, state: 'failed', reason: `VF ${a.vfIndex} of ${a.pfPciAddress} no longer exists` };
    }
    if (a.state === 'releasing') return this.releaseWithRetry(pass, pf, a);
    if (movingOff(a)) return null;
    try {
      return await this.hold(pass, pf, a);
    } catch (err) {
      pass.changed = true;
      this.log('error', `allocation ${a.id}: ${describe(err)}`);
      // The old VF is back in service (or was never touched): the controller rolls the migration back. Else the next pass finishes it.
      if (err instanceof RehomeFailed) return err.restored ? { id: a.id, state: 'failed', reason: describe(err) } : this.retryLater(pass, a);
      if (a.state !== 'pending') return this.retryLater(pass, a);
      // A failed attach is rolled back: the VF is scrubbed and free again.
      try {
        await this.release(pass, pf, a);
      } catch (e) {
        this.log('error', `rollback of ${a.id}: ${describe(e)}`);
        // Never free a VF the container may still have: it stays pending, and the next pass tries again.
        if (!(await this.workloadGone(pf, a).catch(() => false))) return this.retryLater(pass, a);
      }
      return { id: a.id, state: 'failed', reason: describe(err) };
    }
  }

  /** A step that failed and reports nothing: not recorded as matched, so the next pass tries it again. */
  private retryLater(pass: Pass, a: DesiredAllocation): null {
    pass.retry.add(a.id);
    return null;
  }

  /**
   * A release, tried again after a failure only once its backoff is over.
   * Until it succeeds the allocation stays `releasing` (the VF is not free),
   * with a reason that says what is stuck; the controller records each
   * distinct reason once.
   */

  private async releaseWithRetry(pass: Pass, pf: PfInfo, a: DesiredAllocation): Promise<AllocationStatus | null> {
    if (!this.releases.due(a.id)) {
      pass.stuck++;
      return null;
    }
    try {
      const status = await this.release(pass, pf, a);
      this.releases.succeeded(a.id);
      return status;
    } catch (err) {
      pass.changed = true;
      pass.stuck++;
      const waitMs = this.releases.failed(a.id);
      this.log('error', `release of ${a.id}: ${describe(err)}; retrying in ${Math.round(waitMs / 1000)} s`);
      return { id: a.id, state: 'releasing', reason: `stuck: ${withoutTransitNames(describe(err))}; retrying` };
    }
  }

  /**
   * VF settings, driver, then the attachment. An attached container is
   * looked for first: if its namespace vanished it is an orphan, not
   * something to configure.
   */
  private async hold(pass: Pass, pf: PfInfo, a: DesiredAllocation): Promise<AllocationStatus | null> {
    const at = containerAttachment(a);
    const reserved = awaitingWorkload(a);
    let where = at && a.state === 'attached' ? await locate(this.host, a, at) : null;
    if (at && where && !(await namespaceAlive(this.host, at, where))) return this.orphan(pass, pf, a);
    const standingBy = at && at.ifname !== standbyName(a.pciAddress) && where?.inNs?.ifname === standbyName(a.pciAddress);
    if (standingBy && !(await this.reinstated(pass, a, at, where!.inNs!))) return this.retryLater(pass, a);
    // No workload has had the VF yet (a new allocation, a migration's destination): all of its settings are ours.
    const fresh = a.state === 'pending' || reserved;
    const settings = enforceableSettings(pf.driver, fresh ? a.config : keptVfSettings(a.config));
    // A container's attach (or re-home) sets the MAC on the netdev inside the namespace: no driver reload where the VF may do that.
    const { ops } = await this.setVf(pf, a.vfIndex, settings, { macOnNetdev: at !== null && fresh });
    if (ops.length) pass.changed = true;
    if (ops.length && a.state !== 'pending') {
      const detail = `${pf.name} vf ${a.vfIndex}: ${ops.map(describeOp).join('; ')}`;
      this.log('warn', `allocation ${a.id}: repaired drift on ${detail}`);
      pass.events.push({ action: 'drift.repaired', object: `allocation/${a.id}`, detail });
    }
    const vm = a.attachment?.kind === 'vm' || a.deviceType === 'vfio-pci';
    const bound = await this.bind(pf, a.vfIndex, vm ? 'vfio-pci' : 'kernel');
    if (bound) pass.changed = true;
    if (!a.attachment || reserved) return this.reservation(pass, a, at);
    // A new MAC or driver makes a new netdev: look again.
    if (ops.length || bound) where = null;
    const movedFrom = at ? await ensureAttached(this.host, pf, a, at, where ?? undefined) : null;
    if (movedFrom) pass.changed = true;
    if (a.state === 'attached') {
      if (movedFrom) pass.events.push({ action: 'allocation.recovered', object: `allocation/${a.id}`, detail: `${movedFrom} moved back into ${at!.netns}` });
      return null;
    }
    return { id: a.id, state: 'attached', ...(movedFrom ? { hostIfName: movedFrom } : {}) };
  }

  /**
   * A VF configured for a workload that is not on it yet: reported
   * `configured`, never attached, except that a migration's container
   * destination at `switch` takes its workload over (the re-home) and is
   * then `attached`. A VM's destination stays configured: the hypervisor
   * tasks plug it, and the controller marks it attached.
   */
  private async reservation(pass: Pass, a: DesiredAllocation, at: ContainerAttachment | null): Promise<AllocationStatus | null> {
    if (at && a.migration?.role === 'destination' && a.migration.step === 'switch') {
      const peer = pass.desired.allocations.find((p) => p.id === a.migration!.peer);
      pass.changed = true;
      const { movedFrom, announced } = await rehome(this.host, a, at, peer ? { oldPciAddress: peer.pciAddress } : {});
      if (!announced) this.log('warn', `allocation ${a.id}: ${at.ifname} in ${at.netns} had no carrier to announce its move; peers learn it from its own traffic`);
      return { id: a.id, state: 'attached', ...(movedFrom ? { hostIfName: movedFrom } : {}) };
    }
    return a.state === 'pending' ? { id: a.id, state: 'configured' } : null;
  }

  /** A source whose migration was rolled back after its VF stood by for the re-home: back in service, when its name is free. */
  private async reinstated(pass: Pass, a: DesiredAllocation, at: ContainerAttachment, link: NetnsLink): Promise<boolean> {
    pass.changed = true;
    if (!(await reinstate(this.host, a, at, link))) return false;
    pass.events.push({ action: 'allocation.recovered', object: `allocation/${a.id}`, detail: `${link.ifname} back in service as ${at.ifname} in ${at.netns}` });
    return true;
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

  /**
   * Detach, give the VF back to its kernel driver, scrub every field, and
   * verify by read-back; only then is it released. A step that fails does
   * not stop the ones that protect the next tenant: the VF is scrubbed when
   * the workload can no longer use it, else only what can never help the
   * workload (trust off, spoof checking on) is applied, and the failure is
   * thrown: the VF stays held until a retry gets through.
   */
  private async release(pass: Pass, pf: PfInfo, a: DesiredAllocation): Promise<AllocationStatus> {
    pass.changed = true;
    const at = containerAttachment(a);
    let failure: unknown = null;
    try {
      if (at) {
        await ensureDetached(this.host, pf, a, at);
        // Back in the host, its netdev is one the model may not have (read while it was in the container).
        this.modelPf(pf.pciAddress, await this.host.withVfDevice(this.modelPf(pf.pciAddress) ?? pf, a.vfIndex));
      }
      // Through the model: the scrub that follows must know the VF is on its netdev driver again (to reload it for the MAC).
      if (a.attachment?.kind === 'vm' && a.deviceType !== 'vfio-pci') await this.bind(pf, a.vfIndex, 'kernel');
    } catch (err) {
      failure = err;
    }
    if (failure && !(await this.workloadGone(pf, a))) {
      // Clearing the VLAN now would put the workload, which still has the VF, on the untagged network.
      await this.setVf(pf, a.vfIndex, { trust: false, spoofChk: true }).catch((e) => this.log('error', `tightening ${pf.name} vf ${a.vfIndex}: ${describe(e)}`));
      throw failure;
    }
    const scrubbed = await this.setVf(pf, a.vfIndex, { ...SCRUBBED_VF_CONFIG });
    // Its rate leaf out of the tenant's group (the group's node gone with its last leaf), before anyone else can have the VF.
    await this.rates.release(scrubbed.pf, a, pass.desired);
    if (failure) throw failure;
    // A new admin MAC reloads the VF driver, which makes a new netdev under a kernel name: name it again.
    if (at) await nameInHost(this.host, pf, a, at);
    await this.verifyReleased(scrubbed.pf, a);
    return { id: a.id, state: 'released' };
  }

  /** After a failed detach: whether the workload can no longer reach the VF (a container's netdev is out; a VM's VF is off vfio-pci). */
  private async workloadGone(pf: PfInfo, a: DesiredAllocation): Promise<boolean> {
    const at = containerAttachment(a);
    if (at) return !(await inNamespace(this.host, a, at).catch(() => true));
    if (a.attachment?.kind !== 'vm') return true;
    const vf = (await this.host.pf(pf.pciAddress)).vfs[a.vfIndex];
    return vf?.driver !== 'vfio-pci';
  }

  /**
   * Read back: nothing of the tenant on the VF, and its netdev not in the
   * tenant's namespace. `pf` is as the scrub read it back (or, when the scrub
   * had nothing to do, as the model has it from the last read).
   */
  private async verifyReleased(pf: PfInfo, a: DesiredAllocation): Promise<void> {
    const vf = pf.vfs[a.vfIndex];
    const left = vf ? tenantLeftovers(vf, a.config.mac) : ['the VF is gone'];
    // The netdev's own MAC too: a container set the tenant's on it, and the PF's view does not show it.
    const netdev = (await this.host.ports.sysfs.readVf(a.pciAddress)).netdevs[0];
    const netdevMac = netdev ? (await this.host.ports.sysfs.readNetdev(netdev))?.mac : null;
    if (netdevMac === a.config.mac) left.push(`MAC ${netdevMac} on its netdev ${netdev}`);
    const at = containerAttachment(a);
    if (at && (await inNamespace(this.host, a, at))) left.push(`its netdev is still in ${at.netns}`);
    if (left.length) throw new SriovError('VERIFY_FAILED', `${pf.name} vf ${a.vfIndex} after the scrub: ${left.join(', ')}`, { object: a.pciAddress });
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
          const { ops } = await this.setVf(pf, vf.index, settings);
          pass.changed = true;
          pass.events.push({ action: 'orphan.scrubbed', object: `${pf.name}/vf${vf.index}`, detail: ops.map(describeOp).join('; ') });
        } catch (err) {
          pass.errors.push(`scrub of unallocated ${pf.name} vf ${vf.index}: ${describe(err)}`);
        }
      }
    }
  }
}

/**
 * A migration's source once the switch began: the workload is moving off
 * its VF, so nothing is repaired or re-attached there (a container's old VF
 * sits down, under another name, until its release).
 */
function movingOff(a: DesiredAllocation): boolean {
  return a.migration?.role === 'source' && LEFT_ALONE_FROM.includes(a.migration.step);
}

const LEFT_ALONE_FROM: readonly MigrationStep[] = ['switch', 'release', 'done'];

/** A migration's destination that its workload has not reached: configured (and bound), never attached by the agent but through a re-home. */
function awaitingWorkload(a: DesiredAllocation): boolean {
  return a.migration?.role === 'destination' && a.state !== 'attached';
}

function newPass(desired: DesiredState): Pass {
  return { desired, retry: new Set(), policies: [], statuses: [], events: [], errors: [], leftovers: new Set(), stuck: 0, changed: false };
}

/** Changes to these take a whole pass. */
function wholeKeyOf(desired: DesiredState): string {
  return JSON.stringify([desired.policies, desired.resync, desired.macPrefix]);
}

/** An allocation's desired entry as the controller sends it once it took this host's report (`state`, and the netdev's host name). */
function matchKey(a: DesiredAllocation, state: string, hostIfName?: string): string {
  const attachment = hostIfName && a.attachment?.kind === 'container' ? { ...a.attachment, hostIfName } : a.attachment;
  return JSON.stringify({ ...a, state, attachment });
}

/** VF indexes of `plan`'s PF that allocations hold (their driver and settings are the allocation's). */
function heldVfs(plan: PfPlan, desired: DesiredState): Set<number> {
  return new Set(desired.allocations.filter((a) => a.pfPciAddress === plan.pf.pciAddress).map((a) => a.vfIndex));
}

/** What of a tenant is still on a VF after its scrub (a MAC the driver picked itself is not the tenant's). */
function tenantLeftovers(vf: VfInfo, tenantMac: string): string[] {
  const left: string[] = [];
  if (vf.mac === tenantMac) left.push(`MAC ${vf.mac}`);
  if (vf.vlan !== 0 || vf.qos !== 0) left.push(`VLAN ${vf.vlan} qos ${vf.qos}`);
  if (vf.minTxRateMbps !== 0 || vf.maxTxRateMbps !== 0) left.push(`rate ${vf.minTxRateMbps}-${vf.maxTxRateMbps} Mbps`);
  if (vf.trust === true) left.push('trust on');
  if (vf.spoofChk === false) left.push('spoof checking off');
  return left;
}

function describe(err: unknown): string {
  return err instanceof SriovError ? err.toString() : err instanceof Error ? err.message : String(err);
}
