/**
 * How an agent talks to its controller: in the same process (the daemon's
 * own host) or over HTTP (`sriovd agent --server URL1,URL2,...`). Both send
 * liveness-only reports while the inventory is unchanged (reporter.ts).
 */
import type { AgentEvent, AllocationStatus, DesiredState, HypervisorTaskResult } from '../controller/desired-state.js';
import type { ControlPlane } from '../controller/control-plane.js';
import type { DeviceClaimRequest, DeviceLink, DeviceView } from '../controller/device-view.js';
import type { Actor } from '../domain/actor.js';
import type { Allocation } from '../domain/types.js';
import { SriovError } from '../host/errors.js';
import type { HostInventory } from '../host/model.js';
import type { TrafficDeltas } from '../domain/traffic-deltas.js';
import { Reporter } from './reporter.js';

export interface ControllerLink {
  /** `results`: what became of the hypervisor tasks of the desired state (HypervisorTaskResult). */
  report(inventory: HostInventory, statuses: AllocationStatus[], events?: AgentEvent[], results?: HypervisorTaskResult[], traffic?: TrafficDeltas): Promise<void>;
  desired(host: string, after: string | undefined, waitMs: number): Promise<DesiredState>;
}

/** How long a claim may take over HTTP: the kubelet's Allocate has its own deadline, and the user waits on it. */
const CLAIM_TIMEOUT_MS = 30_000;

export class InProcessLink implements ControllerLink, DeviceLink {
  /** Liveness-only reports in process too: what they save is the store's writes, not the wire. */
  private readonly reporter: Reporter;

  constructor(
    private readonly control: ControlPlane,
    private readonly actor: Actor,
  ) {
    this.reporter = new Reporter((r) => this.control.hosts.receive(this.actor, r));
  }

  report(inventory: HostInventory, statuses: AllocationStatus[], events: AgentEvent[] = [], results: HypervisorTaskResult[] = [], traffic?: TrafficDeltas): Promise<void> {
    return this.reporter.report(inventory, statuses, events, results, traffic);
  }

  desired(host: string, after: string | undefined, waitMs: number): Promise<DesiredState> {
    return this.control.hosts.desired(this.actor, host, after, waitMs);
  }

  devices(host: string, after: string | undefined, waitMs: number): Promise<DeviceView> {
    return this.control.devices.view(this.actor, host, after, waitMs);
  }

  claimDevices(request: DeviceClaimRequest): Promise<Allocation[]> {
    return this.control.devices.claim(this.actor, request);
  }
}

/**
 * Over HTTP, to one controller of several (`--server URL1,URL2,...`), sticking
 * to the one that answers. A call the controller never answered (refused,
 * reset, timed out) or answered 502/503/504 (it cannot serve now: a proxy
 * without a backend, a store without quorum) moves to the next URL, each
 * tried once per call; any other answer, a 4xx above all, is the answer.
 * Every agent call may be repeated: reports are idempotent (a retried status is
 * no change), and a retried claim is found, not made twice.
 */
export class HttpLink implements ControllerLink, DeviceLink {
  private readonly bases: string[];
  /** The controller answering now: calls start there. */
  private current = 0;
  private readonly reporter = new Reporter((r) => this.call('POST', '/v1/agent/report', r));

  private readonly log: (message: string) => void;
  /** How long one call may take at one controller before the next is tried; above the long poll's hold. */
  private readonly timeoutMs: number;

  constructor(
    servers: string | readonly string[],
    private readonly token: string,
    opts: { log?: (message: string) => void; timeoutMs?: number } = {},
  ) {
    this.log = opts.log ?? (() => {});
    this.timeoutMs = opts.timeoutMs ?? 90_000;
    this.bases = (typeof servers === 'string' ? [servers] : [...servers]).map((s) => s.replace(/\/+$/, ''));
    if (this.bases.length === 0) throw new SriovError('INVALID_ARGUMENT', 'HttpLink needs at least one controller URL');
  }

  /** The controller URL calls go to now. */
  get server(): string {
    return this.bases[this.current]!;
  }

  report(inventory: HostInventory, statuses: AllocationStatus[], events: AgentEvent[] = [], results: HypervisorTaskResult[] = [], traffic?: TrafficDeltas): Promise<void> {
    return this.reporter.report(inventory, statuses, events, results, traffic);
  }

