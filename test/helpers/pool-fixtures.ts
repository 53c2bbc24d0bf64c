// Hand-built inventories and controller views for the device plugin's pure modules.
import type { DeviceView, DeviceViewAllocation } from '../../src/controller/device-view.js';
import type { AllocationState, DeviceType } from '../../src/domain/types.js';
import type { LocalPf } from '../../src/k8s/pool-devices.js';
import { parsePoolDocument, type PoolConfig } from '../../src/k8s/pools.js';
import type { DevicePluginSource, DeviceSnapshot } from '../../src/k8s/source.js';

export const pools = (yaml: string): PoolConfig => parsePoolDocument(yaml, 'pools.yaml');

export interface PfSpec {
  numa?: number | null;
  speed?: number | null;
  link?: 'up' | 'down' | 'unknown';
  vfs?: number;
  driver?: string | null;
  vendor?: string;
  vfDevice?: string;
}

/** PF `name` at bus `bus` (0x3b → 0000:3b:00.0); its VF i at 0000:<bus>:<2 + i/8>.<i%8>, IOMMU group bus*100+i. */
export function pf(name: string, bus: number, s: PfSpec = {}): LocalPf {
  const b = bus.toString(16).padStart(2, '0');
  return {
    name,
    pciAddress: `0000:${b}:00.0`,
    vendorId: s.vendor ?? '8086',
    vfDeviceId: s.vfDevice ?? '1889',
    linkState: s.link ?? 'up',
    linkSpeedMbps: s.link === 'down' ? null : s.speed === undefined ? 10_000 : s.speed,
    numaNode: s.numa === undefined ? 0 : s.numa,
    vfs: Array.from({ length: s.vfs ?? 4 }, (_, i) => ({
      index: i,
      pciAddress: vfAddress(bus, i),
      driver: s.driver === undefined ? 'iavf' : s.driver,
      iommuGroup: bus * 100 + i,
    })),
  };
}

export function vfAddress(bus: number, i: number): string {
  return `0000:${bus.toString(16).padStart(2, '0')}:${(2 + Math.floor(i / 8)).toString(16).padStart(2, '0')}.${i % 8}`;
}

export interface NetSpec {
  name: string;
  physnet?: string;
  min?: number;
  max?: number;
  deviceType?: DeviceType;
}

export function view(
  pfs: LocalPf[],
  nets: NetSpec[],
  allocations: DeviceViewAllocation[] = [],
  o: { physnet?: string; deviceType?: DeviceType; ratio?: number; revision?: string; drainedPfs?: string[] } = {},
): DeviceView {
  return {
    host: 'node-1',
    revision: o.revision ?? 'r1',
    physnets: Object.fromEntries(pfs.map((p) => [p.pciAddress, o.physnet ?? 'fabric'])),
    deviceTypes: Object.fromEntries(pfs.map((p) => [p.pciAddress, o.deviceType ?? 'netdevice'])),
    accountingOnly: [],
    drainedPfs: o.drainedPfs ?? [],
    reportedVfs: pfs.flatMap((p) => p.vfs.map((vf) => vf.pciAddress)).sort(),
    networks: nets.map((n) => ({
      name: n.name,
      tenant: 'acme',
      physnet: n.physnet ?? 'fabric',
      vlan: 100,
      minTxRateMbps: n.min ?? 0,
      maxTxRateMbps: n.max ?? 0,
      deviceType: n.deviceType ?? 'netdevice',
    })),
    allocations,
    bandwidthRatio: o.ratio ?? 1,
  };
}

let seq = 0;
export function alloc(p: LocalPf, vf: number, o: { network?: string; state?: AllocationState; min?: number; claim?: string; id?: string } = {}): DeviceViewAllocation {
  return {
    id: o.id ?? `a${++seq}`,
    network: o.network ?? 'red',
    state: o.state ?? 'attached',
    pfPciAddress: p.pciAddress,
    vfIndex: vf,
    pciAddress: p.vfs[vf]!.pciAddress,
    minTxRateMbps: o.min ?? 0,
    deviceClaim: o.claim ? { resource: o.claim } : null,
    bound: (o.state ?? 'attached') === 'attached',
  };
}

/** The first snapshot from now on for which `ok` holds (the test's timeout bounds the wait). */
export function nextSnapshot(source: Pick<DevicePluginSource, 'snapshot' | 'subscribe'>, ok: (s: DeviceSnapshot) => boolean): Promise<DeviceSnapshot> {
  if (ok(source.snapshot())) return Promise.resolve(source.snapshot());
  return new Promise((resolve) => {
    const stop = source.subscribe((s) => {
      if (!ok(s)) return;
      stop();
      resolve(s);
    });
  });
}
