/**
 * A VM migration's hypervisor tasks: which the controller gives which host's
 * agent, with ids that stay the same until their result is seen
 * (`<migration>:<op>:<host>`), and the device ids they name.
 */
import type { Allocation, Attachment, Migration, MigrationTaskRecord } from '../domain/types.js';
import type { HypervisorTask, HypervisorTaskResult, MigrateRequest, PlugRequest } from '../hypervisor/hypervisor.js';

type VmAttachment = Extract<Attachment, { kind: 'vm' }>;
export type TaskKind = 'migrate' | 'plug' | 'plug-back';

/**
 * The VF's and standby's ids in the VM: the attachment's own, else named from
 * the allocation id as vfleet's XML and QEMU arguments name them (libvirt
 * wants user aliases to start with `ua-`: vm/libvirt.ts).
 */
export function devicesOf(a: Pick<Allocation, 'id'>, at: VmAttachment, hypervisor: Migration['hypervisor']): { primary: string; standby: string } {
  if (at.devices) return at.devices;
  const short = a.id.slice(0, 8).toLowerCase();
  return hypervisor === 'libvirt' ? { primary: `ua-sriov-${short}`, standby: `ua-backup-${short}` } : { primary: `hostdev-${short}`, standby: `net-${short}` };
}

export function taskId(m: Pick<Migration, 'id'>, kind: TaskKind, host: string): string {
  return `${m.id}:${kind}:${host}`;
}

/** A new pending task record of `kind` for `m`. */
export function pendingTask(m: Migration, kind: TaskKind): MigrationTaskRecord {
  const host = kind === 'plug' ? m.to!.host : m.from.host;
  return { id: taskId(m, kind, host), op: kind === 'migrate' ? 'migrate' : 'plug', host, outcome: 'pending', detail: null };
}

export function taskOf(m: Migration, kind: TaskKind): MigrationTaskRecord | undefined {
  const host = kind === 'plug' ? m.to?.host : m.from.host;
  return host === undefined ? undefined : m.tasks?.find((t) => t.id === taskId(m, kind, host));
}

/** Where the source hypervisor sends the VM: QMP, the destination QEMU's -incoming; libvirt, the destination's libvirtd. */
function destinationOf(m: Migration): string {
  return m.migrateUri ?? `qemu+ssh://${m.to!.host}/system`;
}

/** The agent's view of a pending task; null for a record that is not pending, or a migration without a hypervisor task. */
export function hypervisorTask(m: Migration, t: MigrationTaskRecord, source: Allocation): HypervisorTask | null {
  if (t.outcome !== 'pending' || (m.hypervisor !== 'qemu' && m.hypervisor !== 'libvirt') || source.attachment?.kind !== 'vm') return null;
  const at = source.attachment;
  const devices = devicesOf(source, at, m.hypervisor);
  const base = { id: t.id, migration: m.id, hypervisor: m.hypervisor };
  if (t.op === 'migrate') {
    const request: MigrateRequest = { vm: at.vm, destination: destinationOf(m), sourceDevice: devices.primary };
    return { ...base, op: 'migrate', request };
  }
  const back = t.id === taskId(m, 'plug-back', m.from.host);
  const request: PlugRequest = {
    vm: at.vm,
    pciAddress: back ? m.from.pciAddress : m.to!.pciAddress,
    device: devices.primary,
    mac: m.mac,
    vlan: source.vlan,
    failoverPairId: at.failover ? devices.standby : null,
  };
  return { ...base, op: 'plug', request };
}

/** The record with `result` applied to its pending task on `host`; null when it names none (unknown, done, another host's). */
export function withResult(m: Migration, host: string, result: HypervisorTaskResult): { tasks: MigrationTaskRecord[]; task: MigrationTaskRecord } | null {
  const tasks = m.tasks ?? [];
  const at = tasks.findIndex((t) => t.id === result.id && t.host === host && t.outcome === 'pending');
  if (at < 0) return null;
  const task: MigrationTaskRecord = { ...tasks[at]!, outcome: result.ok ? 'ok' : 'failed', detail: oneLine(result.detail).slice(0, 4096) };
  return { tasks: tasks.map((t, i) => (i === at ? task : t)), task };
}

/**
 * An agent's words as one line: the record's history and reason are printed
 * line by line (`sriovctl migrations show`, the console), where a newline or
 * an escape would forge a row or drive the terminal.
 */
export function oneLine(text: string): string {
  return text.replace(/\p{Cc}+/gu, ' ').trim();
}
