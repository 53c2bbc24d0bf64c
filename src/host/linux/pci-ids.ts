/**
 * Vendor and device names from the pci.ids database (what lspci shows).
 * Optional: hosts without the file just get no names.
 */
import { readFile } from 'node:fs/promises';

export interface PciNames {
  vendorName?: string;
  deviceName?: string;
}

interface Vendor {
  name: string;
  devices: Map<string, string>;
}

const DEFAULT_PATHS = ['/usr/share/misc/pci.ids', '/usr/share/hwdata/pci.ids'];

/**
 * Only vendor lines (`8086  Intel Corporation`) and their tab-indented device
 * lines (`\t10c9  82576 Gigabit Network Connection`); subsystem lines (two
 * tabs) are skipped, and the class section (`C 02  ...`) ends the scan.
 */
export function parsePciIds(text: string): Map<string, Vendor> {
  const vendors = new Map<string, Vendor>();
  let vendor: Vendor | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('C ')) break;
    const v = /^([0-9a-f]{4}) {2}(.+)$/.exec(line);
    if (v) {
      vendor = { name: v[2]!, devices: new Map() };
      vendors.set(v[1]!, vendor);
      continue;
    }
    const d = /^\t([0-9a-f]{4}) {2}(.+)$/.exec(line);
    if (d && vendor) vendor.devices.set(d[1]!, d[2]!);
  }
  return vendors;
}

async function load(paths: string[]): Promise<Map<string, Vendor>> {
  for (const path of paths) {
    const text = await readFile(path, 'utf8').catch(() => null);
    if (text !== null) return parsePciIds(text);
  }
  return new Map();
}

const norm = (id: string) => id.trim().toLowerCase().replace(/^0x/, '');

/** A lookup that reads and parses the first file found, once, on first use. */
export function createPciNames(path?: string): (vendorId: string, deviceId: string) => Promise<PciNames> {
  let db: Promise<Map<string, Vendor>> | undefined;
  return async (vendorId, deviceId) => {
    db ??= load(path ? [path] : DEFAULT_PATHS);
    const vendor = (await db).get(norm(vendorId));
    if (!vendor) return {};
    const deviceName = vendor.devices.get(norm(deviceId));
    return deviceName ? { vendorName: vendor.name, deviceName } : { vendorName: vendor.name };
  };
}

/** Names from the system's pci.ids. */
export const pciNames = createPciNames();
