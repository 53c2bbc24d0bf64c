import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomUuid } from '../../src/util/uuid.js';
import { isoClock } from '../../src/controller/context.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('randomUuid', () => {
  it('gives version 4, variant 10 UUIDs in lower-case 8-4-4-4-12 text', () => {
    for (let i = 0; i < 1000; i++) assert.match(randomUuid(), V4);
  });

  it('gives a different one each time, past the end of its random bytes (256 at a time)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) seen.add(randomUuid());
    assert.equal(seen.size, 5000);
  });

  it('sets every hex digit it does not fix: each position takes several values', () => {
    const at = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 2000; i++) [...randomUuid()].forEach((c, j) => at[j]!.add(c));
    for (const [j, values] of at.entries()) {
      if ([8, 13, 18, 23].includes(j)) assert.deepEqual([...values], ['-']);
      else if (j === 14) assert.deepEqual([...values], ['4']);
      else if (j === 19) assert.deepEqual([...values].sort(), ['8', '9', 'a', 'b']);
      else assert.equal(values.size, 16, `position ${j}`);
    }
  });
});

describe('isoClock', () => {
  it('tells the time as ISO 8601 text, as new Date().toISOString() does', () => {
    const now = isoClock();
    const before = Date.now();
    const told = Date.parse(now());
    assert.match(now(), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.ok(told >= before && told <= Date.now());
  });

  it('moves on with the clock', async () => {
    const now = isoClock();
    const first = now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(Date.parse(now()) > Date.parse(first));
  });
});
