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
import { invalid, SriovError } from '../host/errors.js';
import { parseHostName, parseMac, parsePciAddress } from '../host/validate.js';
import type { Hypervisor, MigrateRequest, MigrateResult, PlugRequest, UnplugRequest } from '../hypervisor/hypervisor.js';
import { parseDomainName } from '../vm/names.js';
import { parseQemuId } from '../vm/qemu.js';
import { parseMigrateUri } from './migration-uri.js';

/**
 * Where the orchestrator moves the VM, as the controller names it: the
 * destination host, or the URI the request carried (QMP or libvirt form).
 * Checked like every adapter's input, though only logged here.
 */
function parseHookDestination(value: string): string {
  for (const parse of [parseHostName, (v: string) => parseMigrateUri(v, 'qemu')!, (v: string) => parseMigrateUri(v, 'libvirt')!]) {
    try {
      return parse(value);
    } catch {
      // the next form
    }
  }
  throw invalid(`hook destination ${JSON.stringify(value)} must be a host name, a QMP URI (tcp:<IPv4>:<port>, unix:<path>) or a libvirt URI (qemu+ssh://<host>/system)`, value);
}

/** The hook's requests checked as the agents' adapters check theirs (hypervisor/validate.ts): bad input changes nothing. */
function checkMigrate(req: MigrateRequest): string {
  parseHookDestination(req.destination);
  parseQemuId(req.sourceDevice);
  return parseDomainName(req.vm);
}

function checkPlug(req: PlugRequest): string {
  parsePciAddress(req.pciAddress);
  parseMac(req.mac);
  if (req.failoverPairId !== null) parseQemuId(req.failoverPairId);
  return checkDevice(req.vm, req.device);
}

function checkDevice(vm: string, device: string): string {
  parseQemuId(device);
  return parseDomainName(vm);
}

type Outcome = { ok: true } | { ok: false; reason: string };

/** What orchestrators said, per VM, and who is waiting to hear it. In memory: a restarted controller resumes from the store. */
export class HookSignals {
  private readonly outcomes = new Map<string, Outcome>();
  private readonly waiting = new Map<string, Array<(o: Outcome) => void>>();
  /** The VMs a hook migration was started (or resumed) for here: waiting on another would wait forever. */
  private readonly moving = new Set<string>();

  /** The orchestrator moved `vm` (and plugged its VF). */
  complete(vm: string): void {
    this.settle(vm, { ok: true });
  }

  abort(vm: string, reason: string): void {
    this.settle(vm, { ok: false, reason });
  }

  /** A hook migration of `vm` starts: its earlier move's outcome is forgotten. */
  reset(vm: string): void {
    this.outcomes.delete(vm);
    this.moving.add(vm);
  }

  /** A hook migration of `vm` resumed by a restarted controller (nothing heard yet in this process). */
  resumed(vm: string): void {
    this.moving.add(vm);
  }

  /** Whether an orchestrator is moving (or moved) `vm` through this controller. */
  knows(vm: string): boolean {
    return this.moving.has(vm);
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
    const vm = checkMigrate(req);
    const started = Date.now();
    progress?.('wait-orchestrator');
    await this.settled(vm, 'migrate');
    progress?.('completed');
    return { statuses: ['wait-orchestrator', 'completed'], downtimeMs: null, totalMs: Date.now() - started };
  }

  /** The orchestrator plugs the destination VF as part of its move. */
  async plug(req: PlugRequest): Promise<void> {
    await this.settled(checkPlug(req), `plug ${req.device}`);
  }

  async unplug(req: UnplugRequest): Promise<void> {
    await this.settled(checkDevice(req.vm, req.device), `unplug ${req.device}`);
  }

  private async settled(vm: string, what: string): Promise<void> {
    if (!this.signals.knows(vm)) {
      throw new SriovError('NOT_FOUND', `${what} of VM ${vm}: no hook migration of that VM was started on this controller; start one with sriovctl migrate <allocation> --hypervisor hook`, {
        object: vm,
        nothingChanged: true,
      });
    }
    const o = await this.signals.outcome(vm);
    if (!o.ok) throw new SriovError('HOST_ERROR', `${what} of VM ${vm}: the orchestrator's move was aborted (${o.reason})`, { object: vm });
  }
}
