/**
 * Everything that changes a host goes through here: it validates a request
 * completely before the first write, orders the writes the way real drivers
 * need them (field notes §1–§2), verifies by reading back, and says exactly
 * what was and was not applied when the kernel refuses something.
 */
import { capabilitiesOf, checkVfSettings } from './capabilities.js';
import { discoverHost, discoverPf, resolvePf, type DiscoverOptions } from './discovery.js';
import { SriovError, codeForErrno, invalid } from './errors.js';
import { SCRUBBED_VF_CONFIG, type HostInventory, type PfInfo, type VfInfo, type VfSettings } from './model.js';
import { KernelError, type HostPorts, type PfCounterRead, type PfLinkFacts, type VfLinkEntry, type VfOp } from './ports.js';
import { parseInteger, parseMtu, shown, ZERO_MAC } from './validate.js';
import { describeOp, mismatches, opsForSettings } from './vf-ops.js';
import { isRateOp, rateRouteOf, writeLeafRates, type RateOp } from './vf-rates.js';
import { sleep, waitFor } from './wait.js';

export type DeviceType = 'netdevice' | 'vfio-pci';
/** `kernel` is the PF driver's own VF driver (igbvf, iavf, ...). */
export type DriverChoice = 'vfio-pci' | 'kernel' | string;

export interface VfRequest {
  vf: number;
  settings: VfSettings;
}

export interface SetNumVfsOptions {
  /** Settings for the new VFs, applied before any driver binds them. */
  vfSettings?: VfRequest[];
  /** What the new VFs bind to; default: the kernel driver if autoprobe is on, else none. */
  deviceType?: DeviceType;
  /**
   * false: leave the new VFs without a driver, whatever deviceType and
   * autoprobe say (an mlx5 eswitch mode change binds them after it).
   */
  bind?: boolean;
}

export type Progress = (message: string) => void;

export interface ApplyOptions {
  /**
   * The caller sets the new MAC on the VF's netdev itself (a container
   * attach does, inside the namespace): no driver reload for it where the
   * VF driver may set its admin MAC (capabilities `vfMaySetAdminMac`).
   */
  macOnNetdev?: boolean;
}

const EAGAIN_RETRIES = 5;
const VFIO_PCI = 'vfio-pci';
const LINK_UP_TIMEOUT_MS = 20_000;

/** Refuses, before any write, a VF request this PF cannot take once it has `numVfs` VFs. */
export function checkVfRequest(pf: PfInfo, r: VfRequest, numVfs: number): void {
  const object = `${pf.name} vf ${r.vf}`;
  if (numVfs === 0) throw invalid(`${pf.name} has no VFs to configure`, pf.name);
  parseInteger(r.vf, `VF index on ${pf.name}`, 0, numVfs - 1);
  const speed = pf.linkSpeedMbps;
  for (const rate of [r.settings.maxTxRateMbps, r.settings.minTxRateMbps]) {
    if (rate !== undefined && speed !== null && rate > speed) {
      throw invalid(`${object}: rate ${rate} Mbps is above the link speed of ${speed} Mbps`, object);
    }
  }
  checkVfSettings(capabilitiesOf(pf.driver), r.settings, object);
  opsForSettings(r.vf, SCRUBBED_VF_CONFIG, r.settings);
}

/**
 * Refuses a MAC that another VF of this PF keeps (or that two requests share):
 * two VFs with one MAC break forwarding for both.
 */
export function checkMacsFree(pf: PfInfo, requests: VfRequest[], who: string = pf.name): void {
  const after = new Map(pf.vfs.map((v) => [v.index, v.mac]));
  for (const r of requests) if (r.settings.mac !== undefined) after.set(r.vf, r.settings.mac);
  for (const r of requests) {
    const mac = r.settings.mac;
    if (mac === undefined || mac === ZERO_MAC) continue;
    const other = [...after].find(([vf, m]) => vf !== r.vf && m === mac);
    if (other) {
      throw new SriovError('CONFLICT', `${who}: MAC ${mac} for ${pf.name} vf ${r.vf} is already on vf ${other[0]}; each VF needs its own MAC`, {
        object: `${pf.name} vf ${r.vf}`,
        nothingChanged: true,
      });
    }
  }
}

export class SriovHost {
  constructor(
    readonly ports: HostPorts,
    private readonly progress: Progress = () => {},
  ) {}

  inventory(opts?: DiscoverOptions): Promise<HostInventory> {
    return discoverHost(this.ports, opts);
  }

