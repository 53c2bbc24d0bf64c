/**
 * HostPorts over a simulated host whose state lives in a JSON file. Every
 * call reads the file afresh (another process may have changed the host),
 * and every change runs under the state lock, so several `SimHost`s — in one
 * process or many — behave like several tools on one machine.
 */
import {
  type BatchResult,
  type HostPorts,
  type NetdevFacts,
  type PciDeviceFacts,
  type PfLinkFacts,
  type PfPciFacts,
  type VfLinkEntry,
  type VfOp,
} from '../host/ports.js';
import { pfOperState } from './cable.js';
import { forgetNetdev, hasOrphans, nameNewNetdev, reclaimOrphans, simNetnsPort } from './netns.js';
import { pciNamesOf, simProfile } from './profiles.js';
import { parseIfName } from '../host/validate.js';
import { SimTraffic } from './traffic.js';
import { ERRNO_TEXT, kernelError } from './kernel-error.js';
import { onVfsRemoved, pfNetdevs, simDevlink } from './devlink.js';
import { fileSimState, type SimPf, type SimState, type SimStateSource, type SimVf } from './state.js';
import { applyVfOp, bindVf, createVf, currentStats, detach, vfNetdevMac } from './vf-driver.js';

// ---- lookups -------------------------------------------------------------------

interface Found {
  pf: SimPf;
  vf?: SimVf;
}

const norm = (address: string) => address.trim().toLowerCase();

interface Index {
  byAddress: Map<string, Found>;
  byNetdev: Map<string, Found>;
}

/** Lookup tables per frozen snapshot: an inventory walk of 16k VFs must not be quadratic. */
const indexes = new WeakMap<SimState, Index>();

function indexOf(state: SimState): Index {
  let index = indexes.get(state);
  if (!index) {
    index = { byAddress: new Map(), byNetdev: new Map() };
    for (const pf of state.pfs) {
      index.byAddress.set(pf.pciAddress, { pf });
      index.byNetdev.set(pf.name, { pf });
      for (const vf of pf.vfs) {
        index.byAddress.set(vf.pciAddress, { pf, vf });
        if (vf.netdev) index.byNetdev.set(vf.netdev, { pf, vf });
      }
    }
    indexes.set(state, index);
  }
  return index;
}

function scan(state: SimState, match: (pf: SimPf, vf?: SimVf) => boolean): Found | undefined {
  for (const pf of state.pfs) {
    if (match(pf)) return { pf };
    const vf = pf.vfs.find((v) => match(pf, v));
    if (vf) return { pf, vf };
  }
  return undefined;
}

// Snapshots are frozen and can be indexed once; a state being changed is scanned.
function findDevice(state: SimState, address: string): Found | undefined {
  const bdf = norm(address);
  if (Object.isFrozen(state)) return indexOf(state).byAddress.get(bdf);
  return scan(state, (pf, vf) => (vf ?? pf).pciAddress === bdf);
}

function findNetdev(state: SimState, name: string): Found | undefined {
  if (Object.isFrozen(state)) return indexOf(state).byNetdev.get(name);
  return scan(state, (pf, vf) => (vf ? vf.netdev === name : pf.name === name));
}

/** The PF at `address`; sriov_* files exist only on PFs, hence ENOENT otherwise. */
function pfAt(state: SimState, address: string, operation: string): SimPf {
  const found = findDevice(state, address);
  if (!found || found.vf) throw kernelError('ENOENT', operation);
  return found.pf;
}

function vfAt(state: SimState, address: string, operation: string): Found & { vf: SimVf } {
  const found = findDevice(state, address);
  if (!found) throw kernelError('ENODEV', operation);
  // PFs carry the host's own networking; the simulator does not rebind them.
  if (!found.vf) throw kernelError('EINVAL', operation, 'the simulator rebinds VFs only');
  return { pf: found.pf, vf: found.vf };
}

