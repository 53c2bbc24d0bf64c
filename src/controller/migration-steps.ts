/**
 * What a migration does next, decided from its record and its two
 * allocations as they are now: a pure function, so the same decision comes
 * out after a controller restart. The service writes the change, then
 * `ensure` puts the allocations where the (new) step wants them.
 */
import { HOLDING_STATES, type Allocation, type Migration } from '../domain/types.js';
import type { Change } from './migration-records.js';
import { oneLine, pendingTask, taskOf } from './migration-tasks.js';

/** What drives a migration on: a change to write (and whether it ends it), or nothing yet. */
export type Decision = { kind: 'wait' } | { kind: 'change'; change: Change; ends: boolean };

const WAIT: Decision = { kind: 'wait' };
const holds = (a: Allocation | null): boolean => a !== null && HOLDING_STATES.includes(a.state);
const ABORTED = 'aborted by ';

export function decide(m: Migration, source: Allocation | null, dest: Allocation | null): Decision {
  if (m.state === 'rolling-back') return rolledBack(m, dest);
  if (m.state !== 'running') return WAIT;
  if (m.step === 'prepare') return prepared(m, source, dest);
  if (m.step === 'switch') return switched(m, source, dest);
  if (m.step === 'release') return released(m, source);
  return WAIT;
}

function prepared(m: Migration, source: Allocation | null, dest: Allocation | null): Decision {
  if (!holds(dest)) return rollback(m, `the destination VF ${where(m)} ${lost(dest)}`);
  if (!holds(source) || source!.state === 'releasing') return rollback(m, `the source allocation ${m.from.allocation} ${lost(source)}`);
  if (dest!.state === 'pending') return WAIT;
  const tasks = m.hypervisor === 'qemu' || m.hypervisor === 'libvirt' ? [...(m.tasks ?? []), pendingTask(m, 'migrate')] : m.tasks;
  return change({ step: 'switch', tasks, entries: [{ step: 'prepare', outcome: 'done', detail: `${where(m)} is ${dest!.state}` }, { step: 'switch', outcome: 'started', detail: switchPlan(m) }] });
}

function switchPlan(m: Migration): string {
  if (m.hypervisor === null) return `the agent of ${m.to!.host} re-homes ${m.workload.name} onto ${where(m)}, make-before-break`;
  if (m.hypervisor === 'hook') return 'waiting for the orchestrator to move the VM and call complete';
  return `${m.hypervisor} on ${m.from.host} migrates VM ${m.workload.name}; then ${where(m)} is plugged`;
}

function switched(m: Migration, source: Allocation | null, dest: Allocation | null): Decision {
  const migrate = taskOf(m, 'migrate');
  const moved = migrate?.outcome === 'ok';
  // With the migrate task out the VM may be on the wire already: only its outcome says whether to roll back or forward.
  if (!holds(dest) && !moved && migrate?.outcome !== 'pending') return rollback(m, `the destination VF ${where(m)} ${lost(dest)}`, migrate?.outcome === 'failed' && failoverOf(source));
  if (m.hypervisor === null) return dest?.state === 'attached' ? toRelease(m, `${m.workload.name} runs on ${where(m)}`) : WAIT;
  if (m.hypervisor === 'hook' || !migrate || migrate.outcome === 'pending') return WAIT;
  const failover = failoverOf(source);
  if (migrate.outcome === 'failed') return rollback(m, `the ${m.hypervisor} migration failed: ${migrate.detail ?? 'no detail'}`, failover);
  // Without a standby the VF went along (vfio migration): the destination QEMU holds it already, nothing to plug.
  if (!failover) return toRelease(m, `VM ${m.workload.name} moved with its VF state to ${where(m)}`);
  return afterMigrate(m, dest);
}

/** A VM with a virtio standby: its hypervisor unplugs the VF before it migrates. */
const failoverOf = (source: Allocation | null): boolean => source?.attachment?.kind === 'vm' && source.attachment.failover;

