/**
 * What each PF driver can do with VFs (field notes §3). Requests a driver
 * cannot honour are refused up front as UNSUPPORTED, before anything of them
 * is applied; unknown drivers get the permissive entry and their kernel
 * errors are mapped as they come.
 */
import { SriovError } from './errors.js';
import type { VfSettings, VlanProto } from './model.js';

export type VfField = keyof VfSettings;

export interface DriverCapabilities {
  driver: string;
  /** Hardware ceiling; the PF's sriov_totalvfs may be lower. */
  maxVfs: number;
  /** VF fields this driver refuses (the errno it answers with, for the message). */
  unsupported: Partial<Record<VfField, string>>;
  vlanProtos: VlanProto[];
  /** Rates are applied in steps of this many Mbps. */
  rateStepMbps: number;
  /** Whether min_tx_rate guarantees are enforced in hardware. */
  enforcesMinTxRate: boolean;
  /** max_tx_rate is refused (EINVAL) while the PF link is down, e.g. during the reset that enabling VFs causes. */
  rateNeedsLinkUp: boolean;
  /** The driver VFs of this PF bind to by default. */
  vfDriver: string | null;
  /**
   * Whether the PF may have a devlink eswitch mode. Without one, discovery
   * does not ask (`devlink dev eswitch show` is a process that can only answer "none").
   */
  hasEswitch: boolean;
  /**
   * The order an eswitch mode change takes on this driver, which the plan
   * shows as steps (null: the mode cannot be changed):
   * - `vfs-unbound` (mlx5): create the VFs, unbind them from their driver,
   *   set the mode, rebind them;
   * - `no-vfs` (ice): set the mode with no VFs, then create them;
   * - `any` (netdevsim): set the mode with or without VFs.
   */
  eswitchModeChange: 'vfs-unbound' | 'no-vfs' | 'any' | null;
  /**
   * How VF rates are set in switchdev mode: `devlink` rate leaves
   * (`tx_share`/`tx_max`: mlx5 and ice answer `ip link ... max_tx_rate` with
   * EOPNOTSUPP there), or `ip-link` as in legacy mode.
   */
  switchdevRates: 'devlink' | 'ip-link';
  /** Whether, in switchdev mode, devlink rate nodes (groups of VF leaves) can be made. */
  rateNodes: boolean;
  /**
   * Whether VFs are PCI functions, with a driver, an IOMMU group and maybe a
   * netdev. netdevsim's are not: they exist only as devlink ports, so no
   * binding, no attachment, and no `sriov_drivers_autoprobe`.
   */
  vfFunctions: boolean;
  /**
   * The link speed a driver that reports none through ethtool stands for
   * (`/sys/class/net/<PF>/speed` unreadable): netdevsim's is the ceiling its
   * rate code enforces (NSIM_LINK_SPEED_MAX, 5000 Mbit/s). Admission needs a
   * known speed for guarantees and groups.
   */
  impliedLinkSpeedMbps?: number;
  /**
   * How a new admin MAC reaches a bound VF's netdev: the PF driver resets
   * the VF itself and its driver comes back with it (`vf-reset`), or the VF
   * driver must be reloaded to pick it up (`driver-reload`: igb/ixgbe log
   * "Reload the VF driver").
   */
  adminMacTakesEffect: 'vf-reset' | 'driver-reload';
  /**
   * Whether the VF driver may set its netdev's MAC to the admin MAC itself
   * (`ip link set dev VF address <admin MAC>`), so that whoever sets it — a
   * container attach, inside the namespace — needs no driver reload.
   */
  vfMaySetAdminMac: boolean;
  notes: string[];
}

