/**
 * The migration service (`Migrations`): plans and reserves a migration in
 * one transaction, then leaves the rest to the driver, which agents' reports
 * and task results move on. Staff start and abort migrations; a tenant may
 * read its own tenant's.
 */
import { randomUUID } from 'node:crypto';
import { agentHostOf, forbidden, isStaff, nodeHostOf, requireStaff, requireTenantAccess, tenantOf, type Actor } from '../domain/actor.js';
import type { Allocation, Attachment, Migration } from '../domain/types.js';
import { invalid, SriovError } from '../host/errors.js';
import type { AllocationService } from './allocations.js';
import { bandwidthCheck, pendingAllocation } from './allocations.js';
import { MAX_WAIT_S } from './allocation-waits.js';
import type { Context } from './context.js';
import type { HookSignals } from './hook-hypervisor.js';
import { MigrationDriver } from './migration-driver.js';
import { planMigration, parseTarget, type MigrationPlan } from './migration-plan.js';
import { endpointOf, isActive, newMigration } from './migration-records.js';
import type { MigrationRequest, Migrations } from './migration-request.js';
import { abortReason, rollback } from './migration-steps.js';
import { devicesOf, oneLine, taskOf } from './migration-tasks.js';
import { vmConfigOf } from './vm-config.js';

const STATES: readonly Migration['state'][] = ['running', 'rolling-back', 'completed', 'failed', 'aborted'];

export class MigrationService implements Migrations {
  readonly driver: MigrationDriver;

  constructor(
    private readonly ctx: Context,
    private readonly allocations: AllocationService,
    /** The hook hypervisor's channel: told when an orchestrator completes or aborts. */
    private readonly hook: HookSignals | null = null,
  ) {
    this.driver = new MigrationDriver(ctx, allocations);
  }

  async start(actor: Actor, req: MigrationRequest): Promise<Migration> {
    requireStaff(actor, 'start migrations');
    parseTarget(req);
    if (typeof req.allocation !== 'string' || req.allocation.length === 0) throw invalid('allocation: the id (or a unique prefix) of the allocation to move is required');
    const found = await this.allocations.get(actor, req.allocation);
    if (req.dryRun) return dryRun(await planMigration(this.ctx, found, req), this.ctx.now());
    const m = await this.ctx.decisions.run(async () => {
      // Re-read inside the decisions: of two starts of one allocation, the second sees the first's mark.
      const source = (await this.ctx.store.tx.getAllocation(found.id)) ?? found;
      return this.reserve(actor, await planMigration(this.ctx, source, req), req.drain ?? null);
    });
    // A VM's earlier move through the hook must not answer for this one.
    if (m.hypervisor === 'hook' && found.attachment?.kind === 'vm') this.hook?.reset(found.attachment.vm);
    this.driver.track(m);
    this.driver.woke(m);
    // A report that came between the write and `track` was not routed here: one pass sees what it changed.
    await this.driver.drive(m.id);
    return m;
  }

  /** The destination allocation, both marks and the record, in one transaction; the scheduler holds the VF from before the write. */
  private async reserve(actor: Actor, plan: MigrationPlan, drain: string | null): Promise<Migration> {
    const id = randomUUID();
    const at = this.ctx.now();
    const dest: Allocation = {
      ...pendingAllocation(plan.placement, plan.network, plan.source.workload, { id: randomUUID(), mac: plan.source.mac, group: plan.source.group, attachment: destAttachment(plan, plan.source), createdAt: at }),
      migration: { id, role: 'destination' },
    };
    const m = newMigration(plan, dest, drain, at);
    this.ctx.scheduler.reserve(dest);
    const check = bandwidthCheck(this.ctx, dest);
    try {
      await this.ctx.store.transaction(async (tx) => {
        // The source's mark first: the MAC rule lets the destination share its MAC only once both carry the migration.
        await tx.setAllocationMigration(plan.source.id, { id, role: 'source' }, at);
        await tx.insertAllocation(dest, check);
        await tx.insertMigration(m);
        const who = `${actor.role}/${actor.id}`;
        await tx.appendEvent({ at, actor: who, action: 'allocation.create', object: `allocation/${dest.id}`, before: null, after: dest });
        await tx.appendEvent({ at, actor: who, action: 'migration.reserve', object: `migration/${id}`, before: null, after: m });
      });
    } catch (err) {
      this.ctx.scheduler.release(dest);
      throw err;
    }
    return m;
  }

