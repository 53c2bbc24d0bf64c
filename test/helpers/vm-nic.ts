/** A VF allocation as `attach vm` hands it to the libvirt and QEMU writers. */
import type { VmNicSpec } from '../../src/vm/nic.js';

export const SPEC: VmNicSpec = {
  id: '1a2b3c4d-0000-4000-8000-000000000001',
  pciAddress: '0000:3b:02.1',
  mac: '02:5f:00:00:00:01',
  vlan: 100,
  vmName: 'vnf-01',
  failover: false,
};

export const FAILOVER: VmNicSpec = { ...SPEC, failover: true };