/** The VM runs at the destination: plug its VF there, then release the source. A failure now rolls forward. */
function afterMigrate(m: Migration, dest: Allocation | null): Decision {
  const plug = taskOf(m, 'plug');
  // A plug out may be running: moving on would leave it pending, handed out while its VF is scrubbed and freed.
  if (plug?.outcome === 'pending') return WAIT;
  if (!holds(dest)) return toRelease(m, `VM ${m.workload.name} moved, but ${where(m)} ${lost(dest)}; it runs without its VF`, true);
  if (!plug) return change({ tasks: [...(m.tasks ?? []), pendingTask(m, 'plug')], entries: [{ step: 'switch', outcome: 'started', detail: `VM ${m.workload.name} moved; plugging ${where(m)}` }] });
  if (plug.outcome === 'failed') return toRelease(m, `VM ${m.workload.name} moved, but plugging ${where(m)} failed: ${plug.detail ?? 'no detail'}; plug it again or release it`, true);
  return toRelease(m, `VM ${m.workload.name} runs on ${where(m)}`);
}

function toRelease(m: Migration, detail: string, trouble = false): Decision {
  return change({
    step: 'release',
    reason: trouble ? detail : m.reason,
    entries: [{ step: 'switch', outcome: trouble ? 'failed' : 'done', detail }, { step: 'release', outcome: 'started', detail: `the agent of ${m.from.host} releases the source VF ${m.from.pciAddress}` }],
  });
}

function released(m: Migration, source: Allocation | null): Decision {
  if (holds(source)) return WAIT;
  const detail = `source VF ${m.from.pciAddress} on ${m.from.host} is ${source?.state ?? 'gone'}`;
  return { kind: 'change', ends: true, change: { state: 'completed', step: 'done', entries: [{ step: 'release', outcome: 'done', detail }, { step: 'done', outcome: 'done', detail: `${m.workload.name} runs on ${where(m)}` }] } };
}

/** Rolls back: the destination is released; a VM whose VF the hypervisor may have unplugged gets it plugged back at the source. */
export function rollback(m: Migration, reason: string, plugBack = false): Decision {
  const tasks = plugBack ? [...(m.tasks ?? []), pendingTask(m, 'plug-back')] : m.tasks;
  return change({ state: 'rolling-back', reason, tasks, entries: [{ step: 'rollback', outcome: 'started', detail: reason }] });
}

function rolledBack(m: Migration, dest: Allocation | null): Decision {
  const back = taskOf(m, 'plug-back');
  if (holds(dest) || back?.outcome === 'pending') return WAIT;
  const state = m.reason?.startsWith(ABORTED) ? 'aborted' : 'failed';
  const note = back?.outcome === 'failed' ? `; plugging ${m.from.pciAddress} back failed: ${back.detail ?? 'no detail'}` : '';
  return { kind: 'change', ends: true, change: { state, reason: `${m.reason}${note}`, entries: [{ step: 'rollback', outcome: back?.outcome === 'failed' ? 'failed' : 'done', detail: `destination VF released; the workload stays on ${m.from.host}/${m.from.pf}${note}` }] } };
}

export function abortReason(actor: string): string {
  return `${ABORTED}${actor}`;
}

function change(c: Change): Decision {
  return { kind: 'change', change: c, ends: false };
}

function where(m: Migration): string {
  return `${m.to!.host}/${m.to!.pf} VF ${m.to!.pciAddress}`;
}

function lost(a: Allocation | null): string {
  if (!a) return 'is gone';
  return `is ${a.state}${a.reason ? ` (${oneLine(a.reason)})` : ''}`;
}

/** Where the step wants the allocations: what `ensure` moves, idempotently. */
export function wanted(m: Migration, source: Allocation | null, dest: Allocation | null): Array<{ id: string; state: 'attached' | 'releasing' }> {
  const out: Array<{ id: string; state: 'attached' | 'releasing' }> = [];
  if (m.state === 'rolling-back' && dest && holds(dest) && dest.state !== 'releasing') out.push({ id: dest.id, state: 'releasing' });
  if (m.state !== 'running' || m.step !== 'release') return out;
  // A VM's destination is attached by the plug (the agent only configures it); a container's agent reports it attached.
  if (m.workload.kind === 'vm' && dest && holds(dest) && (dest.state === 'pending' || dest.state === 'configured')) out.push({ id: dest.id, state: 'attached' });
  if (source && holds(source) && source.state !== 'releasing') out.push({ id: source.id, state: 'releasing' });
  return out;
}