  async get(actor: Actor, id: string): Promise<Migration> {
    if (agentHostOf(actor) || nodeHostOf(actor)) throw forbidden(actor, 'read migrations');
    const m = typeof id === 'string' ? await this.ctx.store.tx.getMigration(id) : null;
    if (!m) throw new SriovError('NOT_FOUND', `migration ${String(id)} not found`, { object: String(id) });
    requireTenantAccess(actor, m.tenant, 'migration', id);
    return migrationFor(actor, m);
  }

  async wait(actor: Actor, id: string, waitMs: number): Promise<Migration> {
    const ms = Math.max(0, Math.min(waitMs, MAX_WAIT_S * 1000));
    return this.ctx.waits.waitUntil(`migration/${id}`, () => this.get(actor, id), (m) => !isActive(m), ms);
  }

  async list(actor: Actor, filter: { state?: Migration['state']; allocation?: string; drain?: string; host?: string } = {}): Promise<Migration[]> {
    if (agentHostOf(actor) || nodeHostOf(actor)) throw forbidden(actor, 'list migrations');
    if (filter.state !== undefined && !STATES.includes(filter.state)) throw invalid(`state must be one of ${STATES.join(', ')}, got ${JSON.stringify(filter.state)}`);
    const found = await this.ctx.store.tx.listMigrations({ ...filter, tenant: tenantOf(actor) ?? undefined });
    return found.map((m) => migrationFor(actor, m));
  }

  /** Rolls back before the switch; after it (the workload already moved) the migration finishes, and the answer's history says so. */
  async abort(actor: Actor, id: string): Promise<Migration> {
    requireStaff(actor, 'abort migrations');
    await this.get(actor, id);
    await this.driver.with(() => this.abortNow(actor, id), id);
    return this.get(actor, id);
  }

  private async abortNow(actor: Actor, id: string): Promise<void> {
    const m = (await this.ctx.store.tx.getMigration(id))!;
    if (m.state !== 'running') return;
    const who = `${actor.role}/${actor.id}`;
    const migrate = taskOf(m, 'migrate');
    if (migrate?.outcome === 'pending') {
      throw new SriovError('CONFLICT', `migration ${id}: ${m.hypervisor} is migrating VM ${m.workload.name} now (task ${migrate.id}); it cannot be stopped halfway: abort after it ends, or let it finish`, { object: id, nothingChanged: true });
    }
    if (m.step === 'release' || migrate?.outcome === 'ok') {
      await this.driver.write(m, { entries: [{ step: m.step, outcome: 'started', detail: `abort asked by ${who}, but the workload already moved: the migration finishes instead` }] }, false, who);
      return;
    }
    if (m.hypervisor === 'hook') this.hook?.abort(await this.vmOf(m), abortReason(who));
    const d = rollback(m, abortReason(who));
    if (d.kind === 'change') await this.driver.write(m, d.change, false, who);
  }

  /**
   * The hook: an orchestrator waits until the destination VF is prepared,
   * and gets the hostdev XML to plug it into the VM it moves.
   */
  async prepare(actor: Actor, id: string, waitMs: number): Promise<{ migration: Migration; hostdevXml: string | null }> {
    requireStaff(actor, 'drive migrations');
    const m = await this.hookMigration(actor, id);
    const ms = Math.max(0, Math.min(waitMs, MAX_WAIT_S * 1000));
    const ready = await this.ctx.waits.waitUntil(`migration/${m.id}`, () => this.get(actor, id), (x) => x.step !== 'prepare' || !isActive(x), ms);
    const dest = ready.step === 'prepare' || !ready.to ? null : await this.ctx.store.tx.getAllocation(ready.to.allocation);
    return { migration: ready, hostdevXml: dest?.attachment?.kind === 'vm' ? vmConfigOf(dest).libvirtXml : null };
  }

  /** The hook: the orchestrator moved the VM and plugged the destination VF; the source is released. Idempotent. */
  async complete(actor: Actor, id: string): Promise<Migration> {
    requireStaff(actor, 'drive migrations');
    await this.hookMigration(actor, id);
    await this.driver.with(() => this.completeNow(actor, id), id);
    return this.get(actor, id);
  }

