/**
 * Driver binding through `driver_override` + `drivers_probe` (field notes §1),
 * which binds exactly one device, unlike `new_id` (every matching device).
 */
import { access, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { DriverBinding } from '../ports.js';
import { parseDriverName, parsePciAddress } from '../validate.js';
import { toKernelError, writeAttr } from './sysfs.js';

export class SysfsDriverBinding implements DriverBinding {
  constructor(private readonly root = '/sys') {}

  async bind(pciAddress: string, driver: string | null): Promise<void> {
    const bdf = parsePciAddress(pciAddress);
    const override = driver === null ? '' : parseDriverName(driver);
    const dir = this.deviceDir(bdf);
    // echo <driver> > driver_override   (an empty write clears it)
    await writeAttr(join(dir, 'driver_override'), `${override}\n`, 'write driver_override');
    await this.unbindValidated(bdf);
    // echo <BDF> > /sys/bus/pci/drivers_probe   (binds per driver_override)
    await writeAttr(join(this.root, 'bus/pci/drivers_probe'), `${bdf}\n`, 'write drivers_probe');
  }

  async unbind(pciAddress: string): Promise<void> {
    await this.unbindValidated(parsePciAddress(pciAddress));
  }

  private deviceDir(bdf: string): string {
    return join(this.root, 'bus/pci/devices', bdf);
  }

  /** echo <BDF> > /sys/bus/pci/devices/<BDF>/driver/unbind; nothing to do when unbound. */
  private async unbindValidated(bdf: string): Promise<void> {
    const dir = this.deviceDir(bdf);
    try {
      await readlink(join(dir, 'driver'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw toKernelError(e, 'readlink driver');
      // No driver link: fine if the device is there (unbound), an error if it is not.
      await access(dir).catch((e2: unknown) => {
        throw toKernelError(e2, 'unbind');
      });
      return;
    }
    await writeAttr(join(dir, 'driver/unbind'), `${bdf}\n`, 'write driver/unbind');
  }
}
