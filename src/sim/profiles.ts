/**
 * Hardware profiles of the simulated host: one NIC model per profile, with
 * the facts a real card would show in sysfs and iproute2. What each driver
 * refuses comes from `host/capabilities.ts` (the same table the configurator
 * trusts); `quirks` adds what that table does not say. `vf-driver.ts` acts
 * them out.
 */
import { capabilitiesOf } from '../host/capabilities.js';
import { invalid } from '../host/errors.js';

export type SimProfileName = 'igb' | 'ixgbe' | 'i40e' | 'ice' | 'mlx5' | 'bnxt';

export interface SimProfile {
  name: SimProfileName;
  /** Marketing name, for humans and demos. */
  model: string;
  vendorId: string;
  deviceId: string;
  vfDeviceId: string;
  pfDriver: string;
  vfDriver: string;
  /** Link speed of every port. */
  speedMbps: number;
  /** sriov_totalvfs per PF (may be below the driver's ceiling: firmware, BAR space). */
  totalVfs: number;
  /** The netdev's max_mtu as the driver reports it. */
  maxMtu: number;
  /** Whether the PF has a devlink eswitch (legacy mode until changed). */
  hasEswitch: boolean;
  /** First three octets of the PF MACs (the vendor's OUI). */
  oui: string;
  quirks: SimQuirks;
}

/** Driver behaviour beyond the capability table, each from the driver source. */
export interface SimQuirks {
  /** i40e: a new VF is "still in reset"; the first op addressed to it answers EAGAIN. */
  resetAfterCreate?: boolean;
  /** ice: the sum of all VFs' min_tx_rate must fit the link speed (EINVAL). */
  minRateSumWithinLink?: boolean;
  /** ixgbe: a non-zero max_tx_rate at or below this is refused (EINVAL). */
  maxRateFloorMbps?: number;
  /** ixgbe: `state enable` returns success and changes nothing. */
  linkStateEnableIgnored?: boolean;
  /** i40e: a non-zero max_tx_rate below the rate step is raised to the step. */
  raiseMaxRateToStep?: boolean;
  /**
   * igb/ixgbe: a VF driver bound without an admin MAC picks a random one and
   * tells the PF, which then reports it (seen in the lab on igb).
   */
  vfDriverPicksMac?: boolean;
  /**
   * i40e/ice: a new admin MAC resets the VF, and its driver comes back with
   * that MAC on its netdev (no driver reload needed; whatever was set on the
   * netdev before is gone).
   */
  macChangeResetsVf?: boolean;
}

