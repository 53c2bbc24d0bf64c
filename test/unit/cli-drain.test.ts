// sriovctl drain against a real controller in this process (SQLite store,
// ControlPlane, HTTP server), whose drainer runs over the in-test migrations
// (test/helpers/fake-migrations.ts): the plan as a table, a refusal that
// prints every reason and changes nothing, a running drain, bad input.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DrainService, type DrainReport } from '../../src/controller/drain.js';
import type { Actor } from '../../src/domain/actor.js';
import type { Allocation } from '../../src/domain/types.js';
import { remoteCli } from '../helpers/cli.js';
import { FakeMigrations } from '../helpers/fake-migrations.js';
import { startRemoteController, type RemoteController } from '../helpers/remote-controller.js';

const HOST = 'node1';
const ADMIN: Actor = { id: 'test', role: 'admin' };
let rc: RemoteController;
let fake: FakeMigrations;
let pod: Allocation;
let vm: Allocation;

before(async () => {
  rc = await startRemoteController('vfleet-cli-drain2-', HOST);
  await rc.control.networks.createTenant(ADMIN, 'a');
  await rc.control.networks.createNetwork(ADMIN, { name: 'red', tenant: 'a', physnet: 'fabric', vlan: 100 });
  pod = await rc.control.allocations.create(ADMIN, { network: 'red', workload: { kind: 'container', name: 'pod-1' }, host: HOST, pciAddress: '0000:10:00.1' });
  vm = await rc.control.allocations.create(ADMIN, {
    network: 'red',
    workload: { kind: 'vm', name: 'vm-1' },
    host: HOST,
    pciAddress: '0000:10:00.2',
    attach: { kind: 'vm', vm: 'vm-1', failover: true },
  });
  fake = new FakeMigrations(rc.store);
  Object.assign(rc.control, { drainer: new DrainService(rc.control.ctx, rc.control.drains, fake) });
});

after(() => rc.close());

const { ok, json, fails } = remoteCli(() => rc);
const row = (a: Allocation, rest: string) => new RegExp(`^${a.id.slice(0, 8)}\\s+${a.workload.kind}/${a.workload.name}\\s+node1/ens1f0\\s+${rest}$`, 'm');

describe('sriovctl drain', () => {
  it('prints the plan of a dry run as a table, changing nothing', async () => {
    const text = await ok(['drain', `${HOST}/ens1f0`, '--dry-run', '--hypervisor', 'hook']);
    assert.match(text, /^drain node1\/ens1f0 \(PF ens1f0\): 2 allocations to move\nALLOCATION\s+WORKLOAD\s+FROM\s+TO\s+HYPERVISOR\s+MIGRATION\s+STATUS\n/);
    assert.match(text, row(pod, 'node1/ens2f0\\s+-\\s+-\\s+planned'));
    // One host: the hook's orchestrator moves the VM to another PF of it.
    assert.match(text, row(vm, 'node1/ens2f0\\s+hook\\s+-\\s+planned'));
    assert.match(text, /\ndry run: nothing changed; every move fits\n$/);
    assert.deepEqual([fake.started.length, (await rc.store.tx.getHost(HOST))!.drainedPfs], [0, []]);
  });

  it('refuses when a move cannot go (exit 2), printing each reason in full, nothing changed', async () => {
    const stderr = await fails(['drain', `${HOST}/ens1f0`], 2, /sriovctl: .*drain of node1\/ens1f0 refused, nothing changed: 1 of 2 allocations cannot move/);
    assert.match(stderr, row(vm, '-\\s+-\\s+-\\s+refused'));
    assert.match(stderr, new RegExp(`^cannot move:\\n  ${vm.id.slice(0, 8)}: VM vm-1 needs a hypervisor to migrate: give --hypervisor libvirt, qemu or hook$`, 'm'));
    const dry = await json<DrainReport>(['drain', HOST, '--dry-run', '--hypervisor', 'libvirt']);
    assert.equal(dry.state, 'refused');
    assert.match(dry.moves.find((m) => m.allocation === vm.id)!.refusal!, /^VM vm-1 has nowhere to go: no other host has a PF on physnet fabric; libvirt does not migrate a VM to its own host$/);
    assert.deepEqual([fake.started.length, (await rc.store.tx.getHost(HOST))!.drainedPfs], [0, []]);
  });

  it('starts the drain and shows its migrations; again, it shows how far they got', async () => {
    const text = await ok(['drain', `${HOST}/ens1f0`, '--hypervisor', 'hook']);
    assert.match(text, row(pod, 'node1/ens2f0\\s+-\\s+mig-\\d\\s+running/prepare'));
    assert.match(text, row(vm, 'node1/ens2f0\\s+hook\\s+mig-\\d\\s+running/prepare'));
    assert.match(text, /\nens1f0 drained: no new allocation lands there; the migrations run a few at a time \(run this again to follow them\)\n$/);
    const again = await json<DrainReport>(['drain', `${HOST}/ens1f0`, '--hypervisor', 'hook']);
    assert.deepEqual([again.state, again.moves.map((m) => m.migration).sort()], ['running', ['mig-1', 'mig-2']]);
    assert.equal(fake.started.length, 2, 'nothing started twice');
    for (const m of fake.running()) fake.finish(m.id);
  });

  it('refuses bad input before any request (exit 2)', async () => {
    for (const args of [['Node_1'], ['node1/../sys'], ['node1/ens1f0', '--hypervisor', 'xen']]) {
      await fails(['drain', ...args], 2, /^sriovctl: INVALID_ARGUMENT/, { SRIOV_SERVER: 'http://127.0.0.1:9' });
    }
  });
});
