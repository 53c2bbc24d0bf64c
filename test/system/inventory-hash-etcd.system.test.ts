// The inventory hash in the stored host record, on a real etcd: an agent that
// reported its inventory to controller 1 fails over to controller 2 (running,
// so it learnt the record from the watch) or to a controller started after
// the report, and both take its liveness-only reports without asking for the
// inventory again. An inventory that changed while the agent reported to
// controller 2 is taken by controller 1 without a resend too, and the hash
// controller 1 had taken itself no longer is.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isInventoryNeeded, Reporter } from '../../src/agent/reporter.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import { CATALOGUE } from '../../src/controller/context.js';
import type { AgentReport } from '../../src/controller/hosts.js';
import { inventoryHash } from '../../src/host/inventory-hash.js';
import type { HostInventory } from '../../src/host/model.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { inventoryOf } from '../helpers/api-harness.js';
import { watchWrites } from '../helpers/store-writes.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

const ADMIN = { id: 'test', role: 'admin' } as const;
const AGENT = { id: 'local', role: 'agent:h1' } as const;

interface Controller {
  store: Store;
  control: ControlPlane;
  /** StoreTx writes made through this controller (method names). */
  writes: string[];
}

/** An inventory of h1 that differs from inventoryOf('h1') in one VF's MAC: another hash, the same PFs. */
function changed(): HostInventory {
  const inventory = inventoryOf('h1');
  inventory.pfs[0]!.vfs[0]!.mac = '02:00:00:00:0e:01';
  return inventory;
}

describe('the stored inventory hash across controllers on etcd', { timeout: 120_000 }, () => {
  let etcd: EtcdCluster;
  const opened: Controller[] = [];
  let marks = 0;

  const open = async (prefix: string): Promise<Controller> => {
    const raw = await openStore({ url: `${etcd.storeUrl}${prefix}`, dataDir: '/nonexistent' });
    const writes: string[] = [];
    const store = watchWrites(raw, (method) => writes.push(method));
    const control = await ControlPlane.open(store, { resume: false, heartbeatWriteMs: 0, onSyncError: (e) => assert.fail(e as Error) });
    const c = { store: raw, control, writes };
    opened.push(c);
    return c;
  };

  /**
   * Until `c` has applied every change committed so far: a mark (a tenant) is
   * written after them, and the watch applies changes in the store's order.
   */
  const caughtUp = async (c: Controller, through: Controller) => {
    const seen = c.control.ctx.catalogue.revision(CATALOGUE);
    await through.control.networks.createTenant(ADMIN, `mark-${++marks}`);
    for (let i = 0; c.control.ctx.catalogue.revision(CATALOGUE) === seen; i++) {
      if (i > 1500) throw new Error('the watch did not catch up within 30 s');
      await sleep(20);
    }
    await c.control.sync.settled();
  };

  /** An agent of h1 whose reports go to `to()`: what it sent, whole or hash alone. */
  const agentOf = (to: () => Controller) => {
    const sent: string[] = [];
    const reporter = new Reporter((r: AgentReport) => {
      sent.push(r.inventory ? 'whole' : 'hash');
      return to().control.hosts.receive(AGENT, r);
    });
    return { reporter, sent };
  };

  before(async () => {
    etcd = await startEtcd(1);
  });
  after(async () => {
    for (const c of opened) {
      c.control.shutdown();
      await c.store.close().catch(() => {});
    }
    await etcd?.stop();
  });

  it('an agent that reported to controller 1 is taken on controller 2, and on one started since, without resending', async () => {
    const [c1, c2] = [await open('/failover'), await open('/failover')];
    let target = c1;
    const { reporter, sent } = agentOf(() => target);
    const inventory = inventoryOf('h1');
    await reporter.report(inventory, []);
    await reporter.report(inventory, []);
    assert.deepEqual(sent.splice(0), ['whole', 'hash']);
    assert.equal((await c2.store.tx.getHost('h1'))!.inventoryHash, inventoryHash(inventory));

    await caughtUp(c2, c1);
    target = c2;
    c2.writes.length = 0;
    await reporter.report(inventory, []);
    assert.deepEqual(sent.splice(0), ['hash'], 'controller 2 took the liveness report');
    assert.deepEqual(c2.writes, ['touchHost']);

    const c3 = await open('/failover');
    target = c3;
    c3.writes.length = 0;
    await reporter.report(inventory, []);
    assert.deepEqual(sent.splice(0), ['hash'], 'a controller started after the report took it too');
    assert.deepEqual(c3.writes, ['touchHost']);
  });

  it('an inventory changed on controller 2 is taken on controller 1 by its hash; the hash controller 1 took itself before is asked for', async () => {
    const [c1, c2] = [await open('/changed'), await open('/changed')];
    let target = c1;
    const { reporter, sent } = agentOf(() => target);
    const first = inventoryOf('h1');
    await reporter.report(first, []);
    target = c2;
    await reporter.report(changed(), []);
    assert.deepEqual(sent.splice(0), ['whole', 'whole']);

    await caughtUp(c1, c2);
    // What a controller that kept the hash it wrote would take: the store now holds the other inventory.
    await assert.rejects(c1.control.hosts.receive(AGENT, { host: 'h1', inventoryHash: inventoryHash(first) }), (e: unknown) => isInventoryNeeded(e));
    target = c1;
    c1.writes.length = 0;
    await reporter.report(changed(), []);
    assert.deepEqual(sent.splice(0), ['hash'], 'controller 1 learnt the new hash from the watch');
    assert.deepEqual(c1.writes, ['touchHost']);
  });
});
