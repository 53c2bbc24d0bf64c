// The device model: which VFs a pool offers, their health, and its bandwidth units.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deviceSnapshot, MAX_BANDWIDTH_UNITS, poolStates, resourceViews } from '../../src/k8s/pool-devices.js';
import { alloc, pf, pools, vfAddress, view } from '../helpers/pool-fixtures.js';

const RED = 'pools:\n  - name: red\n    network: red\n';

function resource(yaml: string, inv: Parameters<typeof poolStates>[1], v: Parameters<typeof poolStates>[2], name = 'vfleet.io/red') {
  return resourceViews(poolStates(pools(yaml), inv, v)).find((r) => r.resourceName === name);
}

describe('pool devices: selection', () => {
  const a = pf('ens1f0', 0x3b, { numa: 0 });
  const b = pf('ens1f1', 0x3c, { numa: 1, vendor: '15b3', vfDevice: '101e', driver: 'mlx5_core' });

  it('one device per VF of the PFs on the network\'s physnet, with the PF\'s NUMA node, sorted', () => {
    const r = resource(RED, { pfs: [b, a] }, view([a, b], [{ name: 'red' }]))!;
    assert.deepEqual(
      r.devices.map((d) => [d.id, d.health, d.numaNode]),
      [...[0, 1, 2, 3].map((i) => [vfAddress(0x3b, i), 'Healthy', 0]), ...[0, 1, 2, 3].map((i) => [vfAddress(0x3c, i), 'Healthy', 1])],
    );
    assert.equal(r.preStartRequired, true);
  });

  it('no network yet, or no view yet: the resource is listed with no device', () => {
    assert.deepEqual(resource(RED, { pfs: [a] }, view([a], [{ name: 'blue' }]))!.devices, []);
    assert.deepEqual(resource(RED, { pfs: [a] }, null)!.devices, []);
  });

  it('PFs on another physnet, or bound to another device type, are not the pool\'s', () => {
    const v = view([a, b], [{ name: 'red', physnet: 'fabric' }]);
    v.physnets[b.pciAddress] = 'storage';
    assert.deepEqual(new Set(resource(RED, { pfs: [a, b] }, v)!.devices.map((d) => d.id.slice(0, 7))), new Set(['0000:3b']));
    const w = view([a, b], [{ name: 'red' }]);
    w.deviceTypes[a.pciAddress] = 'vfio-pci';
    assert.deepEqual(new Set(resource(RED, { pfs: [a, b] }, w)!.devices.map((d) => d.id.slice(0, 7))), new Set(['0000:3c']));
    const vfio = 'pools:\n  - name: red\n    network: red\n    deviceType: vfio-pci\n';
    assert.deepEqual(new Set(resource(vfio, { pfs: [a, b] }, w)!.devices.map((d) => d.id.slice(0, 7))), new Set(['0000:3b']));
  });

  it('selectors narrow: vendor, device, driver, pfNames with VF ranges, physnet', () => {
    const v = view([a, b], [{ name: 'red' }]);
    const count = (sel: string) => resource(`${RED}${sel}`, { pfs: [a, b] }, v)!.devices.length;
    assert.equal(count('    vendor: "15b3"\n'), 4);
    assert.equal(count('    device: "1889"\n'), 4);
    assert.equal(count('    driver: mlx5_core\n'), 4);
    assert.equal(count('    driver: vfio-pci\n'), 0);
    assert.equal(count('    pfNames: ["ens1f0#1-2"]\n'), 2);
    assert.equal(count('    pfNames: ["ens1f0#3-3", "ens1f1"]\n'), 5);
    assert.equal(count('    physnet: fabric\n'), 8);
    // The file's physnet must equal the network's: when it does not, nothing.
    assert.equal(count('    physnet: storage\n'), 0);
  });

  it('VFs that vanish disappear, new ones appear (numVfs changed)', () => {
    const v = view([a], [{ name: 'red' }]);
    assert.equal(resource(RED, { pfs: [a] }, v)!.devices.length, 4);
    assert.equal(resource(RED, { pfs: [{ ...a, vfs: a.vfs.slice(0, 2) }] }, v)!.devices.length, 2);
    assert.equal(resource(RED, { pfs: [pf('ens1f0', 0x3b, { vfs: 8 })] }, v)!.devices.length, 8);
  });
});

