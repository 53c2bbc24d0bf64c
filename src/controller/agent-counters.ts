/**
 * The agents' counters (domain/agent-counters.ts) as this controller has
 * received them, per host, for `/metrics`. An agent's counters start from
 * zero when it restarts (a new `run`): the totals of its previous run are
 * carried over, so what is exposed only goes up while this controller runs.
 * In memory only: a restarted controller (or another one) counts from the
 * agent's first report to it, which Prometheus reads as a counter reset.
 */
import { addTotals, RECONCILE_BUCKETS_S, TOTAL_FIELDS, zeroTotals, type AgentCounters, type AgentTotals } from '../domain/agent-counters.js';
import { SriovError } from '../host/errors.js';

interface Entry {
  run: string;
  /** The current run's counters, as last reported. */
  last: AgentTotals;
  /** The totals of this host's earlier runs. */
  carried: AgentTotals;
}

export class AgentCounterBook {
  private readonly hosts = new Map<string, Entry>();

  /** A report's counters; a new run (or counters that went back: the same) carries the last run's totals over. */
  record(host: string, c: AgentCounters): void {
    const { run, ...now } = c;
    const entry = this.hosts.get(host);
    if (!entry) {
      this.hosts.set(host, { run, last: now, carried: zeroTotals() });
      return;
    }
    if (entry.run !== run || wentBack(entry.last, now)) entry.carried = addTotals(entry.carried, entry.last);
    entry.run = run;
    entry.last = now;
  }

  /** Each host's totals since this controller first heard from it. */
  *totals(): IterableIterator<[string, AgentTotals]> {
    for (const [host, e] of this.hosts) yield [host, addTotals(e.carried, e.last)];
  }

  forget(host: string): void {
    this.hosts.delete(host);
  }
}

function wentBack(before: AgentTotals, now: AgentTotals): boolean {
  return TOTAL_FIELDS.some((f) => now[f] < before[f]) || now.reconcileBuckets.some((n, i) => n < before.reconcileBuckets[i]!);
}

/**
 * Counters a histogram can be built from: the buckets cumulative (each at
 * most the next, the last at most the count). Checked before anything of the
 * report is applied: a report with bad counters changes nothing.
 */
export function checkCounters(c: AgentCounters, host: string): void {
  const b = c.reconcileBuckets;
  const why =
    b.length !== RECONCILE_BUCKETS_S.length
      ? `counters.reconcileBuckets must have ${RECONCILE_BUCKETS_S.length} entries (one per bound ${RECONCILE_BUCKETS_S.join(', ')} s), got ${b.length}`
      : b.some((n, i) => i > 0 && n < b[i - 1]!) || b[b.length - 1]! > c.reconcileCount
        ? 'counters.reconcileBuckets must be cumulative: each at most the next, the last at most counters.reconcileCount'
        : null;
  if (why) throw new SriovError('INVALID_ARGUMENT', `${why}; nothing of the report was applied`, { object: host, nothingChanged: true });
}