  private async completeNow(actor: Actor, id: string): Promise<void> {
    const m = (await this.ctx.store.tx.getMigration(id))!;
    if (m.state !== 'running' || m.step !== 'switch') {
      if (m.state === 'running' && m.step === 'prepare') {
        throw new SriovError('CONFLICT', `migration ${id}: the destination VF is not prepared yet; call prepare (it waits) before moving the VM`, { object: id, nothingChanged: true });
      }
      if (m.state !== 'running' && m.state !== 'completed') {
        const why = m.reason ? ` (${oneLine(m.reason)})` : '';
        throw new SriovError('CONFLICT', `migration ${id} is ${m.state}${why}; the VM's VF stays at ${m.from.host}/${m.from.pf}: to move it, start a new migration`, { object: id, nothingChanged: true });
      }
      return;
    }
    const who = `${actor.role}/${actor.id}`;
    this.hook?.complete(await this.vmOf(m));
    await this.driver.write(m, { step: 'release', entries: [{ step: 'switch', outcome: 'done', detail: `the orchestrator (${who}) moved VM ${m.workload.name} and plugged ${m.to!.pciAddress}` }, { step: 'release', outcome: 'started', detail: `the agent of ${m.from.host} releases the source VF ${m.from.pciAddress}` }] }, false, who);
  }

  /** The VM a migration moves, as its hypervisor names it. */
  private async vmOf(m: Migration): Promise<string> {
    const source = await this.ctx.store.tx.getAllocation(m.from.allocation);
    return source?.attachment?.kind === 'vm' ? source.attachment.vm : m.workload.name;
  }

  private async hookMigration(actor: Actor, id: string): Promise<Migration> {
    const m = await this.get(actor, id);
    if (m.hypervisor !== 'hook') {
      throw invalid(`migration ${id} is moved by ${m.hypervisor ?? 'its agent (a container)'}, not by an orchestrator's hook; its agents report its progress: follow it with sriovctl migrations show ${id}`, id);
    }
    return m;
  }

  /** Every unfinished migration where it stopped (ControlPlane.open). */
  async resume(): Promise<void> {
    // The hook hypervisor answers for the VMs whose hook migrations this controller drives.
    for (const m of await this.ctx.store.tx.listMigrations({ active: true })) if (m.hypervisor === 'hook') this.hook?.resumed(await this.vmOf(m));
    await this.driver.resume();
  }
}

/** The destination's attachment: a container's without its host-side name (the agent records the new VF's); a VM's with its device ids fixed. */
function destAttachment(plan: MigrationPlan, source: Allocation): Attachment | null {
  const at = source.attachment;
  if (at?.kind === 'container') return { ...at, hostIfName: null };
  if (at?.kind === 'vm') return { ...at, devices: devicesOf(source, at, plan.hypervisor) };
  return at;
}

function dryRun(plan: MigrationPlan, at: string): Migration {
  const p = plan.placement;
  const to = { host: p.host, pf: p.pf, pfPciAddress: p.pfPciAddress, vfIndex: p.vfIndex, pciAddress: p.pciAddress, allocation: '' };
  return {
    id: 'dry-run',
    workload: plan.source.workload,
    tenant: plan.source.tenant,
    network: plan.source.network,
    mac: plan.source.mac,
    from: endpointOf(plan.source),
    to,
    requested: plan.requested,
    hypervisor: plan.hypervisor,
    migrateUri: plan.migrateUri,
    drain: null,
    state: 'running',
    step: 'reserve',
    history: [{ step: 'reserve', outcome: 'started', at, detail: `dry run: VF ${p.pciAddress} on ${p.host}/${p.pf} would be reserved; nothing was changed` }],
    downtimeMs: null,
    reason: null,
    tasks: [],
    createdAt: at,
    updatedAt: at,
  };
}

/** `m` as `actor` may see it: a tenant reads no host-side detail (hypervisor errors), as with allocations. */
function migrationFor(actor: Actor, m: Migration): Migration {
  if (isStaff(actor)) return m;
  const hidden = 'details are in the audit log, for an operator';
  // Where a destination QEMU listens is not a tenant's to know: its -incoming takes the first stream that connects.
  const uri = m.migrateUri;
  const unlisted = (detail: string) => (uri ? detail.split(uri).join('the destination') : detail);
  return {
    ...m,
    migrateUri: null,
    reason: m.reason === null ? null : `the migration did not go as planned; ${hidden}`,
    tasks: (m.tasks ?? []).map((t) => ({ ...t, detail: t.detail === null ? null : hidden })),
    history: m.history.map((e) => (e.outcome === 'failed' || e.step === 'rollback' ? { ...e, detail: hidden } : { ...e, detail: unlisted(e.detail) })),
  };
}
