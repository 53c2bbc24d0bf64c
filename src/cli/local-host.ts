/** Chooses the host backend for local mode: `--host linux` (default) or `--host sim:FILE`. */
import { SriovHost, type Progress } from '../host/configurator.js';
import { invalid } from '../host/errors.js';
import { createLinuxPorts } from '../host/linux/index.js';
import type { HostPorts } from '../host/ports.js';
import { createSimPorts } from '../sim/sim-host.js';

export interface HostOptions {
  host?: string;
  sysfsRoot?: string;
}

export function createPorts(opts: HostOptions): HostPorts {
  const spec = opts.host ?? 'linux';
  if (spec === 'linux') return createLinuxPorts({ sysfsRoot: opts.sysfsRoot });
  if (spec.startsWith('sim:') && spec.length > 4) return createSimPorts(spec.slice(4));
  throw invalid(`--host must be "linux" or "sim:FILE", got "${spec}"`);
}

export function createHost(opts: HostOptions, progress?: Progress): SriovHost {
  return new SriovHost(createPorts(opts), progress);
}

/** Progress lines go to stderr, and only when a person is watching. */
export function terminalProgress(): Progress | undefined {
  return process.stderr.isTTY ? (m) => process.stderr.write(`… ${m}\n`) : undefined;
}
