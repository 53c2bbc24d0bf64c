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
  pciAddress: string;
  driver: string | null;
  driverOverride: string | null;
  netdev: string | null;
  iommuGroup: number | null;
  stats?: VfStats;
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