function netdevAt(state: SimState, name: string, operation: string): Found {
  const found = findNetdev(state, name);
  if (!found) throw kernelError('ENODEV', operation, `Cannot find device "${name}"`);
  return found;
}

// ---- facts ---------------------------------------------------------------------

function pfDeviceFacts(pf: SimPf): PciDeviceFacts {
  const profile = simProfile(pf.profile);
  return {
    pciAddress: pf.pciAddress,
    vendorId: profile.vendorId,
    deviceId: profile.deviceId,
    driver: pf.driver,
    driverOverride: null,
    numaNode: pf.numaNode,
    localCpus: pf.localCpus,
    iommuGroup: pf.iommuGroup,
    netdevs: pfNetdevs(pf),
  };
}

function vfDeviceFacts(pf: SimPf, vf: SimVf): PciDeviceFacts {
  const profile = simProfile(pf.profile);
  return {
    pciAddress: vf.pciAddress,
    vendorId: profile.vendorId,
    deviceId: profile.vfDeviceId,
    driver: vf.driver,
    driverOverride: vf.driverOverride,
    numaNode: pf.numaNode,
    localCpus: pf.localCpus,
    iommuGroup: vf.iommuGroup,
    netdevs: vf.netdev ? [vf.netdev] : [],
  };
}

function pfPciFacts(pf: SimPf): PfPciFacts {
  const profile = simProfile(pf.profile);
  return {
    ...pfDeviceFacts(pf),
    totalVfs: profile.totalVfs,
    numVfs: pf.numVfs,
    autoprobe: pf.autoprobe,
    vfDeviceId: profile.vfDeviceId,
    vfs: pf.vfs.map((v) => ({ index: v.index, pciAddress: v.pciAddress })),
  };
}

/** A VF netdev has carrier when it is up and its link is forced on, or follows an up PF. */
function vfOperState(pf: SimPf, vf: SimVf): 'up' | 'down' {
  const carrier = vf.linkState === 'enable' || (vf.linkState === 'auto' && pfOperState(pf) === 'up');
  return vf.netdevUp && carrier ? 'up' : 'down';
}

function netdevFacts({ pf, vf }: Found): NetdevFacts {
  if (!vf) {
    const operState = pfOperState(pf);
    return { name: pf.name, mac: pf.mac, mtu: pf.mtu, operState, speedMbps: operState === 'up' ? pf.speedMbps : null };
  }
  const operState = vfOperState(pf, vf);
  return {
    name: vf.netdev ?? '',
    mac: vf.netdevMac ?? vfNetdevMac(pf, vf),
    mtu: vf.netdevMtu,
    operState,
    speedMbps: operState === 'up' ? pf.speedMbps : null,
  };
}

function vfLinkEntry(vf: SimVf, stats: boolean, now: number): VfLinkEntry {
  const entry: VfLinkEntry = {
    index: vf.index,
    mac: vf.mac,
    vlan: vf.vlan,
    qos: vf.qos,
    vlanProto: vf.vlanProto,
    minTxRateMbps: vf.minTxRateMbps,
    maxTxRateMbps: vf.maxTxRateMbps,
    spoofChk: vf.spoofChk,
    trust: vf.trust,
    linkState: vf.linkState,
  };
  if (stats) entry.stats = currentStats(vf, now);
  return entry;
}

// ---- changes -------------------------------------------------------------------

/** `echo N > sriov_numvfs`, with the kernel's rules (field notes §1). */
function setNumVfs(pf: SimPf, numVfs: number, now: number): void {
  const op = `write ${pf.pciAddress}/sriov_numvfs`;
  const total = simProfile(pf.profile).totalVfs;
  if (!Number.isInteger(numVfs) || numVfs < 0) throw kernelError('EINVAL', op);
  if (numVfs > total) throw kernelError('ERANGE', op, `sriov_totalvfs is ${total}`);
  if (numVfs === pf.numVfs) return;
  if (numVfs !== 0 && pf.numVfs !== 0) throw kernelError('EBUSY', op, `${pf.numVfs} VFs already enabled; write 0 first`);
  for (const vf of pf.vfs) detach(vf, now);
  if (numVfs === 0) onVfsRemoved(pf);
  pf.vfs = Array.from({ length: numVfs }, (_, i) => createVf(pf, i, now));
  pf.numVfs = numVfs;
}

