/**
 * The store contract for tenant bandwidth groups: the guarantee invariant
 * on a PF counts a group tenant once, as max(share, its VFs' guarantees),
 * as the scheduler's admission does; two controllers cannot both fit a share
 * into headroom only one has, and a group change (`tenant set`) races
 * placements like any other writer of the PF. Run by storeContract, so on
 * SQLite in the unit suite and on etcd in the system suite.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Allocation, Tenant } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import type { Store } from '../../src/store/store.js';
import { allocation, putNetworks, type StoreTarget } from './store.contract.js';

const AT = '2025-01-01T00:00:00.000Z';
const LATER = '2025-01-01T00:05:00.000Z';

/** VF `vfIndex` of host-a's ens1f0, MAC ...:08:<vfIndex>, tenant blue, 1000 Mbps unless told otherwise. */
function vf(id: string, vfIndex: number, over: Partial<Allocation> = {}): Allocation {
  const tenant = over.tenant ?? 'blue';
  return allocation({
    id,
    workload: { kind: 'container', name: `cnf-${id}` },
    network: `${tenant}-net`,
    tenant,
    vfIndex,
    pciAddress: `0000:3b:02.${vfIndex}`,
    mac: `02:00:00:00:08:${String(vfIndex).padStart(2, '0')}`,
    ...over,
  });
}

function tenant(name: string, pfMinTxRateMbps: number | null, pfMaxTxRateMbps: number | null = null): Tenant {
  return { id: `id-${name}`, name, pfMinTxRateMbps, pfMaxTxRateMbps, createdAt: AT };
}

const CAP = { capacityMbps: 2500 };
/** `tenant set`'s check: every PF 2500 Mbps. */
const GROUP_CHECK = { capacityMbps: () => 2500 };

async function assertBandwidth(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SriovError, `expected SriovError, got ${String(err)}`);
    assert.equal(err.code, 'CONFLICT', err.message);
    assert.equal(err.details.claim, 'bandwidth', err.message);
    assert.match(err.message, message);
    return true;
  });
}

/** Exactly `n` of `tries` won; every loser is a bandwidth CONFLICT. */
async function winners(tries: Array<Promise<unknown>>, n: number): Promise<number[]> {
  const results = await Promise.allSettled(tries);
  const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
  assert.equal(won.length, n, JSON.stringify(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))));
  for (const r of results) {
    if (r.status === 'rejected') assert.ok(r.reason instanceof SriovError && r.reason.code === 'CONFLICT' && r.reason.details.claim === 'bandwidth', String(r.reason));
  }
  return won;
}

