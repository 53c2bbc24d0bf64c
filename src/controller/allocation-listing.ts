/**
 * Pages of allocations (`GET /v1/allocations`), filtered in the store and
 * paged by id there (keyset: AllocationFilter.limit/after), so a page costs
 * the same at 10 allocations or 256k. A caller sees what it may: a tenant its
 * own, a node its host's; asking for another tenant's or host's finds none.
 */
import { agentHostOf, allocationFor, forbidden, nodeHostOf, tenantOf, type Actor } from '../domain/actor.js';
import type { Allocation, AllocationState } from '../domain/types.js';
import type { AllocationFilter as StoreFilter, StoreTx } from '../store/store.js';

export interface AllocationQuery {
  network?: string;
  host?: string;
  tenant?: string;
  /** Allocations on the networks of this physnet. */
  physnet?: string;
  state?: AllocationState;
  workload?: string;
  ifname?: string;
}

/** Up to `limit` allocations with ids after `after`, in id order. */
export async function listAllocationPage(tx: Pick<StoreTx, 'listAllocations' | 'listNetworks'>, actor: Actor, query: AllocationQuery, page: { after?: string; limit: number }): Promise<Allocation[]> {
  if (agentHostOf(actor)) throw forbidden(actor, 'list allocations');
  const filter = visibleFilter(actor, query);
  if (filter === null) return [];
  const { physnet, ...rest } = filter;
  const base: StoreFilter = { ...rest, limit: page.limit, after: page.after };
  const found = physnet === undefined ? await tx.listAllocations(base) : await onPhysnet(tx, physnet, base);
  return found.map((a) => allocationFor(actor, a));
}

/** The query narrowed to what the caller may see; null when that is nothing. */
function visibleFilter(actor: Actor, query: AllocationQuery): AllocationQuery | null {
  const tenant = tenantOf(actor);
  if (tenant !== null && query.tenant !== undefined && query.tenant !== tenant) return null;
  const node = nodeHostOf(actor);
  if (node !== null && query.host !== undefined && query.host !== node) return null;
  return { ...query, tenant: tenant ?? query.tenant, host: node ?? query.host };
}

/**
 * The store filters by network, not physnet: one keyset page per network of
 * the physnet (the caller's tenant's only), merged by id. A physnet carries
 * a handful of networks, so this reads at most a few pages.
 */
async function onPhysnet(tx: Pick<StoreTx, 'listAllocations' | 'listNetworks'>, physnet: string, base: StoreFilter): Promise<Allocation[]> {
  let networks = (await tx.listNetworks({ physnet, tenant: base.tenant })).map((n) => n.name);
  if (base.network !== undefined) networks = networks.filter((n) => n === base.network);
  const pages = await Promise.all(networks.map((network) => tx.listAllocations({ ...base, network })));
  const limit = base.limit ?? Infinity;
  return pages
    .flat()
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, limit);
}