describe('pool devices: health', () => {
  const a = pf('ens1f0', 0x3b);
  const health = (inv = a, allocations = [] as ReturnType<typeof alloc>[]) =>
    resource(RED, { pfs: [inv] }, view([a], [{ name: 'red' }, { name: 'blue' }], allocations))!.devices.map((d) => d.health[0]).join('');

  it('a PF link down turns every VF Unhealthy; back up, Healthy again', () => {
    assert.equal(health({ ...a, linkState: 'down', linkSpeedMbps: null }), 'UUUU');
    assert.equal(health(a), 'HHHH');
    // A link the driver does not report is not taken as down.
    assert.equal(health({ ...a, linkState: 'unknown' }), 'HHHH');
  });

  it('a drained PF turns its VFs Unhealthy, saying so, even the one its own claim holds; the other PF\'s stay Healthy; undrained, Healthy again', () => {
    const b = pf('ens1f1', 0x3c);
    const cfg = pools(RED);
    const claimed = [alloc(a, 1, { claim: 'vfleet.io/red', state: 'attached' })];
    const states = (drainedPfs: string[]) => poolStates(cfg, { pfs: [a, b] }, view([a, b], [{ name: 'red' }], claimed, { drainedPfs }))[0]!.vfs;
    const drained = states([a.pciAddress]);
    assert.deepEqual(drained.map((vf) => vf.health[0]).join(''), 'UUUUHHHH');
    assert.deepEqual(new Set(drained.filter((vf) => vf.pf === 'ens1f0').map((vf) => vf.unhealthy)), new Set(['its PF ens1f0 is drained']));
    assert.ok(drained.filter((vf) => vf.pf === 'ens1f1').every((vf) => vf.unhealthy === null));
    assert.equal(states([]).map((vf) => vf.health[0]).join(''), 'HHHHHHHH');
    // A pulled cable is the first thing to fix: it is what a drained PF without link says.
    const noLink = poolStates(cfg, { pfs: [{ ...a, linkState: 'down' }] }, view([a], [{ name: 'red' }], [], { drainedPfs: [a.pciAddress] }))[0]!.vfs[0]!;
    assert.equal(noLink.unhealthy, 'its PF ens1f0 has no link');
  });

  it('held by another allocation: Unhealthy; held by this resource\'s claim: Healthy', () => {
    assert.equal(health(a, [alloc(a, 0, { network: 'blue' }), alloc(a, 1, { claim: 'vfleet.io/red', state: 'pending' }), alloc(a, 2, { claim: 'vfleet.io/blue', network: 'blue' })]), 'UHUH');
    // A red allocation made outside the plugin (CLI, VM) is not a claim the kubelet gave out.
    assert.equal(health(a, [alloc(a, 3, { network: 'red' })]), 'HHHU');
    // Released: free again.
    assert.equal(health(a, [alloc(a, 0, { network: 'blue', state: 'released' })]), 'HHHH');
  });

  it('a failed allocation nobody holds since: Unhealthy until it clears or the VF is held again', () => {
    assert.equal(health(a, [alloc(a, 2, { state: 'failed' })]), 'HHUH');
    assert.equal(health(a, [alloc(a, 2, { state: 'failed' }), alloc(a, 2, { state: 'pending', claim: 'vfleet.io/red' })]), 'HHHH');
    assert.equal(health(a, []), 'HHHH');
  });

  it("the controller cannot claim it yet: not in the host's last report, or its own claim still being released: Unhealthy", () => {
    const v = { ...view([a], [{ name: 'red' }]), reportedVfs: a.vfs.slice(0, 3).map((vf) => vf.pciAddress) };
    assert.equal(resource(RED, { pfs: [a] }, v)!.devices.map((d) => d.health[0]).join(''), 'HHHU');
    assert.equal(health(a, [alloc(a, 1, { claim: 'vfleet.io/red', state: 'releasing' })]), 'HUHH');
  });

  it('a VF not bound as the device type needs (the agent rebinds after a policy change): Unhealthy', () => {
    const drivers = (list: Array<string | null>) => ({ ...a, vfs: a.vfs.map((v, i) => ({ ...v, driver: list[i] ?? null })) });
    assert.equal(health(drivers(['iavf', 'vfio-pci', null, 'iavf'])), 'HUUH');
    const vfio = 'pools:\n  - name: red\n    network: red\n    deviceType: vfio-pci\n';
    const v = view([a], [{ name: 'red' }], [], { deviceType: 'vfio-pci' });
    const r = resource(vfio, { pfs: [drivers(['iavf', 'vfio-pci', null, 'vfio-pci'])] }, v)!;
    assert.equal(r.devices.map((d) => d.health[0]).join(''), 'UHUH');
  });

  it('the revision follows the content: same content, same revision; a health change, a new one', () => {
    const cfg = pools(RED);
    const v = view([a], [{ name: 'red' }]);
    const one = deviceSnapshot(poolStates(cfg, { pfs: [a] }, v));
    const again = deviceSnapshot(poolStates(cfg, { pfs: [a] }, { ...v, revision: 'r2' }));
    const down = deviceSnapshot(poolStates(cfg, { pfs: [{ ...a, linkState: 'down' }] }, v));
    assert.equal(one.revision, again.revision);
    assert.notEqual(one.revision, down.revision);
  });
});

