// The devlink contract against the simulated mlx5 host; test/lab runs the same suite on netdevsim.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { devlinkContract } from '../contract/devlink-contract.js';

let dir: string | undefined;
after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

devlinkContract('simulated mlx5', async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-devlink-contract-'));
  const file = join(dir, 'host.json');
  await initSimHost(file, { profile: 'mlx5', pfs: 1 });
  const ports = createSimPorts(file);
  const [device] = await ports.sysfs.listSriovPfs();
  return {
    ports,
    device: device!,
    setNumVfs: async (n) => {
      // mlx5 changes eswitch mode only with its VFs unbound: create them with autoprobe off (as the agent does).
      await ports.sysfs.writeNumVfs(device!, 0);
      await ports.sysfs.writeAutoprobe(device!, false);
      if (n > 0) await ports.sysfs.writeNumVfs(device!, n);
    },
  };
});