  /** The PF's traffic counters and its VFs' (VF netdevs from `pf`, as the inventory last found them). */
  counters(pf: PfInfo): Promise<PfCounterRead> {
    return this.ports.counters.read(pf.name, pf.driver, pf.vfs.map((vf) => ({ index: vf.index, netdev: vf.netdev })));
  }

  async pf(nameOrPci: string, opts?: DiscoverOptions): Promise<PfInfo> {
    return discoverPf(this.ports, await resolvePf(this.ports, nameOrPci), opts);
  }

  /**
   * Changes the VF count, through 0 when both counts are non-zero (the kernel
   * answers EBUSY otherwise). New VFs are created with autoprobe off so that
   * their MAC/VLAN are set before a driver binds them.
   */
  async setNumVfs(nameOrPci: string, numVfs: number, opts: SetNumVfsOptions = {}): Promise<boolean> {
    const pf = await this.pf(nameOrPci);
    parseInteger(numVfs, `VF count for ${pf.name}`, 0, pf.totalVfs);
    const requests = opts.vfSettings ?? [];
    for (const r of requests) checkVfRequest(pf, r, numVfs);
    checkMacsFree({ ...pf, vfs: [] }, requests);
    if (pf.numVfs === numVfs) return false;
    const sysfs = this.ports.sysfs;
    if (pf.numVfs > 0) {
      this.progress(`${pf.name}: removing ${pf.numVfs} VFs`);
      await this.kernel(`${pf.name} sriov_numvfs=0`, () => sysfs.writeNumVfs(pf.pciAddress, 0));
      await this.waitForVfCount(pf, 0);
    }
    if (numVfs === 0) return true;
    // netdevsim's VFs are only devlink ports: no autoprobe file, no driver to bind.
    const functions = capabilitiesOf(pf.driver).vfFunctions;
    const autoprobe = functions && pf.autoprobe;
    if (autoprobe) await this.kernel(`${pf.name} autoprobe=0`, () => sysfs.writeAutoprobe(pf.pciAddress, false));
    this.progress(`${pf.name}: creating ${numVfs} VFs`);
    await this.kernel(`${pf.name} sriov_numvfs=${numVfs}`, () => sysfs.writeNumVfs(pf.pciAddress, numVfs));
    const created = await this.waitForVfCount(pf, numVfs);
    // Enabling VFs resets some PFs (igb): their link comes back a moment later.
    if (requests.length) await this.applyVfOps(created, this.opsFor(created, requests), pf.linkState === 'up');
    const driver = opts.bind === false ? null : SriovHost.newVfDriver(pf, opts.deviceType);
    if (driver) await this.bindAll(created, driver);
    if (autoprobe) await this.kernel(`${pf.name} autoprobe=1`, () => sysfs.writeAutoprobe(pf.pciAddress, true));
    // Enabling VFs resets some PFs (igb, ixgbe): done means the link is back, as it was.
    if (pf.linkState === 'up') await this.waitForLink(pf);
    return true;
  }

  async setAutoprobe(nameOrPci: string, on: boolean): Promise<boolean> {
    const pf = await this.pf(nameOrPci);
    if (pf.autoprobe === on) return false;
    await this.kernel(`${pf.name} autoprobe`, () => this.ports.sysfs.writeAutoprobe(pf.pciAddress, on));
    return true;
  }

  async setMtu(nameOrPci: string, mtu: number): Promise<boolean> {
    parseMtu(mtu);
    const pf = await this.pf(nameOrPci);
    if (pf.mtu === mtu) return false;
    if (pf.name === pf.pciAddress) throw new SriovError('UNSUPPORTED', `${pf.pciAddress} has no netdev to set an MTU on`);
    await this.kernel(`${pf.name} mtu ${mtu}`, () => this.ports.links.setMtu(pf.name, mtu));
    return true;
  }

  /** Applies per-VF settings in one batch per PF; returns the ops that were needed. */
  async setVfSettings(nameOrPci: string, requests: VfRequest[]): Promise<VfOp[]> {
    return (await this.applyVfSettings(await this.pf(nameOrPci), requests)).ops;
  }

  /**
   * setVfSettings on a PF the caller keeps a model of (the agent), without
   * discovering it again: `pf` must be current. Returns the ops and the PF
   * after them, its VF settings from the read-back that verified them.
   */
  async applyVfSettings(pf: PfInfo, requests: VfRequest[], opts: ApplyOptions = {}): Promise<{ ops: VfOp[]; pf: PfInfo }> {
    for (const r of requests) checkVfRequest(pf, r, pf.numVfs);
    checkMacsFree(pf, requests);
    // In switchdev mode `pf`'s VF rates are its leaves' already: discovery reads them (switchdev-view.ts).
    const ops = this.opsFor(pf, requests);
    if (ops.length === 0) return { ops, pf };
    const readBack = await this.applyVfOps(pf, ops);
    const after = await this.reloadVfDrivers(withVfConfigs(pf, readBack), ops, opts.macOnNetdev ?? false);
    return { ops, pf: after };
  }

