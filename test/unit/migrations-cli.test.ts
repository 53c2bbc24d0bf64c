// sriovctl migrate and sriovctl migrations against a real controller in this
// process (SQLite store, HTTP server); the test plays the host's agent.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Actor } from '../../src/domain/actor.js';
import type { Allocation, Migration } from '../../src/domain/types.js';
import { remoteCli } from '../helpers/cli.js';
import { makeHost } from '../helpers/inventory.js';
import { startRemoteController, type RemoteController } from '../helpers/remote-controller.js';

const HOST = 'node1';
const LOCAL: Actor = { id: 'local', role: 'admin' };
let rc: RemoteController;
const { ok, json, fails } = remoteCli(() => rc);
const inventory = makeHost({ name: HOST, pfs: 2, vfs: 8, physnet: null }).inventory;
const report = (statuses: Array<{ id: string; state: 'configured' | 'attached' | 'released'; hostIfName?: string }>) => rc.control.hosts.report(LOCAL, inventory, statuses);

async function container(name: string): Promise<Allocation> {
  const a = await rc.control.allocations.create(LOCAL, { network: 'red', host: HOST, pciAddress: '0000:10:00.1', workload: { kind: 'container', name }, attach: { kind: 'container', netns: `/var/run/netns/${name}`, ifname: 'net1' } });
  await report([{ id: a.id, state: 'attached', hostIfName: 'ens1v0' }]);
  return a;
}

before(async () => {
  rc = await startRemoteController('vfleet-cli-migrate-', HOST);
  await ok(['tenant', 'create', 'a']);
  await ok(['network', 'create', 'red', '--tenant', 'a', '--physnet', 'fabric', '--vlan', '100']);
});
after(() => rc.close());

describe('sriovctl migrate', { timeout: 60_000 }, () => {
  it('starts a migration, lists, shows and aborts it', async () => {
    const a = await container('web');
    const plan = await json<Migration>(['migrate', a.id.slice(0, 8), '--to', HOST, '--dry-run']);
    assert.deepEqual([plan.id, plan.to!.pf], ['dry-run', 'ens2f0']);
    const m = await json<Migration>(['migrate', a.id, '--to', `${HOST}/ens2f0`]);
    assert.deepEqual([m.state, m.step, m.to!.pf], ['running', 'prepare', 'ens2f0']);
    assert.match(await ok(['migrations', 'list']), new RegExp(`^${m.id.slice(0, 8)}\\s+container/web\\s+node1/ens1f0 0000:10:00\\.1\\s+node1/ens2f0 \\S+\\s+-\\s+running\\s+prepare$`, 'm'));
    assert.match(await ok(['migrations', 'show', m.id]), /^migration .*: container\/web, running at step prepare\n[\s\S]*reserve\s+done\s+VF /);
    const aborted = await json<Migration>(['migrations', 'abort', m.id]);
    assert.equal(aborted.state, 'rolling-back');
    await report([{ id: m.to!.allocation, state: 'released' }]);
    assert.deepEqual((await json<Migration[]>(['migrations', 'list', '--state', 'aborted'])).map((x) => x.id), [m.id]);
  });

  it('waits with --wait until the agents finished it', async () => {
    const before = (await rc.store.tx.listMigrations()).length;
    const waiting = json<Migration>(['migrate', (await rc.store.tx.listAllocations({ workload: 'web', holding: true }))[0]!.id, '--to', HOST, '--wait', '--timeout', '30']);
    let m: Migration | undefined;
    while (!(m = (await rc.store.tx.listMigrations())[before])) await sleep(20);
    await report([{ id: m.to!.allocation, state: 'configured' }]);
    await report([{ id: m.to!.allocation, state: 'attached', hostIfName: 'ens2v0' }]);
    await report([{ id: m.from.allocation, state: 'released' }]);
    assert.equal((await waiting).state, 'completed');
  });

  it('refuses a malformed target before any request, and the controller’s refusals with exit 2', async () => {
    await fails(['migrate', 'abcd1234', '--to', 'node1/ens1f0;reboot'], 2, /the PF in --to "node1\/ens1f0;reboot" must be a netdev name/);
    await fails(['migrate', 'abcd1234', '--to', 'Node 1'], 2, /host name must be a lower-case DNS name/);
    await fails(['migrate', '4d6f1b5e-0000-4000-8000-000000000000', '--to', HOST], 2, /NOT_FOUND: allocation 4d6f1b5e-.* not found/);
    await fails(['migrations', 'show', 'nope'], 2, /migration nope not found/);
  });
});
