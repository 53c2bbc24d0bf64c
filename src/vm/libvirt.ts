/**
 * libvirt domain XML for a VF (field notes §5) and for its virtio standby when
 * the VM must live-migrate (§6). Pure: validated spec in, XML text out.
 */
import { SriovError, invalid } from '../host/errors.js';
import { parseIfName } from '../host/validate.js';
import { parseNetworkName } from './names.js';
import { parseVmNic, type PciLocation, type VmNic, type VmNicSpec } from './nic.js';
import { element } from './xml.js';

// Callers get everything that describes a VM's NIC from this one module.
export { parseDomainName } from './names.js';
export { qemuArgs } from './qemu.js';

/**
 * libvirt keeps an alias the user chose only with the `ua-` prefix (others
 * are replaced by its own `hostdevN`), and an alias must be unique in the
 * domain. Naming both devices after the allocation keeps several failover
 * pairs in one VM apart and lets `virsh detach-device-alias` find them.
 */
export const hostdevAlias = (nic: VmNic) => `ua-sriov-${nic.shortId}`;
export const standbyAlias = (nic: VmNic) => `ua-backup-${nic.shortId}`;

const hex = (n: number, digits: number) => `0x${n.toString(16).padStart(digits, '0')}`;

function pciAddressXml(pci: PciLocation): string {
  return element('address', {
    type: 'pci',
    domain: hex(pci.domain, 4),
    bus: hex(pci.bus, 2),
    slot: hex(pci.slot, 2),
    function: hex(pci.function, 1),
  });
}

/**
 * On attach libvirt programs the VF's MAC and VLAN itself, through the PF,
 * always with priority 0 and as 802.1Q (IFLA_VF_VLAN); older libvirt also
 * resets the VLAN to 0 when `<vlan>` is absent. What it cannot express it
 * would silently undo, so such a VF is refused rather than re-tagged.
 */
function settingLibvirtWouldReset(nic: VmNic): string | null {
  if (nic.qos > 0) return `VLAN priority ${nic.qos}`;
  if (nic.vlan > 0 && nic.vlanProto !== '802.1Q') return `VLAN protocol ${nic.vlanProto}`;
  return null;
}

function refuseWhatLibvirtWouldReset(nic: VmNic): void {
  const setting = settingLibvirtWouldReset(nic);
  if (setting === null) return;
  throw new SriovError(
    'UNSUPPORTED',
    `libvirt would reset the ${setting} of VF ${nic.pciAddress} when attaching it; pass it to QEMU directly (qemuArgs) instead`,
    { object: nic.pciAddress, nothingChanged: true },
  );
}

const vlanXml = (vlan: number) => (vlan > 0 ? [element('vlan', {}, [element('tag', { id: vlan })])] : []);

/** `<interface type='hostdev' managed='yes'>` for the VF; with failover, the transient member of the team. */
export function hostdevInterfaceXml(spec: VmNicSpec): string {
  const nic = parseVmNic(spec);
  refuseWhatLibvirtWouldReset(nic);
  return vfInterfaceXml({ pci: nic.pci, mac: nic.mac, vlan: nic.vlan, alias: hostdevAlias(nic), persistent: nic.failover ? standbyAlias(nic) : null });
}

/** A VF as an interface, from checked values: the alias and the standby's alias are the caller's. */
export interface VfInterface {
  pci: PciLocation;
  mac: string;
  vlan: number;
  alias: string;
  /** The standby's alias, for `<teaming type='transient'>`; null: no failover pair. */
  persistent: string | null;
}

export function vfInterfaceXml(vf: VfInterface): string {
  const teaming = vf.persistent ? [element('teaming', { type: 'transient', persistent: vf.persistent })] : [];
  return element('interface', { type: 'hostdev', managed: 'yes' }, [
    element('mac', { address: vf.mac }),
    element('driver', { name: 'vfio' }),
    element('source', {}, [pciAddressXml(vf.pci)]),
    ...vlanXml(vf.vlan),
    ...teaming,
    element('alias', { name: vf.alias }),
  ]);
}

/** Where the standby's traffic goes: a libvirt network, or a host bridge. */
export type StandbySource = { network: string; bridge?: never } | { bridge: string; network?: never };

function standbySourceXml(source: StandbySource): { type: string; xml: string } {
  if (source.bridge !== undefined) {
    return { type: 'bridge', xml: element('source', { bridge: parseIfName(source.bridge) }) };
  }
  return { type: 'network', xml: element('source', { network: parseNetworkName(source.network) }) };
}

/**
 * The virtio standby of a failover pair: same MAC as the VF (the guest's
 * net_failover pairs by MAC), the persistent member of the team.
 *
 * It carries no `<vlan>`: libvirt applies one only on Open vSwitch (and, since
 * 11.0, Linux) bridges. The network or bridge given here must already put the
 * standby on the VF's VLAN, e.g. a bridge over the PF's `ens1f0.100`.
 */
export function standbyInterfaceXml(spec: VmNicSpec, source: StandbySource = { network: 'default' }): string {
  const nic = parseVmNic(spec);
  if (!nic.failover) throw invalid(`allocation ${nic.shortId} is not set up for failover; it has no standby`);
  const { type, xml } = standbySourceXml(source);
  return element('interface', { type }, [
    element('mac', { address: nic.mac }),
    xml,
    element('model', { type: 'virtio' }),
    element('teaming', { type: 'persistent' }),
    element('alias', { name: standbyAlias(nic) }),
  ]);
}
