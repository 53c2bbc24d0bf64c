/**
 * Allocations by state. The holding states (pending to releasing) are at
 * most one per VF; `failed` ones wait for someone to clear them. `released`
 * is left out: it is history, growing without bound, and counting it would
 * read every allocation ever made.
 *
 * The one family read from the store (memory does not keep allocations'
 * states), so it is read again only when something changed since: every
 * allocation change bumps its host's desired state (ChangeFeed), and a
 * scrape of a fleet that did not change costs no read. At most a minute
 * old anyway, should a change ever come without a bump.
 */
import type { Context } from '../../controller/context.js';
import { HOLDING_STATES, type AllocationState } from '../../domain/types.js';
import { scraped, type MetricsContext } from './family.js';

export const COUNTED_STATES: readonly AllocationState[] = [...HOLDING_STATES, 'failed'];
const MAX_AGE_MS = 60_000;

interface Counts {
  at: number;
  /** ChangeFeed.changes when the read began. */
  changes: number;
  byState: Map<AllocationState, number>;
}

export class AllocationCounts {
  private last: Counts | null = null;
  private reading: Promise<Counts> | null = null;

  constructor(
    private readonly ctx: Pick<Context, 'reads' | 'feed'>,
    private readonly now: () => number = Date.now,
  ) {}

  async current(): Promise<Map<AllocationState, number>> {
    const last = this.last;
    if (last && last.changes === this.ctx.feed.changes && this.now() - last.at < MAX_AGE_MS) return last.byState;
    this.reading ??= this.read().finally(() => (this.reading = null));
    return (this.last = await this.reading).byState;
  }

  private async read(): Promise<Counts> {
    // Noted before the read: a change made while it runs makes the next scrape read again.
    const changes = this.ctx.feed.changes;
    const at = this.now();
    const [holding, failed] = await Promise.all([this.ctx.reads.listAllocations({ holding: true }), this.ctx.reads.listAllocations({ state: 'failed' })]);
    const byState = new Map<AllocationState, number>(COUNTED_STATES.map((s) => [s, 0]));
    for (const a of holding) byState.set(a.state, (byState.get(a.state) ?? 0) + 1);
    byState.set('failed', failed.length);
    return { at, changes, byState };
  }
}

export function allocationMetrics({ registry, control }: MetricsContext): void {
  const counts = new AllocationCounts(control.ctx);
  scraped(registry, 'vfleet_allocations', 'Allocations by state (those holding a VF, and failed ones not cleared yet; released ones are not counted)', 'gauge', async () =>
    [...(await counts.current())].map(([state, value]) => ({ labels: { state }, value })),
  );
}
