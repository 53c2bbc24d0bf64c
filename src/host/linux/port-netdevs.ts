/**
 * Which of a device's netdevs is its own port. In switchdev mode a PF's
 * representors are its netdevs too (`<dev>/net/`): mlx5 and netdevsim list
 * the uplink (`phys_port_name` `p0`, `p1`) beside one representor per VF
 * (`pf0vf3`, with a controller `c1pf0vf3`; `pf0sf1` for a subfunction,
 * `pf0` for the host PF seen from a SmartNIC). The inventory takes the first
 * netdev as the PF's, so the uplink goes first.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const REPRESENTOR_PORT_NAME = /^(c\d+)?pf\d+((vf|sf)\d+)?$/;

export const isRepresentorPortName = (name: string | null): boolean => name !== null && REPRESENTOR_PORT_NAME.test(name);

/** `cat <netDir>/<name>/phys_port_name`; null when the driver has none (EOPNOTSUPP on igb) or it is empty. */
async function physPortName(netDir: string, name: string): Promise<string | null> {
  try {
    return (await readFile(join(netDir, name, 'phys_port_name'), 'utf8')).trim() || null;
  } catch {
    return null;
  }
}

/**
 * `names` (the entries of `<dev>/net/`, read from sysfs) sorted by name, with
 * representors after the others. A device with one netdev reads nothing more.
 */
export async function uplinkFirst(netDir: string, names: string[]): Promise<string[]> {
  const sorted = [...names].sort();
  if (sorted.length <= 1) return sorted;
  const isRep = await Promise.all(sorted.map(async (n) => isRepresentorPortName(await physPortName(netDir, n))));
  return [...sorted.filter((_, i) => !isRep[i]), ...sorted.filter((_, i) => isRep[i])];
}
