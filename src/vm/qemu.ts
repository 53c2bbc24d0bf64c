/**
 * QEMU command-line arguments for a VF, for VMs that libvirt does not manage.
 *
 * QEMU hands the VF to the guest as it is and never touches the PF, so the
 * VF's MAC, VLAN, priority and protocol are exactly what vfleet set on the PF
 * side (`ip link set PF vf N mac ... vlan ...`); the guest cannot change them
 * and nothing here repeats them. Only the virtio standby spells out the MAC,
 * because the guest's net_failover pairs the two devices by identical MAC.
 */
import { invalid } from '../host/errors.js';
import { parseIfName } from '../host/validate.js';
import { parseVmNic, type VmNic, type VmNicSpec } from './nic.js';

export interface QemuOptions {
  /**
   * The tap the standby's `-netdev` opens (default `sriov-<short id>`). The
   * caller bridges it onto the VF's VLAN; `script=no` keeps QEMU from running
   * /etc/qemu-ifup instead.
   */
  tap?: string;
  /**
   * PCIe root ports (their `-device` ids) for the two devices. QEMU unplugs
   * the primary before migrating, so it must sit on a hot-pluggable port, and
   * the two must not share a slot.
   */
  bus?: { primary: string; standby: string };
}

// QEMU's rule for ids; it also keeps ',' (QEMU's option separator) out.
const QEMU_ID = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;

export function parseQemuId(value: string): string {
  if (!QEMU_ID.test(value)) throw invalid(`"${value}" is not a QEMU device id (a letter, then A-Z a-z 0-9 _ . -)`, value);
  return value;
}

/** `driver,key=value,...`, leaving out keys without a value. */
function optionString(driver: string, props: Record<string, string | undefined>): string {
  const set = Object.entries(props).filter(([, v]) => v !== undefined);
  return [driver, ...set.map(([k, v]) => `${k}=${v}`)].join(',');
}

/** Ids unique per allocation, so several VFs can go into one VM. */
function qemuIds(nic: VmNic) {
  return { hostdev: `hostdev-${nic.shortId}`, net: `net-${nic.shortId}`, netdev: `hostnet-${nic.shortId}` };
}

export function qemuArgs(spec: VmNicSpec, opts: QemuOptions = {}): string[] {
  const nic = parseVmNic(spec);
  const ids = qemuIds(nic);
  const bus = opts.bus && { primary: parseQemuId(opts.bus.primary), standby: parseQemuId(opts.bus.standby) };
  const vfio = { host: nic.pciAddress, id: ids.hostdev, bus: bus?.primary };
  if (!nic.failover) return ['-device', optionString('vfio-pci', vfio)];

  const tap = parseIfName(opts.tap ?? `sriov-${nic.shortId}`);
  return [
    '-netdev',
    optionString('tap', { id: ids.netdev, ifname: tap, script: 'no', downscript: 'no' }),
    '-device',
    optionString('virtio-net-pci', { netdev: ids.netdev, id: ids.net, mac: nic.mac, bus: bus?.standby, failover: 'on' }),
    '-device',
    optionString('vfio-pci', { ...vfio, failover_pair_id: ids.net }),
  ];
}
