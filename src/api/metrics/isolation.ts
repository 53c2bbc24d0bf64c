/**
 * Isolation findings by kind (`sriovctl audit isolation`): what the hosts
 * report that breaks tenant isolation. The audit reads every host's
 * inventory from the store (seconds at 1,000 hosts), so scrapes do not wait
 * for it but the first: a scrape that finds the last result older than
 * `ISOLATION_MAX_AGE_MS` starts the next audit in the background and answers
 * from the last one; `vfleet_isolation_audit_timestamp_seconds` says when it ran.
 */
import type { Actor } from '../../domain/actor.js';
import { auditIsolation, type ViolationKind } from '../../controller/isolation-audit.js';
import type { Context } from '../../controller/context.js';
import { scraped, type MetricsContext } from './family.js';

export const VIOLATION_KINDS: readonly ViolationKind[] = ['shared-vlan', 'duplicate-mac', 'trust-without-spoofchk', 'unallocated-config', 'drift'];
export const ISOLATION_MAX_AGE_MS = 60_000;

/** Who the audit runs as: /metrics' own scrape authorization is checked before. */
const METRICS: Actor = { id: 'metrics', role: 'operator' };

interface Findings {
  at: number;
  byKind: Map<ViolationKind, number>;
}

/** The last audit's counts, run again in the background once older than `maxAgeMs` (one run at a time). */
export class IsolationFindings {
  private last: Findings | null = null;
  private running: Promise<Findings> | null = null;

  constructor(
    private readonly ctx: Context,
    private readonly maxAgeMs = ISOLATION_MAX_AGE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The last audit's counts; only the first call waits for an audit. */
  async current(): Promise<Findings> {
    if (this.last && this.now() - this.last.at < this.maxAgeMs) return this.last;
    this.running ??= this.audit()
      .then((found) => (this.last = found))
      .finally(() => (this.running = null));
    // An audit that fails leaves the last result standing, and the next scrape tries again.
    if (this.last) {
      this.running.catch(() => {});
      return this.last;
    }
    return this.running;
  }

  /** Resolves once no audit runs (tests). */
  async idle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  private async audit(): Promise<Findings> {
    const at = this.now();
    const report = await auditIsolation(this.ctx, METRICS);
    const byKind = new Map<ViolationKind, number>(VIOLATION_KINDS.map((k) => [k, 0]));
    for (const v of report.violations) byKind.set(v.kind, (byKind.get(v.kind) ?? 0) + 1);
    return { at, byKind };
  }
}

export function isolationMetrics({ registry, control }: MetricsContext, findings = new IsolationFindings(control.ctx)): void {
  scraped(registry, 'vfleet_isolation_findings', 'Isolation findings by kind, from the last isolation audit (sriovctl audit isolation)', 'gauge', async () =>
    [...(await findings.current()).byKind].map(([kind, value]) => ({ labels: { kind }, value })),
  );
  scraped(registry, 'vfleet_isolation_audit_timestamp_seconds', 'When the isolation audit behind vfleet_isolation_findings ran, seconds since the epoch', 'gauge', async () => [
    { value: (await findings.current()).at / 1000 },
  ]);
}
