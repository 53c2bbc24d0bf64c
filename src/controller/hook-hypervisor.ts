/**
 * The hook hypervisor: an external orchestrator (OpenStack, KubeVirt) moves
 * the VM and plugs the destination VF itself, and tells the API
 * (`POST /v1/migrations/:id/complete` or `.../abort`). Behind the one
 * `Hypervisor` interface, its operations wait for those calls: `migrate`
 * until the orchestrator completes or aborts the VM's move, `plug` and
 * `unplug` until it has done them. Each is idempotent: asked again once the
 * orchestrator answered, it answers at once, as the contract requires.
 */
import type { HypervisorKind } from '../domain/types.js';
import { SriovError } from '../host/errors.js';
import type { Hypervisor, MigrateRequest, MigrateResult, PlugRequest, UnplugRequest } from '../hypervisor/hypervisor.js';

type Outcome = { ok: true } | { ok: false; reason: string };

/** What orchestrators said, per VM, and who is waiting to hear it. In memory: a restarted controller resumes from the store. */
export class HookSignals {
  private readonly outcomes = new Map<string, Outcome>();
  private readonly waiting = new Map<string, Array<(o: Outcome) => void>>();

  /** The orchestrator moved `vm` (and plugged its VF). */
  complete(vm: string): void {
    this.settle(vm, { ok: true });
  }

  abort(vm: string, reason: string): void {
    this.settle(vm, { ok: false, reason });
  }

  /** Forgets `vm`'s outcome, for its next move. */
  reset(vm: string): void {
    this.outcomes.delete(vm);
  }

  outcome(vm: string): Promise<Outcome> {
    const known = this.outcomes.get(vm);
    if (known) return Promise.resolve(known);
    return new Promise((resolve) => this.waiting.set(vm, [...(this.waiting.get(vm) ?? []), resolve]));
  }

  private settle(vm: string, o: Outcome): void {
    this.outcomes.set(vm, o);
    const waiting = this.waiting.get(vm) ?? [];
    this.waiting.delete(vm);
    for (const resolve of waiting) resolve(o);
  }
}

export class HookHypervisor implements Hypervisor {
  readonly kind: HypervisorKind = 'hook';

  constructor(private readonly signals: HookSignals) {}

  async migrate(req: MigrateRequest, progress?: (status: string) => void): Promise<MigrateResult> {
    const started = Date.now();
    progress?.('wait-orchestrator');
    await this.settled(req.vm, 'migrate');
    progress?.('completed');
    return { statuses: ['wait-orchestrator', 'completed'], downtimeMs: null, totalMs: Date.now() - started };
  }

  /** The orchestrator plugs the destination VF as part of its move. */
  async plug(req: PlugRequest): Promise<void> {
    await this.settled(req.vm, `plug ${req.device}`);
  }

  async unplug(req: UnplugRequest): Promise<void> {
    await this.settled(req.vm, `unplug ${req.device}`);
  }

  private async settled(vm: string, what: string): Promise<void> {
    const o = await this.signals.outcome(vm);
    if (!o.ok) throw new SriovError('HOST_ERROR', `${what} of VM ${vm}: the orchestrator's move was aborted (${o.reason})`, { object: vm });
  }
}
