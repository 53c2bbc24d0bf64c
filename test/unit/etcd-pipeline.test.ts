// The etcd store's pipelined group commit (store/etcd/pipeline.ts, ahead.ts) on an etcd in memory
// (test/support/mem-etcd.ts): batches built while others commit, on what those write, and what happens
// when one of them does not land.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InFlight } from '../../src/store/etcd/ahead.js';
import { ETCD_DEFAULT_LIMITS, TxnBuffer } from '../../src/store/etcd/buffer.js';
import { decodeEvents } from '../../src/store/etcd/codec.js';
import { keys as keyspace } from '../../src/store/etcd/keys.js';
import { CommitPipeline } from '../../src/store/etcd/pipeline.js';
import { AuditSequencer } from '../../src/store/etcd/audit-sequencer.js';
import type { StoreTx } from '../../src/store/store.js';
import { allocation } from '../contract/store.contract.js';
import { makeNetwork } from '../helpers/inventory.js';
import { MemEtcd } from '../support/mem-etcd.js';

const k = keyspace('/t/');

let batches = 0;

function pipeline(etcd: MemEtcd, opts: { maxBatch?: number; depth?: number } = {}) {
  const p = new CommitPipeline(etcd.kv, k, { maxRetries: 20, limits: ETCD_DEFAULT_LIMITS, maxBatch: opts.maxBatch ?? 2, depth: opts.depth ?? 4, inbox: () => k.auditIn('w', batches++) });
  return <T>(fn: (tx: StoreTx) => Promise<T>) => new Promise<T>((resolve, reject) => p.push({ fn, resolve: resolve as (v: unknown) => void, reject }));
}

/** An etcd holding the network the allocations are on (the store refuses one on a network that does not exist). */
function etcdWithNetwork(): MemEtcd {
  const etcd = new MemEtcd();
  etcd.put(k.network('blue-net'), JSON.stringify(makeNetwork({ name: 'blue-net', tenant: 'blue' })));
  return etcd;
}

/** An allocation of VF `n` with its audit event, as the allocation service writes it. */
function allocate(n: number, vf = n) {
  return async (tx: StoreTx) => {
    const id = `a-${n}`;
    await tx.insertAllocation(allocation({ id, vfIndex: vf, mac: `02:00:00:00:01:${n.toString(16).padStart(2, '0')}` }));
    await tx.appendEvent({ at: '2026-12-01T00:00:00.000Z', actor: 'test', action: 'allocation.create', object: id, before: null, after: null });
    return id;
  };
}

/** Until `ok` holds, looking every millisecond (the test's own timeout bounds it). */
async function until(ok: () => boolean): Promise<void> {
  while (!ok()) await new Promise((resolve) => setTimeout(resolve, 1));
}

/** A few turns of the event loop: what the pipeline would do at once with what it has, it has done. */
async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** The audit log's sequence numbers (a batch's events are one record, keyed by its last) and what audit/seq says, once a sequencer pass numbered what the batches appended. */
async function audit(etcd: MemEtcd) {
  const sequencer = new AuditSequencer(etcd.kv, k, { limits: ETCD_DEFAULT_LIMITS });
  sequencer.start();
  await sequencer.settled();
  assert.deepEqual(etcd.keys(k.ranges.auditIn), [], 'every batch\'s events numbered');
  const seqs = etcd.keys(k.ranges.auditEvents).flatMap((key) => {
    const events = decodeEvents(etcd.get(key)!);
    assert.equal(Number(key.slice(k.ranges.auditEvents.length)), events.at(-1)!.seq, 'a record is keyed by its last event');
    return events.map((e) => e.seq);
  });
  return { seqs, last: Number(etcd.get(k.auditSeq)) };
}

