/**
 * The OS boundary: the only interfaces through which vfleet touches a host.
 * `linux/` implements them on real sysfs, iproute2 and devlink; `../sim/`
 * implements them on a simulated host whose state lives in a file. Every
 * other layer depends on these interfaces only.
 *
 * Ports report raw facts and raw kernel errors (`KernelError`); turning those
 * into user-facing, typed errors is the configurator's job.
 */
import { randomBytes } from 'node:crypto';
import type { EswitchMode, LinkState, RateLimits, VfConfig, VfStats, VlanProto } from './model.js';

/** A failed write or call, with the kernel's errno name (`EBUSY`, `EOPNOTSUPP`...). */
export class KernelError extends Error {
  constructor(
    readonly errno: string,
    readonly operation: string,
    message?: string,
  ) {
    super(message ?? `${operation}: ${errno}`);
    this.name = 'KernelError';
  }
}

export interface PciDeviceFacts {
  pciAddress: string;
  vendorId: string;
  deviceId: string;
  /** Bound driver name; null when unbound. */
  driver: string | null;
  driverOverride: string | null;
  numaNode: number | null;
  localCpus: string | null;
  iommuGroup: number | null;
  /** Netdev names under `<dev>/net/`. */
  netdevs: string[];
}

/** What the inventory needs of a VF's PCI function: who drives it, and how it is reached. */
export type VfDeviceFacts = Pick<PciDeviceFacts, 'pciAddress' | 'driver' | 'driverOverride' | 'iommuGroup' | 'netdevs'>;

export interface PfPciFacts extends PciDeviceFacts {
  totalVfs: number;
  numVfs: number;
  autoprobe: boolean;
  vfDeviceId: string | null;
  /** From the `virtfnN` links: index → VF PCI address. */
  vfs: Array<{ index: number; pciAddress: string }>;
}

export interface NetdevFacts {
  name: string;
  mac: string | null;
  mtu: number | null;
  operState: 'up' | 'down' | 'unknown';
  /** null when the link is down or the driver does not say. */
  speedMbps: number | null;
}

/** PCI side: `/sys/bus/pci/devices/<BDF>/` and `/sys/class/net/<ifname>/`. */
export interface PciSysfs {
  /** PCI addresses of every device with an SR-IOV capability (`sriov_totalvfs`). */
  listSriovPfs(): Promise<string[]>;
  readPf(pciAddress: string): Promise<PfPciFacts>;
  /** A VF's driver, driver_override, IOMMU group and netdevs (4 reads: a walk does this per VF). */
  readVf(pciAddress: string): Promise<VfDeviceFacts>;
  /** null when no such netdev exists. */
  readNetdev(name: string): Promise<NetdevFacts | null>;
  /** The PCI address behind a netdev (`/sys/class/net/<name>/device`), or null. */
  pciAddressOfNetdev(name: string): Promise<string | null>;
  /** `echo N > sriov_numvfs` */
  writeNumVfs(pciAddress: string, numVfs: number): Promise<void>;
  /** `echo 0|1 > sriov_drivers_autoprobe` */
  writeAutoprobe(pciAddress: string, on: boolean): Promise<void>;
}

/** Driver binding through `driver_override` + `drivers_probe` (field notes §1). */
export interface DriverBinding {
  /**
   * Bind `pciAddress` to `driver`: write `driver` to driver_override, unbind
   * from the current driver, write the BDF to /sys/bus/pci/drivers_probe.
   * `driver` null clears driver_override and probes whatever the kernel picks.
   */
  bind(pciAddress: string, driver: string | null): Promise<void>;
  /** `echo BDF > driver/unbind` */
  unbind(pciAddress: string): Promise<void>;
}

/** One VF entry as the PF reports it (`ip -j -d link show <PF>`, `vfinfo_list`). */
export interface VfLinkEntry extends VfConfig {
  index: number;
  stats?: VfStats;
}

export interface PfLinkFacts {
  mac: string | null;
  mtu: number | null;
  operState: 'up' | 'down' | 'unknown';
  vfs: VfLinkEntry[];
}

