// A controller's start reads the stored host records a page at a time, in
// name order, and claims their PFs as they come (HostService.seed): who owns
// a PF, and which are contested, must not depend on that order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claimAtStart } from '../../src/controller/contested-pfs.js';

interface Stored {
  name: string;
  ready: boolean;
  identities: string[];
}

/** The claims after `records` in this order, as seed makes them. */
function claimsAfter(records: Stored[]) {
  const owners = new Map<string, string>();
  const contested = new Map<string, Set<string>>();
  const unreachable = new Set<string>();
  for (const r of records) {
    if (!r.ready) unreachable.add(r.name);
    claimAtStart({ owners, contested, ready: (name) => !unreachable.has(name) }, r.name, r.identities);
  }
  return { owners: Object.fromEntries([...owners].sort()), contested: Object.fromEntries([...contested].map(([id, names]) => [id, [...names].sort()]).sort()) };
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
}

describe('PF claims at start', () => {
  it('a ready claimant beats unreachable ones, two ready ones contest, whatever the order of the records', () => {
    const records: Stored[] = [
      { name: 'a', ready: true, identities: ['pf-1', 'pf-2'] },
      { name: 'b', ready: false, identities: ['pf-1', 'pf-3'] },
      { name: 'c', ready: true, identities: ['pf-2', 'pf-4'] },
      { name: 'd', ready: true, identities: ['pf-2'] },
      { name: 'e', ready: false, identities: ['pf-2', 'pf-5'] },
    ];
    const want = { owners: { 'pf-1': 'a', 'pf-3': 'b', 'pf-4': 'c', 'pf-5': 'e' }, contested: { 'pf-2': ['a', 'c', 'd'] } };
    for (const order of permutations(records)) assert.deepEqual(claimsAfter(order), want, order.map((r) => r.name).join(''));
  });

  it('a record read again (the read started over) changes nothing', () => {
    const a = { name: 'a', ready: true, identities: ['pf-1'] };
    const b = { name: 'b', ready: true, identities: ['pf-1'] };
    assert.deepEqual(claimsAfter([a, b, a, b]), claimsAfter([a, b]));
    assert.deepEqual(claimsAfter([a, a]), { owners: { 'pf-1': 'a' }, contested: {} });
  });
});
