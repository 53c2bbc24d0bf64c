// The etcd store's watch on a real etcd: keys decoded into StoreChanges, one call per revision in order,
// and a watch whose member went away resumes from the revision after the last it delivered.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import type { StoreChange } from '../../src/store/store.js';
import { keys } from '../../src/store/etcd/keys.js';
import { watchChanges } from '../../src/store/etcd/watch.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

const k = keys('/watch-test/');

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function revisionOf(client: Etcd3): Promise<number> {
  return Number((await client.get(k.auditSeq).exec()).header.revision);
}

/** The index of a member that is not the raft leader. */
async function aFollower(endpoints: string[]): Promise<number> {
  for (const [i, host] of endpoints.entries()) {
    const c = new Etcd3({ hosts: [host] });
    try {
      const status = await c.maintenance.status();
      if (status.leader !== status.header.member_id) return i;
    } finally {
      c.close();
    }
  }
  throw new Error(`no follower among ${endpoints.join(', ')}`);
}

const allocation = (id: string) => ({ id, state: 'pending' });

describe('etcd watch: one member', () => {
  let etcd: EtcdCluster;
  let client: Etcd3;
  // Stopped at the end even after a failed test: a watch left running reconnects forever and keeps the process alive.
  const watches: (() => void)[] = [];
  const watch = (...args: Parameters<typeof watchChanges>) => {
    const stop = watchChanges(...args);
    watches.push(stop);
    return stop;
  };
  before(async () => {
    etcd = await startEtcd(1);
    client = new Etcd3({ hosts: etcd.endpoints });
  });
  after(async () => {
    watches.forEach((stop) => stop());
    client.close();
    await etcd.stop();
  });

  it('decodes a transaction into one call, and each kind of key into its change', async () => {
    const calls: StoreChange[][] = [];
    const errors: Error[] = [];
    const start = (await revisionOf(client)) + 1;
    const stop = watch(client, k, (c) => calls.push(c), { startRevision: start, onError: (e) => errors.push(e) });
    // One committed transaction: an allocation with its claim and index (added/) keys, and two catalogue records.
    await client
      .if(k.allocation('a1'), 'Create', '==', 0)
      .then(
        client.put(k.allocation('a1')).value(JSON.stringify(allocation('a1'))),
        client.put(k.vf('h1', 'pf0', 3)).value('a1'),
        client.put(k.added('host', 'h1')).value('a1'),
        client.put(k.tenant('t1')).value('{}'),
        client.put(k.network('n1')).value('{}'),
      )
      .commit();
    await client.put(k.alive('h1')).value(JSON.stringify({ state: 'ready', at: '2026-01-01T00:00:00.000Z' }));
    await client.put(k.host('h1')).value(JSON.stringify({ name: 'h1' }));
    await client.put(k.policy('h1')).value('{}');
    await client.put(k.migration('m1')).value(JSON.stringify({ id: 'm1' }));
    await client.put(k.auditEvent(1)).value('{}');
    await client.delete().key(k.allocation('a1'));
    await client.put('/other/allocations/x').value('{}');
    await until('seven revisions delivered', () => calls.length >= 7);
    await client.put(k.tenant('t2')).value('{}');
    await until('the last one', () => calls.length >= 8);
    stop();
    assert.deepEqual(calls, [
      [{ kind: 'allocation', id: 'a1', value: allocation('a1') }, { kind: 'catalogue' }],
      [{ kind: 'heartbeat', name: 'h1', state: 'ready', at: '2026-01-01T00:00:00.000Z' }],
      [{ kind: 'host', name: 'h1', value: { name: 'h1' } }],
      [{ kind: 'policy', host: 'h1' }],
      [{ kind: 'migration', id: 'm1', value: { id: 'm1' } }],
      // An audit record wakes the event streams.
      [{ kind: 'audit' }],
      [{ kind: 'allocation', id: 'a1', value: null }],
      [{ kind: 'catalogue' }],
    ]);
    assert.deepEqual(errors, []);
  });

  it('replays from a start revision, in order, and goes on live', async () => {
    const start = (await revisionOf(client)) + 1;
    for (let i = 0; i < 5; i++) await client.put(k.allocation(`r${i}`)).value(JSON.stringify(allocation(`r${i}`)));
    const seen: string[] = [];
    const stop = watch(client, k, (c) => c.forEach((x) => x.kind === 'allocation' && seen.push(x.id)), { startRevision: start });
    await until('replayed', () => seen.length === 5);
    await client.put(k.allocation('r5')).value(JSON.stringify(allocation('r5')));
    await until('live', () => seen.length === 6);
    stop();
    assert.deepEqual(seen, ['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
  });

  it('reports a record that does not decode and goes on', async () => {
    const errors: Error[] = [];
    const seen: StoreChange[][] = [];
    const start = (await revisionOf(client)) + 1;
    const stop = watch(client, k, (c) => seen.push(c), { startRevision: start, onError: (e) => errors.push(e) });
    await client.put(k.allocation('bad')).value('{not json');
    await client.put(k.allocation('good')).value(JSON.stringify(allocation('good')));
    await until('the good one', () => seen.length === 1);
    stop();
    assert.deepEqual(seen, [[{ kind: 'allocation', id: 'good', value: allocation('good') }]]);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /allocations\/bad at revision \d+ does not decode/);
  });
});

describe('etcd watch: its member killed and back', () => {
  let etcd: EtcdCluster;
  before(async () => {
    etcd = await startEtcd(3);
  });
  after(async () => {
    await etcd.stop();
  });

  it('resumes after the last revision delivered: nothing lost, nothing twice, across catch-up batches', async () => {
    // The watching client knows one member only, so it must wait for that member; writes go through the others.
    // That member is a follower: killing the raft leader would time out a write in flight (its outcome unknown).
    const away = await aFollower(etcd.endpoints);
    const watching = new Etcd3({ hosts: [etcd.endpoints[away]!] });
    const writing = new Etcd3({ hosts: etcd.endpoints.filter((_, i) => i !== away) });
    let stop = () => {};
    try {
      const revisions: number[] = [];
      const ids: string[] = [];
      const start = Number((await writing.get(k.auditSeq).exec()).header.revision) + 1;
      stop = watchChanges(watching, k, (c) => {
        for (const x of c) if (x.kind === 'allocation') ids.push(x.id);
        revisions.push(ids.length);
      }, { startRevision: start });
      for (let i = 0; i < 10; i++) await writing.put(k.allocation(`w${i}`)).value('{}');
      await until('before the kill', () => ids.length === 10);
      await etcd.kill(away);
      // More than etcd's 1,000 revisions per catch-up response, while the watch is away.
      const N = 1_200;
      for (let i = 10; i < N; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, N - i) }, (_, j) => writing.put(k.allocation(`w${i + j}`)).value('{}')));
      }
      await etcd.start(away);
      await until('caught up', () => ids.length >= N, 60_000);
      await writing.put(k.allocation('last')).value('{}');
      await until('live again', () => ids.at(-1) === 'last', 30_000);
      stop();
      assert.equal(ids.length, N + 1, 'each revision once');
      assert.equal(new Set(ids).size, N + 1, 'none twice');
      assert.deepEqual(ids.slice(0, 10), Array.from({ length: 10 }, (_, i) => `w${i}`), 'in commit order');
      assert.equal(revisions.length, N + 1, 'one call per revision');
    } finally {
      // Even after a failure: a watch left running reconnects forever and keeps the process alive.
      stop();
      watching.close();
      writing.close();
    }
  });
});
