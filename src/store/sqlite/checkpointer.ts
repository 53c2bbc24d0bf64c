/**
 * WAL checkpoints on a thread of their own. A checkpoint copies the WAL into
 * the database file and fsyncs both: at 2-5k allocations/s, run every second
 * on the event loop, it blocked every request for 70-300 ms. A PASSIVE
 * checkpoint from a second connection takes no write lock, so the store's
 * connection keeps committing meanwhile, and a short interval keeps the WAL
 * (which every page read searches) short even while the loop never idles.
 */
import { Worker } from 'node:worker_threads';

export const CHECKPOINT_MS = 200;

export class Checkpointer {
  private readonly worker: Worker;

  /** `onFailure` runs once if the thread cannot checkpoint (then the caller must). */
  constructor(file: string, onFailure: (err: unknown) => void, intervalMs = CHECKPOINT_MS) {
    this.worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), {
      workerData: { file, intervalMs },
      // It holds no data: a small heap keeps the controller's footprint as it was.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    this.worker.unref();
    this.worker.once('error', onFailure);
  }

  /**
   * Resolves once the thread is gone (better-sqlite3 closes its connection as
   * the thread ends). Ended, not asked: a short-lived command closes its store
   * before the thread has even loaded, and must not wait for it to.
   */
  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}