describe('pool devices: bandwidth units', () => {
  const a = pf('ens1f0', 0x3b, { speed: 10_000 });
  const b = pf('ens1f1', 0x3c, { speed: 25_000, numa: 1 });
  const units = (allocations: ReturnType<typeof alloc>[], o: { ratio?: number; min?: number; inv?: typeof a[]; drainedPfs?: string[] } = {}) =>
    resource(RED, { pfs: o.inv ?? [a, b] }, view([a, b], [{ name: 'red', min: o.min ?? 500 }, { name: 'blue', min: 1000 }], allocations, { ratio: o.ratio, drainedPfs: o.drainedPfs }), 'vfleet.io/red-bw');

  it('no guarantee on the network: no -bw resource', () => {
    assert.equal(units([], { min: 0 }), undefined);
  });

  it('per PF, floor((speed × ratio − committed non-claim guarantees) / unit), summed; ids <pool>-bw-<n>, no topology', () => {
    const r = units([])!;
    assert.equal(r.devices.length, 350);
    assert.equal(r.preStartRequired, false);
    assert.ok(r.devices.every((d) => d.health === 'Healthy' && d.numaNode === null));
    assert.deepEqual(new Set(r.devices.map((d) => d.id)), new Set(Array.from({ length: 350 }, (_, n) => `red-bw-${n}`)));
    assert.equal(units([], { ratio: 0.5 })!.devices.length, 175);
  });

  it('shrinks as guarantees are committed by allocations that are not device claims; claims are left to the kubelet', () => {
    assert.equal(units([alloc(a, 0, { network: 'blue', min: 1000 })])!.devices.length, 340);
    assert.equal(units([alloc(a, 0, { network: 'blue', min: 1000 }), alloc(b, 1, { min: 2550 })])!.devices.length, 314);
    assert.equal(units([alloc(a, 0, { min: 5000, claim: 'vfleet.io/red', state: 'attached' })])!.devices.length, 350);
    assert.equal(units([alloc(a, 0, { network: 'blue', min: 1000, state: 'failed' })])!.devices.length, 350);
    // Never below zero on an overcommitted PF.
    assert.equal(units([alloc(a, 0, { network: 'blue', min: 12_000 })])!.devices.length, 250);
  });

  it('a PF without link offers no unit', () => {
    assert.equal(units([], { inv: [{ ...a, linkState: 'down', linkSpeedMbps: null }, b] })!.devices.length, 250);
  });

  it('at most MAX_BANDWIDTH_UNITS, however small the unit: a longer list would not reach the kubelet (4 MB per gRPC message)', () => {
    const fast = [pf('ens1f0', 0x3b, { speed: 100_000 }), pf('ens1f1', 0x3c, { speed: 100_000 })];
    const tiny = `bandwidthUnitMbps: 1\n${RED}`;
    const r = resource(tiny, { pfs: fast }, view(fast, [{ name: 'red', min: 500 }], [], { ratio: 1 }), 'vfleet.io/red-bw')!;
    assert.equal(r.devices.length, MAX_BANDWIDTH_UNITS, 'not 200000');
    assert.equal(new Set(r.devices.map((d) => d.id)).size, MAX_BANDWIDTH_UNITS);
  });

  it('a drained PF offers no unit; undrained, its units are back', () => {
    assert.equal(units([], { drainedPfs: [a.pciAddress] })!.devices.length, 250);
    assert.equal(units([], { drainedPfs: [a.pciAddress, b.pciAddress] })!.devices.length, 0);
    assert.equal(units([], { drainedPfs: [] })!.devices.length, 350);
  });
});