  /** The driver new VFs of `pf` bind to under `deviceType`, as setNumVfs binds them; null: none. */
  static newVfDriver(pf: PfInfo, deviceType?: DeviceType): DriverChoice | null {
    if (!capabilitiesOf(pf.driver).vfFunctions) return null;
    return deviceType === 'vfio-pci' ? 'vfio-pci' : deviceType || pf.autoprobe ? 'kernel' : null;
  }

  /** Binds one VF; if the new driver fails, the VF goes back to the driver it had, and the error says so. */
  async bindVf(nameOrPci: string, vf: number, driver: DriverChoice): Promise<boolean> {
    return (await this.bindVfOn(await this.pf(nameOrPci), vf, driver)) !== null;
  }

  /** bindVf on a PF the caller keeps a model of; returns the PF after the bind, or null when it was already bound so. */
  async bindVfOn(pf: PfInfo, vf: number, driver: DriverChoice): Promise<PfInfo | null> {
    const target = this.vfDriverFor(pf, driver);
    if (pf.numVfs === 0) throw invalid(`${pf.name} has no VFs (create them with pf set ${pf.name} --num-vfs N)`, pf.name);
    const info = pf.vfs[parseInteger(vf, `VF index on ${pf.name}`, 0, pf.numVfs - 1)]!;
    if (info.driver === target && (target !== null || info.driverOverride === null)) return null;
    try {
      await this.bindOne(pf, vf, target);
    } catch (err) {
      throw await this.restoreBinding(pf, info, err);
    }
    return this.withVfDevice(pf, vf);
  }

  /** `pf` with VF `vf`'s driver and netdev read again from sysfs (after a bind, or a netdev's move). */
  async withVfDevice(pf: PfInfo, vf: number): Promise<PfInfo> {
    const info = pf.vfs[vf]!;
    const dev = await this.ports.sysfs.readVf(info.pciAddress);
    const updated: VfInfo = { ...info, driver: dev.driver, driverOverride: dev.driverOverride, netdev: dev.netdevs[0] ?? null, iommuGroup: dev.iommuGroup };
    return { ...pf, vfs: pf.vfs.map((v) => (v.index === vf ? updated : v)) };
  }

  /** After a failed bind: rebind the VF's previous driver (or leave it unbound, as it was), and report both. */
  private async restoreBinding(pf: PfInfo, before: VfInfo, err: unknown): Promise<unknown> {
    if (!(err instanceof SriovError)) return err;
    const previous = before.driver ?? 'no driver';
    let outcome: string;
    try {
      if (before.driver) await this.bindOne(pf, before.index, before.driver);
      else await this.ports.drivers.unbind(before.pciAddress);
      outcome = `vf ${before.index} restored to ${previous}`;
    } catch (again) {
      outcome = `vf ${before.index} could not be restored to ${previous}: ${again instanceof Error ? again.message : String(again)}`;
    }
    return new SriovError(err.code, `${err.message}; ${outcome}`, { ...err.details, object: `${pf.name} vf ${before.index}`, cause: err });
  }

  private opsFor(pf: PfInfo, requests: VfRequest[]): VfOp[] {
    return requests.flatMap((r) => opsForSettings(r.vf, pf.vfs[r.vf]!, r.settings));
  }

  /**
   * The ops as the PF takes them: rates on devlink rate leaves in switchdev
   * mode where the driver rates so (vf-rates.ts), the rest with `ip link`.
   * Returns the verified read-back of the PF's VFs.
   */
  private async applyVfOps(pf: PfInfo, ops: VfOp[], linkWasUp = pf.linkState === 'up'): Promise<VfLinkEntry[]> {
    const onLeaves = rateRouteOf(pf) === 'devlink' ? ops.filter(isRateOp) : [];
    if (onLeaves.length === 0) return this.applyLinkOps(pf, ops, linkWasUp);
    const linkOps = ops.filter((op) => !isRateOp(op));
    const readBack = linkOps.length ? await this.applyLinkOps(pf, linkOps, linkWasUp) : pf.vfs.map(linkEntryOf);
    return this.applyLeafRates(pf, onLeaves, linkOps, readBack);
  }

