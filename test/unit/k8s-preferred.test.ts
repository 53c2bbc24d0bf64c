// GetPreferredAllocation: redundancy, NUMA, mustInclude, pack/spread, headroom.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeviceViewAllocation } from '../../src/controller/device-view.js';
import { poolStates } from '../../src/k8s/pool-devices.js';
import { preferredUnits, preferredVfs } from '../../src/k8s/preferred.js';
import { alloc, pf, pools, vfAddress, view } from '../helpers/pool-fixtures.js';

// Four PFs of 4 VFs: 0x3b and 0x3c on NUMA node 0, 0x86 and 0x87 on node 1.
const A = pf('ens1f0', 0x3b, { numa: 0 });
const B = pf('ens1f1', 0x3c, { numa: 0 });
const C = pf('ens2f0', 0x86, { numa: 1 });
const D = pf('ens2f1', 0x87, { numa: 1 });
const ALL = [A, B, C, D];
const vf = (p: typeof A, i: number) => p.vfs[i]!.pciAddress;
const every = ALL.flatMap((p) => p.vfs.map((v) => v.pciAddress));
const busOf = (id: string) => id.slice(5, 7);

function state(extra = '', o: { allocations?: DeviceViewAllocation[]; min?: number } = {}) {
  const yaml = `pools:\n  - name: red\n    network: red\n${extra}`;
  return poolStates(pools(yaml), { pfs: ALL }, view(ALL, [{ name: 'red', min: o.min ?? 0 }, { name: 'blue' }], o.allocations ?? []))[0]!;
}

describe('preferred allocation', () => {
  it('redundancy: a container\'s VFs go on different PFs, on one NUMA node when it has them', () => {
    const got = preferredVfs(state('    redundancy: true\n'), { available: every, mustInclude: [], size: 2 });
    assert.equal(got.length, 2);
    assert.equal(new Set(got.map(busOf)).size, 2);
    assert.deepEqual(new Set(got.map(busOf)), new Set(['3b', '3c']));
    // Without redundancy, pack keeps them on one PF.
    assert.equal(new Set(preferredVfs(state(), { available: every, mustInclude: [], size: 2 }).map(busOf)).size, 1);
  });

  it('redundancy and NUMA: the node that has different PFs, else redundancy across nodes', () => {
    // Node 1 has the most VFs, all of one PF; node 0 one VF each of two PFs.
    const available = [vf(C, 0), vf(C, 1), vf(C, 2), vf(A, 0), vf(B, 0)];
    const got = preferredVfs(state('    redundancy: true\n'), { available, mustInclude: [], size: 2 });
    assert.deepEqual(new Set(got.map(busOf)), new Set(['3b', '3c']));
    // No node has two PFs: redundancy still holds, across nodes.
    const across = preferredVfs(state('    redundancy: true\n'), { available: [vf(C, 0), vf(C, 1), vf(A, 0)], mustInclude: [], size: 2 });
    assert.deepEqual(new Set(across.map(busOf)), new Set(['3b', '86']));
  });

  it('NUMA: the node with the most available devices, else the node of mustInclude', () => {
    const available = [vf(A, 0), vf(C, 0), vf(C, 1), vf(D, 0)];
    assert.ok(preferredVfs(state(), { available, mustInclude: [], size: 2 }).every((id) => ['86', '87'].includes(busOf(id))));
    const withMust = preferredVfs(state(), { available: [...available, vf(B, 3)], mustInclude: [vf(A, 0)], size: 2 });
    assert.deepEqual(withMust, [vf(A, 0), vf(B, 3)]);
  });

  it('keeps every mustInclude and chooses the rest from available only', () => {
    const available = [vf(D, 3), vf(D, 2), vf(C, 1)];
    const got = preferredVfs(state(), { available, mustInclude: [vf(D, 2)], size: 3 });
    assert.equal(got[0], vf(D, 2));
    assert.deepEqual(new Set(got), new Set(available));
    // size no more than mustInclude: exactly mustInclude.
    assert.deepEqual(preferredVfs(state(), { available, mustInclude: [vf(C, 1), vf(D, 3)], size: 2 }), [vf(C, 1), vf(D, 3)]);
    // Not enough available: all of them, nothing invented.
    assert.deepEqual(new Set(preferredVfs(state(), { available: [vf(A, 1)], mustInclude: [], size: 3 })), new Set([vf(A, 1)]));
  });

  it('pack fills the most used PF, spread the least used', () => {
    // B has 2 VFs held already, A none; both on node 0, offered their free VFs.
    const allocations = [alloc(B, 0, { network: 'blue' }), alloc(B, 1, { network: 'blue' })];
    const available = [vf(A, 0), vf(A, 1), vf(B, 2), vf(B, 3)];
    assert.deepEqual(preferredVfs(state('', { allocations }), { available, mustInclude: [], size: 2 }), [vf(B, 2), vf(B, 3)]);
    assert.deepEqual(preferredVfs(state('    placement: spread\n', { allocations }), { available, mustInclude: [], size: 2 }), [vf(A, 0), vf(A, 1)]);
  });

  it('prefers PFs with headroom for the network\'s guarantee over a fuller PF', () => {
    // B is the most used (pack's choice) but 9.5 of its 10 Gb/s are committed: the 1 Gb/s guarantee fits A only.
    const allocations = [alloc(B, 0, { network: 'blue', min: 9500 })];
    const available = [vf(A, 0), vf(A, 1), vf(B, 2)];
    assert.deepEqual(preferredVfs(state('', { allocations, min: 1000 }), { available, mustInclude: [], size: 1 }), [vf(A, 0)]);
    // Without a guarantee, pack takes B.
    assert.deepEqual(preferredVfs(state('', { allocations }), { available, mustInclude: [], size: 1 }), [vf(B, 2)]);
  });

  it('is deterministic: the order of available does not matter', () => {
    const s = state('    redundancy: true\n    placement: spread\n');
    const one = preferredVfs(s, { available: every, mustInclude: [], size: 3 });
    const two = preferredVfs(s, { available: [...every].reverse(), mustInclude: [], size: 3 });
    assert.deepEqual(one, two);
    assert.equal(new Set(one.map(busOf)).size, 3);
  });

  it('ids the pool no longer lists come last', () => {
    const gone = vfAddress(0x3b, 9);
    assert.deepEqual(preferredVfs(state(), { available: [gone, vf(A, 2)], mustInclude: [], size: 1 }), [vf(A, 2)]);
  });

  it('bandwidth units: mustInclude, then the lowest ids', () => {
    assert.deepEqual(preferredUnits({ available: ['red-bw-3', 'red-bw-1', 'red-bw-2', 'red-bw-0'], mustInclude: ['red-bw-3'], size: 3 }), ['red-bw-3', 'red-bw-0', 'red-bw-1']);
  });
});
