// Lab suite (needs root and the SR-IOV lab): the host contract against real igb.
import { SriovHost } from '../../src/host/configurator.js';
import { createLinuxPorts } from '../../src/host/linux/index.js';
import { hostContract } from '../contract/host-contract.js';
import { labPfs } from './lab-host.js';

hostContract('linux (igb in the SR-IOV lab)', async () => {
  const host = new SriovHost(createLinuxPorts({}));
  const [pf] = await labPfs(host);
  return { host, pf: pf! };
});
