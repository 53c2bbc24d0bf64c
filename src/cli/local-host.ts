/** Local mode: this host (or a simulated one), driven directly. */
import { createPorts, type HostOptions } from '../backends/ports.js';
import { SriovHost, type Progress } from '../host/configurator.js';

export function createHost(opts: HostOptions, progress?: Progress): SriovHost {
  return new SriovHost(createPorts(opts), progress);
}

/** Progress lines go to stderr, and only when a person is watching. */
export function terminalProgress(): Progress | undefined {
  return process.stderr.isTTY ? (m) => process.stderr.write(`… ${m}\n`) : undefined;
}
