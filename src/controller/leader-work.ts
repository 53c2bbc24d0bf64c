/**
 * Background work that must run on one controller only: the heartbeat sweep
 * (with the stale device claims and stuck migrations it releases) and the
 * resumption of unfinished migrations. It runs while this controller leads
 * (Store.campaign): on gaining leadership it resumes migrations (the old
 * leader may have died mid-step), then sweeps on a timer; on losing it, it
 * stops sweeping. The embedded store leads from the start.
 */
import type { Leadership } from '../store/store.js';

export interface LeaderTasks {
  /** Unfinished migrations go on from the step each recorded last. */
  resume(): Promise<void>;
  sweep(): Promise<unknown>;
}

export interface LeaderWorkOptions {
  sweepMs: number;
  onError(err: unknown): void;
  /** Told of every gain and loss (the daemon logs it). */
  onChange?(leader: boolean): void;
}

export class LeaderWork {
  private timer: NodeJS.Timeout | null = null;
  /** The work in flight (a resume or a sweep): never two at once, and `stop` waits for it. */
  private running: Promise<void> = Promise.resolve();
  private queued = 0;
  private unsubscribe: () => void = () => {};
  private stopped = false;

  constructor(
    private readonly leadership: Leadership,
    private readonly tasks: LeaderTasks,
    private readonly opts: LeaderWorkOptions,
  ) {}

  /** Follows the leadership from now on. */
  start(): this {
    this.unsubscribe = this.leadership.onChange((leader) => this.follow(leader));
    if (this.leadership.leader) this.follow(true);
    return this;
  }

  /** Whether the background work runs here now. */
  get active(): boolean {
    return this.timer !== null;
  }

  /** Resolves once the work queued so far is done (tests). */
  settled(): Promise<void> {
    return this.running;
  }

  /** Stops following and sweeping, and waits for the work in flight; leadership itself is the caller's to resign. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    this.halt();
    await this.running;
  }

  private follow(leader: boolean): void {
    if (this.stopped) return;
    this.opts.onChange?.(leader);
    if (!leader) return this.halt();
    if (this.timer) return;
    this.timer = setInterval(() => this.run(() => this.tasks.sweep(), true), this.opts.sweepMs);
    this.run(() => this.tasks.resume());
  }

  private halt(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * One task after the other, and only while leading. A sweep tick that
   * finds work still queued is skipped; a resume (a new term) never is.
   */
  private run(task: () => Promise<unknown>, skipWhenBusy = false): void {
    if (skipWhenBusy && this.queued > 0) return;
    this.queued++;
    this.running = this.running.then(async () => {
      try {
        if (this.timer) await task();
      } catch (err) {
        this.opts.onError(err);
      } finally {
        this.queued--;
      }
    });
  }
}
