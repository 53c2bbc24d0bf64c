/**
 * A list of allocations by state alone (`alloc list --state attached`) on a
 * real etcd: it reads the records of its page from the store's memory of
 * ids by state, not every record until the page is full. Counted in records
 * and bytes etcd answered (what the load of the machine does not change):
 * 2,400 allocations, a third of them attached, then most released.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { EtcdStore } from '../../src/store/etcd/store.js';
import { allocation, putNetworks } from '../contract/store.contract.js';
import { countEtcdCalls } from '../support/etcd-calls.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

const AT = '2026-01-01T00:00:00.000Z';
const COUNT = 2400;
const id = (i: number) => `st-${String(i).padStart(5, '0')}`;

describe('etcd store: a list by state alone', { timeout: 180_000 }, () => {
  let cluster: EtcdCluster;
  let writer: EtcdStore;
  let reader: EtcdStore;
  before(async () => {
    cluster = await startEtcd(1);
    const open = () => EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: '/states/' });
    [writer, reader] = await Promise.all([open(), open()]);
    await putNetworks(writer);
  });
  after(async () => {
    await Promise.all([writer?.close(), reader?.close()]);
    await cluster?.stop();
  });

  /** `fn` for 0..n-1, 200 at a time (the store batches them into Txns). */
  async function each(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
    for (let from = 0; from < n; from += 200) await Promise.all(Array.from({ length: Math.min(200, n - from) }, (_, k) => fn(from + k)));
  }

  it('reads the records of its page, not every record up to it, on another controller, and after most of the state left it', async (t: TestContext) => {
    await each(COUNT, (i) =>
      writer.tx.insertAllocation(allocation({ id: id(i), host: `h-${i >> 6}`, vfIndex: i & 63, mac: `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, minTxRateMbps: 0, createdAt: AT })),
    );
    const writes = countEtcdCalls(writer);
    await each(COUNT / 3, (i) => writer.tx.updateAllocationState(id(3 * i), 'attached', null, AT));
    t.diagnostic(`${COUNT / 3} state changes: ${writes.commits} write Txns, ${writes.puts} puts`);
    const reads = countEtcdCalls(reader);
    // The reader's memory loads on its first filtered list; a list by state on the snapshot before that load reads the records.
    await reader.tx.listAllocations({ host: 'h-0' });

    reads.reset();
    const page = await reader.tx.listAllocations({ state: 'attached', limit: 301 });
    assert.deepEqual(page.map((a) => a.id), Array.from({ length: 301 }, (_, i) => id(3 * i)));
    t.diagnostic(`first page of 301 attached of ${COUNT / 3} (of ${COUNT}): ${reads.records} records, ${reads.bytes} bytes read`);
    assert.ok(reads.records <= 301, `read ${reads.records} records for a page of 301 (a scan reads ~903)`);
    reads.reset();
    const next = await reader.tx.listAllocations({ state: 'attached', limit: 301, after: id(900) });
    assert.deepEqual(next.map((a) => a.id), Array.from({ length: 301 }, (_, i) => id(903 + 3 * i)));
    assert.ok(reads.records <= 301, `read ${reads.records} records for the second page`);

    // All attached, then all but 200 released: the set of attached ids is rebuilt without most of those that left.
    await each(COUNT, (i) => (i % 3 === 0 ? Promise.resolve() : writer.tx.updateAllocationState(id(i), 'attached', null, AT)));
    await each(COUNT - 200, (i) => writer.tx.updateAllocationState(id(i), 'released', null, AT));
    reads.reset();
    const rest = await reader.tx.listAllocations({ state: 'attached', limit: 301 });
    assert.deepEqual(rest.map((a) => a.id), Array.from({ length: 200 }, (_, i) => id(COUNT - 200 + i)));
    t.diagnostic(`after ${COUNT - 200} of ${COUNT} attached were released, the 200 left: ${reads.records} records, ${reads.bytes} bytes read`);
    // At most twice the ids in the state and 256 more (allocation-index.ts), against every record for a scan.
    assert.ok(reads.records <= 2 * 200 + 256, `read ${reads.records} records for 200 attached (a scan reads ${COUNT})`);

    // Holding (what the metrics and a drain list): the states' sets together, not the released records.
    await each(100, (i) => writer.tx.updateAllocationState(id(COUNT - 200 + 2 * i), 'configured', null, AT));
    reads.reset();
    const holding = await reader.tx.listAllocations({ holding: true });
    assert.deepEqual(holding.map((a) => a.id), Array.from({ length: 200 }, (_, i) => id(COUNT - 200 + i)));
    assert.deepEqual(new Set(holding.map((a) => a.state)), new Set(['attached', 'configured']));
    t.diagnostic(`holding, 200 of ${COUNT} in two states: ${reads.records} records, ${reads.bytes} bytes read`);
    assert.ok(reads.records <= 2 * (2 * 200 + 256), `read ${reads.records} records for 200 holding (a scan reads ${COUNT})`);
    const paged = [];
    for (let after: string | undefined; ; ) {
      const page = await reader.tx.listAllocations({ holding: true, limit: 64, after });
      paged.push(...page.map((a) => a.id));
      if (page.length < 64) break;
      after = page.at(-1)!.id;
    }
    assert.deepEqual(paged, holding.map((a) => a.id), 'pages of holding allocations, merged from two states, in id order');
  });
});
