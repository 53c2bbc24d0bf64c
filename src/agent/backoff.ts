/**
 * Retries with exponential backoff, per key: a step that keeps failing is
 * tried again after `firstMs`, then twice as long each time up to `maxMs`,
 * instead of on every pass. Retrying the same failure at full speed is not
 * converging; it only fills the logs.
 */
export class Backoff {
  private readonly failures = new Map<string, { attempts: number; nextAt: number }>();

  constructor(
    private readonly firstMs: number,
    private readonly maxMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether `key` may be tried now: never failed, or its wait is over. */
  due(key: string): boolean {
    const f = this.failures.get(key);
    return !f || this.now() >= f.nextAt;
  }

  /** Records a failed attempt; returns how long until the next one. */
  failed(key: string): number {
    const attempts = (this.failures.get(key)?.attempts ?? 0) + 1;
    const waitMs = Math.min(this.firstMs * 2 ** (attempts - 1), this.maxMs);
    this.failures.set(key, { attempts, nextAt: this.now() + waitMs });
    return waitMs;
  }

  succeeded(key: string): void {
    this.failures.delete(key);
  }

  /** Forgets keys no longer in `keys` (allocations that went away). */
  retain(keys: Set<string>): void {
    for (const key of this.failures.keys()) if (!keys.has(key)) this.failures.delete(key);
  }
}
