/**
 * The PCI side of a Linux host, read from sysfs (field notes §1).
 *
 * Paths are only ever built from values that passed `parsePciAddress` or
 * `parseIfName`, so no caller can walk out of `<root>` with `..` or `/`.
 * Symlink targets are never followed by path arithmetic: only their last
 * component is used, and only after it too has been validated.
 *
 * A host inventory reads thousands of small attributes, so every method
 * issues its reads at once and lets them complete in parallel (up to
 * MAX_IN_FLIGHT at a time across the process).
 */
import { access, close, constants, open, read, readdir, readdirSync, readlink, readlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { KernelError } from '../ports.js';
import type { NetdevFacts, PciDeviceFacts, PciSysfs, PfPciFacts, VfDeviceFacts } from '../ports.js';
import { isNsimDevice, isNsimVf, isPciAddress, parseDeviceAddress, parseIfName, parseInteger, parsePciAddress, parseVfAddress } from '../validate.js';
import { NsimSysfs } from './nsim-sysfs.js';
import { uplinkFirst } from './port-netdevs.js';

type Callback<T> = (e: NodeJS.ErrnoException | null, value: T) => void;

export function toKernelError(e: unknown, operation: string): KernelError {
  const err = e as NodeJS.ErrnoException | undefined;
  const errno = err?.code ?? 'EIO';
  return new KernelError(errno, operation, `${operation}${err?.path ? ` (${err.path})` : ''}: ${errno}`);
}

/** ENOENT/ENOTDIR: the attribute or link does not exist (no driver, no netdev...). */
const isAbsent = (e: NodeJS.ErrnoException) => e.code === 'ENOENT' || e.code === 'ENOTDIR';

// Each call in flight holds a file descriptor and a request: a walk of a big
// host would otherwise open thousands of files at once (EMFILE).
const MAX_IN_FLIGHT = 64;
let inFlight = 0;
const waiting: Array<() => void> = [];

/**
 * One callback-style fs call as a promise: its value; `ifAbsent` when given
 * and the path does not exist; a KernelError otherwise. Callbacks rather than
 * node:fs/promises because a walk makes thousands of tiny calls and in Node 20
 * each promise-API call costs several times more (FileHandle bookkeeping,
 * errors built for every absent attribute); see bench/sysfs-walk.ts.
 */
function fsCall<T, A = never>(operation: string, fn: (cb: Callback<T>) => void, ...ifAbsent: [] | [A]): Promise<T | A> {
  return new Promise((resolve, reject) => {
    const start = () => {
      inFlight++;
      fn((e, value) => {
        inFlight--;
        waiting.shift()?.();
        if (!e) resolve(value);
        else if (ifAbsent.length === 1 && isAbsent(e)) resolve(ifAbsent[0]);
        else reject(toKernelError(e, operation));
      });
    };
    if (inFlight < MAX_IN_FLIGHT) start();
    else waiting.push(start);
  });
}

// sysfs caps an attribute at PAGE_SIZE - 1 bytes.
const ATTR_MAX = 4096;
// Read buffers are reused: at most MAX_IN_FLIGHT are ever in use, and a new
// page per read made the garbage collector a tenth of a walk's time.
const buffers: Buffer[] = [];

/**
 * `cat path`, trimmed. One read() returns a whole sysfs attribute: open,
 * read, close, where readFile would also fstat and read again to find EOF.
 */
function readText(path: string): (cb: Callback<string>) => void {
  return (cb) =>
    open(path, 'r', (e, fd) => {
      if (e) return cb(e, '');
      const buf = buffers.pop() ?? Buffer.allocUnsafeSlow(ATTR_MAX);
      read(fd, buf, 0, ATTR_MAX, 0, (e2, n) => {
        const text = e2 ? '' : buf.toString('utf8', 0, n).trim();
        buffers.push(buf);
        close(fd, (e3) => cb(e2 ?? e3, text));
      });
    });
}

const readRequired = (path: string, what: string) => fsCall(`read ${what}`, readText(path));
const readOptional = (path: string, what: string) => fsCall(`read ${what}`, readText(path), null);
const listDir = (path: string, what: string) => fsCall(`list ${what}`, (cb: Callback<string[]>) => readdir(path, cb), []);

/** `basename $(readlink path)`, or null when there is no such link. */
async function linkName(path: string, what: string): Promise<string | null> {
  const target = await fsCall(`readlink ${what}`, (cb: Callback<string>) => readlink(path, cb), null);
  return target === null ? null : basename(target);
}

/** Runs a non-blocking kernfs call in line: its value, `ifAbsent` when the path does not exist. */
function kernfsSync<T>(operation: string, fn: () => T, ifAbsent: T): T {
  try {
    return fn();
  } catch (e) {
    if (isAbsent(e as NodeJS.ErrnoException)) return ifAbsent;
    throw toKernelError(e, operation);
  }
}

const linkNameSync = (path: string, what: string) => kernfsSync(`readlink ${what}`, () => basename(readlinkSync(path)), null);
const listDirSync = (path: string, what: string) => kernfsSync(`list ${what}`, () => readdirSync(path), []);

// Never O_CREAT: a sysfs attribute exists or the write is aimed at the wrong
// place; creating a file would turn that mistake into silent success.
const WRITE_FLAGS = constants.O_WRONLY | constants.O_TRUNC;

/** `echo value > path`, with the failure as a KernelError carrying the errno. */
export async function writeAttr(path: string, value: string, operation: string): Promise<void> {
  try {
    await writeFile(path, value, { flag: WRITE_FLAGS });
  } catch (e) {
    throw toKernelError(e, operation);
  }
}

function toInt(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new KernelError('EPROTO', `read ${what}`, `read ${what}: unexpected value "${text}"`);
  return n;
}

/** `0x8086` → `8086`, the form lspci and pci.ids use. */
const hexId = (text: string) => text.toLowerCase().replace(/^0x/, '');

/** The kernel shows an unset driver_override as "(null)". */
const overrideOf = (text: string | null) => (text && text !== '(null)' ? text : null);

/** `iommu_group -> ../../kernel/iommu_groups/N` */
const groupOf = (name: string | null) => (name !== null && /^\d+$/.test(name) ? Number(name) : null);

/** A PCI address from a link's last component (`virtfnN`, `class/net/X/device`), else null. */
const pciFromLink = (name: string | null) => (name !== null && isPciAddress(name) ? parsePciAddress(name) : null);

export class LinuxSysfs implements PciSysfs {
  /** netdevsim devices (the kernel's test driver), which stand where PCI PFs would. */
  private readonly nsim: NsimSysfs;

  constructor(private readonly root = '/sys') {
    this.nsim = new NsimSysfs(root);
  }

  /** `<root>/bus/pci/devices/<BDF>`; the only way a device path is made. */
  private deviceDir(pciAddress: string): string {
    return join(this.root, 'bus/pci/devices', parsePciAddress(pciAddress));
  }

  /** `<root>/class/net/<ifname>`; the only way a netdev path is made. */
  private netDir(name: string): string {
    return join(this.root, 'class/net', parseIfName(name));
  }

  async listSriovPfs(): Promise<string[]> {
    const dir = join(this.root, 'bus/pci/devices');
    const names = (await listDir(dir, 'bus/pci/devices')).filter(isPciAddress);
    const isPf = await Promise.all(
      names.map((n) => fsCall('access sriov_totalvfs', (cb: Callback<boolean>) => access(join(dir, n, 'sriov_totalvfs'), (e) => cb(e, true)), false)),
    );
    const pcis = names.filter((_, i) => isPf[i]).map(parsePciAddress).sort();
    return [...pcis, ...(await this.nsim.listPfs())];
  }

  async readVf(pciAddress: string): Promise<VfDeviceFacts> {
    const address = parseVfAddress(pciAddress);
    if (isNsimVf(address)) return this.nsim.readVf(address);
    const bdf = parsePciAddress(address);
    const dir = this.deviceDir(bdf);
    // driver_override's show takes the device lock (held for seconds while
    // VFs are created), so it is read asynchronously; links and directory
    // listings are kernfs lookups that never wait, and cheaper done in line.
    const override = readOptional(join(dir, 'driver_override'), 'driver_override');
    const driver = linkNameSync(join(dir, 'driver'), 'driver');
    const group = groupOf(linkNameSync(join(dir, 'iommu_group'), 'iommu_group'));
    const netdevs = listDirSync(join(dir, 'net'), 'net').sort();
    return { pciAddress: bdf, driver, driverOverride: overrideOf(await override), iommuGroup: group, netdevs };
  }

  async readPf(pciAddress: string): Promise<PfPciFacts> {
    const address = parseDeviceAddress(pciAddress);
    if (isNsimDevice(address)) return this.nsim.readPf(address);
    const bdf = parsePciAddress(address);
    const dir = this.deviceDir(bdf);
    const [facts, totalVfs, numVfs, autoprobe, vfDevice, vfs] = await Promise.all([
      this.deviceFacts(bdf),
      readRequired(join(dir, 'sriov_totalvfs'), 'sriov_totalvfs'),
      readRequired(join(dir, 'sriov_numvfs'), 'sriov_numvfs'),
      readOptional(join(dir, 'sriov_drivers_autoprobe'), 'sriov_drivers_autoprobe'),
      readOptional(join(dir, 'sriov_vf_device'), 'sriov_vf_device'),
      this.virtfns(dir),
    ]);
    return {
      ...facts,
      totalVfs: toInt(totalVfs, 'sriov_totalvfs'),
      numVfs: toInt(numVfs, 'sriov_numvfs'),
      // Kernels before 4.12 have no such attribute and always autoprobe.
      autoprobe: autoprobe === null || autoprobe !== '0',
      vfDeviceId: vfDevice ? hexId(vfDevice) : null,
      vfs,
    };
  }

  async readNetdev(name: string): Promise<NetdevFacts | null> {
    const dir = this.netDir(name);
    const [mac, mtu, operState, speed] = await Promise.all([
      readOptional(join(dir, 'address'), 'address'),
      readOptional(join(dir, 'mtu'), 'mtu'),
      readOptional(join(dir, 'operstate'), 'operstate'),
      // EINVAL while the link is down (the driver cannot tell): not an error.
      readRequired(join(dir, 'speed'), 'speed').catch(() => null),
    ]);
    // Every netdev has an operstate; without one there is no such netdev.
    if (operState === null) return null;
    const speedMbps = speed === null ? NaN : Number(speed);
    return {
      name,
      mac: mac || null,
      mtu: mtu === null ? null : toInt(mtu, 'mtu'),
      operState: operState === 'up' || operState === 'down' ? operState : 'unknown',
      // -1 is SPEED_UNKNOWN; older kernels print it unsigned.
      speedMbps: speedMbps > 0 && speedMbps !== 4294967295 ? speedMbps : null,
    };
  }

  /** For a netdevsim netdev (its port or a representor), the device's name `netdevsim<N>`. */
  async pciAddressOfNetdev(name: string): Promise<string | null> {
    const device = await linkName(join(this.netDir(name), 'device'), 'device');
    return device !== null && isNsimDevice(device) ? device : pciFromLink(device);
  }

  /** `echo N > sriov_numvfs` (EBUSY when changing between two non-zero counts). */
  async writeNumVfs(pciAddress: string, numVfs: number): Promise<void> {
    const address = parseDeviceAddress(pciAddress);
    if (isNsimDevice(address)) return this.nsim.writeNumVfs(address, numVfs);
    const n = parseInteger(numVfs, 'VF count', 0, 0xffff);
    await writeAttr(join(this.deviceDir(pciAddress), 'sriov_numvfs'), `${n}\n`, 'write sriov_numvfs');
  }

  /** `echo 0|1 > sriov_drivers_autoprobe` */
  async writeAutoprobe(pciAddress: string, on: boolean): Promise<void> {
    const address = parseDeviceAddress(pciAddress);
    if (isNsimDevice(address)) {
      // Its VFs have no PCI function for a driver to probe (capabilities: vfFunctions false).
      throw new KernelError('ENOENT', 'write sriov_drivers_autoprobe', `write sriov_drivers_autoprobe: ${address} is a netdevsim device, whose VFs have no PCI function to probe: it has no such file`);
    }
    const dir = this.deviceDir(pciAddress);
    await writeAttr(join(dir, 'sriov_drivers_autoprobe'), on ? '1\n' : '0\n', 'write sriov_drivers_autoprobe');
  }

  private async deviceFacts(bdf: string): Promise<PciDeviceFacts> {
    const dir = this.deviceDir(bdf);
    const [vendor, device, driver, override, numa, localCpus, group, netdevs] = await Promise.all([
      readRequired(join(dir, 'vendor'), 'vendor'),
      readRequired(join(dir, 'device'), 'device'),
      linkName(join(dir, 'driver'), 'driver'),
      readOptional(join(dir, 'driver_override'), 'driver_override'),
      readOptional(join(dir, 'numa_node'), 'numa_node'),
      readOptional(join(dir, 'local_cpulist'), 'local_cpulist'),
      linkName(join(dir, 'iommu_group'), 'iommu_group'),
      listDir(join(dir, 'net'), 'net'),
    ]);
    const numaNode = numa === null ? NaN : Number(numa);
    return {
      pciAddress: bdf,
      vendorId: hexId(vendor),
      deviceId: hexId(device),
      driver,
      driverOverride: overrideOf(override),
      numaNode: Number.isInteger(numaNode) && numaNode >= 0 ? numaNode : null,
      localCpus: localCpus || null,
      iommuGroup: groupOf(group),
      // The uplink first: in switchdev mode the representors are the PF's netdevs too.
      netdevs: await uplinkFirst(join(dir, 'net'), netdevs),
    };
  }

  /** The `virtfnN -> ../<VF BDF>` links of a PF directory, by index. */
  private async virtfns(dir: string): Promise<PfPciFacts['vfs']> {
    const indexes = (await listDir(dir, 'PF directory'))
      .map((n) => /^virtfn(\d+)$/.exec(n)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const targets = await Promise.all(indexes.map((i) => linkName(join(dir, `virtfn${i}`), `virtfn${i}`)));
    return indexes.flatMap((index, i) => {
      const pciAddress = pciFromLink(targets[i] ?? null);
      return pciAddress === null ? [] : [{ index, pciAddress }];
    });
  }
}
