/** SQLite's refusals (unique indexes, triggers) as the store's CONFLICT errors. */
import Database from 'better-sqlite3';
import type { Allocation } from '../../domain/types.js';
import { claimConflict as conflict } from '../../host/errors.js';
import { MAC_VIOLATION } from './schema.js';
import type { Statements } from './statements.js';

export function isSqliteError(err: unknown, code: string): err is Error {
  return err instanceof Database.SqliteError && err.code === code;
}

/**
 * Says what `a` asked for is taken, when a unique index refused it; other
 * errors pass through. The holder is not named: it may be another tenant's
 * allocation, and the store does not know who asks.
 */
export function allocationConflict(s: Statements, err: unknown, a: Allocation): unknown {
  if (isSqliteError(err, 'SQLITE_CONSTRAINT_PRIMARYKEY')) {
    return conflict('exists', `allocation ${a.id} already exists`, a.id, err);
  }
  // The MAC trigger runs before the unique VF index: of the two, the VF is named first, as before.
  const macRule = isSqliteError(err, 'SQLITE_CONSTRAINT_TRIGGER') && err.message.includes(MAC_VIOLATION);
  if (!macRule && !isSqliteError(err, 'SQLITE_CONSTRAINT_UNIQUE')) return err;
  if (s.vfHolder.get(a) !== undefined) return conflict('vf', `VF ${a.vfIndex} of ${a.pf} on ${a.host} is taken`, a.id, err);
  if (macRule || s.macHolder.get(a) !== undefined) return conflict('mac', `MAC ${a.mac} is in use`, a.id, err);
  return err;
}
