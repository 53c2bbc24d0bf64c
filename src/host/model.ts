/**
 * The host inventory, in the field's words. Field names here are a public
 * contract (`sriovctl host inventory -o json`, the HTTP API).
 */
export type LinkState = 'auto' | 'enable' | 'disable';
export type VlanProto = '802.1Q' | '802.1ad';
export type EswitchMode = 'legacy' | 'switchdev';

/** The PF-side configuration of one VF (`ip link set <PF> vf N ...`). */
export interface VfConfig {
  mac: string;
  vlan: number;
  qos: number;
  vlanProto: VlanProto;
  minTxRateMbps: number;
  maxTxRateMbps: number;
  /** null when the driver does not report it. */
  spoofChk: boolean | null;
  trust: boolean | null;
  linkState: LinkState;
}

export interface VfStats {
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
  rxDropped: number;
  txDropped: number;
}

export interface VfInfo extends VfConfig {
  index: number;
  /**
   * The VF's PCI function. A VF of netdevsim (the kernel's test driver, not
   * PCI) has none: it reads `netdevsim<N>:vf<M>` (see `nsimVfAddress`).
   */
  pciAddress: string;
  driver: string | null;
  driverOverride: string | null;
  netdev: string | null;
  iommuGroup: number | null;
  stats?: VfStats;
  /** In switchdev mode: the VF's switch-side port; absent in legacy mode or without an eswitch. */
  representor?: VfRepresentor | null;
  /**
   * Where the PF rates VFs through devlink rate leaves (switchdev): the rate
   * node this VF's leaf is parented to, null for none. Absent otherwise.
   * `minTxRateMbps`/`maxTxRateMbps` then read the leaf's `tx_share`/`tx_max`.
   */
  rateParent?: string | null;
}

/**
 * A VF's representor: the netdev whose `phys_port_name` is `pf<P>vf<N>` and
 * which shares the PF's `phys_switch_id` (what OVS takes: `ovs-vsctl add-port
 * br-int <netdev>`), and its devlink port.
 */
export interface VfRepresentor {
  /** null when the port has no netdev (yet). */
  netdev: string | null;
  /** The devlink port handle: `pci/0000:3b:00.0/2`, `netdevsim/netdevsim10/128`. */
  devlinkPort: string;
}

/** A devlink rate object's limits in whole Mbit/s; 0 is no limit (no guarantee). */
export interface RateLimits {
  txShareMbps: number;
  txMaxMbps: number;
}

/** A devlink rate node (a group its children share): `devlink port function rate show` type node. */
export interface RateNode extends RateLimits {
  name: string;
  /** Its own parent node, null for none. */
  parent: string | null;
}

export interface PfInfo {
  name: string;
  pciAddress: string;
  vendorId: string;
  deviceId: string;
  vendorName?: string;
  deviceName?: string;
  driver: string | null;
  mac: string | null;
  mtu: number | null;
  linkState: 'up' | 'down' | 'unknown';
  linkSpeedMbps: number | null;
  numaNode: number | null;
  localCpus: string | null;
  totalVfs: number;
  numVfs: number;
  autoprobe: boolean;
  eswitchMode: EswitchMode | null;
  vfDeviceId: string | null;
  vfs: VfInfo[];
  /**
   * The PF's devlink rate nodes, every one (vfleet's are named `vfleet-<tenant>`;
   * others are never touched). Present only where the PF has devlink rate
   * objects (switchdev mode on a driver with rate nodes).
   */
  rateNodes?: RateNode[];
}

export interface HostInventory {
  hostname: string;
  /**
   * The running kernel's boot id (`/proc/sys/kernel/random/boot_id`; the sim
   * keeps one per state file). Two agents that report the same one share a
   * kernel, so their network namespaces are the same ones: a container may
   * then be re-homed between their PFs (`--pfs` splits one machine's PFs
   * between agents). Absent from agents that do not report it.
   */
  bootId?: string;
  pfs: PfInfo[];
}

/** A requested change to one VF; absent fields are left as they are. */
export type VfSettings = Partial<VfConfig>;

/** The values a VF carries when no tenant owns it (field notes §7.3). */
export const SCRUBBED_VF_CONFIG: Readonly<VfConfig> = Object.freeze({
  mac: '00:00:00:00:00:00',
  vlan: 0,
  qos: 0,
  vlanProto: '802.1Q',
  minTxRateMbps: 0,
  maxTxRateMbps: 0,
  spoofChk: true,
  trust: false,
  linkState: 'auto',
});