  /** `devlink port function rate set` per leaf, verified against the leaves read back; `readBack` gets their rates. */
  private async applyLeafRates(pf: PfInfo, ops: RateOp[], before: VfOp[], readBack: VfLinkEntry[]): Promise<VfLinkEntry[]> {
    this.progress(`${pf.name}: setting ${ops.length} VF rate leaves`);
    const result = await writeLeafRates(this.ports.devlink, pf, ops);
    if (!result.ok) throw this.batchError(pf, [...before, ...ops], before.length + result.failedAt, result);
    const entries = readBack.map((e) => ({ ...e, ...(result.after.get(e.index) ?? { minTxRateMbps: 0, maxTxRateMbps: 0 }) }));
    return this.verifyOps(pf, ops, { mac: pf.mac, mtu: pf.mtu, operState: 'unknown', vfs: entries });
  }

  /** One `ip -batch` per PF; EAGAIN (i40e: a VF op pending) is retried from where it stopped. */
  private async applyLinkOps(pf: PfInfo, ops: VfOp[], linkWasUp: boolean): Promise<VfLinkEntry[]> {
    if (ops.length === 0) return [];
    this.progress(`${pf.name}: applying ${ops.length} VF settings`);
    if (linkWasUp && capabilitiesOf(pf.driver).rateNeedsLinkUp && ops.some((op) => op.field === 'rate' && op.maxTxRateMbps > 0)) {
      await this.waitForLink(pf);
    }
    let done = 0;
    for (let attempt = 0; done < ops.length; attempt++) {
      // The read-back rides in the same run as the writes.
      const result = await this.ports.links.applyVfOps(pf.name, ops.slice(done), { readBack: true });
      if (result.ok) return this.verifyOps(pf, ops, result.after ?? (await this.ports.links.showPf(pf.name)));
      done += result.failedAt;
      if (result.errno !== 'EAGAIN' || attempt >= EAGAIN_RETRIES) throw this.batchError(pf, ops, done, result);
      await sleep(50 * 2 ** attempt);
    }
    return this.verifyOps(pf, ops, await this.ports.links.showPf(pf.name));
  }

  private batchError(pf: PfInfo, ops: VfOp[], failedAt: number, r: { errno: string; message: string }): SriovError {
    const failed = ops[failedAt]!;
    const caps = capabilitiesOf(pf.driver);
    const hint = caps.notes.length ? ` (${caps.driver}: ${caps.notes.join('; ')})` : '';
    return new SriovError(
      codeForErrno(r.errno),
      `${pf.name} refused ${describeOp(failed)}: ${r.message.trim() || r.errno}${hint}`,
      {
        object: `${pf.name} vf ${failed.vf}`,
        errno: r.errno,
        applied: ops.slice(0, failedAt).map(describeOp),
        notApplied: ops.slice(failedAt).map(describeOp),
        nothingChanged: failedAt === 0,
      },
    );
  }

  /** Every op's fields as `facts` (the PF read back after the writes) shows them. */
  private verifyOps(pf: PfInfo, ops: VfOp[], facts: PfLinkFacts): VfLinkEntry[] {
    const readBack = facts.vfs;
    const actual = new Map(readBack.map((v) => [v.index, v]));
    const wrong = ops.flatMap((op) => {
      const vf = actual.get(op.vf);
      return vf ? mismatches(op, vf, pf.vfs[op.vf]!) : [`vf ${op.vf} is gone`];
    });
    if (wrong.length) {
      throw new SriovError('VERIFY_FAILED', `${pf.name}: the driver accepted but did not apply: ${wrong.join('; ')}`, {
        object: pf.name,
      });
    }
    return readBack;
  }

  /**
   * Some VF netdev drivers only pick up a new admin MAC when they
   * re-initialise (igb/ixgbe log "Reload the VF driver"), so rebind VFs
   * whose MAC changed, unless the driver does not need it (capabilities):
   * the PF resets the VF itself, or the caller sets the MAC on the netdev
   * (`macOnNetdev`) and the VF driver may do that.
   */
  private async reloadVfDrivers(pf: PfInfo, ops: VfOp[], macOnNetdev: boolean): Promise<PfInfo> {
    const caps = capabilitiesOf(pf.driver);
    if (caps.adminMacTakesEffect === 'vf-reset' || (macOnNetdev && caps.vfMaySetAdminMac)) return pf;
    const kernelDriver = caps.vfDriver;
    const changed = new Set(ops.filter((op) => op.field === 'mac').map((op) => op.vf));
    let after = pf;
    for (const vf of changed) {
      const info = pf.vfs[vf]!;
      if (!info.driver || info.driver !== kernelDriver || !info.netdev) continue;
      await this.bindOne(pf, vf, info.driver);
      after = await this.withVfDevice(after, vf);
    }
    return after;
  }

