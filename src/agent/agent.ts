/**
 * The agent loop: register the inventory, then long-poll the desired state,
 * apply what changed when it changes (one allocation at a time, on the
 * reconciler's model of the host), reconcile the whole host periodically
 * (drift, orphans, recovery), and report status — each report doubling as
 * the heartbeat. Hypervisor tasks in the desired state run beside it
 * (tasks.ts), their results reported as they finish and with every report.
 */
import { performance } from 'node:perf_hooks';
import type { SriovHost } from '../host/configurator.js';
import type { ReportExtras } from '../controller/hosts.js';
import type { HostInventory } from '../host/model.js';
import type { HypervisorTaskResult } from '../hypervisor/hypervisor.js';
import { sleep } from '../host/wait.js';
import { AgentTally } from './counters.js';
import type { ControllerLink } from './link.js';
import { Reconciler, type Log } from './reconciler.js';
import { TaskRunner, type Hypervisors } from './tasks.js';
import { TrafficSampler } from './traffic-sampler.js';

export interface AgentOptions {
  /** Long-poll hold, and so the heartbeat interval. */
  heartbeatMs?: number;
  /** Reconcile at least this often even without changes, to repair drift. */
  resyncMs?: number;
  log?: Log;
  /** The adapters for the controller's hypervisor tasks (none: every task fails, saying so). */
  hypervisors?: Hypervisors;
  /** How often traffic counters are sampled (default 5 s); 0: never, and reports carry none. */
  trafficIntervalMs?: number;
}

const TRAFFIC_INTERVAL_MS = 5_000;

export class Agent {
  private stopped = false;
  private readonly reconciler: Reconciler;
  private readonly log: Log;
  private readonly heartbeatMs: number;
  private readonly resyncMs: number;
  private readonly tasks: TaskRunner;
  /** What this agent counts of its passes (reconcile time, drift, orphans, repairs): sent with every report, for /metrics. */
  private readonly tally = new AgentTally();
  private readonly traffic: TrafficSampler | null;
  /** The last inventory reported, for reporting a task's result as soon as it finishes. */
  private inventory: HostInventory | null = null;
  /** Resolves when the loop has finished its current step after stop(). */
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: SriovHost,
    private readonly link: ControllerLink,
    opts: AgentOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
    this.heartbeatMs = opts.heartbeatMs ?? 10_000;
    this.resyncMs = opts.resyncMs ?? 60_000;
    // A failed release is tried again at the next heartbeat, then less often, at least once per resync.
    this.reconciler = new Reconciler(host, this.log, { retryFirstMs: this.heartbeatMs, retryMaxMs: Math.max(this.heartbeatMs, this.resyncMs) });
    this.tasks = new TaskRunner(opts.hypervisors ?? {}, (result) => this.reportResult(result), this.log);
    const trafficMs = opts.trafficIntervalMs ?? TRAFFIC_INTERVAL_MS;
    this.traffic = trafficMs > 0 ? new TrafficSampler(host, () => this.inventory?.pfs ?? [], { intervalMs: trafficMs }) : null;
  }

  /** A finished task's result, now rather than at the next heartbeat; a later report repeats it anyway. */
  private async reportResult(result: HypervisorTaskResult): Promise<void> {
    if (!this.inventory || this.stopped) return;
    await this.link.report(this.inventory, [], [], [result], this.extras());
  }

  /**
   * What every report carries besides its outcomes: the counters so far
   * (cumulative, so a lost report loses nothing), and the traffic deltas
   * sampled since the last report.
   */
  private extras(): ReportExtras {
    const traffic = this.traffic?.take();
    return { counters: this.tally.snapshot(), ...(traffic ? { traffic } : {}) };
  }

  /** Resolves when no hypervisor task runs (for tests). */
  tasksIdle(): Promise<void> {
    return this.tasks.idle();
  }

  start(): void {
    this.traffic?.start();
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.traffic?.stop();
    await this.done;
  }

  private async loop(): Promise<void> {
    let inventory: HostInventory | null = null;
    let revision: string | undefined;
    let nextSync = 0;
    for (let backoff = 500; !this.stopped; ) {
      try {
        inventory ??= await this.register();
        this.inventory = inventory;
        const desired = await this.link.desired(inventory.hostname, revision, revision ? this.heartbeatMs : 0);
        if (this.stopped) break;
        this.tasks.sync(desired.tasks ?? []);
        if (desired.revision !== revision || Date.now() >= nextSync) {
          const whole = Date.now() >= nextSync;
          const started = performance.now();
          const result = whole ? await this.reconciler.reconcile(desired) : await this.reconciler.apply(desired);
          this.tally.passed(result, whole ? (performance.now() - started) / 1000 : null);
          inventory = this.inventory = result.inventory;
          await this.link.report(inventory, result.statuses, result.events, this.tasks.results(), this.extras());
          revision = desired.revision;
          // Failures, stuck releases and leftovers in their grace period are looked at again at the next heartbeat.
          const due = Date.now() + (result.errors.length || result.pending ? this.heartbeatMs : this.resyncMs);
          nextSync = whole ? due : Math.min(nextSync, due);
        } else {
          await this.link.report(inventory, [], [], this.tasks.results(), this.extras());
        }
        backoff = 500;
      } catch (err) {
        this.log('warn', `agent: ${err instanceof Error ? err.message : String(err)}; retrying in ${backoff} ms`);
        inventory = null;
        // The model may have missed a change: the next pass looks at the whole host.
        nextSync = 0;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  private async register(): Promise<HostInventory> {
    const inventory = await this.host.inventory();
    await this.link.report(inventory, [], [], [], this.extras());
    this.log('info', `agent: registered ${inventory.hostname} with ${inventory.pfs.length} PFs`);
    return inventory;
  }
}