const PROFILES: Record<SimProfileName, SimProfile> = {
  igb: {
    name: 'igb',
    model: 'Intel 82576',
    vendorId: '8086',
    deviceId: '10c9',
    vfDeviceId: '10ca',
    pfDriver: 'igb',
    vfDriver: 'igbvf',
    speedMbps: 1000,
    totalVfs: 7,
    maxMtu: 9216,
    hasEswitch: false,
    oui: '00:1b:21',
    quirks: { vfDriverPicksMac: true },
  },
  ixgbe: {
    name: 'ixgbe',
    model: 'Intel 82599ES',
    vendorId: '8086',
    deviceId: '10fb',
    vfDeviceId: '10ed',
    pfDriver: 'ixgbe',
    vfDriver: 'ixgbevf',
    speedMbps: 10000,
    totalVfs: 63,
    // IXGBE_MAX_JUMBO_FRAME_SIZE (9728) minus Ethernet header and FCS.
    maxMtu: 9710,
    hasEswitch: false,
    oui: '90:e2:ba',
    quirks: { maxRateFloorMbps: 10, linkStateEnableIgnored: true, vfDriverPicksMac: true },
  },
  i40e: {
    name: 'i40e',
    model: 'Intel Ethernet Controller X710',
    vendorId: '8086',
    deviceId: '1572',
    vfDeviceId: '154c',
    pfDriver: 'i40e',
    vfDriver: 'iavf',
    speedMbps: 10000,
    totalVfs: 64,
    // I40E_MAX_RXBUFFER (9728) minus header, FCS and two VLAN tags.
    maxMtu: 9702,
    hasEswitch: false,
    oui: '3c:fd:fe',
    quirks: { macChangeResetsVf: true, resetAfterCreate: true, raiseMaxRateToStep: true },
  },
  ice: {
    name: 'ice',
    model: 'Intel Ethernet Controller E810-C',
    vendorId: '8086',
    deviceId: '1592',
    vfDeviceId: '1889',
    pfDriver: 'ice',
    vfDriver: 'iavf',
    speedMbps: 100000,
    totalVfs: 256,
    maxMtu: 9702,
    hasEswitch: true,
    oui: 'b4:96:91',
    quirks: { macChangeResetsVf: true, minRateSumWithinLink: true },
  },
  mlx5: {
    name: 'mlx5',
    model: 'Mellanox ConnectX-6 Dx',
    vendorId: '15b3',
    deviceId: '101d',
    vfDeviceId: '101e',
    pfDriver: 'mlx5_core',
    vfDriver: 'mlx5_core',
    speedMbps: 100000,
    // The firmware's NUM_OF_VFS (mlxconfig), not the silicon limit.
    totalVfs: 16,
    maxMtu: 9978,
    hasEswitch: true,
    oui: '0c:42:a1',
    quirks: {},
  },
  bnxt: {
    name: 'bnxt',
    model: 'Broadcom BCM57414 NetXtreme-E',
    vendorId: '14e4',
    deviceId: '16d7',
    vfDeviceId: '16dc',
    pfDriver: 'bnxt_en',
    vfDriver: 'bnxt_en',
    speedMbps: 25000,
    totalVfs: 64,
    maxMtu: 9500,
    hasEswitch: true,
    oui: '00:0a:f7',
    quirks: {},
  },
};

/** pci.ids names for every device the sim can show. */
const VENDOR_NAMES: Record<string, string> = {
  '8086': 'Intel Corporation',
  '15b3': 'Mellanox Technologies',
  '14e4': 'Broadcom Inc. and subsidiaries',
};

const DEVICE_NAMES: Record<string, string> = {
  '8086:10c9': '82576 Gigabit Network Connection',
  '8086:10ca': '82576 Virtual Function',
  '8086:10fb': '82599ES 10-Gigabit SFI/SFP+ Network Connection',
  '8086:10ed': '82599 Ethernet Controller Virtual Function',
  '8086:1572': 'Ethernet Controller X710 for 10GbE SFP+',
  '8086:154c': 'Ethernet Virtual Function 700 Series',
  '8086:1592': 'Ethernet Controller E810-C for QSFP',
  '8086:1889': 'Ethernet Adaptive Virtual Function',
  '15b3:101d': 'MT2892 Family [ConnectX-6 Dx]',
  '15b3:101e': 'ConnectX Family mlx5Gen Virtual Function',
  '14e4:16d7': 'BCM57414 NetXtreme-E 10Gb/25Gb RDMA Ethernet Controller',
  '14e4:16dc': 'NetXtreme-E Ethernet Virtual Function',
};

export function simProfileNames(): SimProfileName[] {
  return Object.keys(PROFILES) as SimProfileName[];
}

export function isSimProfileName(name: string): name is SimProfileName {
  return Object.hasOwn(PROFILES, name);
}

/** The profile, or INVALID_ARGUMENT naming the ones that exist. */
export function simProfile(name: string): SimProfile {
  if (!isSimProfileName(name)) {
    throw invalid(`unknown sim profile "${name}" (one of: ${simProfileNames().join(', ')})`, name);
  }
  const profile = PROFILES[name];
  // Guard against the table drifting from the capability table the configurator uses.
  if (profile.totalVfs > capabilitiesOf(profile.pfDriver).maxVfs) {
    throw new Error(`sim profile ${name}: totalVfs above ${profile.pfDriver}'s ceiling`);
  }
  return profile;
}

export function pciNamesOf(vendorId: string, deviceId: string): { vendorName?: string; deviceName?: string } {
  const vendorName = VENDOR_NAMES[vendorId.toLowerCase()];
  const deviceName = DEVICE_NAMES[`${vendorId}:${deviceId}`.toLowerCase()];
  return { ...(vendorName && { vendorName }), ...(deviceName && { deviceName }) };
}
