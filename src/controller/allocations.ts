/**
 * Allocations: a workload's claim on one VF. Intent is stored (`pending`)
 * before any host is touched; the host's agent then configures the VF and
 * reports back, so a crash at any point leaves a record to converge from.
 */
import { randomUUID } from 'node:crypto';
import { agentHostOf, forbidden, notFound, requireTenantAccess, tenantOf, type Actor } from '../domain/actor.js';
import { checkAllocation } from '../domain/invariants.js';
import { HOLDING_STATES, type Allocation, type AllocationState, type WorkloadKind } from '../domain/types.js';
import { invalid } from '../host/errors.js';
import { parseInteger } from '../host/validate.js';
import type { NumaPolicy, PlacementPolicy } from '../scheduler/index.js';
import { recorded, type Context } from './context.js';
import type { AllocationStatus } from './desired-state.js';
import type { NetworkService } from './networks.js';

const WORKLOAD_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;

export interface AllocationInput {
  network: string;
  workload: { kind: WorkloadKind; name: string };
  numaNode?: number;
  numaPolicy?: NumaPolicy;
  group?: string | null;
  groupAcrossHosts?: boolean;
  policy?: PlacementPolicy;
  host?: string;
  mac?: string;
}

/** Which reported state may follow which stored state. */
const TRANSITIONS: Record<AllocationStatus['state'], AllocationState[]> = {
  configured: ['pending'],
  released: ['releasing'],
  failed: ['pending', 'configured', 'attached', 'releasing'],
};

export class AllocationService {
  constructor(
    private readonly ctx: Context,
    private readonly networks: NetworkService,
  ) {}

  async list(actor: Actor, filter: { network?: string; host?: string } = {}): Promise<Allocation[]> {
    if (agentHostOf(actor)) throw forbidden(actor, 'list allocations');
    const tenant = tenantOf(actor) ?? undefined;
    return this.ctx.store.tx.listAllocations({ ...filter, tenant });
  }

  async get(actor: Actor, id: string): Promise<Allocation> {
    const a = await this.ctx.store.tx.getAllocation(id);
    if (!a) throw notFound('allocation', id);
    requireTenantAccess(actor, a.tenant, 'allocation', id);
    return a;
  }

  async create(actor: Actor, input: AllocationInput): Promise<Allocation> {
    const network = await this.networks.getNetwork(actor, input.network);
    const workload = parseWorkload(input.workload);
    const numaNode = input.numaNode === undefined ? undefined : parseInteger(input.numaNode, 'NUMA node', 0, 63);
    const segment = { physnet: network.physnet, vlan: network.vlan };
    const [physnets, sharing] = await Promise.all([this.ctx.store.tx.listPhysnets(), this.ctx.store.tx.listNetworks(segment)]);
    checkAllocation(network, actor, physnets, sharing);
    const allocation = await this.ctx.decisions.run(async () => {
      const mac = input.mac === undefined ? this.ctx.macs.next() : this.ctx.macs.checkRequested(input.mac);
      const placement = this.ctx.scheduler.choose({ ...input, numaNode, network, workload });
      const now = this.ctx.now();
      const a: Allocation = {
        id: randomUUID(),
        workload,
        network: network.name,
        tenant: network.tenant,
        host: placement.host,
        pf: placement.pf,
        pfPciAddress: placement.pfPciAddress,
        vfIndex: placement.vfIndex,
        pciAddress: placement.pciAddress,
        mac,
        vlan: network.vlan,
        minTxRateMbps: network.minTxRateMbps,
        group: input.group ?? null,
        state: 'pending',
        reason: null,
        createdAt: now,
        updatedAt: now,
      };
      // Reserve in memory first so nothing else in this controller can pick the VF during the write.
      this.ctx.scheduler.reserve(a);
      this.ctx.macs.markUsed(mac);
      try {
        await recorded(this.ctx, actor, 'allocation.create', `allocation/${a.id}`, async (tx) => {
          await tx.insertAllocation(a);
          return { before: null, after: a, result: undefined };
        });
      } catch (err) {
        this.ctx.scheduler.release(a);
        this.ctx.macs.release(mac);
        throw err;
      }
      return a;
    });
    this.ctx.feed.bump(allocation.host);
    return allocation;
  }

  /** Starts the release; the agent scrubs the VF and reports `released`. Idempotent. */
  async delete(actor: Actor, id: string): Promise<Allocation> {
    const a = await this.get(actor, id);
    if (!HOLDING_STATES.includes(a.state) || a.state === 'releasing') return a;
    const updated = await this.transition(actor.role, a, 'releasing', null);
    this.ctx.feed.bump(a.host);
    return updated;
  }

  /** An agent's reports for allocations on its host; reports for other hosts' allocations are ignored. */
  async applyStatus(host: string, reports: AllocationStatus[]): Promise<void> {
    let changed = false;
    for (const r of reports) {
      const a = await this.ctx.store.tx.getAllocation(r.id);
      if (!a || a.host !== host || !TRANSITIONS[r.state]?.includes(a.state)) continue;
      await this.transition(`agent:${host}`, a, r.state, r.reason ?? null);
      changed = true;
    }
    if (changed) this.ctx.feed.bump(host);
  }

  private async transition(actor: string, a: Allocation, state: AllocationState, reason: string | null): Promise<Allocation> {
    const updated = await this.ctx.store.transaction(async (tx) => {
      const after = await tx.updateAllocationState(a.id, state, reason, this.ctx.now());
      await tx.appendEvent({ at: this.ctx.now(), actor, action: `allocation.${state}`, object: `allocation/${a.id}`, before: { state: a.state }, after: { state, reason } });
      return after!;
    });
    if (!HOLDING_STATES.includes(state)) {
      this.ctx.scheduler.release(a);
      this.ctx.macs.release(a.mac);
    }
    return updated;
  }
}

function parseWorkload(w: AllocationInput['workload'] | undefined): Allocation['workload'] {
  if (!w || (w.kind !== 'container' && w.kind !== 'vm')) throw invalid('workload kind must be container or vm');
  if (typeof w.name !== 'string' || !WORKLOAD_NAME.test(w.name)) {
    throw invalid(`workload name must be 1-253 of A-Z a-z 0-9 _ . - , got ${JSON.stringify(w.name)}`);
  }
  return { kind: w.kind, name: w.name };
}
