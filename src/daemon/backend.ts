/**
 * Picks the host backend for the daemon: the one asked for, or by default
 * the real host when it has SR-IOV PFs, else a simulated NIC kept in the
 * data directory (so `npm start` works on any machine).
 */
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createPorts } from '../cli/local-host.js';
import { createLinuxPorts } from '../host/linux/index.js';
import type { HostPorts } from '../host/ports.js';
import { initSimHost } from '../sim/state.js';

export interface BackendChoice {
  ports: HostPorts;
  description: string;
}

export async function chooseBackend(opts: { host?: string; sysfsRoot?: string; dataDir: string }): Promise<BackendChoice> {
  if (opts.host && opts.host !== 'auto') return { ports: createPorts(opts), description: opts.host };
  const linux = createLinuxPorts({ sysfsRoot: opts.sysfsRoot });
  if ((await linux.sysfs.listSriovPfs().catch(() => [])).length > 0) return { ports: linux, description: 'linux' };
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const file = join(opts.dataDir, 'sim-host.json');
  const exists = await access(file).then(() => true, () => false);
  if (!exists) await initSimHost(file, { profile: 'ice', pfs: 2, numaNodes: 2, hostname: 'sim-host' });
  return { ports: createPorts({ host: `sim:${file}` }), description: `sim:${file} (no SR-IOV hardware found)` };
}
