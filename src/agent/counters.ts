/**
 * The agent's own counters (domain/agent-counters.ts), kept from the
 * results of its passes and sent whole with every report.
 */
import { randomUUID } from 'node:crypto';
import { RECONCILE_BUCKETS_S, zeroTotals, type AgentCounters, type AgentTotals } from '../domain/agent-counters.js';
import type { ReconcileResult } from './reconciler.js';

export class AgentTally {
  private readonly totals: AgentTotals = zeroTotals();

  constructor(private readonly run: string = randomUUID()) {}

  /** One pass's outcome; `seconds` for a whole-host pass (the histogram's), null for an incremental one. */
  passed(result: Pick<ReconcileResult, 'events' | 'errors'>, seconds: number | null): void {
    const t = this.totals;
    if (seconds !== null) {
      t.reconcileCount++;
      t.reconcileSeconds += seconds;
      RECONCILE_BUCKETS_S.forEach((bound, i) => {
        if (seconds <= bound) t.reconcileBuckets[i]!++;
      });
    }
    for (const e of result.events) {
      if (e.action === 'drift.repaired') t.driftRepaired++;
      else if (e.action === 'orphan.scrubbed') t.orphansScrubbed++;
      else if (e.action === 'allocation.recovered') t.repairs++;
    }
    t.reconcileErrors += result.errors.length;
  }

  snapshot(): AgentCounters {
    return { run: this.run, ...this.totals, reconcileBuckets: [...this.totals.reconcileBuckets] };
  }
}