/**
 * One iproute2 batch line: a single group of VF attributes that the kernel
 * sets together, so a failure points at exactly one group.
 */
export type VfOp =
  | { vf: number; field: 'mac'; mac: string }
  | { vf: number; field: 'vlan'; vlan: number; qos: number; vlanProto: VlanProto }
  | { vf: number; field: 'rate'; minTxRateMbps: number; maxTxRateMbps: number }
  | { vf: number; field: 'spoofChk'; on: boolean }
  | { vf: number; field: 'trust'; on: boolean }
  | { vf: number; field: 'linkState'; state: LinkState };

export type BatchResult =
  /** `after`: the PF as read back in the same run, when asked for (`readBack`). */
  | { ok: true; after?: PfLinkFacts }
  /** `failedAt` is the index of the op that failed; ops before it took effect. */
  | { ok: false; failedAt: number; errno: string; message: string };

/** Link side: rtnetlink through iproute2's JSON output and batch mode. */
export interface LinkConfig {
  /** `ip -j -d [-s] link show dev <PF>` */
  showPf(pfNetdev: string, opts?: { stats?: boolean }): Promise<PfLinkFacts>;
  /**
   * `ip -batch -` with one `link set dev <PF> vf N ...` line per op, stopping
   * at the first failure. With `readBack`, a last `link show dev <PF>` line
   * in the same process reads the PF back (`ip -j -d -batch -`): one process
   * for the write and its verification.
   */
  applyVfOps(pfNetdev: string, ops: VfOp[], opts?: { readBack?: boolean }): Promise<BatchResult>;
  /** `ip link set dev <netdev> mtu N` */
  setMtu(netdev: string, mtu: number): Promise<void>;
  /** `ip link set dev <netdev> up` */
  setUp(netdev: string): Promise<void>;
}

/** A devlink port (`devlink -j port show <dev>`). */
export interface DevlinkPortFacts {
  /** Its handle: `pci/0000:3b:00.0/2`, `netdevsim/netdevsim10/128`. */
  port: string;
  /** `physical` (the uplink), `pcipf`, `pcivf` (a VF's representor), `virtual`... */
  flavour: string;
  /** The port's netdev (for `pcivf`: the representor), null when it has none. */
  netdev: string | null;
  pfnum: number | null;
  vfnum: number | null;
}

/** A devlink rate object (`devlink -j port function rate show`), rates in whole Mbit/s. */
export interface DevlinkRateFacts extends RateLimits {
  /** `pci/0000:3b:00.0/2` for a leaf (a port), `pci/0000:3b:00.0/vfleet-acme` for a node. */
  object: string;
  type: 'leaf' | 'node';
  /** The parent node's name, null for none. */
  parent: string | null;
}

/** A rate object change: absent fields are left as they are; `parent` null is `noparent`. */
export type RateChange = Partial<RateLimits> & { parent?: string | null };

/**
 * devlink: the eswitch, its ports and their rates. `device` is the PF's
 * address as the inventory has it (a PCI address, or `netdevsim<N>`), which
 * the implementation turns into the devlink handle (`pci/<BDF>`,
 * `netdevsim/netdevsim<N>`). Writes fail with the kernel's `KernelError`
 * (errno and its extack message), as the other ports do.
 */
export interface Devlink {
  /** `devlink -j dev eswitch show <dev>`; null when the device has no eswitch. */
  eswitchMode(device: string): Promise<EswitchMode | null>;
  /** `devlink dev eswitch set <dev> mode legacy|switchdev`. Some drivers change the mode and still fail: read it back. */
  setEswitchMode(device: string, mode: EswitchMode): Promise<void>;
  /** `devlink -j port show` of this device's ports. */
  ports(device: string): Promise<DevlinkPortFacts[]>;
  /** `devlink -j port function rate show` of this device's rate objects (leaves and nodes); [] when it has none. */
  rates(device: string): Promise<DevlinkRateFacts[]>;
  /** `devlink port function rate add <dev>/<name> tx_share Nmbit tx_max Nmbit` (switchdev mode only). */
  addRateNode(device: string, name: string, limits: RateLimits): Promise<void>;
  /** `devlink port function rate set <object> [tx_share Nmbit] [tx_max Nmbit] [parent <node> | noparent]` */
  setRate(object: string, change: RateChange): Promise<void>;
  /** `devlink port function rate del <dev>/<name>` (refused while it has children). */
  deleteRateNode(device: string, name: string): Promise<void>;
}

