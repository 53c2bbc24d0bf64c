// The agent's retry pacing for a release that keeps failing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff } from '../../src/agent/backoff.js';

describe('Backoff', () => {
  it('waits firstMs after a failure, doubling up to maxMs; a success or a key gone forgets it', () => {
    let now = 0;
    const b = new Backoff(1_000, 5_000, () => now);
    assert.equal(b.due('a'), true, 'never failed: due');
    assert.deepEqual([b.failed('a'), b.failed('a'), b.failed('a'), b.failed('a')], [1_000, 2_000, 4_000, 5_000]);
    assert.equal(b.due('a'), false);
    now = 4_999;
    assert.equal(b.due('a'), false);
    now = 5_000;
    assert.equal(b.due('a'), true);
    b.succeeded('a');
    assert.equal(b.failed('a'), 1_000, 'starts over after a success');
    b.failed('b');
    b.retain(new Set(['b']));
    assert.equal(b.failed('a'), 1_000, 'a key not retained starts over');
    assert.equal(b.failed('b'), 2_000, 'a retained key keeps its count');
  });
});
