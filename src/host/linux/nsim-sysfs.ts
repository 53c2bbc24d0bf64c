/**
 * netdevsim, the kernel's devlink/switchdev test driver, as a PF. It is not
 * PCI: its device is `/sys/bus/netdevsim/devices/netdevsim<N>`, whose only
 * SR-IOV attribute is `sriov_numvfs`; the maximum is debugfs `max_vfs`
 * (`/sys/kernel/debug/netdevsim/netdevsim<N>/max_vfs`, 4 unless changed),
 * and its VFs exist only as devlink ports: no PCI function, no driver, no
 * netdev, no IOMMU group, no `sriov_drivers_autoprobe`. Its VFs are named
 * `netdevsim<N>:vf<M>` where a PCI address would go.
 *
 * Paths are built only from names that passed parseDeviceAddress/parseVfAddress.
 */
import { constants } from 'node:fs';
import { readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { KernelError, type PfPciFacts, type VfDeviceFacts } from '../ports.js';
import { isNsimDevice, isNsimVf, nsimVfAddress, parseInteger } from '../validate.js';
import { uplinkFirst } from './port-netdevs.js';

// (sysfs.ts's helpers, repeated: it dispatches here, and an import back would be a cycle.)
const isAbsent = (e: unknown) => ['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '');

function toKernelError(e: unknown, operation: string): KernelError {
  const errno = (e as NodeJS.ErrnoException).code ?? 'EIO';
  return new KernelError(errno, operation, `${operation}: ${errno}`);
}

async function readInt(path: string, what: string): Promise<number> {
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (e) {
    throw toKernelError(e, `read ${what}`);
  }
  if (!/^\d+$/.test(text)) throw new KernelError('EPROTO', `read ${what}`, `read ${what}: unexpected value "${text}"`);
  return Number(text);
}

export class NsimSysfs {
  constructor(private readonly root: string) {}

  /** `<root>/bus/netdevsim/devices/<dev>`; `dev` must be `netdevsim<N>`. */
  private deviceDir(device: string): string {
    if (!isNsimDevice(device)) throw new KernelError('EINVAL', 'netdevsim device', `${device} is not a netdevsim device`);
    return join(this.root, 'bus/netdevsim/devices', device);
  }

  /** The netdevsim devices that do SR-IOV (have `sriov_numvfs`), by number. */
  async listPfs(): Promise<string[]> {
    let names: string[];
    try {
      names = (await readdir(join(this.root, 'bus/netdevsim/devices'))).filter(isNsimDevice);
    } catch (e) {
      if (isAbsent(e)) return []; // netdevsim is not loaded
      throw toKernelError(e, 'list bus/netdevsim/devices');
    }
    const withVfs = await Promise.all(names.map((n) => readFile(join(this.deviceDir(n), 'sriov_numvfs')).then(() => true, () => false)));
    return names.filter((_, i) => withVfs[i]).sort((a, b) => Number(a.slice(9)) - Number(b.slice(9)));
  }

  async readPf(device: string): Promise<PfPciFacts> {
    const dir = this.deviceDir(device);
    const [numVfs, totalVfs, driver, names] = await Promise.all([
      readInt(join(dir, 'sriov_numvfs'), `${device} sriov_numvfs`),
      // debugfs: needs root and `mount -t debugfs debugfs /sys/kernel/debug`.
      readInt(join(this.root, 'kernel/debug/netdevsim', device, 'max_vfs'), `${device} max_vfs (debugfs)`),
      readlink(join(dir, 'driver')).then((t) => basename(t), (e) => (isAbsent(e) ? null : Promise.reject(toKernelError(e, `readlink ${device} driver`)))),
      readdir(join(dir, 'net')).catch((e) => (isAbsent(e) ? [] : Promise.reject(toKernelError(e, `list ${device} net`)))),
    ]);
    return {
      pciAddress: device,
      // Not PCI: no vendor or device id, no NUMA node or IOMMU group.
      vendorId: '',
      deviceId: '',
      driver,
      driverOverride: null,
      numaNode: null,
      localCpus: null,
      iommuGroup: null,
      // Its port first: in switchdev mode the VFs' representors are its netdevs too.
      netdevs: await uplinkFirst(join(dir, 'net'), names),
      totalVfs,
      numVfs,
      autoprobe: false,
      vfDeviceId: null,
      vfs: Array.from({ length: numVfs }, (_, index) => ({ index, pciAddress: nsimVfAddress(device, index) })),
    };
  }

  /** A VF of netdevsim is a devlink port only; ENODEV when the device has no such VF. */
  async readVf(vf: string): Promise<VfDeviceFacts> {
    const m = /^(netdevsim\d+):vf(\d+)$/.exec(vf);
    if (!m || !isNsimVf(vf)) throw new KernelError('EINVAL', 'netdevsim VF', `${vf} is not a netdevsim VF`);
    const numVfs = await readInt(join(this.deviceDir(m[1]!), 'sriov_numvfs'), `${m[1]} sriov_numvfs`);
    if (Number(m[2]) >= numVfs) throw new KernelError('ENODEV', `read ${vf}`, `${vf}: ${m[1]} has ${numVfs} VFs`);
    return { pciAddress: vf, driver: null, driverOverride: null, iommuGroup: null, netdevs: [] };
  }

  /**
   * `echo N > sriov_numvfs`. netdevsim (nsim_drv_configure_vfs) answers
   * EBUSY from one non-zero count to another, as PCI does, and ENOMEM above
   * max_vfs.
   */
  async writeNumVfs(device: string, numVfs: number): Promise<void> {
    const n = parseInteger(numVfs, 'VF count', 0, 0xffff);
    const operation = `write ${device} sriov_numvfs`;
    // Never O_CREAT: a missing attribute is an error, not a new file.
    await writeFile(join(this.deviceDir(device), 'sriov_numvfs'), `${n}\n`, { flag: constants.O_WRONLY | constants.O_TRUNC }).catch((e) => {
      throw toKernelError(e, operation);
    });
  }
}
