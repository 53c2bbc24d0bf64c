/**
 * A migration as stored: the record a plan becomes, and each step written
 * with its history line and audit event in one transaction, before the step
 * acts, so a restarted controller knows where it was.
 */
import type { Allocation, Migration, MigrationEndpoint, MigrationHistoryEntry, MigrationTaskRecord } from '../domain/types.js';
import type { StoreTx } from '../store/store.js';
import type { MigrationPlan } from './migration-plan.js';

export const ACTIVE_STATES: readonly Migration['state'][] = ['running', 'rolling-back'];
export const isActive = (m: Pick<Migration, 'state'>) => ACTIVE_STATES.includes(m.state);

/** A history line, as a step writes it. */
export type Entry = Omit<MigrationHistoryEntry, 'at'>;

export function endpointOf(a: Allocation): MigrationEndpoint {
  return { host: a.host, pf: a.pf, pfPciAddress: a.pfPciAddress, vfIndex: a.vfIndex, pciAddress: a.pciAddress, allocation: a.id };
}

/** The record of a reserved migration, at step `prepare`. */
export function newMigration(plan: MigrationPlan, dest: Allocation, drain: string | null, at: string): Migration {
  const { source } = plan;
  return {
    id: dest.migration!.id,
    workload: source.workload,
    tenant: source.tenant,
    network: source.network,
    mac: source.mac,
    from: endpointOf(source),
    to: endpointOf(dest),
    requested: plan.requested,
    hypervisor: plan.hypervisor,
    migrateUri: plan.migrateUri,
    drain,
    state: 'running',
    step: 'prepare',
    history: [
      { step: 'reserve', outcome: 'done', at, detail: `VF ${dest.pciAddress} on ${dest.host}/${dest.pf} reserved as allocation ${dest.id}, MAC ${dest.mac}` },
      { step: 'prepare', outcome: 'started', at, detail: `destination agent on ${dest.host} configures the VF` },
    ],
    downtimeMs: null,
    reason: null,
    tasks: [],
    createdAt: at,
    updatedAt: at,
  };
}

/** What a step changes on the record; `entries` are appended to its history. */
export interface Change {
  state?: Migration['state'];
  step?: Migration['step'];
  reason?: string | null;
  downtimeMs?: number | null;
  tasks?: MigrationTaskRecord[];
  entries: Entry[];
}

export function applyChange(m: Migration, c: Change, at: string): Migration {
  return {
    ...m,
    state: c.state ?? m.state,
    step: c.step ?? m.step,
    reason: c.reason === undefined ? m.reason : c.reason,
    downtimeMs: c.downtimeMs === undefined ? m.downtimeMs : c.downtimeMs,
    tasks: c.tasks ?? m.tasks ?? [],
    history: [...m.history, ...c.entries.map((e) => ({ ...e, at }))],
    updatedAt: at,
  };
}

/** Writes the changed record and one audit event per history line (`migration.<step>`). */
export async function saveChange(tx: StoreTx, actor: string, m: Migration, c: Change, at: string): Promise<Migration> {
  const after = applyChange(m, c, at);
  await tx.updateMigration(after);
  for (const e of c.entries) {
    await tx.appendEvent({ at, actor, action: `migration.${e.step}`, object: `migration/${m.id}`, before: { state: m.state, step: m.step }, after: { state: after.state, step: after.step, outcome: e.outcome, detail: e.detail } });
  }
  return after;
}

/** Clears both ends' migration marks (the one that no longer holds first, so the MAC rule never sees two). */
export async function clearMarks(tx: StoreTx, m: Migration, at: string): Promise<void> {
  const ends = [m.from.allocation, ...(m.to ? [m.to.allocation] : [])];
  const found = await Promise.all(ends.map((id) => tx.getAllocation(id)));
  const marked = found.filter((a): a is Allocation => a !== null && a.migration?.id === m.id);
  marked.sort((a, b) => Number(holds(a)) - Number(holds(b)));
  for (const a of marked) await tx.setAllocationMigration(a.id, null, at);
}

const holds = (a: Allocation) => ['pending', 'configured', 'attached', 'releasing'].includes(a.state);