const TABLE: DriverCapabilities[] = [
  {
    driver: 'igb',
    maxVfs: 7,
    unsupported: { minTxRateMbps: 'EINVAL', linkState: 'EOPNOTSUPP' },
    vlanProtos: ['802.1Q'],
    rateStepMbps: 1,
    enforcesMinTxRate: false,
    rateNeedsLinkUp: true,
    vfDriver: 'igbvf',
    hasEswitch: false,
    eswitchModeChange: null,
    switchdevRates: 'ip-link',
    rateNodes: false,
    vfFunctions: true,
    adminMacTakesEffect: 'driver-reload',
    vfMaySetAdminMac: false,
    // Lab (igb/igbvf, kernel 6.1): `ip link set dev VF address <admin MAC>` inside a namespace without a
    // reload worked on a VF fresh from sriov_numvfs, but on VFs as vfleet attaches them it is refused
    // (EADDRNOTAVAIL, "VF requested MAC filter but is administratively denied"): igbvf reloads.
    notes: ['max_tx_rate needs the PF link up and is reset on a link speed change'],
  },
  {
    driver: 'ixgbe',
    maxVfs: 63,
    // ixgbe accepts `state enable` and silently ignores it: refuse rather than pretend.
    unsupported: { minTxRateMbps: 'EINVAL', linkState: 'ignored by ixgbe' },
    vlanProtos: ['802.1Q'],
    rateStepMbps: 1,
    enforcesMinTxRate: false,
    rateNeedsLinkUp: true,
    vfDriver: 'ixgbevf',
    hasEswitch: false,
    eswitchModeChange: null,
    switchdevRates: 'ip-link',
    rateNodes: false,
    vfFunctions: true,
    adminMacTakesEffect: 'driver-reload',
    vfMaySetAdminMac: false,
    notes: ['max_tx_rate only at 10G link speed', 'a trust change resets the VF', 'fewer VFs with DCB traffic classes'],
  },
  {
    driver: 'i40e',
    maxVfs: 128,
    unsupported: { minTxRateMbps: 'EINVAL' },
    vlanProtos: ['802.1Q'],
    rateStepMbps: 50,
    enforcesMinTxRate: false,
    rateNeedsLinkUp: false,
    vfDriver: 'iavf',
    hasEswitch: false,
    eswitchModeChange: null,
    switchdevRates: 'ip-link',
    rateNodes: false,
    vfFunctions: true,
    adminMacTakesEffect: 'vf-reset',
    vfMaySetAdminMac: true,
    notes: ['EAGAIN while another VF operation is pending'],
  },
  {
    driver: 'ice',
    maxVfs: 256,
    unsupported: {},
    vlanProtos: ['802.1Q'],
    rateStepMbps: 1,
    enforcesMinTxRate: true,
    rateNeedsLinkUp: false,
    vfDriver: 'iavf',
    hasEswitch: true,
    eswitchModeChange: 'no-vfs',
    switchdevRates: 'devlink',
    rateNodes: true,
    vfFunctions: true,
    adminMacTakesEffect: 'vf-reset',
    vfMaySetAdminMac: true,
    notes: ['MAC, VLAN and trust changes reset the VF', '802.1ad only in double-VLAN mode', 'no eswitch mode change while VFs exist'],
  },
  {
    driver: 'mlx5_core',
    maxVfs: 127,
    unsupported: {},
    vlanProtos: ['802.1Q', '802.1ad'],
    rateStepMbps: 1,
    enforcesMinTxRate: true,
    rateNeedsLinkUp: false,
    vfDriver: 'mlx5_core',
    hasEswitch: true,
    eswitchModeChange: 'vfs-unbound',
    switchdevRates: 'devlink',
    rateNodes: true,
    vfFunctions: true,
    adminMacTakesEffect: 'driver-reload',
    vfMaySetAdminMac: false,
    notes: ['max VFs set by firmware NUM_OF_VFS', 'switchdev mode gives each VF a representor'],
  },
  {
    driver: 'bnxt_en',
    maxVfs: 128,
    unsupported: { qos: 'EINVAL' },
    vlanProtos: ['802.1Q'],
    rateStepMbps: 1,
    enforcesMinTxRate: true,
    rateNeedsLinkUp: false,
    vfDriver: 'bnxt_en',
    hasEswitch: true,
    eswitchModeChange: 'any',
    switchdevRates: 'ip-link',
    rateNodes: false,
    vfFunctions: true,
    adminMacTakesEffect: 'driver-reload',
    vfMaySetAdminMac: false,
    notes: ['may enable fewer VFs than asked while the PF is down'],
  },
  /**
   * netdevsim, the kernel's test driver (drivers/net/netdevsim): a devlink
   * device with eswitch modes, VF representor ports and the full devlink rate
   * API, but no PCI: its VFs are only ports. CI builds it out of tree to test
   * the devlink layer on a real kernel; it is more permissive than real NICs.
   */
  {
    driver: 'netdevsim',
    // The debugfs `max_vfs` is the PF's own limit; port indexes cap it here.
    maxVfs: 127,
    unsupported: {},
    vlanProtos: ['802.1Q', '802.1ad'],
    rateStepMbps: 1,
    enforcesMinTxRate: true,
    rateNeedsLinkUp: false,
    vfDriver: null,
    hasEswitch: true,
    eswitchModeChange: 'any',
    switchdevRates: 'devlink',
    rateNodes: true,
    vfFunctions: false,
    impliedLinkSpeedMbps: 5000,
    adminMacTakesEffect: 'vf-reset',
    vfMaySetAdminMac: false,
    notes: ["the kernel's test driver: VFs are devlink ports only (no PCI function, no netdev)", 'rates in whole Mbit/s up to 5000'],
  },
];

