/**
 * The etcd store's audit sequencer on a real etcd (audit-sequencer.ts): a
 * write transaction appends its events to a key of its own and reads no
 * `audit/seq`, so two controllers appending at once lose no commit to each
 * other on the log; what a controller committed and never numbered (it
 * crashed) is numbered by another one, or at the next start; and a
 * controller of main's code, numbering in its own Txn, still shares one
 * gap-free log with them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { FOREIGN_DELAY_MS } from '../../src/store/etcd/audit-sequencer.js';
import { appendToInbox, decodeEvents, encode } from '../../src/store/etcd/codec.js';
import { keys, type Keys } from '../../src/store/etcd/keys.js';
import { EtcdStore } from '../../src/store/etcd/store.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

const at = '2026-12-02T00:00:00.000Z';

/** The write Txns a store sends that carry its audit/in/ key: how many lost their compares, and whether any compared audit/seq. */
function watchAppends(store: EtcdStore) {
  const seen = { appends: 0, lost: 0, comparedSeq: 0 };
  const kv = store.client.kv as unknown as { txn(req: { compare?: Array<{ key: Buffer }>; success?: Array<Record<string, { key: Buffer }>> }, ...rest: unknown[]): Promise<{ succeeded: boolean }> };
  const txn = kv.txn.bind(kv);
  kv.txn = async (req, ...rest) => {
    const appends = (req.success ?? []).some((op) => op.request_put?.key.toString().startsWith(store.keys.ranges.auditIn));
    const res = await txn(req, ...rest);
    if (appends) {
      seen.appends++;
      if (!res.succeeded) seen.lost++;
      if ((req.compare ?? []).some((c) => c.key.toString() === store.keys.auditSeq)) seen.comparedSeq++;
    }
    return res;
  };
  return seen;
}

/** Every event of the log as etcd holds it, read around the store. */
async function rawLog(store: EtcdStore) {
  const records = await store.client.getAll().prefix(store.keys.ranges.auditEvents).strings();
  return Object.keys(records)
    .sort()
    .flatMap((key) => decodeEvents(records[key]!));
}

