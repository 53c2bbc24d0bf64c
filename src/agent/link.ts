/**
 * How an agent talks to its controller: in the same process (the daemon's
 * own host) or over HTTP (`sriovd agent --server URL`).
 */
import type { AgentEvent, AllocationStatus, DesiredState } from '../controller/desired-state.js';
import type { ControlPlane } from '../controller/control-plane.js';
import type { Actor } from '../domain/actor.js';
import { SriovError } from '../host/errors.js';
import type { HostInventory } from '../host/model.js';

export interface ControllerLink {
  report(inventory: HostInventory, statuses: AllocationStatus[], events?: AgentEvent[]): Promise<void>;
  desired(host: string, after: string | undefined, waitMs: number): Promise<DesiredState>;
}

export class InProcessLink implements ControllerLink {
  constructor(
    private readonly control: ControlPlane,
    private readonly actor: Actor,
  ) {}

  async report(inventory: HostInventory, statuses: AllocationStatus[], events: AgentEvent[] = []): Promise<void> {
    await this.control.hosts.report(this.actor, inventory, statuses, events);
  }

  desired(host: string, after: string | undefined, waitMs: number): Promise<DesiredState> {
    return this.control.hosts.desired(this.actor, host, after, waitMs);
  }
}

export class HttpLink implements ControllerLink {
  private readonly base: string;

  constructor(
    server: string,
    private readonly token: string,
  ) {
    this.base = server.replace(/\/+$/, '');
  }

  async report(inventory: HostInventory, statuses: AllocationStatus[], events: AgentEvent[] = []): Promise<void> {
    await this.call('POST', '/v1/agent/report', { inventory, statuses, events });
  }

  desired(host: string, after: string | undefined, waitMs: number): Promise<DesiredState> {
    const q = new URLSearchParams({ host, wait: String(Math.round(waitMs / 1000)) });
    if (after) q.set('after', after);
    return this.call('GET', `/v1/agent/desired?${q}`) as Promise<DesiredState>;
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(this.base + path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(90_000),
    });
    const payload = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    if (!res.ok) {
      const e = payload?.error;
      throw new SriovError((e?.code as never) ?? 'HOST_ERROR', `controller answered ${res.status}: ${e?.message ?? res.statusText}`);
    }
    return payload;
  }
}