/** A link as seen inside a network namespace (`ip -j -d addr show` there). */
export interface NetnsLink {
  ifname: string;
  /** From `parentdev` (`ip -d`): which PCI function this netdev belongs to; null for virtual links. */
  pciAddress: string | null;
  mac: string | null;
  mtu: number | null;
  up: boolean;
  /** CIDR strings, e.g. `198.18.0.10/24`. */
  addresses: string[];
}

export interface NetnsRoute {
  /** CIDR, or `default`. */
  dst: string;
  gw?: string;
}

/** What a VF netdev looks like once handed to a container. */
export interface ContainerLinkSpec {
  ifname: string;
  mac: string;
  mtu: number | null;
  addresses: string[];
  routes: NetnsRoute[];
}

/**
 * `vfl` + 8 hex: the host-unique name a NetnsPort gives a netdev in transit
 * (11 characters, within IFNAMSIZ), so a move or rename cannot collide. Never
 * meant to stay.
 */
export const transitName = (): string => `vfl${randomBytes(4).toString('hex')}`;

const TRANSIT_NAMES = /\bvfl[0-9a-f]{8}\b/g;

export const isTransitName = (name: string): boolean => /^vfl[0-9a-f]{8}$/.test(name);

/** `text` with its transit names blanked out, so one failure reads the same at every attempt. */
export const withoutTransitNames = (text: string): string => text.replace(TRANSIT_NAMES, 'vfl<transit>');

/**
 * Network namespaces, named by path (`/var/run/netns/NAME`, `/proc/PID/ns/net`):
 * `ip link set dev X netns PATH`, and `nsenter --net=PATH ip ...` inside.
 */
export interface NetnsPort {
  /** Whether `nsPath` is a network namespace. */
  exists(nsPath: string): Promise<boolean>;
  /** The namespace's links; the VF is found by its PCI address. */
  links(nsPath: string): Promise<NetnsLink[]>;
  /**
   * Moves host netdev `netdev` into the namespace and configures it as
   * `spec` (rename, MTU, MAC, addresses, up, routes). Fails with EEXIST,
   * changing nothing, when `spec.ifname` is taken in the namespace.
   */
  attach(netdev: string, nsPath: string, spec: ContainerLinkSpec): Promise<void>;
  /** Moves `ifname` out of the namespace, back into the host's, named `hostName` and down. */
  detach(nsPath: string, ifname: string, hostName: string): Promise<void>;
  /** `ip link set dev NAME name NEW` in the host namespace (a VF that came back from a vanished namespace). */
  rename(netdev: string, newName: string): Promise<void>;
  /**
   * Moves host netdev `netdev` into the namespace as `ifname`, down and
   * unconfigured (a re-home's new VF, before the old one lets go). Fails with
   * EEXIST, changing nothing, when `ifname` is taken in the namespace; a
   * failure after the move brings it back under its own name.
   */
  moveIn(netdev: string, nsPath: string, ifname: string): Promise<void>;
  /** `nsenter --net=P ip link set dev NAME down` */
  setDown(nsPath: string, ifname: string): Promise<void>;
  /**
   * `nsenter --net=P ip link set dev NAME name NEW`. As in Linux, a netdev
   * that is up cannot be renamed (EBUSY), and a name is unique in its
   * namespace (EEXIST).
   */
  renameIn(nsPath: string, ifname: string, newName: string): Promise<void>;
  /**
   * Makes `spec.ifname`, already in the namespace, look like `spec`: MTU,
   * MAC, addresses (`ip addr replace`), up, routes (`ip route replace`), and
   * reads it back. Only what differs is changed, so it can run again.
   */
  configure(nsPath: string, spec: ContainerLinkSpec): Promise<void>;
  /**
   * A per-interface sysctl inside the namespace: `sysctl net.ipv4.conf.IF.arp_notify`
   * (`net.ipv6.conf.IF.ndisc_notify`). null when the namespace has no such
   * entry (IPv6 disabled).
   */
  readSysctl(nsPath: string, ifname: string, key: IfSysctl): Promise<number | null>;
  /** `sysctl -w net.ipv4.conf.IF.arp_notify=V` inside the namespace (a write of `/proc/sys/net/...` there). */
  writeSysctl(nsPath: string, ifname: string, key: IfSysctl, value: 0 | 1): Promise<void>;
  /**
   * Once `ifname` has carrier (waiting a few seconds at most), sets its MAC
   * again, `ip link set dev IF address MAC` with the MAC it has: the
   * kernel's NETDEV_CHANGEADDR, on which `arp_notify`/`ndisc_notify` send a
   * gratuitous ARP and an unsolicited neighbour advertisement. The ones sent
   * as it came up may have left before it had carrier (a VF's link follows
   * a moment after its netdev). Returns whether it had carrier.
   */
  announce(nsPath: string, ifname: string): Promise<boolean>;
  /**
   * Brings `ifname` up until it has carrier (a few seconds at most), silent
   * (no IPv4 address, IPv6 address generation off: `ip link set dev IF
   * addrgenmode none up`), then down again with address generation back on.
   * A VF's first link-up after its reset takes seconds (igbvf: 2.6 s in the
   * lab), a later one about 0.1 s: done before a re-home's switch, it keeps
   * that wait out of the workload's blackout. Returns whether it had carrier.
   */
  warm(nsPath: string, ifname: string): Promise<boolean>;
}