function setMtu(found: Found, mtu: number, operation: string): void {
  const max = simProfile(found.pf.profile).maxMtu;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > max) {
    throw kernelError('EINVAL', operation, `mtu ${mtu} outside 68-${max}`);
  }
  if (found.vf) found.vf.netdevMtu = mtu;
  else found.pf.mtu = mtu;
}

function setUp({ pf, vf }: Found): void {
  if (vf) vf.netdevUp = true;
  else pf.operState = 'up';
}

/** Ops in order, stopping at the first refusal: `ip -batch` without `-force`. */
function runBatch(pf: SimPf, ops: VfOp[], now: number): BatchResult {
  for (const [i, op] of ops.entries()) {
    const refusal = applyVfOp(pf, op, now);
    if (refusal) {
      const text = ERRNO_TEXT[refusal.errno] ?? refusal.errno;
      const message = `link set dev ${pf.name} vf ${op.vf} ${op.field}: ${refusal.reason}; RTNETLINK answers: ${text}`;
      return { ok: false, failedAt: i, errno: refusal.errno, message };
    }
  }
  return { ok: true };
}

// ---- the ports -----------------------------------------------------------------

/** A simulated host; `ports` is what the rest of vfleet talks to. */
export class SimHost {
  readonly ports: HostPorts;

  private readonly source: SimStateSource;
  private readonly traffic = new SimTraffic();

  /**
   * `state`: the state file's path, or a source of its own (the fleet
   * simulator keeps its hosts in memory). `clock` is injectable so tests can
   * drive the traffic counters.
   */
  constructor(
    state: string | SimStateSource,
    private readonly clock: () => number = Date.now,
  ) {
    this.source = typeof state === 'string' ? fileSimState(state) : state;
    this.ports = {
      sysfs: this.sysfs(),
      links: this.links(),
      drivers: this.drivers(),
      devlink: simDevlink({ read: (fn) => this.read(fn), update: (fn) => this.update((s) => fn(s)) }),
      netns: simNetnsPort({ read: (fn) => this.read(fn), update: (fn) => this.update((s) => fn(s)) }),
      // The name is checked as Linux checks it, before it reaches a path or command.
      counters: { read: async (name) => this.read((s) => this.traffic.read(pfNamed(s, parseIfName(name)), this.clock())) },
      hostname: () => this.source.readSync().hostname,
      bootId: () => this.source.bootId(),
      pciNames: async (vendorId, deviceId) => pciNamesOf(vendorId, deviceId),
    };
  }

  /** `vfAddress`: the read concerns that VF only, so only its namespace needs to be alive (an inventory reads every VF). */
  private async read<T>(fn: (state: SimState) => T, vfAddress?: string): Promise<T> {
    const state = await this.source.read();
    if (!hasOrphans(state, vfAddress)) return fn(state);
    // A namespace holding a VF netdev vanished: the kernel has already given the netdev back.
    await this.update(() => undefined);
    return fn(await this.source.read());
  }

  private update<T>(fn: (state: SimState, now: number) => T): Promise<T> {
    return this.source.update((state) => {
      reclaimOrphans(state);
      return fn(state, this.clock());
    });
  }

