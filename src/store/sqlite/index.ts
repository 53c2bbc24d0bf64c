/**
 * The embedded store, `<dataDir>/vfleet.db`: schema.ts (migrations and
 * connection settings), rows.ts (row codecs), statements.ts, errors.ts
 * (refusals as CONFLICT), tx.ts (the operations), group-commit.ts (the
 * transaction queue) and store.ts (the Store).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Store } from '../store.js';
import { configure, migrate } from './schema.js';
import { SqliteStore } from './store.js';

export { MIGRATIONS, SCHEMA_VERSION } from './schema.js';

const DB_FILE = 'vfleet.db';

/** Opens (creating and migrating as needed) `<dataDir>/vfleet.db`. */
export async function openSqliteStore(dataDir: string): Promise<Store> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, DB_FILE);
  const db = new Database(file);
  try {
    configure(db);
    migrate(db, file);
    return new SqliteStore(db);
  } catch (err) {
    db.close();
    throw err;
  }
}
