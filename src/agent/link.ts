/**
 * How an agent talks to its controller: in the same process (the daemon's
 * own host) or over HTTP (`sriovd agent --server URL`).
 */
import type { AgentEvent, AllocationStatus, DesiredState, HypervisorTaskResult } from '../controller/desired-state.js';
import type { ControlPlane } from '../controller/control-plane.js';
import type { DeviceClaimRequest, DeviceLink, DeviceView } from '../controller/device-view.js';
import type { Actor } from '../domain/actor.js';
import type { Allocation } from '../domain/types.js';
import { SriovError } from '../host/errors.js';
import type { HostInventory } from '../host/model.js';

export interface ControllerLink {
  /** `results`: what became of the hypervisor tasks of the desired state (HypervisorTaskResult). */
  report(inventory: HostInventory, statuses: AllocationStatus[], events?: AgentEvent[], results?: HypervisorTaskResult[]): Promise<void>;
  desired(host: string, after: string | undefined, waitMs: number): Promise<DesiredState>;
}

/** How long a claim may take over HTTP: the kubelet's Allocate has its own deadline, and the user waits on it. */
const CLAIM_TIMEOUT_MS = 30_000;

export class InProcessLink implements ControllerLink, DeviceLink {
  constructor(
    private readonly control: ControlPlane,
    private readonly actor: Actor,
  ) {}

  async report(inventory: HostInventory, statuses: AllocationStatus[], events: AgentEvent[] = [], results: HypervisorTaskResult[] = []): Promise<void> {
    await this.control.hosts.report(this.actor, inventory, statuses, events, results);
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

export class HttpLink implements ControllerLink, DeviceLink {
  private readonly base: string;

  constructor(
    server: string,
    private readonly token: string,
  ) {
    this.base = server.replace(/\/+$/, '');
  }

  async report(inventory: HostInventory, statuses: AllocationStatus[], events: AgentEvent[] = [], results: HypervisorTaskResult[] = []): Promise<void> {
    await this.call('POST', '/v1/agent/report', { inventory, statuses, events, results });
  }

  desired(host: string, after: string | undefined, waitMs: number): Promise<DesiredState> {
    const q = new URLSearchParams({ host, wait: String(Math.round(waitMs / 1000)) });
    if (after) q.set('after', after);
    return this.call('GET', `/v1/agent/desired?${q}`) as Promise<DesiredState>;
  }

  devices(host: string, after: string | undefined, waitMs: number): Promise<DeviceView> {
    const q = new URLSearchParams({ host, wait: String(Math.round(waitMs / 1000)) });
    if (after) q.set('after', after);
    return this.reaching(() => this.call('GET', `/v1/agent/devices?${q}`)) as Promise<DeviceView>;
  }

  async claimDevices(request: DeviceClaimRequest): Promise<Allocation[]> {
    const answer = (await this.reaching(() => this.call('POST', '/v1/agent/device-claims', request, CLAIM_TIMEOUT_MS))) as { allocations: Allocation[] };
    return answer.allocations;
  }

  /**
   * A controller that cannot be reached (refused, reset, timed out) is said so
   * in one line, TRY_AGAIN: the device plugin passes it to the kubelet, whose
   * user then reads why the pod waits. Its refusals keep their own code.
   */
  private async reaching<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof SriovError) throw err;
      const cause = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
      throw new SriovError('TRY_AGAIN', `the controller at ${this.base} cannot be reached (${cause}); retrying is safe (the same claim again is found, not made twice)`, { object: this.base, cause: err });
    }
  }

  private async call(method: string, path: string, body?: unknown, timeoutMs = 90_000): Promise<unknown> {
    const res = await fetch(this.base + path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const payload = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    if (!res.ok) {
      const e = payload?.error;
      throw new SriovError((e?.code as never) ?? 'HOST_ERROR', `controller answered ${res.status}: ${e?.message ?? res.statusText}`);
    }
    return payload;
  }
}