async function until(what: string, ok: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A crashed controller's batch: its events committed to its in-key, never numbered. */
async function leftBehind(client: Etcd3, k: Keys, writer: string, n: number, objects: string[]): Promise<void> {
  const text = objects.reduce<string | undefined>((inbox, object) => appendToInbox(inbox, encode({ at, actor: 'crashed', action: 'a', object, before: null, after: null })), undefined)!;
  await client.put(k.auditIn(writer, n)).value(text);
}

describe('etcd store: the audit sequencer', { timeout: 120_000 }, () => {
  let cluster: EtcdCluster;
  let prefix = 0;
  const open = (p: string) => EtcdStore.open({ client: { hosts: cluster.endpoints }, prefix: p });
  before(async () => {
    cluster = await startEtcd(1);
  });
  after(() => cluster?.stop());

  it('two controllers appending at once: no write Txn compares audit/seq, none loses to the other, the log is 1..N', async () => {
    const p = `/seq-${++prefix}/`;
    const [one, two] = [await open(p), await open(p)];
    try {
      const seen = [watchAppends(one), watchAppends(two)];
      const n = 120;
      await Promise.all(
        Array.from({ length: n }, (_, i) =>
          (i % 2 === 0 ? one : two).transaction(async (tx) => {
            await tx.putPhysnet({ name: `p-${i}`, accountingOnly: false, tenantVlans: [] });
            await tx.appendEvent({ at, actor: 'a', action: 'physnet.put', object: `p-${i}`, before: null, after: i });
          }),
        ),
      );
      for (const s of seen) {
        assert.ok(s.appends > 0);
        assert.equal(s.comparedSeq, 0, 'a write transaction does not read audit/seq');
        assert.equal(s.lost, 0, 'no append lost its commit');
      }
      const events = await one.tx.listEvents({ limit: 1000 });
      assert.deepEqual(events.map((e) => e.seq), Array.from({ length: n }, (_, i) => i + 1));
      assert.equal(new Set(events.map((e) => e.object)).size, n);
      assert.deepEqual(await two.tx.listEvents({ limit: 1000 }), events);
      await until('every in-key moved', async () => (await one.client.getAll().prefix(one.keys.ranges.auditIn).keys()).length === 0);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('what a crashed controller committed and never numbered: another controller numbers it after a short wait, in commit order', async () => {
    const p = `/seq-${++prefix}/`;
    const idle = await open(p);
    try {
      await idle.tx.appendEvent({ at, actor: 'idle', action: 'a', object: 'before', before: null, after: null });
      // Its own append numbered now (a read of the log has it numbered at once), so no pass of its own is due.
      assert.equal(await idle.tx.getLastEventSeq(), 1);
      // Written in this order; the keys sort the other way round.
      await leftBehind(idle.client, idle.keys, 'dead', 9, ['c-1', 'c-2']);
      await leftBehind(idle.client, idle.keys, 'dead', 10, ['c-3']);
      const heard = Date.now();
      await until('the crashed writer\'s events numbered', async () => (await idle.client.get(idle.keys.auditSeq).string()) === '4');
      assert.ok(Date.now() - heard >= FOREIGN_DELAY_MS - 50, 'not at once: the writer normally numbers its own');
      assert.deepEqual((await rawLog(idle)).map((e) => [e.seq, e.object]), [[1, 'before'], [2, 'c-1'], [3, 'c-2'], [4, 'c-3']]);
      assert.deepEqual(await idle.client.getAll().prefix(idle.keys.ranges.auditIn).keys(), []);
    } finally {
      await idle.close();
    }
  });

  it('what a crashed controller left with no controller running is numbered at the next start, before its first read of the log', async () => {
    const p = `/seq-${++prefix}/`;
    const first = await open(p);
    await first.tx.appendEvent({ at, actor: 'first', action: 'a', object: 'one', before: null, after: null });
    await first.close();
    const raw = new Etcd3({ hosts: cluster.endpoints });
    await leftBehind(raw, keys(p), 'dead', 0, ['left-1', 'left-2']);
    raw.close();
    const next = await open(p);
    try {
      assert.deepEqual((await next.tx.listEvents()).map((e) => [e.seq, e.object]), [[1, 'one'], [2, 'left-1'], [3, 'left-2']]);
      assert.equal(await next.committed.getLastEventSeq(), 3);
    } finally {
      await next.close();
    }
  });

  it('a controller of main\'s code numbering in its own Txn, beside the sequencer: one gap-free log, every event once', async () => {
    const p = `/seq-${++prefix}/`;
    const store = await open(p);
    try {
      const k = store.keys;
      // main's appendEvent: read audit/seq, write the next record and audit/seq under a compare of what was read.
      const oldAppend = async (i: number) => {
        for (;;) {
          const res = await store.client.kv.range({ key: Buffer.from(k.auditSeq) });
          const kv = res.kvs[0];
          const seq = (kv ? Number(kv.value.toString()) : 0) + 1;
          const { succeeded } = await store.client.kv.txn({
            compare: [{ key: Buffer.from(k.auditSeq), target: 'Mod', result: 'Equal', mod_revision: kv?.mod_revision ?? '0' }],
            success: [
              { request_put: { key: Buffer.from(k.auditEvent(seq)), value: Buffer.from(encode({ seq, at, actor: 'old', action: 'a', object: `old-${i}`, before: null, after: null })) } },
              { request_put: { key: Buffer.from(k.auditSeq), value: Buffer.from(String(seq)) } },
            ],
            failure: [],
          });
          if (succeeded) return;
        }
      };
      const n = 30;
      await Promise.all([
        ...Array.from({ length: n }, (_, i) => store.tx.appendEvent({ at, actor: 'new', action: 'a', object: `new-${i}`, before: null, after: null })),
        (async () => {
          for (let i = 0; i < n; i++) await oldAppend(i);
        })(),
      ]);
      const events = await store.tx.listEvents({ limit: 1000 });
      assert.deepEqual(events.map((e) => e.seq), Array.from({ length: 2 * n }, (_, i) => i + 1));
      assert.equal(new Set(events.map((e) => e.object)).size, 2 * n);
      assert.deepEqual(await rawLog(store), events);
    } finally {
      await store.close();
    }
  });
});