const BY_DRIVER = new Map(TABLE.map((c) => [c.driver, c]));

export function capabilitiesOf(driver: string | null): DriverCapabilities {
  return (
    (driver && BY_DRIVER.get(driver)) || {
      driver: driver ?? 'unknown',
      maxVfs: 4096,
      unsupported: {},
      vlanProtos: ['802.1Q', '802.1ad'],
      rateStepMbps: 1,
      enforcesMinTxRate: true,
      rateNeedsLinkUp: false,
      vfDriver: null,
      hasEswitch: true,
      eswitchModeChange: null,
      switchdevRates: 'ip-link',
      rateNodes: false,
      vfFunctions: true,
      adminMacTakesEffect: 'driver-reload',
      vfMaySetAdminMac: false,
      notes: ['unknown driver: kernel errors are reported as they come'],
    }
  );
}

/**
 * An allocation's VF settings as this driver's VF takes them: a guarantee
 * the driver refuses (igb answers min_tx_rate with EINVAL) is only
 * accounted, never written (the scheduler admits one on such a PF only on an
 * accounting-only physnet), so min_tx_rate stays 0, as the driver reports
 * it. The agent applies this, and CHECK and the isolation audit compare with
 * it; an explicit `vf set --min-tx-rate` is still refused.
 */
export function enforceableSettings<T extends VfSettings>(driver: string | null, settings: T): T {
  if (!settings.minTxRateMbps || capabilitiesOf(driver).unsupported.minTxRateMbps === undefined) return settings;
  return { ...settings, minTxRateMbps: 0 };
}

export function knownDrivers(): string[] {
  return TABLE.map((c) => c.driver);
}

/** Is a requested value of this field a no-op (so harmless even where unsupported)? */
function isNeutral(field: VfField, settings: VfSettings): boolean {
  switch (field) {
    case 'minTxRateMbps':
      return settings.minTxRateMbps === 0;
    case 'qos':
      return settings.qos === 0;
    case 'linkState':
      return settings.linkState === 'auto';
    default:
      return false;
  }
}

/**
 * Refuse settings this driver cannot apply, naming the field. Called before
 * anything is written, so a refused request changes nothing.
 */
export function checkVfSettings(caps: DriverCapabilities, settings: VfSettings, object: string): void {
  for (const [field, errno] of Object.entries(caps.unsupported) as Array<[VfField, string]>) {
    if (settings[field] !== undefined && !isNeutral(field, settings)) {
      throw new SriovError('UNSUPPORTED', `${caps.driver} does not support ${field} on ${object} (${errno})`, {
        object,
        errno,
        nothingChanged: true,
      });
    }
  }
  if (settings.vlanProto && !caps.vlanProtos.includes(settings.vlanProto)) {
    throw new SriovError('UNSUPPORTED', `${caps.driver} does not support VLAN protocol ${settings.vlanProto} on ${object}`, {
      object,
      nothingChanged: true,
    });
  }
  for (const field of ['minTxRateMbps', 'maxTxRateMbps'] as const) {
    const rate = settings[field];
    if (rate !== undefined && rate % caps.rateStepMbps !== 0) {
      throw new SriovError(
        'UNSUPPORTED',
        `${caps.driver} sets ${field} in steps of ${caps.rateStepMbps} Mbps; ${rate} is not a multiple (${object})`,
        { object, nothingChanged: true },
      );
    }
  }
}

/**
 * VF drivers that migrate a VF's device state with the VM (the kernel's
 * vfio migration uAPI, VFIO_DEVICE_FEATURE_MIGRATION): a VM whose VF is
 * bound to one can live-migrate without a failover standby, the VF staying
 * plugged. Each needs the same driver at the destination.
 */
const VFIO_MIGRATION_DRIVERS: readonly string[] = ['mlx5_vfio_pci', 'hisi_acc_vfio_pci', 'pds_vfio_pci', 'virtio_vfio_pci', 'qat_vfio_pci'];

export function isVfioMigrationDriver(driver: string | null): boolean {
  return driver !== null && VFIO_MIGRATION_DRIVERS.includes(driver);
}

export function vfioMigrationDrivers(): readonly string[] {
  return VFIO_MIGRATION_DRIVERS;
}
