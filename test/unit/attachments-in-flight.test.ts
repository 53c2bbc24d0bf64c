// The container attachments a controller decided, kept for the requests whose
// store reads began before those writes settled: a concurrent or re-sent ADD
// of the same interface finds the one attachment instead of making a second.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AttachmentsInFlight } from '../../src/controller/attachments-in-flight.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { inventoryOf, policyOf } from '../helpers/api-harness.js';
import { makeAllocation, makeHost, makeNetwork } from '../helpers/inventory.js';

const ADMIN = { id: 'test', role: 'admin' } as const;

describe('attachments in flight', () => {
  const host = makeHost({ name: 'h', pfs: 1, vfs: 2, physnet: 'fabric' });
  const network = makeNetwork({ name: 'n', physnet: 'fabric' });
  const pf = host.inventory.pfs[0]!;
  const a = makeAllocation({ host: 'h', pf: pf.name, pfPciAddress: pf.pciAddress, vfIndex: 0, pciAddress: pf.vfs[0]!.pciAddress, numaNode: 0 }, network, { kind: 'container', name: 'pod' }, { id: 'a' });

  it('keeps a committed attachment for the reads begun before its commit, and drops it after them', () => {
    const f = new AttachmentsInFlight();
    const early = f.begin();
    f.add(a);
    f.settle(a, true);
    const late = f.begin();
    assert.deepEqual(f.find('pod'), [a], 'the early reader may have missed it in the store');
    f.end(late);
    assert.equal(f.size, 1, 'a reader begun after the commit does not release it');
    f.end(early);
    assert.equal(f.size, 0);
    assert.deepEqual(f.find('pod'), []);
  });

  it('keeps an attachment while it is written, with no reader at all; drops a refused one at once', () => {
    const f = new AttachmentsInFlight();
    f.add(a);
    f.end(f.begin());
    assert.deepEqual(f.find('pod'), [a]);
    const reader = f.begin();
    f.settle(a, false);
    assert.equal(f.size, 0, 'nothing was written: nothing to find');
    f.end(reader);
  });
});

describe('concurrent identical container allocations', () => {
  it('make one attachment: every request finds it, one created it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-inflight-'));
    const store = await openSqliteStore(dir);
    const c = await ControlPlane.open(store);
    try {
      await c.hosts.report({ id: 'local', role: 'agent:h1' }, inventoryOf('h1'));
      await c.hosts.putPolicy(ADMIN, 'h1', policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
      await c.networks.createTenant(ADMIN, 'blue');
      await c.networks.createNetwork(ADMIN, { name: 'blue', tenant: 'blue', physnet: 'fabric', vlan: 100 });
      const input = { network: 'blue', workload: { kind: 'container' as const, name: 'pod' }, attach: { kind: 'container' as const, netns: '/var/run/netns/pod', ifname: 'net1' } };
      // All read the store before any decides: only this controller's memory of what it decided joins them.
      const found = await Promise.all(Array.from({ length: 4 }, () => c.allocations.createOrFind(ADMIN, input)));
      assert.equal(new Set(found.map((f) => f.allocation.id)).size, 1, 'one attachment');
      assert.equal(found.filter((f) => f.created).length, 1, 'created once');
      const again = await c.allocations.createOrFind(ADMIN, input);
      assert.equal(again.allocation.id, found[0]!.allocation.id, 'a re-sent request, after, finds it in the store');
      assert.equal(again.created, false);
      assert.equal((await store.tx.listAllocations({ holding: true })).length, 1);
    } finally {
      c.shutdown();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
