/**
 * Which PFs and hosts each redundancy group already uses, so a new member of
 * the group can be kept off them without looking at allocations.
 */
import type { WorkloadKind } from '../domain/types.js';

export interface GroupUsage {
  /** PF key (`host|pciAddress`) → number of the group's allocations on it. */
  readonly pfs: Map<string, number>;
  /** Host name → number of the group's allocations on it. */
  readonly hosts: Map<string, number>;
}

/** A group is scoped to one workload: kind and name. */
export function groupKey(workload: { kind: WorkloadKind; name: string }, group: string): string {
  return `${workload.kind}/${workload.name}\u0000${group}`;
}

export class GroupLedger {
  private readonly groups = new Map<string, GroupUsage>();

  get(key: string): GroupUsage | undefined {
    return this.groups.get(key);
  }

  add(key: string, host: string, pf: string): void {
    let usage = this.groups.get(key);
    if (!usage) this.groups.set(key, (usage = { pfs: new Map(), hosts: new Map() }));
    bump(usage.pfs, pf, 1);
    bump(usage.hosts, host, 1);
  }

  remove(key: string, host: string, pf: string): void {
    const usage = this.groups.get(key);
    if (!usage) return;
    bump(usage.pfs, pf, -1);
    bump(usage.hosts, host, -1);
    if (usage.pfs.size === 0) this.groups.delete(key);
  }

  clear(): void {
    this.groups.clear();
  }
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
