/**
 * GetPreferredAllocation (pure): which `size` devices of `available` a
 * container should get, by vfleet's scheduler rules. Every `mustInclude`
 * stays; the rest come from `available` only; the answer is deterministic.
 *
 * First the NUMA node: when one node of `available` has enough devices (and,
 * for a redundant pool, as many different PFs as the whole set), the choice
 * stays on it; the node is the mustInclude devices', else the one with the
 * most available. Then, one device at a time: a redundant pool takes a PF it
 * has not used yet; a PF with headroom for the network's guarantee comes
 * before one without (the CNI ADD would be refused there); then the target
 * node if the choice could not be kept to it; then pack (the most used PF
 * first) or spread (the least used first), as the pool says.
 */
import { byText, type PoolPf, type PoolState, type PoolVf } from './pool-devices.js';
import type { PreferredRequest } from './source.js';

const unique = (ids: string[]) => [...new Set(ids)];

/** Bandwidth units are all alike: the mustInclude ones, then the lowest ids. */
export function preferredUnits(request: PreferredRequest): string[] {
  const must = unique(request.mustInclude);
  const rest = unique(request.available).filter((id) => !must.includes(id)).sort(byText);
  return [...must, ...rest].slice(0, Math.max(request.size, must.length));
}

interface Choice {
  readonly state: PoolState;
  readonly vfs: Map<string, PoolVf>;
  readonly pfs: Map<string, PoolPf>;
  /** How many of the chosen devices sit on each PF (by PCI address). */
  readonly onPf: Map<string, number>;
  numa: number | null;
  /** Whether the candidates were already narrowed to `numa` (then it no longer orders them). */
  numaRestricted: boolean;
}

export function preferredVfs(state: PoolState, request: PreferredRequest): string[] {
  const must = unique(request.mustInclude);
  if (must.length >= request.size) return must;
  const c: Choice = {
    state,
    vfs: new Map(state.vfs.map((vf) => [vf.id, vf])),
    pfs: new Map(state.pfs.map((pf) => [pf.pciAddress, pf])),
    onPf: new Map(),
    numa: null,
    numaRestricted: false,
  };
  const chosen: string[] = [];
  const take = (id: string) => {
    chosen.push(id);
    const pf = c.vfs.get(id)?.pfPciAddress;
    if (pf !== undefined) c.onPf.set(pf, (c.onPf.get(pf) ?? 0) + 1);
  };
  must.forEach(take);
  let candidates = unique(request.available).filter((id) => !must.includes(id));
  const need = request.size - must.length;
  // One NUMA node when the available set allows it (with redundancy: as many PFs there as anywhere).
  const nodeOf = (id: string) => c.vfs.get(id)?.numaNode ?? null;
  const fitsOn = (node: number) => {
    const onNode = candidates.filter((id) => nodeOf(id) === node);
    return onNode.length >= need && keepsRedundancy(c, must, onNode, candidates, request.size);
  };
  const mustNode = rankNodes(must.map(nodeOf))[0];
  const ranked = rankNodes(candidates.map(nodeOf));
  c.numa = mustNode ?? ranked.find(fitsOn) ?? ranked[0] ?? null;
  if (c.numa !== null && fitsOn(c.numa)) {
    candidates = candidates.filter((id) => nodeOf(id) === c.numa);
    c.numaRestricted = true;
  }
  for (let n = 0; n < need && candidates.length > 0; n++) {
    const best = candidates.reduce((a, b) => (compare(c, a, b) <= 0 ? a : b));
    take(best);
    candidates = candidates.filter((id) => id !== best);
  }
  return chosen;
}

/** NUMA nodes by how many of `nodes` they hold, most first (ties: the lowest node). */
function rankNodes(nodes: Array<number | null>): number[] {
  const per = new Map<number, number>();
  for (const node of nodes) if (node !== null) per.set(node, (per.get(node) ?? 0) + 1);
  return [...per].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([node]) => node);
}

/** A redundant pool keeps to one node only when that still gives as many different PFs as the whole set. */
function keepsRedundancy(c: Choice, must: string[], onNode: string[], all: string[], size: number): boolean {
  if (!c.state.pool.redundancy) return true;
  const pfs = (ids: string[]) => Math.min(size, new Set(ids.map((id) => c.vfs.get(id)?.pfPciAddress ?? id)).size);
  return pfs([...must, ...onNode]) >= pfs([...must, ...all]);
}

/** Negative when `a` is the better next device. */
function compare(c: Choice, a: string, b: string): number {
  const va = c.vfs.get(a);
  const vb = c.vfs.get(b);
  // Devices the pool no longer knows (a stale available list) come last.
  if (!va || !vb) return va ? -1 : vb ? 1 : byText(a, b);
  const pa = c.onPf.get(va.pfPciAddress) ?? 0;
  const pb = c.onPf.get(vb.pfPciAddress) ?? 0;
  const used = (vf: PoolVf, chosenHere: number) => (c.pfs.get(vf.pfPciAddress)?.heldVfs ?? 0) + chosenHere;
  const policy = c.state.pool.placement === 'pack' ? -1 : 1;
  return (
    (c.state.pool.redundancy ? pa - pb : 0) ||
    Number(!fits(c, va, pa)) - Number(!fits(c, vb, pb)) ||
    (c.numaRestricted || c.numa === null ? 0 : Number(va.numaNode !== c.numa) - Number(vb.numaNode !== c.numa)) ||
    policy * (used(va, pa) - used(vb, pb)) ||
    byText(va.pfPciAddress, vb.pfPciAddress) ||
    byText(a, b)
  );
}

/** Whether the VF's PF has room for one more of the network's guarantee, after those already chosen there. */
function fits(c: Choice, vf: PoolVf, chosenHere: number): boolean {
  const guarantee = c.state.network?.minTxRateMbps ?? 0;
  if (guarantee === 0) return true;
  const headroom = c.pfs.get(vf.pfPciAddress)?.headroomMbps;
  return headroom !== null && headroom !== undefined && headroom - guarantee * chosenHere >= guarantee;
}
