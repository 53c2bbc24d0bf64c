// The scheduler's index keeps a PF's VF addresses as a first address and a
// stride when the inventory follows SR-IOV's layout: every address it gives
// must be the inventory's own, and any other PF is kept as listed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VfInfo } from '../../src/host/model.js';
import { vfAddresses } from '../../src/scheduler/vf-addresses.js';

const vfs = (addresses: string[]) => addresses.map((pciAddress, index) => ({ index, pciAddress }) as VfInfo);
/** `n` addresses from routing ID `first`, `stride` apart, in domain 0000. */
const laidOut = (first: number, stride: number, n: number) =>
  Array.from({ length: n }, (_, i) => {
    const rid = first + i * stride;
    return `0000:${(rid >> 8).toString(16).padStart(2, '0')}:${((rid >> 3) & 31).toString(16).padStart(2, '0')}.${rid & 7}`;
  });

/** Every index and address of `listed` answers as the inventory says, and nothing else does. */
function agrees(addresses: string[], listed = vfs(addresses)): void {
  const table = vfAddresses(listed);
  assert.equal(table.size, listed.length);
  for (const vf of listed) {
    assert.equal(table.get(vf.index), vf.pciAddress);
    assert.equal(table.indexOf(vf.pciAddress), vf.index);
    assert.ok(table.has(vf.index));
  }
  assert.equal(table.get(listed.length + 5), undefined);
  assert.equal(table.has(-1), false);
  assert.equal(table.has(0.5), false);
  assert.equal(table.indexOf('0000:ff:1f.7'), undefined);
  assert.equal(table.indexOf('0001:3b:02.0'), undefined);
  assert.equal(table.indexOf('not an address'), undefined);
}

describe('VF address tables', () => {
  it('SR-IOV layouts: stride 1 across a device and a bus boundary, stride 2, one VF, none', () => {
    agrees(laidOut(0x3b11, 1, 256));
    agrees(laidOut(0x3bf8, 1, 64)); // 0000:3b:1f.0 on into bus 3c
    agrees(laidOut(0x1010, 2, 16));
    agrees(laidOut(0x1001, 1, 1));
    agrees([]);
    for (const layout of [laidOut(0x3b11, 1, 256), laidOut(0x3bf8, 1, 64), laidOut(0x1010, 2, 16)]) {
      assert.equal(vfAddresses(vfs(layout)).constructor.name, 'Strided', 'kept as a first address and a stride, no string per VF');
    }
  });

  it('anything else as listed: a gap, a VF out of step, upper-case hex, netdevsim ports, indexes not from 0', () => {
    const gap = laidOut(0x3b11, 1, 8);
    gap.splice(3, 1);
    agrees(gap);
    const outOfStep = laidOut(0x3b11, 1, 8);
    outOfStep[5] = '0000:3b:07.7';
    agrees(outOfStep);
    agrees(laidOut(0x3bf8, 1, 8).map((a) => a.toUpperCase()));
    agrees(['netdevsim10:vf0', 'netdevsim10:vf1']);
    agrees([], laidOut(0x3b11, 1, 4).map((pciAddress, i) => ({ index: i + 2, pciAddress }) as VfInfo));
  });
});
