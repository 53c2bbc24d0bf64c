/**
 * A VF allocation as the VM layer sees it, validated once. Every field ends up
 * in an XML attribute or a QEMU option string, so only canonical values pass.
 */
import { invalid } from '../host/errors.js';
import type { VlanProto } from '../host/model.js';
import { parseMac, parsePciAddress, parseQos, parseVlan, parseVlanProto } from '../host/validate.js';
import { parseDomainName } from './names.js';

export interface VmNicSpec {
  /** The allocation's id (a UUID); its first 8 characters name the VM's devices. */
  id: string;
  pciAddress: string;
  mac: string;
  vlan: number;
  qos?: number;
  vlanProto?: VlanProto;
  vmName: string;
  /** Pair the VF with a virtio standby of the same MAC, so the VM can live-migrate (field notes §6). */
  failover: boolean;
}

export interface PciLocation {
  domain: number;
  bus: number;
  slot: number;
  function: number;
}

export interface VmNic {
  shortId: string;
  /** Canonical `dddd:bb:ss.f`. */
  pciAddress: string;
  pci: PciLocation;
  mac: string;
  vlan: number;
  qos: number;
  vlanProto: VlanProto;
  vmName: string;
  failover: boolean;
}

const SHORT_ID = /^[0-9a-z]{8}/;

/** First 8 characters of the id: unique enough within one VM, and greppable back to the allocation. */
function parseShortId(id: string): string {
  const m = SHORT_ID.exec(id.toLowerCase());
  if (!m) throw invalid(`allocation id ${JSON.stringify(id)} must start with 8 letters or digits`, id);
  return m[0];
}

export function pciLocation(bdf: string): PciLocation {
  const [domain = '', bus = '', slot = '', fn = ''] = bdf.split(/[:.]/);
  const loc = { domain: parseInt(domain, 16), bus: parseInt(bus, 16), slot: parseInt(slot, 16), function: parseInt(fn, 16) };
  // parsePciAddress takes two hex digits for the slot; a PCI device number has 5 bits.
  if (loc.slot > 0x1f) throw invalid(`PCI address ${bdf}: slot 0x${slot} is above 0x1f`, bdf);
  return loc;
}

export function parseVmNic(spec: VmNicSpec): VmNic {
  const pciAddress = parsePciAddress(spec.pciAddress);
  return {
    shortId: parseShortId(spec.id),
    pciAddress,
    pci: pciLocation(pciAddress),
    mac: parseMac(spec.mac),
    vlan: parseVlan(spec.vlan),
    qos: parseQos(spec.qos ?? 0),
    vlanProto: parseVlanProto(spec.vlanProto ?? '802.1Q'),
    vmName: parseDomainName(spec.vmName),
    failover: spec.failover,
  };
}
