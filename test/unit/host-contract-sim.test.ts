// The host contract against the simulated igb host; test/lab runs the same suite on real igb.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { SriovHost } from '../../src/host/configurator.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { hostContract } from '../contract/host-contract.js';

let dir: string | undefined;
after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

hostContract('simulated igb', async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-contract-'));
  const file = join(dir, 'host.json');
  await initSimHost(file, { profile: 'igb', pfs: 2 });
  const host = new SriovHost(createSimPorts(file));
  const inv = await host.inventory();
  return { host, pf: inv.pfs[0]!.name };
});
