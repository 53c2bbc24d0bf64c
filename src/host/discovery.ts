/**
 * Builds the inventory from the ports: sysfs for the PCI side, iproute2 for
 * each PF's view of its VFs, devlink for the eswitch mode and, in switchdev
 * mode, the VFs' representors and rate leaves (src/host/switchdev-view.ts).
 */
import { capabilitiesOf } from './capabilities.js';
import { SriovError, invalid } from './errors.js';
import { SCRUBBED_VF_CONFIG, type HostInventory, type PfInfo, type VfInfo } from './model.js';
import type { HostPorts, PfPciFacts, VfDeviceFacts, VfLinkEntry } from './ports.js';
import { applySwitchdevView, readSwitchdevView } from './switchdev-view.js';
import { isNsimDevice, isPciAddress, parseDeviceAddress, parseIfName } from './validate.js';

export interface DiscoverOptions {
  stats?: boolean;
}

export async function discoverHost(ports: HostPorts, opts: DiscoverOptions = {}): Promise<HostInventory> {
  const addresses = await ports.sysfs.listSriovPfs();
  const [pfs, bootId] = await Promise.all([Promise.all(addresses.map((a) => discoverPf(ports, a, opts))), ports.bootId?.() ?? null]);
  return { hostname: ports.hostname(), ...(bootId ? { bootId } : {}), pfs };
}

/** `nameOrPci` is a PF netdev name, PCI address or netdevsim device (`netdevsim<N>`); returns the PF's device address. */
export async function resolvePf(ports: HostPorts, nameOrPci: string): Promise<string> {
  const byAddress = isPciAddress(nameOrPci) || isNsimDevice(nameOrPci.trim());
  const pci = byAddress ? parseDeviceAddress(nameOrPci) : await pciOfNetdev(ports, nameOrPci);
  if (!(await ports.sysfs.listSriovPfs()).includes(pci)) {
    throw new SriovError('NOT_SRIOV_PF', `${nameOrPci} is not an SR-IOV physical function`, { object: nameOrPci });
  }
  return pci;
}

async function pciOfNetdev(ports: HostPorts, name: string): Promise<string> {
  if (!name) throw invalid('a PF name or PCI address is required');
  const pci = await ports.sysfs.pciAddressOfNetdev(parseIfName(name));
  if (!pci) throw new SriovError('NOT_FOUND', `no PCI network interface named ${name}`, { object: name });
  return pci;
}

export async function discoverPf(ports: HostPorts, pciAddress: string, opts: DiscoverOptions = {}): Promise<PfInfo> {
  const facts = await ports.sysfs.readPf(pciAddress);
  const netdevName = pfNetdevName(facts);
  const caps = capabilitiesOf(facts.driver);
  const [netdev, links, eswitchMode, names, vfDevices] = await Promise.all([
    netdevName ? ports.sysfs.readNetdev(netdevName) : null,
    netdevName && facts.numVfs > 0 ? ports.links.showPf(netdevName, opts) : null,
    caps.hasEswitch ? ports.devlink.eswitchMode(pciAddress) : null,
    ports.pciNames ? ports.pciNames(facts.vendorId, facts.deviceId) : {},
    // netdevsim's VFs are devlink ports only: there is no device to read.
    caps.vfFunctions ? Promise.all(facts.vfs.map((vf) => ports.sysfs.readVf(vf.pciAddress))) : facts.vfs.map(noFunction),
  ]);
  // Legacy mode costs nothing more: the ports and rates are read in switchdev mode only.
  const switchdev = eswitchMode === 'switchdev' ? await readSwitchdevView(ports.devlink, pciAddress, caps) : null;
  const linkByIndex = new Map((links?.vfs ?? []).map((v) => [v.index, v]));
  const vfs: VfInfo[] = facts.vfs.map((vf, i) => {
    const dev = vfDevices[i]!;
    return {
      index: vf.index,
      pciAddress: vf.pciAddress,
      driver: dev.driver,
      driverOverride: dev.driverOverride,
      netdev: dev.netdevs[0] ?? null,
      iommuGroup: dev.iommuGroup,
      ...vfConfigOf(linkByIndex.get(vf.index)),
    };
  });
  const pf: PfInfo = {
    name: netdevName ?? pciAddress,
    pciAddress,
    vendorId: facts.vendorId,
    deviceId: facts.deviceId,
    ...names,
    driver: facts.driver,
    mac: links?.mac ?? netdev?.mac ?? null,
    mtu: links?.mtu ?? netdev?.mtu ?? null,
    linkState: netdev?.operState ?? 'unknown',
    linkSpeedMbps: netdev?.speedMbps ?? (netdev && netdev.operState !== 'down' ? (capabilitiesOf(facts.driver).impliedLinkSpeedMbps ?? null) : null),
    numaNode: facts.numaNode,
    localCpus: facts.localCpus,
    totalVfs: facts.totalVfs,
    numVfs: facts.numVfs,
    autoprobe: facts.autoprobe,
    eswitchMode,
    vfDeviceId: facts.vfDeviceId,
    vfs,
  };
  return switchdev ? applySwitchdevView(pf, switchdev) : pf;
}

/** A PF in switchdev mode shows its representors too; sysfs lists the uplink first. */
function pfNetdevName(facts: PfPciFacts): string | null {
  return facts.netdevs[0] ?? null;
}

const noFunction = ({ pciAddress }: { pciAddress: string }): VfDeviceFacts => ({ pciAddress, driver: null, driverOverride: null, iommuGroup: null, netdevs: [] });

function vfConfigOf(entry: VfLinkEntry | undefined): Omit<VfInfo, 'index' | 'pciAddress' | 'driver' | 'driverOverride' | 'netdev' | 'iommuGroup'> {
  // A PF without a netdev cannot report its VFs over netlink; such VFs show the reset values.
  if (!entry) return { ...SCRUBBED_VF_CONFIG };
  const { index: _index, ...config } = entry;
  return config;
}
