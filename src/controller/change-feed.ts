/**
 * Per-host revisions of the desired state, and long-poll waiters on them.
 * A revision carries the controller's boot id, so an agent that reconnects
 * after a controller restart never mistakes an old revision for the current one.
 */
import { randomUUID } from 'node:crypto';

export class ChangeFeed {
  private readonly boot = randomUUID().slice(0, 8);
  private readonly counters = new Map<string, number>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private bumps = 0;

  /** Bumps of every host since start: whether anything changed since a cache was filled (/metrics' allocation counts). */
  get changes(): number {
    return this.bumps;
  }

  revision(host: string): string {
    return `${this.boot}.${this.counters.get(host) ?? 0}`;
  }

  bump(host: string): void {
    this.bumps++;
    this.counters.set(host, (this.counters.get(host) ?? 0) + 1);
    const waiting = this.waiters.get(host);
    this.waiters.delete(host);
    for (const wake of waiting ?? []) wake();
  }

  /** Resolves when the host's revision differs from `after`, or after `timeoutMs`. */
  async waitForChange(host: string, after: string | undefined, timeoutMs: number): Promise<void> {
    if (after !== this.revision(host) || timeoutMs <= 0) return;
    await new Promise<void>((resolve) => {
      const set = this.waiters.get(host) ?? new Set();
      this.waiters.set(host, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      set.add(done);
    });
  }

  /**
   * Calls `wake` once, at the host's next bump; returns the function that
   * cancels it. For a caller waiting on more than one feed at a time.
   */
  watch(host: string, wake: () => void): () => void {
    const set = this.waiters.get(host) ?? new Set();
    this.waiters.set(host, set);
    set.add(wake);
    return () => {
      set.delete(wake);
      if (set.size === 0 && this.waiters.get(host) === set) this.waiters.delete(host);
    };
  }

  /** Wakes every waiter (shutdown). */
  wakeAll(): void {
    for (const host of [...this.waiters.keys()]) this.bump(host);
  }
}
