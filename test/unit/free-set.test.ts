import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FreeVfSet } from '../../src/scheduler/free-set.js';

function set(capacity: number, free: number[]): FreeVfSet {
  const s = new FreeVfSet(capacity);
  for (const i of free) s.add(i);
  return s;
}

describe('free VF set: the first free index from a start', () => {
  it('is the start itself when free, else the next free one, across words', () => {
    const s = set(96, [3, 31, 40, 70]);
    assert.equal(s.firstFrom(31), 31);
    assert.equal(s.firstFrom(32), 40);
    assert.equal(s.firstFrom(41), 70);
    assert.equal(s.firstFrom(0), 3);
  });

  it('wraps to the lowest free index past the last one, and is -1 when none is free', () => {
    assert.equal(set(64, [5, 63]).firstFrom(64), 63, 'a start past the end is the last index');
    assert.equal(set(64, [5, 20]).firstFrom(21), 5);
    assert.equal(set(64, []).firstFrom(10), -1);
  });
});