const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('etcd pipelined group commit', () => {
  it('builds batches while others commit, and the audit sequence stays gap-free', async () => {
    const etcd = etcdWithNetwork();
    const run = pipeline(etcd);
    etcd.hold();
    const all = Array.from({ length: 24 }, (_, n) => run(allocate(n)));
    await until(() => etcd.waiting >= 3);
    etcd.release();
    const ids = await Promise.all(all);
    assert.equal(new Set(ids).size, 24);
    assert.equal(etcd.keys(k.ranges.allocations).length, 24);
    assert.equal(etcd.lost, 0, 'a batch built on those ahead lands first time');
    assert.ok(etcd.writes <= 12 + 1, `${etcd.writes} Txns for 24`);
    assert.deepEqual(await audit(etcd), { seqs: upTo(24), last: 24 });
  });

  it('an append by another writer does not fail the batches in flight (they read no audit/seq); the log numbers theirs after it', async () => {
    const etcd = etcdWithNetwork();
    const run = pipeline(etcd);
    etcd.hold();
    const all = Array.from({ length: 12 }, (_, n) => run(allocate(n)));
    await until(() => etcd.waiting >= 3);
    // A controller of main's code appends event 1 (numbered in its own Txn) while this one's batches wait to commit.
    etcd.put(k.auditEvent(1), JSON.stringify({ seq: 1, at: '2026-12-01T00:00:00.000Z', actor: 'other', action: 'x', object: 'y', before: null, after: null }));
    etcd.put(k.auditSeq, '1');
    etcd.release();
    await Promise.all(all);
    assert.equal(etcd.lost, 0, 'no batch lost its commit to the append');
    assert.deepEqual(await audit(etcd), { seqs: upTo(13), last: 13 });
    assert.equal(JSON.parse(etcd.get(k.auditEvent(1))!).actor, 'other');
  });

  it('holds back a refusal decided on a write still committing; of two for one VF exactly one wins', async () => {
    const etcd = etcdWithNetwork();
    const run = pipeline(etcd, { maxBatch: 1 });
    etcd.hold();
    const first = run(allocate(1, 7));
    await until(() => etcd.waiting === 1);
    const readsBefore = etcd.reads;
    let secondSettled = false;
    const second = run(allocate(2, 7)).finally(() => (secondSettled = true));
    await until(() => etcd.reads > readsBefore);
    await turns();
    assert.equal(secondSettled, false, 'refused before the write it saw landed');
    // The first loses its commit (another controller gave a tenant a bandwidth group, which every insert reads): the second is not refused on its account.
    etcd.put(k.tenantGroups, JSON.stringify({ red: { shareMbps: 100, maxMbps: null } }));
    etcd.release();
    const outcomes = await Promise.allSettled([first, second]);
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    assert.equal(won.length, 1);
    const lost = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    assert.match(String(lost.reason), /VF 7 .* is taken/);
    assert.equal(etcd.get(k.vf('host-a', '0000:3b:00.0', 7)), (won[0] as PromiseFulfilledResult<string>).value);
    assert.equal((await audit(etcd)).last, 1);
  });
});

describe('etcd writes ahead (ahead.ts, buffer.ts)', () => {
  it('reads a key a batch ahead writes without a round trip, and compares it by value; a delete ahead reads absent', async () => {
    const etcd = etcdWithNetwork();
    etcd.put('/t/a', 'old');
    etcd.put('/t/gone', 'x');
    const ahead = new Map<string, string | null>([
      ['/t/a', 'new'],
      ['/t/gone', null],
      ['/t/r/2', 'two'],
    ]);
    const b = new TxnBuffer(etcd.kv, ETCD_DEFAULT_LIMITS, undefined, ahead);
    assert.equal(await b.get('/t/a'), 'new');
    assert.equal(await b.has('/t/gone'), false);
    assert.equal(etcd.reads, 0);
    const scanned: string[] = [];
    for await (const page of b.scan('/t/r/', '/t/r0')) scanned.push(...page.map((kv) => `${kv.key}=${kv.value}`));
    assert.deepEqual(scanned, ['/t/r/2=two']);
    b.put('/t/out', 'v');
    // The batch ahead has not landed: this one may not either.
    assert.equal(await b.commit(), false);
    etcd.put('/t/a', 'new');
    etcd.put('/t/r/2', 'two');
    assert.equal(await b.commit(), false, 'the delete ahead has not landed');
    etcd.put('/t/gone', 'x');
    const fresh = new TxnBuffer(etcd.kv, ETCD_DEFAULT_LIMITS, undefined, new Map([['/t/a', 'new']]));
    assert.equal(await fresh.get('/t/a'), 'new');
    fresh.put('/t/out', 'v');
    assert.equal(await fresh.commit(), true);
    assert.equal(etcd.get('/t/out'), 'v');
  });

  it('a savepoint undoes what a part read ahead', async () => {
    const b = new TxnBuffer(new MemEtcd().kv, ETCD_DEFAULT_LIMITS, undefined, new Map([['/t/a', '1']]));
    const sp = b.savepoint();
    await b.get('/t/a');
    assert.equal(b.assumed, 1);
    b.rollbackTo(sp);
    assert.equal(b.assumed, 0);
  });

  it('keeps a batch\'s writes until its commit settles, and a later batch\'s write of the same key after that', async () => {
    const inFlight = new InFlight();
    let endFirst!: () => void;
    let endSecond!: () => void;
    inFlight.add(new Map([['a', '1'], ['b', '1'], ['big', 'x'.repeat(5000)]]), new Promise<void>((r) => (endFirst = r)));
    inFlight.add(new Map([['a', '2']]), new Promise<void>((r) => (endSecond = r)));
    assert.deepEqual([...inFlight.view()], [['a', '2'], ['b', '1']], 'a large value is not assumed');
    const settled = inFlight.settled();
    endFirst();
    await turns(1);
    assert.deepEqual([...inFlight.view()], [['a', '2']]);
    assert.equal(inFlight.size, 1);
    endSecond();
    await settled;
    assert.equal(inFlight.size, 0);
    assert.deepEqual([...inFlight.view()], []);
  });
});
