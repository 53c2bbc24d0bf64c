/**
 * The hypervisor boundary: what a migration needs from whatever runs the VM.
 * Implementations: libvirt (`virsh`, on the agent's host), QEMU's QMP socket
 * (on the agent's host), and the hook (an external orchestrator moves the
 * VM and tells the API; it lives in the controller). The agent runs the
 * first two for the controller's `HypervisorTask`s; one contract suite runs
 * against every implementation.
 *
 * Every operation is idempotent: asked again after a crash, it finds the
 * work done (the migration `completed`, the device present or absent) and
 * says so instead of doing it twice.
 */
import type { HypervisorKind } from '../domain/types.js';

/** Move a running VM to the destination host. */
export interface MigrateRequest {
  vm: string;
  /**
   * Where to: libvirt, the destination's libvirt URI (`qemu+ssh://host-b/system`,
   * or `qemu+tcp://...`); QMP, the URI the source QEMU migrates to, which the
   * destination QEMU was started with as `-incoming` (`tcp:198.18.0.2:4444`,
   * `unix:/run/vfleet/qmp/vm1.migrate`).
   */
  destination: string;
  /**
   * The source VF's device id/alias in the VM (`hostdev-<8 chars of the
   * allocation id>`, as vm/qemu.ts and vm/libvirt.ts name it). With a
   * failover pair the hypervisor unplugs it itself before migrating (QEMU's
   * `wait-unplug`); without one, a VF bound to a vfio migration driver stays.
   */
  sourceDevice: string;
}

export interface MigrateResult {
  /** Every status QEMU/libvirt went through, in order (`setup`, `wait-unplug`, `active`, `completed`). */
  statuses: string[];
  /** The downtime the hypervisor reported, ms; null when it reports none. */
  downtimeMs: number | null;
  totalMs: number | null;
}

/** Hot-plug a VF into a running VM, as the failover primary of its virtio standby. */
export interface PlugRequest {
  vm: string;
  /** The VF's PCI address (canonical dddd:bb:ss.f), bound to vfio-pci. */
  pciAddress: string;
  /** The device id/alias to give it (`hostdev-<8 chars of the allocation id>`). */
  device: string;
  mac: string;
  /** The virtio standby's device id (`net-<8 chars>`), for `failover_pair_id`; null: no failover pair. */
  failoverPairId: string | null;
  /**
   * The network's VLAN (0: none). libvirt programs a hostdev interface's
   * VLAN through the PF itself on attach (and older libvirt resets it to 0
   * when none is given), so the libvirt adapter passes it on; QEMU never
   * touches the PF and ignores it. Optional: absent is 0.
   */
  vlan?: number;
}

export interface UnplugRequest {
  vm: string;
  device: string;
}

export interface Hypervisor {
  readonly kind: HypervisorKind;
  migrate(req: MigrateRequest, progress?: (status: string) => void): Promise<MigrateResult>;
  plug(req: PlugRequest): Promise<void>;
  unplug(req: UnplugRequest): Promise<void>;
}

/** One piece of hypervisor work the controller gives a host's agent (DesiredState.tasks). */
export type HypervisorTask = { id: string; migration: string; hypervisor: 'libvirt' | 'qemu' } & (
  | { op: 'migrate'; request: MigrateRequest }
  | { op: 'plug'; request: PlugRequest }
  | { op: 'unplug'; request: UnplugRequest }
);

/** What the agent reports back for a task (in its report, beside the allocation statuses). */
export interface HypervisorTaskResult {
  id: string;
  ok: boolean;
  /** One readable line: what happened, or the error (`code: message`). */
  detail: string;
  /** For `migrate`. */
  result?: MigrateResult;
}
