/** The checkpointer's thread (see checkpointer.ts): its own connection, PASSIVE checkpoints until it is ended. */
import { workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const db = new Database(file, { fileMustExist: true });
// As the store's connection: a checkpoint syncs the WAL and the file, a commit never.
db.pragma('synchronous = NORMAL');
setInterval(() => db.pragma('wal_checkpoint(PASSIVE)'), intervalMs);
