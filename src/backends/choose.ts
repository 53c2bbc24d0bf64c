/**
 * Picks the host backend for the daemon: the one asked for, or by default
 * the real host when it has SR-IOV PFs, else a simulated NIC kept in the
 * data directory (so `npm start` works on any machine).
 */
import { parseHostName } from '../host/validate.js';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createPorts } from './ports.js';
import { createLinuxPorts } from '../host/linux/index.js';
import type { HostPorts } from '../host/ports.js';
import { initSimHost } from '../sim/state.js';

export interface BackendChoice {
  ports: HostPorts;
  description: string;
}

export interface BackendOptions {
  host?: string;
  sysfsRoot?: string;
  dataDir: string;
  /** The name this host registers under; default the machine's (or the simulated host's). */
  hostname?: string;
}

/**
 * The backend and the name it registers under: `--hostname`, else the
 * machine's. Only an explicit `--host sim:FILE` keeps the name in its file
 * (several simulated hosts on one machine); the fallback simulator stands in
 * for this machine, so it takes the machine's name.
 */
export async function chooseBackend(opts: BackendOptions): Promise<BackendChoice> {
  const machine = createLinuxPorts({ sysfsRoot: opts.sysfsRoot });
  const name = () => parseHostName(opts.hostname ?? machine.hostname().toLowerCase());
  const choice = await pick(opts, machine, name);
  const registered = opts.hostname === undefined && choice.explicitSim ? parseHostName(choice.ports.hostname()) : name();
  return { ports: { ...choice.ports, hostname: () => registered }, description: choice.description };
}

async function pick(opts: BackendOptions, linux: HostPorts, name: () => string): Promise<BackendChoice & { explicitSim: boolean }> {
  if (opts.host && opts.host !== 'auto') {
    return { ports: createPorts(opts), description: opts.host, explicitSim: opts.host.startsWith('sim:') };
  }
  if ((await linux.sysfs.listSriovPfs().catch(() => [])).length > 0) return { ports: linux, description: 'linux', explicitSim: false };
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const file = join(opts.dataDir, 'sim-host.json');
  const exists = await access(file).then(() => true, () => false);
  if (!exists) await initSimHost(file, { profile: 'ice', pfs: 2, numaNodes: 1, hostname: name() });
  return { ports: createPorts({ host: `sim:${file}` }), description: `sim:${file} (no SR-IOV hardware found)`, explicitSim: false };
}
