/**
 * SQLite: the due liveness writes of many hosts (touchHost), gathered in
 * memory and written in one transaction every `flushMs`, instead of one
 * commit per host. Each commit costs at least one WAL page (4 KiB + 24 B)
 * and its checkpoint the page again; batched, the hosts whose rows share a
 * page of host_liveness share that page's write too.
 *
 * What it costs: a crash loses the timestamps not yet flushed. Liveness is
 * decided from memory (the sweep), and a restarted controller gives every
 * host a fresh grace period, so only the stored lastHeartbeat is older: at
 * most flushMs + heartbeatWriteMs behind the host's last report.
 */
import type { HostRecord } from '../domain/types.js';
import type { Store } from '../store/store.js';

export class HeartbeatBatch {
  /** Host name → the time of its last report, not yet written. */
  private readonly pending = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly flushMs: number,
    /** A host whose touch found no record (deleted): its next report must carry the inventory. */
    private readonly onGone: (name: string) => void,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Queues `name`'s heartbeat at `at`; written within flushMs. */
  add(name: string, at: string): void {
    this.pending.set(name, at);
    // Unref'd: a pending heartbeat never holds the process open (close() flushes it).
    this.timer ??= setTimeout(() => void this.flush().catch(this.onError), this.flushMs).unref();
  }

  /** Forgets `name`'s pending heartbeat: a newer write of its record (report, sweep) or its deletion supersedes it. */
  drop(name: string): void {
    this.pending.delete(name);
  }

  /** Writes what is pending now, in one transaction (the sweep and close call it too). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const batch = [...this.pending];
    this.pending.clear();
    const state: HostRecord['state'] = 'ready';
    const gone = await this.store.transaction(async (tx) => {
      const missing: string[] = [];
      for (const [name, at] of batch) if (!(await tx.touchHost(name, state, at))) missing.push(name);
      return missing;
    });
    for (const name of gone) this.onGone(name);
  }
}
