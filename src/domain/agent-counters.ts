/**
 * What an agent counts of its own work and sends with every report, for the
 * controller's `/metrics`: how long its whole-host reconciles take, and how
 * often it repaired drift, scrubbed an orphan or put a workload back.
 *
 * Counters are cumulative since the agent process started (`run`, random per
 * process), so a lost or repeated report loses or doubles nothing; the
 * controller carries a finished run's totals over to the next one
 * (controller/agent-counters.ts), so what it exposes never goes back.
 */

/** Upper bounds (seconds) of the reconcile-duration histogram; `reconcileBuckets[i]` counts the passes that took at most `RECONCILE_BUCKETS_S[i]`. */
export const RECONCILE_BUCKETS_S: readonly number[] = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60];

export interface AgentTotals {
  /** Cumulative: whole-host passes that took at most each bound of RECONCILE_BUCKETS_S. */
  reconcileBuckets: number[];
  /** Whole-host passes, and the seconds they took in all. */
  reconcileCount: number;
  reconcileSeconds: number;
  /** VFs whose settings had drifted from their allocation's and were set back (`drift.repaired`). */
  driftRepaired: number;
  /** Leftovers collected: unallocated configured VFs, allocations whose container vanished (`orphan.scrubbed`). */
  orphansScrubbed: number;
  /** Workloads put back on their VF: a container's netdev moved back, a standby reinstated (`allocation.recovered`). */
  repairs: number;
  /** Problems a pass could not fix (a policy that could not be applied, a scrub that failed). */
  reconcileErrors: number;
}

export interface AgentCounters extends AgentTotals {
  /** Random per agent process: the counters start from zero under a new one. */
  run: string;
}

export const RUN_PATTERN = '^[!-~]{1,64}$';

export function zeroTotals(): AgentTotals {
  return { reconcileBuckets: RECONCILE_BUCKETS_S.map(() => 0), reconcileCount: 0, reconcileSeconds: 0, driftRepaired: 0, orphansScrubbed: 0, repairs: 0, reconcileErrors: 0 };
}

/** The scalar counters of AgentTotals (all but the buckets). */
export const TOTAL_FIELDS = ['reconcileCount', 'reconcileSeconds', 'driftRepaired', 'orphansScrubbed', 'repairs', 'reconcileErrors'] as const;

export function addTotals(a: AgentTotals, b: AgentTotals): AgentTotals {
  const sum = { ...a, reconcileBuckets: a.reconcileBuckets.map((n, i) => n + (b.reconcileBuckets[i] ?? 0)) };
  for (const f of TOTAL_FIELDS) sum[f] = a[f] + b[f];
  return sum;
}
