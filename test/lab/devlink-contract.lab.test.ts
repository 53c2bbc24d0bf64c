// Lab suite (needs root and the SR-IOV lab, and netdevsim.ko from
// test/lab/netdevsim.sh): the devlink contract against the kernel's own
// devlink core, on netdevsim through the Linux ports, so the simulated
// host's devlink (which the unit suite runs the same contract against)
// cannot drift from the kernel's.
import { after } from 'node:test';
import { createLinuxPorts } from '../../src/host/linux/index.js';
import { devlinkContract } from '../contract/devlink-contract.js';
import { requireLab } from './lab-host.js';
import { delNsimDevice, newNsimDevice } from './netdevsim.js';

const ID = 11;

after(() => delNsimDevice(ID));

devlinkContract('linux (netdevsim in the SR-IOV lab)', async () => {
  requireLab();
  const { device } = await newNsimDevice(ID);
  const ports = createLinuxPorts({});
  return {
    ports,
    device,
    // netdevsim, like PCI, answers EBUSY from one non-zero count to another.
    async setNumVfs(n: number) {
      const now = (await ports.sysfs.readPf(device)).numVfs;
      if (now === n) return;
      if (now !== 0 && n !== 0) await ports.sysfs.writeNumVfs(device, 0);
      await ports.sysfs.writeNumVfs(device, n);
    },
  };
});
