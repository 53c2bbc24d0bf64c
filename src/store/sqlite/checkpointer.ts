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
  private readonly exited: Promise<void>;

  /** `onFailure` runs once if the thread cannot checkpoint (then the caller must). */
  constructor(file: string, onFailure: (err: unknown) => void, intervalMs = CHECKPOINT_MS) {
    this.worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), {
      workerData: { file, intervalMs },
      // It holds no data: a small heap keeps the controller's footprint as it was.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    this.worker.unref();
    this.worker.once('error', onFailure);
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Resolves once the thread's connection is closed, so the file may be truncated. */
  stop(): Promise<void> {
    // Held while it closes: an unreferenced thread would let the process exit before close() resolves.
    this.worker.ref();
    this.worker.postMessage('stop');
    return this.exited;
  }
}