/**
 * The per-interface sysctls a re-home sets, by their `/proc/sys/net` family:
 * with them on, the kernel announces the interface's addresses when it comes
 * up or changes its MAC (gratuitous ARP, unsolicited neighbour advertisement).
 */
export const IF_SYSCTLS = { arp_notify: 'ipv4', ndisc_notify: 'ipv6' } as const;
export type IfSysctl = keyof typeof IF_SYSCTLS;

export const isIfSysctl = (key: string): key is IfSysctl => Object.hasOwn(IF_SYSCTLS, key);

/**
 * Where a VF's counters came from: the PF's per-VF counters (`IFLA_VF_STATS`
 * in `ip -s -j link show dev <PF>`), the VF netdev's own
 * (`/sys/class/net/<vf>/statistics/`, when the driver leaves IFLA_VF_STATS
 * empty), or the simulated host's generator.
 */
export type CounterSource = 'vf-stats' | 'netdev' | 'simulated';

/** One VF's counters; `counters` null when they cannot be read, `missing` saying why (never zeros instead). */
export interface VfCounterRead {
  index: number;
  counters: VfStats | null;
  source: CounterSource | null;
  missing?: string;
}

/** A PF's own counters and its VFs', read at one moment. */
export interface PfCounterRead {
  /** The PF netdev's own counters (`stats64`); null when unreadable. */
  pf: VfStats | null;
  vfs: VfCounterRead[];
  /** Generated by the simulated host, not read from a NIC. */
  simulated: boolean;
}

/** Traffic counters (the agent samples them every few seconds). */
export interface CounterPort {
  /**
   * `ip -s -j -d link show dev <PF>`: the PF's counters and its VFs'. `vfs`
   * names each VF's netdev in the host namespace (null: none there), read
   * when the PF's driver does not fill IFLA_VF_STATS (`driver`: the PF's).
   */
  read(pfNetdev: string, driver: string | null, vfs: ReadonlyArray<{ index: number; netdev: string | null }>): Promise<PfCounterRead>;
}

export interface HostPorts {
  sysfs: PciSysfs;
  links: LinkConfig;
  drivers: DriverBinding;
  devlink: Devlink;
  netns: NetnsPort;
  counters: CounterPort;
  hostname(): string;
  /** The running kernel's boot id (`/proc/sys/kernel/random/boot_id`); null when it cannot be read. */
  bootId?(): Promise<string | null>;
  /** Vendor/device names from pci.ids, when that file is present. */
  pciNames?(vendorId: string, deviceId: string): Promise<{ vendorName?: string; deviceName?: string }>;
}
