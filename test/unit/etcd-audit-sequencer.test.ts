// The etcd store's audit sequencer (store/etcd/audit-sequencer.ts) on an etcd in memory (test/support/mem-etcd.ts):
// batches' unnumbered events (audit/in/) moved into the log in commit order, gap-free, within one Txn's limits,
// under a compare of audit/seq that another writer (a pass elsewhere, main's code) makes it lose and read again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuditSequencer } from '../../src/store/etcd/audit-sequencer.js';
import { ETCD_DEFAULT_LIMITS, type TxnLimits } from '../../src/store/etcd/buffer.js';
import { appendToInbox, decodeEvents, encode } from '../../src/store/etcd/codec.js';
import { keys as keyspace } from '../../src/store/etcd/keys.js';
import type { EtcdKv } from '../../src/store/etcd/kv.js';
import { decodeEvent } from '../../src/store/etcd/watch.js';
import { MemEtcd } from '../support/mem-etcd.js';

const k = keyspace('/t/');
const at = '2026-12-02T00:00:00.000Z';

const event = (object: string) => encode({ at, actor: 'test', action: 'a', object, before: null, after: { object } });

/** A committed batch's in-key, as tx.ts writes it. */
function inbox(etcd: MemEtcd, key: string, objects: string[]): void {
  etcd.put(key, objects.reduce<string | undefined>((text, o) => appendToInbox(text, event(o)), undefined)!);
}

/** Every event of the log, each record checked to be keyed by its last. */
function log(etcd: MemEtcd) {
  return etcd.keys(k.ranges.auditEvents).flatMap((key) => {
    const events = decodeEvents(etcd.get(key)!);
    assert.equal(Number(key.slice(k.ranges.auditEvents.length)), events.at(-1)!.seq, 'a record is keyed by its last event');
    return events;
  });
}

async function sequence(kv: EtcdKv, limits: TxnLimits = ETCD_DEFAULT_LIMITS, onError?: (err: Error) => void): Promise<void> {
  const s = new AuditSequencer(kv, k, { limits, onError });
  s.start();
  await s.settled();
}

describe('etcd audit sequencer', () => {
  it('numbers the batches in commit order (not key order), on from the log there, in the record format listEvents reads', async () => {
    const etcd = new MemEtcd();
    etcd.put(k.auditEvent(1), encode({ seq: 1, at, actor: 'old', action: 'a', object: 'o-1', before: null, after: null }));
    etcd.put(k.auditSeq, '1');
    inbox(etcd, k.auditIn('zz', 0), ['first', 'second']);
    inbox(etcd, k.auditIn('aa', 7), ['third']);
    inbox(etcd, k.auditIn('zz', 1), ['fourth']);
    await sequence(etcd.kv);
    const events = log(etcd);
    assert.deepEqual(events.map((e) => [e.seq, e.object]), [[1, 'o-1'], [2, 'first'], [3, 'second'], [4, 'third'], [5, 'fourth']]);
    assert.deepEqual(events[1], { seq: 2, at, actor: 'test', action: 'a', object: 'first', before: null, after: { object: 'first' } });
    // Byte for byte what encode writes for a numbered event: seq first.
    const numbered = (seq: number, object: string) => encode({ seq, ...(JSON.parse(event(object)) as object) });
    assert.equal(etcd.get(k.auditEvent(3)), `[${numbered(2, 'first')},${numbered(3, 'second')}]`);
    assert.equal(etcd.get(k.auditSeq), '5');
    assert.deepEqual(etcd.keys(k.ranges.auditIn), []);
    assert.equal(etcd.writes, 1, 'one Txn');
  });

  it('moves as many batches as one Txn carries, then the rest, in order', async () => {
    const etcd = new MemEtcd();
    for (let i = 0; i < 10; i++) inbox(etcd, k.auditIn('w', i), [`e-${i}`]);
    // 7 ops: 3 batches (a put and a delete each) and audit/seq.
    await sequence(etcd.kv, { ops: 7, bytes: 1_000_000 });
    assert.deepEqual(log(etcd).map((e) => [e.seq, e.object]), Array.from({ length: 10 }, (_, i) => [i + 1, `e-${i}`]));
    assert.equal(etcd.writes, 4);
    const bytes = new MemEtcd();
    for (let i = 0; i < 3; i++) inbox(bytes, k.auditIn('w', i), [`e-${i}`]);
    // Fewer bytes than one batch: one at a time, the first of each Txn always.
    await sequence(bytes.kv, { ops: 128, bytes: 10 });
    assert.deepEqual(log(bytes).map((e) => e.seq), [1, 2, 3]);
    assert.equal(bytes.writes, 3);
  });

  it('a pass that loses its compare to another writer reads again: no gap, no number twice', async () => {
    const etcd = new MemEtcd();
    inbox(etcd, k.auditIn('w', 0), ['mine']);
    etcd.hold();
    const done = sequence(etcd.kv);
    while (etcd.waiting === 0) await new Promise((resolve) => setImmediate(resolve));
    // A controller of main's code numbers its event 1 in its own Txn meanwhile.
    etcd.put(k.auditEvent(1), encode({ seq: 1, at, actor: 'old', action: 'a', object: 'theirs', before: null, after: null }));
    etcd.put(k.auditSeq, '1');
    etcd.release();
    await done;
    assert.equal(etcd.lost, 1);
    assert.deepEqual(log(etcd).map((e) => [e.seq, e.object]), [[1, 'theirs'], [2, 'mine']]);
    assert.equal(etcd.get(k.auditSeq), '2');
  });

  it('a pass that fails (etcd unavailable) does not hold a reader up, and is tried again until it lands', async () => {
    const etcd = new MemEtcd();
    inbox(etcd, k.auditIn('w', 0), ['late']);
    let failures = 2;
    const flaky = {
      rangeMany: (reqs: Parameters<EtcdKv['rangeMany']>[0]) => (failures-- > 0 ? Promise.reject(new Error('UNAVAILABLE')) : etcd.rangeMany(reqs)),
      txn: etcd.txn.bind(etcd),
    } as unknown as EtcdKv;
    const errors: string[] = [];
    const s = new AuditSequencer(flaky, k, { limits: ETCD_DEFAULT_LIMITS, onError: (err) => errors.push(err.message) });
    s.start();
    await s.settled();
    assert.deepEqual(log(etcd), [], 'the reader went on after the failed pass');
    assert.match(errors[0]!, /audit sequencer: a pass failed \(UNAVAILABLE\)/);
    const deadline = Date.now() + 5_000;
    while (log(etcd).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(log(etcd).map((e) => [e.seq, e.object]), [[1, 'late']]);
    await s.settled();
    await s.close();
  });

  it('on the store\'s watch, a batch\'s unnumbered events are bookkeeping; the numbered record is the audit news', () => {
    const kv = (key: string, value: string) => ({ key: Buffer.from(key), value: Buffer.from(value), mod_revision: '5' }) as unknown as Parameters<typeof decodeEvent>[1];
    assert.equal(decodeEvent(k, kv(k.auditIn('w', 0), event('x')), false), null);
    assert.equal(decodeEvent(k, kv(k.auditIn('w', 0), ''), true), null);
    assert.deepEqual(decodeEvent(k, kv(k.auditEvent(1), `[${encode({ seq: 1 })}]`), false), { kind: 'audit' });
  });
});
