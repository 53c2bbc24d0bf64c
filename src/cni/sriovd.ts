/**
 * The daemon's API as the plugin uses it (docs/api.md), every call bounded
 * by the one deadline the network configuration's `timeoutSeconds` sets.
 */
import { HOLDING_STATES, type Allocation, type Attachment, type Network } from '../domain/types.js';
import type { ApiClient } from './client.js';
import { CniCode, CniError } from './errors.js';

type ContainerAttachment = Extract<Attachment, { kind: 'container' }>;
/** An allocation handed to a container: the ones this plugin makes. */
export type ContainerAllocation = Allocation & { attachment: ContainerAttachment };

export interface AllocationRequest {
  network: string;
  workload: { kind: 'container'; name: string };
  host: string;
  pciAddress?: string;
  attach: { kind: 'container'; netns: string; ifname: string };
}

const POLL_MS = 50;

export class Sriovd {
  constructor(
    private readonly client: ApiClient,
    private readonly deadline: number,
  ) {}

  async create(request: AllocationRequest): Promise<ContainerAllocation> {
    return this.client.call<ContainerAllocation>('POST', '/v1/allocations', this.remainingMs(), request);
  }

  async get(id: string): Promise<ContainerAllocation> {
    return this.client.call<ContainerAllocation>('GET', `/v1/allocations/${encodeURIComponent(id)}`, this.remainingMs());
  }

  async release(id: string): Promise<ContainerAllocation> {
    return this.client.call<ContainerAllocation>('DELETE', `/v1/allocations/${encodeURIComponent(id)}`, this.remainingMs());
  }

  async network(name: string): Promise<Network> {
    return this.client.call<Network>('GET', `/v1/networks/${encodeURIComponent(name)}`, this.remainingMs());
  }

  async healthz(): Promise<void> {
    await this.client.call('GET', '/healthz', this.remainingMs());
  }

  /**
   * The allocations that hold a VF for this container's interface. Filtered
   * here as well as by the query: a daemon that ignored `workload`/`ifname`
   * would otherwise hand a DEL every allocation on the host.
   */
  async holding(containerId: string, ifname: string, host: string): Promise<ContainerAllocation[]> {
    const query = new URLSearchParams({ workload: containerId, ifname, host });
    const all = await this.client.call<Allocation[]>('GET', `/v1/allocations?${query}`, this.remainingMs());
    return all.filter((a): a is ContainerAllocation => isHoldingAttachment(a, containerId, ifname, host));
  }

  /** Polls the allocation until `done` says so; past the deadline the runtime should retry. */
  async waitFor(id: string, done: (a: ContainerAllocation) => boolean): Promise<ContainerAllocation> {
    for (;;) {
      const a = await this.get(id);
      if (done(a)) return a;
      if (Date.now() + POLL_MS >= this.deadline) {
        throw new CniError(CniCode.TRY_AGAIN_LATER, `allocation ${id} is still ${a.state}; sriovd carries on, and a retry picks it up`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  private remainingMs(): number {
    const left = this.deadline - Date.now();
    if (left <= 0) throw new CniError(CniCode.TRY_AGAIN_LATER, 'timed out waiting for sriovd (timeoutSeconds)');
    return left;
  }
}

function isHoldingAttachment(a: Allocation, containerId: string, ifname: string, host: string): boolean {
  const att = a.attachment;
  return (
    a.workload.kind === 'container' &&
    a.workload.name === containerId &&
    a.host === host &&
    att?.kind === 'container' &&
    att.ifname === ifname &&
    HOLDING_STATES.includes(a.state)
  );
}
