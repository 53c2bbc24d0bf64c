/**
 * Allocations by state. The holding states (pending to releasing) are at
 * most one per VF; `failed` ones wait for someone to clear them. `released`
 * is left out: it is history, growing without bound, and counting it would
 * read every allocation ever made at each scrape.
 */
import { HOLDING_STATES, type AllocationState } from '../../domain/types.js';
import { scraped, type MetricsContext } from './family.js';

export const COUNTED_STATES: readonly AllocationState[] = [...HOLDING_STATES, 'failed'];

export function allocationMetrics({ registry, control }: MetricsContext): void {
  scraped(registry, 'vfleet_allocations', 'Allocations by state (those holding a VF, and failed ones not cleared yet; released ones are not counted)', 'gauge', async () => {
    const reads = control.ctx.reads;
    const [holding, failed] = await Promise.all([reads.listAllocations({ holding: true }), reads.listAllocations({ state: 'failed' })]);
    const count = new Map<AllocationState, number>(COUNTED_STATES.map((s) => [s, 0]));
    for (const a of holding) count.set(a.state, (count.get(a.state) ?? 0) + 1);
    count.set('failed', failed.length);
    return [...count].map(([state, value]) => ({ labels: { state }, value }));
  });
}
