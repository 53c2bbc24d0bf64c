// The controller-backed device source on a simulated host, with a fake DeviceLink standing in for the controller.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { DeviceClaimRequest, DeviceLink, DeviceView, DeviceViewAllocation } from '../../src/controller/device-view.js';
import type { Allocation, DeviceType } from '../../src/domain/types.js';
import { SriovHost } from '../../src/host/configurator.js';
import { SriovError } from '../../src/host/errors.js';
import type { PfInfo } from '../../src/host/model.js';
import { ControllerDeviceSource } from '../../src/k8s/controller-source.js';
import { parsePoolDocument } from '../../src/k8s/pools.js';
import type { DeviceSnapshot, ResourceView } from '../../src/k8s/source.js';
import { setSimCable } from '../../src/sim/cable.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { nextSnapshot } from '../helpers/pool-fixtures.js';

const HOST = 'node-1';

/** The controller as the plugin sees it: a view it long-polls, and claims it records. */
class FakeLink implements DeviceLink {
  view: DeviceView;
  readonly claims: DeviceClaimRequest[] = [];
  /** Set: every call fails as an unreachable controller does. */
  unreachable = false;
  /** Set: claimDevices throws this (a refusal) or never answers ('hang'). */
  claimFailure: unknown = null;
  private waiters: Array<() => void> = [];

  constructor(view: DeviceView) {
    this.view = view;
  }

  update(change: Partial<DeviceView>): void {
    this.view = { ...this.view, ...change, revision: `r${Number(this.view.revision.slice(1)) + 1}` };
    for (const wake of this.waiters.splice(0)) wake();
  }

  async devices(host: string, after: string | undefined, waitMs: number): Promise<DeviceView> {
    assert.equal(host, HOST);
    if (this.unreachable) throw new TypeError('fetch failed');
    if (after !== this.view.revision) return this.view;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.view;
  }

  async claimDevices(request: DeviceClaimRequest): Promise<Allocation[]> {
    if (this.unreachable) throw new TypeError('fetch failed');
    if (this.claimFailure === 'hang') return new Promise(() => {});
    if (this.claimFailure) throw this.claimFailure;
    this.claims.push(request);
    return [];
  }
}

function viewOf(pfs: PfInfo[], o: { deviceType?: DeviceType; min?: number; allocations?: DeviceViewAllocation[] } = {}): DeviceView {
  return {
    host: HOST,
    revision: 'r1',
    physnets: Object.fromEntries(pfs.map((p) => [p.pciAddress, 'fabric'])),
    deviceTypes: Object.fromEntries(pfs.map((p) => [p.pciAddress, o.deviceType ?? 'netdevice'])),
    accountingOnly: [],
    drainedPfs: [],
    reportedVfs: pfs.flatMap((p) => p.vfs.map((vf) => vf.pciAddress)).sort(),
    networks: [
      { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100, minTxRateMbps: o.min ?? 0, maxTxRateMbps: 0, deviceType: o.deviceType ?? 'netdevice' },
      { name: 'blue', tenant: 'acme', physnet: 'fabric', vlan: 200, minTxRateMbps: 0, maxTxRateMbps: 0, deviceType: 'netdevice' },
    ],
    allocations: o.allocations ?? [],
    bandwidthRatio: 1,
  };
}

function holding(pf: PfInfo, vf: number, o: Partial<DeviceViewAllocation> = {}): DeviceViewAllocation {
  return { id: `alloc-${vf}`, network: 'blue', state: 'attached', pfPciAddress: pf.pciAddress, vfIndex: vf, pciAddress: pf.vfs[vf]!.pciAddress, minTxRateMbps: 0, deviceClaim: null, bound: true, ...o };
}

const red = (s: DeviceSnapshot): ResourceView => s.resources.find((r) => r.resourceName === 'vfleet.io/red')!;
const healthOf = (s: DeviceSnapshot, pf: PfInfo) => pf.vfs.map((v) => red(s).devices.find((d) => d.id === v.pciAddress)?.health[0] ?? '-').join('');

const next = nextSnapshot;

