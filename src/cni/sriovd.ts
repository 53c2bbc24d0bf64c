/**
 * The daemon's API as the plugin uses it (docs/api.md), every call bounded
 * by the one deadline the network configuration's `timeoutSeconds` sets.
 */
import { isContainerInterface, type ContainerAllocation } from '../domain/cni-attachment.js';
import type { Allocation, AllocationState, HostState, Network } from '../domain/types.js';
import type { ApiClient } from './client.js';
import { CniCode, CniError } from './errors.js';

export type { ContainerAllocation };

export interface AllocationRequest {
  network: string;
  workload: { kind: 'container'; name: string };
  host: string;
  pciAddress?: string;
  mac?: string;
  attach: { kind: 'container'; netns: string; ifname: string; cniNetwork: string; ips?: string[] };
}

export interface NetworkCapacity {
  hostState: HostState;
  freeVfs: number;
}

/** The longest one long-poll may last; the loop asks again until the deadline. */
const MAX_WAIT_SECONDS = 30;
// A daemon that answers a long-poll at once with the state unchanged does not know `wait`: ask again after this.
const FALLBACK_POLL_MS = 50;

export class Sriovd {
  constructor(
    private readonly client: ApiClient,
    private readonly deadline: number,
  ) {}

  async create(request: AllocationRequest): Promise<ContainerAllocation> {
    return this.client.call<ContainerAllocation>('POST', '/v1/allocations', this.remainingMs(), request);
  }

  async release(id: string): Promise<ContainerAllocation> {
    return this.client.call<ContainerAllocation>('DELETE', `/v1/allocations/${encodeURIComponent(id)}`, this.remainingMs());
  }

  async network(name: string): Promise<Network> {
    return this.client.call<Network>('GET', `/v1/networks/${encodeURIComponent(name)}`, this.remainingMs());
  }

  /** Free VFs for `network` on `host` and the host's state (401/403 when the token may not ask). */
  async capacity(network: string, host: string): Promise<NetworkCapacity> {
    const query = new URLSearchParams({ host });
    return this.client.call<NetworkCapacity>('GET', `/v1/networks/${encodeURIComponent(network)}/capacity?${query}`, this.remainingMs());
  }

  /**
   * Every allocation (any state) of this container's interface on `host`.
   * Filtered here as well as by the query: a daemon that ignored
   * `workload`/`ifname` would otherwise hand a DEL every allocation on the host.
   */
  async interfaceAllocations(containerId: string, ifname: string, host: string): Promise<ContainerAllocation[]> {
    const query = new URLSearchParams({ workload: containerId, ifname, host });
    const all = await this.client.call<Allocation[]>('GET', `/v1/allocations?${query}`, this.remainingMs());
    return all.filter((a) => isContainerInterface(a, host, containerId, ifname));
  }

  /** Every allocation on `host` (a node token sees all of its host's). */
  async onHost(host: string): Promise<Allocation[]> {
    const all = await this.client.call<Allocation[]>('GET', `/v1/allocations?${new URLSearchParams({ host })}`, this.remainingMs());
    return all.filter((a) => a.host === host);
  }

  /**
   * The allocation once its state has left `states`: the daemon holds each
   * GET until it changes (`wait`/`while`), so the answer comes as the agent
   * reports, not on a poll. Past the deadline the runtime should retry.
   */
  async waitWhile(id: string, states: readonly AllocationState[]): Promise<ContainerAllocation> {
    const path = `/v1/allocations/${encodeURIComponent(id)}`;
    for (;;) {
      const waitSeconds = Math.min(MAX_WAIT_SECONDS, Math.floor(this.remainingMs() / 1000) - 1);
      const asked = Date.now();
      const query = waitSeconds >= 1 ? `?${new URLSearchParams({ wait: String(waitSeconds), while: states.join(',') })}` : '';
      const a = await this.client.call<ContainerAllocation>('GET', path + query, this.remainingMs());
      if (!states.includes(a.state)) return a;
      if (Date.now() + FALLBACK_POLL_MS >= this.deadline) {
        throw new CniError(CniCode.TRY_AGAIN_LATER, `allocation ${id} is still ${a.state}; sriovd carries on, and a retry picks it up`);
      }
      // Answered before the wait could have run out: no long-poll (an older daemon, or too little time left).
      if (!query || Date.now() - asked < waitSeconds * 1000) await new Promise((resolve) => setTimeout(resolve, FALLBACK_POLL_MS));
    }
  }

  private remainingMs(): number {
    const left = this.deadline - Date.now();
    if (left <= 0) throw new CniError(CniCode.TRY_AGAIN_LATER, 'timed out waiting for sriovd (timeoutSeconds)');
    return left;
  }
}
