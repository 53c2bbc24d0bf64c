/**
 * Leftovers, collected after a grace period: VFs on policy-managed PFs that
 * carry configuration without an allocation (a teardown that never ran),
 * and allocations whose container namespace vanished. The grace period
 * keeps the collector from racing an attach or a detach in flight.
 */
import type { PfInfo } from '../host/model.js';
import type { NodePolicy } from '../policy/schema.js';
import { matches } from '../policy/plan.js';

/** First-seen times of leftovers, by key; a key not seen in a pass is forgotten. */
export class GraceClock {
  private readonly seen = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Whether `key` has been a leftover for at least `graceMs`. */
  expired(key: string, graceMs: number): boolean {
    const first = this.seen.get(key) ?? this.now();
    this.seen.set(key, first);
    return this.now() - first >= graceMs;
  }

  /** Keeps only `keys` (leftovers that resolved themselves start over). */
  retain(keys: Set<string>): void {
    for (const key of this.seen.keys()) if (!keys.has(key)) this.seen.delete(key);
  }
}


/** PFs vfleet manages on this host: those a node policy selects. */
export function managedPfs(pfs: PfInfo[], policies: NodePolicy[]): PfInfo[] {
  return pfs.filter((pf) => policies.some((p) => matches(p.selector, pf)));
}
