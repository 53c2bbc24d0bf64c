// The etcd store's ids in order (a list by state pages through them): random
// inserts across many chunks, pages by cursor that adds between them do not
// upset, and a filtered copy that leaves the original to a list still on it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stateIn } from '../../src/store/etcd/allocation-index.js';
import { SortedIds } from '../../src/store/etcd/sorted-ids.js';

/** 0..n-1 as zero-padded ids, in a scrambled order (a fixed stride through them). */
function scrambled(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String((i * 7919) % n).padStart(6, '0'));
}

describe('etcd store: ids in order', () => {
  it('keeps 5,000 ids inserted in random order sorted and unique, and pages through them by cursor', () => {
    const ids = new SortedIds();
    const all = scrambled(5000);
    for (const id of all) ids.add(id);
    for (const id of all.slice(0, 100)) ids.add(id);
    assert.equal(ids.size, 5000);
    const sorted = [...all].sort();
    const paged: string[] = [];
    for (let page = ids.after(undefined, 300); page.length > 0; page = ids.after(page[page.length - 1], 300)) paged.push(...page);
    assert.deepEqual(paged, sorted);
    assert.deepEqual(ids.after('000999', 3), ['001000', '001001', '001002']);
    assert.deepEqual(ids.after('0009995', 2), ['001000', '001001'], 'a cursor between two ids');
    assert.deepEqual(ids.after('004999', 3), []);
    assert.deepEqual(ids.after('', 1), ['000000']);
  });

  it('a cursor goes on past ids added since, before and after it; a filtered copy leaves the original whole', () => {
    const ids = new SortedIds();
    for (const id of ['b', 'd', 'f', 'h']) ids.add(id);
    const first = ids.after(undefined, 2);
    assert.deepEqual(first, ['b', 'd']);
    ids.add('a');
    ids.add('e');
    assert.deepEqual(ids.after('d', 10), ['e', 'f', 'h']);
    const kept = ids.filter((id) => id !== 'e' && id !== 'h');
    assert.deepEqual(kept.after(undefined, 10), ['a', 'b', 'd', 'f']);
    assert.equal(kept.size, 4);
    assert.deepEqual(ids.after(undefined, 10), ['a', 'b', 'd', 'e', 'f', 'h']);
  });

  it('finds a record\'s state in its text or bytes without decoding it', () => {
    const record = JSON.stringify({ id: 'x', workload: { kind: 'container', name: 'say "state":"attached"' }, state: 'releasing', attachment: null });
    assert.equal(stateIn(record), 'releasing', 'a quoted "state" inside a string value is escaped: not a match');
    assert.equal(stateIn(Buffer.from(record)), 'releasing');
    assert.equal(stateIn('{"id":"x"}'), null);
  });
});
