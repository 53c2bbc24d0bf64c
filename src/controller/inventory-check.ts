/**
 * What an agent may claim about its host. The scheduler places tenants' VFs
 * on what inventories say exists, so an inventory that cannot be true (more
 * VFs than the PF supports, one PCI address twice, a NUMA node no machine
 * has) or that claims another live host's NIC is refused whole, before
 * anything is stored. Each refusal names the PF and the field.
 */
import type { HostInventory, PfInfo } from '../host/model.js';
import { invalid, SriovError } from '../host/errors.js';
import { isNsimDevice, nsimVfAddress, parseDeviceAddress, parseVfAddress, ZERO_MAC } from '../host/validate.js';

/** The scheduler's own NUMA range (allocation numaNode is 0-63). */
const MAX_NUMA_NODE = 63;
/** PCIe caps a PF at 65535 VFs; the API's inventory schema at 4096 listed VFs. */
const MAX_TOTAL_VFS = 4096;
/** Fastest Ethernet port there is (1.6 Tb/s), with room; a higher speed is a made-up one. */
const MAX_LINK_SPEED_MBPS = 1_600_000;

/** Refuses (INVALID_ARGUMENT) an inventory that contradicts itself. */
export function checkInventory(inventory: HostInventory): void {
  const seenAddresses = new Map<string, string>();
  const seenNames = new Set<string>();
  const claim = (address: string, what: string, parse: (a: string) => string) => {
    const pci = parse(address);
    const first = seenAddresses.get(pci);
    if (first !== undefined) throw refused(`PCI address ${pci} is claimed twice (${first} and ${what})`);
    seenAddresses.set(pci, what);
    return pci;
  };
  for (const pf of inventory.pfs) {
    if (seenNames.has(pf.name)) throw refused(`PF name ${pf.name} appears twice`);
    seenNames.add(pf.name);
    const pfPci = claim(pf.pciAddress, `PF ${pf.name}`, parseDeviceAddress);
    checkPfFields(pf);
    checkVfs(pf, pfPci, claim);
  }
}

function checkPfFields(pf: PfInfo): void {
  const at = `PF ${pf.name} (${pf.pciAddress})`;
  if (!Number.isInteger(pf.totalVfs) || pf.totalVfs < 0 || pf.totalVfs > MAX_TOTAL_VFS) {
    throw refused(`${at}: totalVfs must be 0-${MAX_TOTAL_VFS}, got ${pf.totalVfs}`);
  }
  if (!Number.isInteger(pf.numVfs) || pf.numVfs < 0 || pf.numVfs > pf.totalVfs) {
    throw refused(`${at}: numVfs ${pf.numVfs} is more than its totalVfs ${pf.totalVfs}`);
  }
  if (pf.numaNode !== null && (!Number.isInteger(pf.numaNode) || pf.numaNode < 0 || pf.numaNode > MAX_NUMA_NODE)) {
    throw refused(`${at}: NUMA node must be 0-${MAX_NUMA_NODE} or null (none), got ${pf.numaNode}`);
  }
  if (pf.linkSpeedMbps !== null && !(pf.linkSpeedMbps >= 0 && pf.linkSpeedMbps <= MAX_LINK_SPEED_MBPS)) {
    throw refused(`${at}: link speed must be 0-${MAX_LINK_SPEED_MBPS} Mbps, got ${pf.linkSpeedMbps}`);
  }
}

/**
 * A PF's VFs: indices unique and below numVfs (so never more VFs than
 * numVfs), addresses in the PF's PCI domain with a routing ID above the PF's
 * (SR-IOV's First VF Offset is never 0). Fewer VFs listed than numVfs is
 * accepted: the agent may have read sysfs while VFs were being created or
 * removed, and under-reporting only hides capacity.
 */
function checkVfs(pf: PfInfo, pfPci: string, claim: (address: string, what: string, parse: (a: string) => string) => string): void {
  const at = `PF ${pf.name} (${pf.pciAddress})`;
  const indices = new Set<number>();
  // netdevsim (not PCI): VF M of netdevsim<N> is `netdevsim<N>:vf<M>`, nothing else.
  const nsim = isNsimDevice(pfPci);
  const pfId = nsim ? null : routingId(pfPci);
  for (const vf of pf.vfs) {
    if (!Number.isInteger(vf.index) || vf.index < 0 || vf.index >= pf.numVfs) {
      const range = pf.numVfs === 0 ? 'but numVfs is 0' : `outside 0-${pf.numVfs - 1} (numVfs ${pf.numVfs})`;
      throw refused(`${at}: lists VF index ${vf.index}, ${range}`);
    }
    if (indices.has(vf.index)) throw refused(`${at}: VF index ${vf.index} appears twice`);
    indices.add(vf.index);
    const address = claim(vf.pciAddress, `VF ${vf.index} of ${pf.name}`, parseVfAddress);
    if (!pfId) {
      if (address !== nsimVfAddress(pfPci, vf.index)) throw refused(`${at}: VF ${vf.index} at ${vf.pciAddress} must be ${nsimVfAddress(pfPci, vf.index)}`);
      continue;
    }
    const id = routingId(address);
    if (id.domain !== pfId.domain || id.rid <= pfId.rid) {
      throw refused(`${at}: VF ${vf.index} at ${vf.pciAddress} cannot belong to it (a VF sits in its PF's PCI domain, after the PF)`);
    }
  }
}

/** dddd:bb:ss.f → PCI domain and 16-bit routing ID (bus << 8 | device << 3 | function). */
function routingId(pci: string): { domain: number; rid: number } {
  const [domain = '0', bus = '0', rest = '0.0'] = pci.split(':');
  const [slot = '0', fn = '0'] = rest.split('.');
  return { domain: parseInt(domain, 16), rid: (parseInt(bus, 16) << 8) | (parseInt(slot, 16) << 3) | parseInt(fn, 16) };
}

function refused(message: string): SriovError {
  const err = invalid(`inventory refused: ${message}`);
  err.details.nothingChanged = true;
  return err;
}

/**
 * The identity of a physical NIC port, as another host could claim it.
 *
 * PCI addresses alone are no identity: they are per machine, and identical
 * servers have identical ones (every R750 has a PF at 0000:3b:00.0). What is
 * unique to one physical port is its burned-in MAC; the pair (PF pciAddress,
 * PF MAC) is what a copied inventory repeats and two real machines never
 * share. A PF reporting no MAC (or the zero MAC) has no identity to claim.
 */
export function pfIdentities(inventory: HostInventory): string[] {
  return inventory.pfs.flatMap((pf) => {
    const mac = pf.mac?.toLowerCase();
    return mac && mac !== ZERO_MAC ? [`${pf.pciAddress.toLowerCase()}|${mac}`] : [];
  });
}

/** CONFLICT naming the other host: only staff and agents reach the report path. */
export function claimedElsewhere(identity: string, owner: string): SriovError {
  const [pci, mac] = identity.split('|');
  return new SriovError('CONFLICT', `inventory refused: PF ${pci} with MAC ${mac} belongs to live host ${owner}`, {
    object: pci,
    nothingChanged: true,
  });
}