describe('controller-backed device source on a simulated host', { timeout: 30_000 }, () => {
  let dir: string;
  let file: string;
  let host: SriovHost;
  let pf0: PfInfo;
  let pf1: PfInfo;
  let link: FakeLink;
  let source: ControllerDeviceSource | null = null;
  const logs: string[] = [];

  const start = async (yaml = 'pools:\n  - name: red\n    network: red\n', view?: DeviceView) => {
    link = new FakeLink(view ?? viewOf([pf0, pf1]));
    source = new ControllerDeviceSource({
      pools: parsePoolDocument(yaml, 'pools.yaml'),
      host,
      link,
      hostName: HOST,
      log: (level, message) => logs.push(`${level} ${message}`),
      pollMs: 100,
      waitMs: 200,
      claimTimeoutMs: 300,
    });
    await source.start();
    return source;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-k8s-source-'));
    file = join(dir, 'host.json');
    await initSimHost(file, { profile: 'ice', pfs: 2, numaNodes: 2 });
    host = new SriovHost(createSimPorts(file));
    await host.setNumVfs('ens1f0', 4);
    await host.setNumVfs('ens2f0', 4);
    [pf0, pf1] = (await host.inventory()).pfs as [PfInfo, PfInfo];
    logs.length = 0;
  });

  afterEach(async () => {
    await source?.stop();
    source = null;
    await rm(dir, { recursive: true, force: true });
  });

  it('lists every VF of the pool with its NUMA node once started', async () => {
    const s = await start();
    assert.deepEqual(
      red(s.snapshot()).devices.map((d) => [d.id, d.health, d.numaNode]),
      [...pf0.vfs.map((v) => [v.pciAddress, 'Healthy', 0]), ...pf1.vfs.map((v) => [v.pciAddress, 'Healthy', 1])].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
  });

  it('a PF link down turns its VFs Unhealthy in the next snapshot; plugged back, Healthy', async () => {
    const s = await start();
    await setSimCable(file, 'ens1f0', 'down');
    const down = await next(s, (snap) => healthOf(snap, pf0) === 'UUUU');
    assert.equal(healthOf(down, pf1), 'HHHH');
    await setSimCable(file, 'ens1f0', 'up');
    await next(s, (snap) => healthOf(snap, pf0) === 'HHHH');
  });

  it('numVfs changed: devices removed and added without a restart', async () => {
    const s = await start();
    await host.setNumVfs('ens2f0', 2);
    await next(s, (snap) => red(snap).devices.length === 6);
    await host.setNumVfs('ens2f0', 6);
    // New VFs are Unhealthy until the controller knows them (the agent's next report): it could not claim them yet.
    await next(s, (snap) => red(snap).devices.length === 10);
    // (Others may be Unhealthy for a moment too, while their driver binds.)
    const unreported = red(s.snapshot()).devices.filter((d) => !link.view.reportedVfs.includes(d.id));
    assert.deepEqual(unreported.map((d) => d.health), ['Unhealthy', 'Unhealthy']);
    const reported = (await host.inventory()).pfs.flatMap((pf) => pf.vfs.map((vf) => vf.pciAddress)).sort();
    link.update({ reportedVfs: reported });
    await next(s, (snap) => red(snap).devices.length === 10 && red(snap).devices.every((d) => d.health === 'Healthy'));
  });

  it("follows the controller's view: a VF held for another network, a network created later", async () => {
    const s = await start('pools:\n  - name: red\n    network: red\n  - name: green\n    network: green\n');
    link.update({ allocations: [holding(pf0, 1)] });
    await next(s, (snap) => healthOf(snap, pf0) === 'HUHH');
    const green = () => s.snapshot().resources.find((r) => r.resourceName === 'vfleet.io/green')!;
    assert.deepEqual(green().devices, []);
    assert.ok(logs.some((l) => /network green does not exist/.test(l)));
    link.update({ networks: [...link.view.networks, { ...link.view.networks[1]!, name: 'green' }] });
    await next(s, () => green().devices.length === 8);
  });

  it('allocate for a netdevice pool: claims with the controller, then PCIDEVICE_* variables', async () => {
    const s = await start('pools:\n  - name: red-x\n    network: red\n');
    const ids = [pf0.vfs[0]!.pciAddress, pf1.vfs[2]!.pciAddress];
    const got = await s.allocate('vfleet.io/red-x', ids);
    assert.deepEqual(link.claims, [{ host: HOST, resource: 'vfleet.io/red-x', network: 'red', pciAddresses: ids }]);
    assert.equal(got.envs.PCIDEVICE_VFLEET_IO_RED_X, ids.join(','));
    assert.deepEqual(JSON.parse(got.envs.PCIDEVICE_VFLEET_IO_RED_X_INFO!), { [ids[0]!]: { generic: { deviceID: ids[0] } }, [ids[1]!]: { generic: { deviceID: ids[1] } } });
    assert.deepEqual(got.devices, []);
  });

  it('allocate for a vfio-pci pool: also /dev/vfio/vfio and the VFs\' IOMMU groups', async () => {
    const [a, b] = [pf0.vfs[1]!, pf0.vfs[2]!];
    await host.bindVf('ens1f0', 1, 'vfio-pci');
    await host.bindVf('ens1f0', 2, 'vfio-pci');
    const s = await start('pools:\n  - name: dpdk\n    network: red\n', viewOf([pf0, pf1], { deviceType: 'vfio-pci' }));
    // VFs still on their kernel driver are not ready for a vfio-pci container.
    const dpdk = s.snapshot().resources.find((r) => r.resourceName === 'vfleet.io/dpdk')!;
    assert.deepEqual(pf0.vfs.map((v) => dpdk.devices.find((d) => d.id === v.pciAddress)!.health[0]).join(''), 'UHHU');
    await assert.rejects(s.allocate('vfleet.io/dpdk', [pf0.vfs[0]!.pciAddress]), (e: SriovError) => e.code === 'CONFLICT' && /bound to iavf, not yet to vfio-pci/.test(e.message));
    const got = await s.allocate('vfleet.io/dpdk', [a.pciAddress, b.pciAddress]);
    const rw = (p: string) => ({ containerPath: p, hostPath: p, permissions: 'rw' });
    assert.deepEqual(got.devices, [rw('/dev/vfio/vfio'), rw(`/dev/vfio/${a.iommuGroup}`), rw(`/dev/vfio/${b.iommuGroup}`)]);
    const info = JSON.parse(got.envs.PCIDEVICE_VFLEET_IO_DPDK_INFO!) as Record<string, { vfio: { mount: string; 'dev-mount': string } }>;
    assert.deepEqual(info[a.pciAddress]!.vfio, { mount: '/dev/vfio/vfio', 'dev-mount': `/dev/vfio/${a.iommuGroup}` });
  });

  it('allocate refuses unknown and unhealthy devices, and gives nothing', async () => {
    const s = await start(undefined, viewOf([pf0, pf1], { allocations: [holding(pf0, 3)] }));
    await assert.rejects(s.allocate('vfleet.io/red', ['0000:99:00.1']), (e: SriovError) => e.code === 'NOT_FOUND' && /0000:99:00\.1 is not a VF of vfleet\.io\/red/.test(e.message));
    await assert.rejects(
      s.allocate('vfleet.io/red', [pf0.vfs[0]!.pciAddress, pf0.vfs[3]!.pciAddress]),
      (e: SriovError) => e.code === 'CONFLICT' && /is unhealthy: allocation alloc-3 \(network blue\) holds it/.test(e.message),
    );
    await assert.rejects(s.allocate('vfleet.io/blue', [pf0.vfs[0]!.pciAddress]), { code: 'NOT_FOUND' });
    assert.deepEqual(link.claims, []);
  });

  it('the controller unreachable during Allocate: a clear error, no VF given; a refusal passes through', async () => {
    const s = await start();
    const id = pf0.vfs[0]!.pciAddress;
    link.unreachable = true;
    await assert.rejects(s.allocate('vfleet.io/red', [id]), (e: SriovError) => e.code === 'TRY_AGAIN' && /the controller could not record vfleet\.io\/red VFs .*fetch failed.*no VF was given/.test(e.message));
    link.unreachable = false;
    link.claimFailure = 'hang';
    await assert.rejects(s.allocate('vfleet.io/red', [id]), (e: SriovError) => e.code === 'TRY_AGAIN' && /no answer in 300 ms/.test(e.message));
    link.claimFailure = new SriovError('CONFLICT', `VF ${id} is already claimed`);
    await assert.rejects(s.allocate('vfleet.io/red', [id]), { code: 'CONFLICT', message: `VF ${id} is already claimed` });
  });

  it('bandwidth units: a -bw resource when the network has guarantees; Allocate says how many, no claim', async () => {
    const s = await start('bandwidthUnitMbps: 1000\npools:\n  - name: red\n    network: red\n', viewOf([pf0, pf1], { min: 500 }));
    const bw = s.snapshot().resources.find((r) => r.resourceName === 'vfleet.io/red-bw')!;
    // Two 100 Gb/s ice ports.
    assert.equal(bw.devices.length, 200);
    const got = await s.allocate('vfleet.io/red-bw', ['red-bw-0', 'red-bw-7']);
    assert.deepEqual(got.envs, { VFLEET_RED_BW_UNITS: '2', VFLEET_RED_BW_UNIT_MBPS: '1000' });
    assert.deepEqual(link.claims, []);
    await assert.rejects(s.allocate('vfleet.io/red-bw', ['red-bw-200']), { code: 'NOT_FOUND' });
    assert.deepEqual(s.preferred('vfleet.io/red-bw', { available: ['red-bw-5', 'red-bw-1'], mustInclude: [], size: 1 }), ['red-bw-1']);
    // A guarantee committed outside the plugin shrinks it.
    link.update({ allocations: [holding(pf0, 0, { minTxRateMbps: 30_000 })] });
    await next(s, (snap) => snap.resources.find((r) => r.resourceName === 'vfleet.io/red-bw')!.devices.length === 170);
  });

  it('preStart: the claim must exist and be configured or attached', async () => {
    const s = await start();
    const id = pf0.vfs[0]!.pciAddress;
    await assert.rejects(s.preStart('vfleet.io/red', [id]), (e: SriovError) => e.code === 'CONFLICT' && /has no vfleet\.io\/red claim/.test(e.message));
    link.update({ allocations: [holding(pf0, 0, { network: 'red', state: 'pending', deviceClaim: { resource: 'vfleet.io/red' }, bound: false })] });
    await assert.rejects(s.preStart('vfleet.io/red', [id]), (e: SriovError) => e.code === 'CONFLICT' && /is pending, not configured yet/.test(e.message));
    link.update({ allocations: [holding(pf0, 0, { network: 'red', state: 'attached', deviceClaim: { resource: 'vfleet.io/red' } })] });
    await s.preStart('vfleet.io/red', [id]);
    link.unreachable = true;
    await assert.rejects(s.preStart('vfleet.io/red', [id]), { code: 'TRY_AGAIN' });
  });

  it('preferred for VFs follows the pool (redundancy over the two PFs)', async () => {
    const s = await start('pools:\n  - name: red\n    network: red\n    redundancy: true\n');
    const all = red(s.snapshot()).devices.map((d) => d.id);
    const got = s.preferred('vfleet.io/red', { available: all, mustInclude: [], size: 2 });
    assert.deepEqual(new Set(got.map((id) => (pf0.vfs.some((v) => v.pciAddress === id) ? 'pf0' : 'pf1'))), new Set(['pf0', 'pf1']));
  });

  it('a controller unreachable at start: the pools list no device until it answers', async () => {
    link = new FakeLink(viewOf([pf0, pf1]));
    link.unreachable = true;
    const s = new ControllerDeviceSource({ pools: parsePoolDocument('pools:\n  - name: red\n    network: red\n'), host, link, hostName: HOST, log: (l, m) => logs.push(`${l} ${m}`), pollMs: 100, waitMs: 200 });
    source = s;
    await s.start();
    assert.deepEqual(red(s.snapshot()).devices, []);
    assert.ok(logs.some((l) => /cannot reach the controller/.test(l)));
    link.unreachable = false;
    await next(s, (snap) => red(snap).devices.length === 8);
  });
});
