/** The libvirt XML and QEMU arguments that hand an allocation's VF to its VM. */
import type { Allocation } from '../domain/types.js';
import { invalid } from '../host/errors.js';
import { hostdevInterfaceXml, qemuArgs, standbyInterfaceXml } from '../vm/libvirt.js';
import type { VmNicSpec } from '../vm/nic.js';

export interface VmConfig {
  /** `<interface type='hostdev' managed='yes'>`, for `virsh attach-device`. */
  libvirtXml: string;
  /** With failover: the virtio standby with the same MAC, `<teaming type='persistent'/>`. */
  standbyXml: string | null;
  qemuArgs: string[];
}

export function vmConfigOf(a: Allocation): VmConfig {
  if (a.attachment?.kind !== 'vm') throw invalid(`allocation ${a.id} is not attached to a VM`, a.id);
  const spec: VmNicSpec = { id: deviceIdOf(a.attachment) ?? a.id, pciAddress: a.pciAddress, mac: a.mac, vlan: a.vlan, vmName: a.attachment.vm, failover: a.attachment.failover };
  return { libvirtXml: hostdevInterfaceXml(spec), standbyXml: spec.failover ? standbyInterfaceXml(spec) : null, qemuArgs: qemuArgs(spec) };
}

/**
 * A migrated VM's devices keep the ids of its first allocation
 * (`Attachment.devices`): the XML and arguments name them from those 8
 * characters, not from this allocation's id.
 */
function deviceIdOf(at: Extract<Allocation['attachment'], { kind: 'vm' }>): string | undefined {
  return at.devices ? /-([0-9a-z]{8})$/.exec(at.devices.primary)?.[1] : undefined;
}
