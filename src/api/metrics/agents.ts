/**
 * What the agents count of their own work (domain/agent-counters.ts), per
 * host, as their reports brought it to this controller: how long whole-host
 * reconciles take, drift repaired, orphans scrubbed, workloads put back and
 * errors. Counters only go up while this controller runs (an agent's
 * restart is carried over, controller/agent-counters.ts).
 */
import { RECONCILE_BUCKETS_S, type AgentTotals } from '../../domain/agent-counters.js';
import { histogramSamples, scraped, type MetricsContext, type Sample } from './family.js';

const COUNTERS: ReadonlyArray<[name: string, field: keyof Omit<AgentTotals, 'reconcileBuckets' | 'reconcileSeconds' | 'reconcileCount'>, help: string]> = [
  ['vfleet_agent_drift_repaired_total', 'driftRepaired', "VFs whose settings had drifted from their allocation's and that the agent set back"],
  ['vfleet_agent_orphans_scrubbed_total', 'orphansScrubbed', 'Leftovers the agent collected: unallocated configured VFs, allocations whose container namespace vanished'],
  ['vfleet_agent_repairs_total', 'repairs', "Workloads the agent put back on their VF (a container's netdev moved back, a standby reinstated)"],
  ['vfleet_agent_reconcile_errors_total', 'reconcileErrors', 'Problems a reconcile pass could not fix (a node policy not applied, a scrub that failed)'],
];

const RECONCILE = 'vfleet_agent_reconcile_duration_seconds';

export function agentMetrics({ registry, control }: MetricsContext): void {
  const book = control.hosts.agentCounters;
  scraped(registry, RECONCILE, "Time the host's agent took for whole-host reconcile passes", 'histogram', () => {
    const out: Sample[] = [];
    for (const [host, t] of book.totals()) out.push(...histogramSamples(RECONCILE, { host }, RECONCILE_BUCKETS_S, t.reconcileBuckets, t.reconcileCount, t.reconcileSeconds));
    return out;
  });
  for (const [name, field, help] of COUNTERS) {
    scraped(registry, name, help, 'counter', () => [...book.totals()].map(([host, t]) => ({ labels: { host }, value: t[field] })));
  }
}
