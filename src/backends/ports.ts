/**
 * Host backends by name: `linux` (sysfs, iproute2, devlink) or `sim:FILE`
 * (a simulated host). The entry points (CLI, daemon, CNI plugin) pick here.
 */
import { invalid } from '../host/errors.js';
import { createLinuxPorts } from '../host/linux/index.js';
import type { HostPorts } from '../host/ports.js';
import { shown } from '../host/validate.js';
import { createSimPorts } from '../sim/sim-host.js';

export interface HostOptions {
  host?: string;
  sysfsRoot?: string;
}

export function createPorts(opts: HostOptions): HostPorts {
  const spec = opts.host ?? 'linux';
  if (spec === 'linux') return createLinuxPorts({ sysfsRoot: opts.sysfsRoot });
  if (spec.startsWith('sim:') && spec.length > 4) return createSimPorts(spec.slice(4));
  throw invalid(`--host must be "linux" or "sim:FILE", got ${shown(spec)}`);
}