  /**
   * A VF takes its PF's VF driver (`kernel`, or by name) or vfio-pci, nothing
   * else: a PF driver (`ice`) or a stranger's would leave it unbound.
   */
  private vfDriverFor(pf: PfInfo, driver: DriverChoice): string | null {
    const kernel = capabilitiesOf(pf.driver).vfDriver;
    if (driver === 'kernel') return kernel;
    if (driver === VFIO_PCI || (kernel !== null && driver === kernel)) return driver;
    const choices = ['kernel', VFIO_PCI, ...(kernel ? [kernel] : [])].join(', ');
    throw invalid(`driver ${shown(driver)} cannot drive a VF of ${pf.name} (PF driver ${pf.driver ?? 'unknown'}); choose one of ${choices}`, pf.name);
  }

  private async bindAll(pf: PfInfo, driver: DriverChoice): Promise<void> {
    const target = this.vfDriverFor(pf, driver);
    this.progress(`${pf.name}: binding ${pf.vfs.length} VFs to ${target ?? 'the kernel default'}`);
    for (const vf of pf.vfs) await this.bindOne(pf, vf.index, target);
  }

  private async bindOne(pf: PfInfo, vf: number, driver: string | null): Promise<void> {
    const bdf = pf.vfs[vf]!.pciAddress;
    await this.kernel(`${pf.name} vf ${vf} bind ${driver ?? 'default'}`, () => this.ports.drivers.bind(bdf, driver));
    if (driver === null) return;
    await waitFor(`${bdf} to bind to ${driver}`, 10_000, async () => {
      const dev = await this.ports.sysfs.readVf(bdf);
      // A netdev driver is only done once its netdev exists.
      const ready = dev.driver === driver && (driver === 'vfio-pci' || dev.netdevs.length > 0);
      return ready ? true : undefined;
    });
  }

  /** Bounded: if the link stays down, the kernel's refusal (with the driver's hint) says so. */
  private async waitForLink(pf: PfInfo): Promise<void> {
    await waitFor(`link up on ${pf.name}`, LINK_UP_TIMEOUT_MS, async () => {
      const netdev = await this.ports.sysfs.readNetdev(pf.name);
      return netdev?.operState === 'up' && netdev.speedMbps ? true : undefined;
    }).catch(() => undefined);
  }

  /** Waits for `virtfnN` links (and `physfn`) of every VF; scaled for slow NICs (mlx5 ~0.5 s/VF). */
  private async waitForVfCount(pf: PfInfo, numVfs: number): Promise<PfInfo> {
    await waitFor(`${numVfs} VFs on ${pf.name}`, 30_000 + 1_000 * numVfs, async () => {
      const facts = await this.ports.sysfs.readPf(pf.pciAddress);
      if (facts.numVfs !== numVfs && facts.vfs.length === facts.numVfs) {
        throw new SriovError('VERIFY_FAILED', `${facts.numVfs} of ${numVfs} VFs enabled on ${pf.name} by ${pf.driver}`, {
          object: pf.name,
        });
      }
      return facts.vfs.length === numVfs ? true : undefined;
    });
    return discoverPf(this.ports, pf.pciAddress);
  }

  /** Runs one host write, turning a kernel errno into a typed error. */
  private async kernel<T>(what: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      throw new SriovError(codeForErrno(err.errno), `${what}: ${err.message}`, { errno: err.errno, cause: err });
    }
  }
}

/** A VF's settings as the inventory last read them, as a read-back entry. */
function linkEntryOf(vf: VfInfo): VfLinkEntry {
  const { mac, vlan, qos, vlanProto, minTxRateMbps, maxTxRateMbps, spoofChk, trust, linkState } = vf;
  return { index: vf.index, mac, vlan, qos, vlanProto, minTxRateMbps, maxTxRateMbps, spoofChk, trust, linkState };
}

/** `pf` with the VF settings of a read-back (`ip link show <PF>`) in place of its own. */
function withVfConfigs(pf: PfInfo, readBack: VfLinkEntry[]): PfInfo {
  const byIndex = new Map(readBack.map((v) => [v.index, v]));
  return {
    ...pf,
    vfs: pf.vfs.map((vf) => {
      const entry = byIndex.get(vf.index);
      if (!entry) return vf;
      const { index: _index, stats: _stats, ...config } = entry;
      return { ...vf, ...config };
    }),
  };
}
