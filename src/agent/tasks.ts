/**
 * The agent's hypervisor work: the controller puts `HypervisorTask`s in the
 * desired state (migrate a VM out, plug or unplug a VF); this runs each in
 * the background through the host's adapter, reports its result at once,
 * and keeps the result (sent again with every report) until the task
 * leaves the desired state, which is how the controller says it saw it.
 *
 * A task id runs at most once at a time. After an agent restart nothing is
 * remembered, so an unfinished task runs again and the adapter's idempotent
 * check finds what was already done.
 */
import type { HypervisorTask, HypervisorTaskResult } from '../controller/desired-state.js';
import { SriovError } from '../host/errors.js';
import type { Hypervisor, MigrateResult } from '../hypervisor/hypervisor.js';
import type { Log } from './reconciler.js';

export type Hypervisors = Partial<Record<HypervisorTask['hypervisor'], Hypervisor>>;

interface Entry {
  /** Set when the task finished. */
  result: HypervisorTaskResult | null;
  /** The task left the desired state while it ran: its result goes nowhere. */
  dropped: boolean;
}

export class TaskRunner {
  private readonly entries = new Map<string, Entry>();
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly hypervisors: Hypervisors,
    /** Sends one finished task's result to the controller now. */
    private readonly report: (result: HypervisorTaskResult) => Promise<void>,
    private readonly log: Log = () => {},
  ) {}

  /** Starts the tasks not seen yet, and forgets those the controller no longer lists. */
  sync(tasks: HypervisorTask[]): void {
    const wanted = new Set(tasks.map((t) => t.id));
    for (const [id, entry] of this.entries) {
      if (wanted.has(id)) continue;
      if (entry.result) this.entries.delete(id);
      else entry.dropped = true;
    }
    for (const task of tasks) {
      const entry = this.entries.get(task.id);
      if (entry) {
        entry.dropped = false;
        continue;
      }
      this.start(task);
    }
  }

  /** The results of finished tasks still in the desired state. */
  results(): HypervisorTaskResult[] {
    return [...this.entries.values()].flatMap((e) => (e.result && !e.dropped ? [e.result] : []));
  }

  /** Resolves when no task runs (tests; a stopping agent does not wait for a migration). */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.all([...this.running]);
  }

  private start(task: HypervisorTask): void {
    const entry: Entry = { result: null, dropped: false };
    this.entries.set(task.id, entry);
    this.log('info', `agent: task ${task.id}: ${describe(task)}`);
    const run = this.execute(task).then(async (result) => {
      if (entry.dropped) {
        this.entries.delete(task.id);
        return;
      }
      entry.result = result;
      this.log(result.ok ? 'info' : 'warn', `agent: task ${task.id}: ${result.detail}`);
      // Lost here, it goes again with the next report.
      await this.report(result).catch((e: unknown) => this.log('warn', `agent: task ${task.id}: result not reported yet (${message(e)}); it goes with the next report`));
    });
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  private async execute(task: HypervisorTask): Promise<HypervisorTaskResult> {
    try {
      const hypervisor = this.hypervisors[task.hypervisor];
      if (!hypervisor) {
        const have = Object.keys(this.hypervisors).join(', ') || 'none';
        throw new SriovError('UNSUPPORTED', `this agent does not run ${task.hypervisor} VMs (its --hypervisor: ${have})`, { nothingChanged: true });
      }
      switch (task.op) {
        case 'migrate': {
          const result = await hypervisor.migrate(task.request, (s) => this.log('info', `agent: task ${task.id}: ${task.request.vm} ${s}`));
          return { id: task.id, ok: true, detail: migrated(task.request.vm, task.request.destination, result), result };
        }
        case 'plug':
          await hypervisor.plug(task.request);
          return { id: task.id, ok: true, detail: `VF ${task.request.pciAddress} plugged into VM ${task.request.vm} as ${task.request.device}${task.request.failoverPairId ? ` (failover primary of ${task.request.failoverPairId})` : ''}` };
        case 'unplug':
          await hypervisor.unplug(task.request);
          return { id: task.id, ok: true, detail: `device ${task.request.device} unplugged from VM ${task.request.vm}` };
        default:
          throw new SriovError('UNSUPPORTED', `unknown task operation ${JSON.stringify((task as { op: unknown }).op)}; this agent knows migrate, plug and unplug`, { nothingChanged: true });
      }
    } catch (e) {
      return { id: task.id, ok: false, detail: message(e) };
    }
  }
}

function describe(task: HypervisorTask): string {
  switch (task.op) {
    case 'migrate':
      return `migrating VM ${task.request.vm} to ${task.request.destination} (${task.hypervisor})`;
    case 'plug':
      return `plugging VF ${task.request.pciAddress} into VM ${task.request.vm} (${task.hypervisor})`;
    case 'unplug':
      return `unplugging ${task.request.device} from VM ${task.request.vm} (${task.hypervisor})`;
    default:
      return `${String((task as { op: unknown }).op)}`;
  }
}

function migrated(vm: string, destination: string, r: MigrateResult): string {
  const times = [r.downtimeMs !== null ? `downtime ${r.downtimeMs} ms` : null, r.totalMs !== null ? `total ${r.totalMs} ms` : null].filter(Boolean);
  return `VM ${vm} migrated to ${destination}: ${r.statuses.join(' → ')}${times.length ? `; ${times.join(', ')}` : ''}`;
}

/** `code: message`, one line. */
function message(e: unknown): string {
  if (e instanceof SriovError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