  private sysfs(): HostPorts['sysfs'] {
    return {
      listSriovPfs: () => this.read((s) => s.pfs.map((pf) => pf.pciAddress).sort()),
      readPf: (address) => this.read((s) => pfPciFacts(pfAt(s, address, `read ${address}/sriov_totalvfs`))),
      readVf: (address) =>
        this.read((s) => {
          const found = findDevice(s, address);
          if (!found) throw kernelError('ENOENT', `read /sys/bus/pci/devices/${address}`);
          return found.vf ? vfDeviceFacts(found.pf, found.vf) : pfDeviceFacts(found.pf);
        }, norm(address)),
      readNetdev: (name) =>
        this.read((s) => {
          const found = findNetdev(s, name);
          return found ? netdevFacts(found) : null;
        }),
      pciAddressOfNetdev: (name) =>
        this.read((s) => {
          const found = findNetdev(s, name);
          return found ? (found.vf ?? found.pf).pciAddress : null;
        }),
      writeNumVfs: (address, numVfs) =>
        this.update((s, now) => {
          const pf = pfAt(s, address, `write ${address}/sriov_numvfs`);
          const before = pf.vfs;
          setNumVfs(pf, numVfs, now);
          if (pf.vfs !== before) for (const vf of pf.vfs) nameNewNetdev(s, vf);
        }),
      writeAutoprobe: (address, on) =>
        this.update((s) => {
          pfAt(s, address, `write ${address}/sriov_drivers_autoprobe`).autoprobe = on;
        }),
    };
  }

  private links(): HostPorts['links'] {
    return {
      showPf: (name, opts) => this.read((s) => this.showPf(s, name, opts?.stats ?? false)),
      applyVfOps: (name, ops, opts) =>
        this.update((s, now): BatchResult => {
          const found = netdevAt(s, name, `ip link set dev ${name}`);
          if (found.vf) throw kernelError('EINVAL', `ip link set dev ${name} vf`, 'not a PF');
          const result = runBatch(found.pf, ops, now);
          return result.ok && opts?.readBack ? { ok: true, after: this.showPf(s, name, false) } : result;
        }),
      setMtu: (name, mtu) =>
        this.update((s) => setMtu(netdevAt(s, name, `ip link set dev ${name} mtu`), mtu, `ip link set dev ${name} mtu`)),
      setUp: (name) => this.update((s) => setUp(netdevAt(s, name, `ip link set dev ${name} up`))),
    };
  }

  /** `ip -j -d [-s] link show dev NAME` */
  private showPf(s: SimState, name: string, stats: boolean): PfLinkFacts {
    const found = netdevAt(s, name, `ip link show dev ${name}`);
    const { mac, mtu, operState } = netdevFacts(found);
    // A VF netdev has no VFs of its own: no vfinfo_list.
    const vfs = found.vf ? [] : found.pf.vfs.map((v) => vfLinkEntry(v, stats, this.clock()));
    return { mac, mtu, operState, vfs };
  }

  private drivers(): HostPorts['drivers'] {
    return {
      bind: async (address, driver) => {
        const probeFailure = await this.update((s, now) => {
          const { pf, vf } = vfAt(s, address, `bind ${address}`);
          forgetNetdev(vf);
          const probeFailure = bindVf(pf, vf, driver || null, now);
          nameNewNetdev(s, vf);
          return probeFailure;
        });
        if (probeFailure) throw probeFailure;
      },
      // Unbinding an unbound device is a no-op here rather than ENOENT on a missing driver/unbind.
      unbind: (address) =>
        this.update((s, now) => {
          const { vf } = vfAt(s, address, `unbind ${address}`);
          forgetNetdev(vf);
          detach(vf, now);
        }),
    };
  }
}

/** `ip -s link show dev NAME` of a PF. */
function pfNamed(s: SimState, name: string): SimPf {
  const found = netdevAt(s, name, `ip -s link show dev ${name}`);
  if (found.vf) throw kernelError('EINVAL', `ip -s link show dev ${name}`, 'not a PF');
  return found.pf;
}

export function createSimPorts(file: string): HostPorts {
  return new SimHost(file).ports;
}