export function storeGroupsContract(engine: string, target: StoreTarget): void {
  async function withTwo(fn: (one: Store, two: Store) => Promise<void>): Promise<void> {
    const one = await target.open();
    try {
      await putNetworks(one, ['blue', 'red', 'green', 'gold', 'teal', 'big']);
      const two = await target.peer(one);
      try {
        await fn(one, two);
      } finally {
        if (two !== one) await two.close();
      }
    } finally {
      await one.close();
    }
  }

  describe(`${engine} store contract: tenant bandwidth groups`, () => {
    it('a group tenant counts max(share, its guarantees) once per PF, its first VF without a guarantee too; release, failure, a re-hold and a rollback keep it exact', () =>
      withTwo(async (store) => {
        await store.tx.putTenant(tenant('blue', null));
        await store.tx.putTenant(tenant('red', 1000, 2000));
        const insert = (a: Allocation) => store.tx.insertAllocation(a, CAP);
        await insert(vf('b-1', 1));
        // Red's first VF, with no guarantee of its own, commits the share; its second, inside the share, nothing more.
        await insert(vf('r-1', 2, { tenant: 'red', minTxRateMbps: 0 }));
        await insert(vf('r-2', 3, { tenant: 'red', minTxRateMbps: 300 }));
        await assertBandwidth(insert(vf('b-2', 4, { minTxRateMbps: 501 })), /host-a\/ens1f0: 2000 of its 2500 Mbps are committed \(headroom 500 Mbps\)/);
        await insert(vf('b-2', 4, { minTxRateMbps: 500 }));
        // Red's VFs' guarantees must fit inside its share.
        await assertBandwidth(insert(vf('r-3', 5, { tenant: 'red', minTxRateMbps: 701 })), /inside tenant red's bandwidth group on host-a\/ens1f0: its VFs there guarantee 300 of its 1000 Mbps/);
        await insert(vf('r-3', 5, { tenant: 'red', minTxRateMbps: 700 }));
        await assertBandwidth(insert(vf('b-3', 6, { minTxRateMbps: 1 })), /2500 of its 2500/);
        // Released, one of red's VFs leaves the share in place; failed, the last two give it back.
        await store.tx.updateAllocationState('r-1', 'released', null, LATER);
        await assertBandwidth(insert(vf('b-3', 6, { minTxRateMbps: 1 })), /2500 of its 2500/);
        await store.tx.updateAllocationState('r-2', 'failed', 'gone', LATER);
        await store.tx.updateAllocationState('r-3', 'released', null, LATER);
        await assertBandwidth(insert(vf('b-3', 6, { minTxRateMbps: 1001 })), /1500 of its 2500 Mbps are committed \(headroom 1000 Mbps\)/);
        // Taken back into a holding state, red's VF commits the share again.
        await store.tx.updateAllocationState('r-1', 'pending', null, LATER);
        await assertBandwidth(insert(vf('b-3', 6, { minTxRateMbps: 1 })), /2500 of its 2500/);
        // A transaction that fails counts nothing of what it did.
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.updateAllocationState('r-1', 'released', null, LATER);
            await tx.insertAllocation(vf('b-3', 6), CAP);
            throw new Error('agent refused');
          }),
          /agent refused/,
        );
        await assertBandwidth(insert(vf('b-3', 6, { minTxRateMbps: 1 })), /2500 of its 2500/);
        // Another PF counts the group on its own.
        await insert(vf('r-4', 1, { tenant: 'red', pfPciAddress: '0000:3b:00.1', pf: 'ens1f1', mac: '02:00:00:00:09:01', minTxRateMbps: 0 }));
        await assertBandwidth(insert(vf('b-4', 2, { pfPciAddress: '0000:3b:00.1', pf: 'ens1f1', mac: '02:00:00:00:09:02', minTxRateMbps: 1501 })), /host-a\/ens1f1: 1000 of its 2500/);
      }));

    it('two group tenants’ first VFs on one PF where only one share fits: exactly one wins', () =>
      withTwo(async (one, two) => {
        for (const name of ['red', 'green', 'gold', 'teal']) await one.tx.putTenant(tenant(name, 1500));
        await one.tx.insertAllocation(vf('b-1', 1, { minTxRateMbps: 500 }), CAP);
        // 2000 Mbps of headroom: room for one share of 1500, whoever comes first.
        const tries = ['red', 'green', 'gold', 'teal'].map((name, i) =>
          (i % 2 === 0 ? one : two).tx.insertAllocation(vf(`${name}-1`, 2 + i, { tenant: name, minTxRateMbps: 0 }), CAP),
        );
        await winners(tries, 1);
        await assertBandwidth(two.tx.insertAllocation(vf('b-2', 9, { minTxRateMbps: 501 }), CAP), /2000 of its 2500/);
      }));

    it('a share raise racing a placement on another controller: they cannot both win, and the loser changed nothing', () =>
      withTwo(async (one, two) => {
        await one.tx.putTenant(tenant('blue', null));
        await one.tx.putTenant(tenant('red', 500));
        await one.tx.insertAllocation(vf('r-1', 1, { tenant: 'red', minTxRateMbps: 0 }), CAP);
        await one.tx.insertAllocation(vf('b-1', 2), CAP);
        // 1500 committed: the raise to 1500 fits alone (2500), and so does blue's 1000 (2500); not both.
        const raise = one.transaction((tx) => tx.putTenant(tenant('red', 1500), GROUP_CHECK));
        const place = two.tx.insertAllocation(vf('b-2', 3), CAP);
        const [won] = await winners([raise, place], 1);
        assert.equal((await two.tx.getTenant('red'))?.pfMinTxRateMbps, won === 0 ? 1500 : 500);
        assert.equal((await two.tx.getAllocation('b-2')) !== null, won === 1);
        await assertBandwidth(two.tx.insertAllocation(vf('b-3', 4, { minTxRateMbps: 1 }), CAP), /2500 of its 2500/);
        // A raise that does not fit is refused, naming the PF and its headroom.
        await assertBandwidth(one.tx.putTenant(tenant('red', 2000), GROUP_CHECK), /tenant red's bandwidth group would commit 2000 Mbps on host-a\/ens1f0: .* \(headroom \d+ Mbps\)/);
        // Cleared, the group commits only its VFs' guarantees (none): its share is free again.
        await one.tx.putTenant(tenant('red', null), GROUP_CHECK);
        const free = won === 0 ? 1500 : 500;
        await two.tx.insertAllocation(vf('b-3', 4, { minTxRateMbps: free }), CAP);
        await assertBandwidth(two.tx.insertAllocation(vf('b-4', 5, { minTxRateMbps: 1 }), CAP), /2500 of its 2500/);
        // Set again on a tenant that holds VFs, the group is counted where it holds them.
        await one.tx.updateAllocationState('b-3', 'released', null, LATER);
        const others = won === 0 ? 1000 : 2000;
        await one.tx.putTenant(tenant('red', 400), GROUP_CHECK);
        await assertBandwidth(two.tx.insertAllocation(vf('b-4', 5, { minTxRateMbps: 2500 - others - 399 }), CAP), new RegExp(`${others + 400} of its 2500`));
      }));

    it('a deleted group tenant leaves nothing of its group behind: VFs it still held count their own guarantees, and a tenant of its name starts afresh', () =>
      withTwo(async (one, two) => {
        await one.tx.putTenant(tenant('blue', null));
        await one.tx.putTenant(tenant('red', 1000));
        await one.tx.insertAllocation(vf('r-1', 1, { tenant: 'red', minTxRateMbps: 0 }), CAP);
        await assertBandwidth(two.tx.insertAllocation(vf('b-1', 2, { minTxRateMbps: 1501 }), CAP), /1000 of its 2500/);
        assert.equal(await one.tx.deleteTenant('red'), true);
        // Its VF, without a guarantee, commits nothing now: the whole PF is free.
        await two.tx.insertAllocation(vf('b-1', 2, { minTxRateMbps: 2500 }), CAP);
        await one.tx.updateAllocationState('b-1', 'released', null, LATER);
        await one.tx.updateAllocationState('r-1', 'released', null, LATER);
        // Created again with a group, its first VF commits the share, as any tenant's.
        await one.tx.putTenant(tenant('red', 1000));
        await one.tx.insertAllocation(vf('r-2', 3, { tenant: 'red', minTxRateMbps: 0 }), CAP);
        await assertBandwidth(two.tx.insertAllocation(vf('b-2', 4, { minTxRateMbps: 1501 }), CAP), /1000 of its 2500/);
      }));

    it('a group change on a tenant with more allocations than one etcd Txn could compare: it lands, and counts exactly', () =>
      withTwo(async (store) => {
        await store.tx.putTenant(tenant('big', null));
        // 140 VFs without a guarantee on ens1f0 (more than one etcd Txn's 128 compares), 10 of them released, and one on ens1f1.
        await Promise.all(Array.from({ length: 140 }, (_, i) => store.tx.insertAllocation(vf(`big-${i}`, 10 + i, { tenant: 'big', mac: `02:00:00:00:0a:${i.toString(16).padStart(2, '0')}`, minTxRateMbps: 0 }), CAP)));
        await Promise.all(Array.from({ length: 10 }, (_, i) => store.tx.updateAllocationState(`big-${i}`, 'released', null, LATER)));
        await store.tx.insertAllocation(vf('big-f1', 1, { tenant: 'big', pfPciAddress: '0000:3b:00.1', pf: 'ens1f1', mac: '02:00:00:00:0b:01', minTxRateMbps: 0 }), CAP);
        await store.tx.putTenant(tenant('big', 1000), GROUP_CHECK);
        await store.tx.insertAllocation(vf('b-1', 1, { minTxRateMbps: 1500 }), CAP);
        await assertBandwidth(store.tx.insertAllocation(vf('b-2', 2, { minTxRateMbps: 1 }), CAP), /host-a\/ens1f0: 2500 of its 2500/);
        await assertBandwidth(store.tx.insertAllocation(vf('b-3', 2, { pfPciAddress: '0000:3b:00.1', pf: 'ens1f1', mac: '02:00:00:00:0b:02', minTxRateMbps: 1501 }), CAP), /host-a\/ens1f1: 1000 of its 2500/);
        // Its VFs released down to none on ens1f0, the share there is free again.
        await Promise.all(Array.from({ length: 130 }, (_, i) => store.tx.updateAllocationState(`big-${i + 10}`, 'released', null, LATER)));
        await store.tx.insertAllocation(vf('b-2', 2, { minTxRateMbps: 1000 }), CAP);
        await assertBandwidth(store.tx.insertAllocation(vf('b-4', 3, { minTxRateMbps: 1 }), CAP), /2500 of its 2500/);
      }));
  });
}