  desired(host: string, after: string | undefined, waitMs: number): Promise<DesiredState> {
    const q = new URLSearchParams({ host, wait: String(Math.round(waitMs / 1000)) });
    if (after) q.set('after', after);
    return this.call('GET', `/v1/agent/desired?${q}`) as Promise<DesiredState>;
  }

  devices(host: string, after: string | undefined, waitMs: number): Promise<DeviceView> {
    const q = new URLSearchParams({ host, wait: String(Math.round(waitMs / 1000)) });
    if (after) q.set('after', after);
    return this.call('GET', `/v1/agent/devices?${q}`) as Promise<DeviceView>;
  }

  async claimDevices(request: DeviceClaimRequest): Promise<Allocation[]> {
    const hint = 'retrying is safe (the same claim again is found, not made twice)';
    const answer = (await this.call('POST', '/v1/agent/device-claims', request, Math.min(CLAIM_TIMEOUT_MS, this.timeoutMs), hint)) as { allocations: Allocation[] };
    return answer.allocations;
  }

  /**
   * Tries the controllers in turn from the current one. None answering is
   * said in one line, TRY_AGAIN, naming each URL and why: the device plugin
   * passes it to the kubelet, whose user then reads why the pod waits.
   */
  private async call(method: string, path: string, body?: unknown, timeoutMs = this.timeoutMs, hint?: string): Promise<unknown> {
    const failures: string[] = [];
    let unavailable: SriovError | undefined;
    let unanswered = 0;
    for (let tried = 0; tried < this.bases.length; tried++) {
      const base = this.server;
      const outcome = await this.once(base, method, path, body, timeoutMs);
      if (outcome.kind === 'answer') return outcome.answer;
      if (outcome.kind === 'refusal' && !FAILOVER_STATUS.has(outcome.status)) throw outcome.refusal;
      if (outcome.kind === 'refusal') unavailable = outcome.refusal;
      else unanswered++;
      failures.push(`${base}: ${outcome.why}`);
      this.failOver(base, outcome.why);
    }
    // Every controller answered, and each said it cannot serve now (a store without quorum): that answer is the truest one.
    if (unavailable && unanswered === 0) throw unavailable;
    const tail = hint ? `; ${hint}` : '';
    throw new SriovError('TRY_AGAIN', `the controller${this.bases.length > 1 ? 's' : ''} at ${this.bases.join(', ')} cannot be reached (${failures.join('; ')})${tail}`, {
      object: this.bases.join(','),
      cause: unavailable,
    });
  }

  private failOver(from: string, why: string): void {
    if (this.bases.length === 1) return;
    // The next controller may not know the inventory: it says so (inventoryNeeded), and the reporter sends it whole.
    this.current = (this.current + 1) % this.bases.length;
    this.log(`controller ${from} did not answer (${why}); now using ${this.server}`);
  }

  /** One attempt: the answer, the controller's refusal (with its status), or why there was no answer. */
  private async once(base: string, method: string, path: string, body: unknown, timeoutMs: number): Promise<Attempt> {
    let res: Response;
    try {
      res = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      return { kind: 'unanswered', why: networkReason(err, timeoutMs) };
    }
    const payload = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string; object?: string; data?: Record<string, unknown> } } | null;
    if (res.ok) return { kind: 'answer', answer: payload ?? {} };
    const e = payload?.error;
    const refusal = new SriovError((e?.code as never) ?? 'HOST_ERROR', `controller answered ${res.status}: ${e?.message ?? res.statusText}`, {
      ...(e?.object === undefined ? {} : { object: e.object }),
      ...(e?.data === undefined ? {} : { data: e.data }),
    });
    return { kind: 'refusal', status: res.status, refusal, why: `${res.status} ${e?.code ?? res.statusText}` };
  }
}

type Attempt = { kind: 'answer'; answer: unknown } | { kind: 'refusal'; status: number; refusal: SriovError; why: string } | { kind: 'unanswered'; why: string };

/** Answers that say "not this controller, not now": the next one may serve. */
const FAILOVER_STATUS: ReadonlySet<number> = new Set([502, 503, 504]);

/** Why fetch got no answer, in words: ECONNREFUSED, ECONNRESET, a timeout. */
function networkReason(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer in ${timeoutMs} ms`;
  const cause = err instanceof Error ? (err.cause as (Error & { code?: string }) | undefined) : undefined;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}
