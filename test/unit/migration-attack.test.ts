// Attacks on live migration from outside: a careless operator, a hostile
// orchestrator or controller, agents that fail at the worst moment. Each
// case is a finding of the review that added this file; each asserts the
// behaviour that keeps a VM's allocations honest and refusals side-effect free.
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { MigrationRequest } from '../../src/controller/migration-request.js';
import { LibvirtHypervisor } from '../../src/hypervisor/libvirt-hypervisor.js';
import { QmpClient } from '../../src/hypervisor/qmp-client.js';
import { QmpHypervisor } from '../../src/hypervisor/qmp-hypervisor.js';
import { parseLibvirtUri } from '../../src/hypervisor/validate.js';
import { remoteCli } from '../helpers/cli.js';
import { makeHost } from '../helpers/inventory.js';
import { ADMIN, MigrationLab, TENANT } from '../helpers/migration-lab.js';
import { startRemoteController, type RemoteController } from '../helpers/remote-controller.js';
import { QmpNetwork } from '../support/qmp-server.js';
import { refusal } from '../helpers/refusal.js';

describe('migration attacks', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open()));
  afterEach(() => lab.close());

  async function refused(req: MigrationRequest, code: string, message: RegExp) {
    const before = await lab.snapshot();
    const err = await refusal(lab.control.migrations.start(ADMIN, req), code);
    assert.match(err.message, message);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    assert.equal(await lab.snapshot(), before, `${err.message}: nothing changed`);
  }

  it('does not roll back while the migrate task is out: the VM may be moving; its outcome decides', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' });
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    assert.equal((await lab.desired('host-a')).tasks.length, 1, 'the migrate task is out');
    // The destination VF vanishes while QEMU may already be migrating the VM.
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'failed', reason: 'VF 0000:10:00.1 vanished' }]);
    const during = await lab.control.migrations.get(ADMIN, m.id);
    assert.equal(during.state, 'running', 'a rollback now would say the VM stays on host-a while it may be gone');
    assert.equal((await lab.desired('host-a')).tasks.length, 1, 'the task stays until its result is seen');
    // The VM did move: the migration rolls forward; the source is released, not kept as if it ran there.
    await lab.report('host-a', [], [{ id: `${m.id}:migrate:host-a`, ok: true, detail: 'completed' }]);
    assert.equal((await lab.allocation(source.id)).state, 'releasing');
    await lab.report('host-a', [{ id: source.id, state: 'released' }]);
    const done = await lab.control.migrations.get(ADMIN, m.id);
    assert.equal(done.state, 'completed');
    assert.match(done.reason!, /moved, but host-b\/ens1f0 VF .* is failed/);
  });

  it('and when that migrate fails after the destination vanished: rolled back, the source VF plugged back', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' });
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'failed', reason: 'VF vanished' }]);
    await lab.report('host-a', [], [{ id: `${m.id}:migrate:host-a`, ok: false, detail: 'HOST_ERROR: migration failed' }]);
    const back = (await lab.desired('host-a')).tasks;
    assert.deepEqual(back.map((t) => t.id), [`${m.id}:plug-back:host-a`], 'QEMU unplugged the source VF before it failed: it goes back');
    await lab.report('host-a', [], [{ id: `${m.id}:plug-back:host-a`, ok: true, detail: 'plugged' }]);
    const done = await lab.control.migrations.get(ADMIN, m.id);
    assert.equal(done.state, 'failed');
    assert.equal((await lab.allocation(source.id)).state, 'attached');
  });

  it('refuses to move one VF of a VM that holds others on that host: the VM would leave them behind', async () => {
    const first = await lab.vm('vm1', true);
    const second = await lab.vm('vm1', true);
    const req = { allocation: first.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu' as const, migrateUri: 'tcp:198.18.0.2:4444' };
    await refused(req, 'UNSUPPORTED', new RegExp(`VM vm1 on host-a also holds allocation ${second.id} \\(VF ${second.pciAddress.replace(/\./g, '\\.')}\\).*release them first`));
    // Between two PFs of its own host the VM does not move: one VF at a time is fine there.
    await lab.control.migrations.start(ADMIN, { allocation: first.id, to: { host: 'host-a', pf: first.pf === 'ens1f0' ? 'ens2f0' : 'ens1f0' }, hypervisor: 'hook' });
  });

  it('refuses a QMP URI an unfinished migration already sends its VM to: one -incoming QEMU takes one VM', async () => {
    const one = await lab.vm('vm1', true);
    const two = await lab.vm('vm2', true);
    const uri = 'tcp:198.18.0.2:4444';
    const m = await lab.control.migrations.start(ADMIN, { allocation: one.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: uri });
    const req: MigrationRequest = { allocation: two.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: uri };
    await refused(req, 'CONFLICT', new RegExp(`migrateUri tcp:198\\.18\\.0\\.2:4444 is where migration ${m.id} sends VM vm1; .*another port or socket`));
    await refused({ ...req, dryRun: true }, 'CONFLICT', /is where migration/);
    // Once that VM has moved, the URI is free again (the destination QEMU started for it is used up).
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.report('host-a', [], [{ id: `${m.id}:migrate:host-a`, ok: true, detail: 'completed' }]);
    await lab.control.migrations.start(ADMIN, req);
  });

  it('refuses at start a QMP URI the agent would refuse after the reservation (octal-looking octets, a socket path too long)', async () => {
    const source = await lab.vm('vm1', true);
    const qemu = (migrateUri: string): MigrationRequest => ({ allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri });
    for (const uri of ['tcp:010.0.0.1:4444', 'tcp:198.18.0.02:4444']) {
      await refused(qemu(uri), 'INVALID_ARGUMENT', /migrateUri .* is not `tcp:<IPv4>:<port>`/);
      const agent = await refusal(new QmpHypervisor({ qmpDir: '/run/vfleet/qmp' }).migrate({ vm: 'vm1', destination: uri, sourceDevice: 'hostdev-1' }), 'INVALID_ARGUMENT');
      assert.match(agent.message, /must be tcp:<IPv4>/, 'the agent refuses it too');
    }
    const long = `unix:/run/${'x'.repeat(120)}`;
    await refused(qemu(long), 'INVALID_ARGUMENT', /migrateUri: the socket path is 125 bytes, over a unix socket's 107; give .* a shorter path/);
  });

  it('the agent takes no libvirt destination with a query: ?command= or ?netcat= would run a program', async () => {
    const virsh = new LibvirtHypervisor({ connect: 'qemu:///system' });
    for (const uri of ['qemu+ssh://host-b/system?command=/tmp/x', 'qemu+ssh://host-b/system?netcat=/tmp/x', 'qemu+unix:///system?socket=/tmp/s']) {
      // Refused before virsh runs at all.
      const err = await refusal(virsh.migrate({ vm: 'vm1', destination: uri, sourceDevice: 'ua-sriov-1' }), 'INVALID_ARGUMENT');
      assert.match(err.message, /migration destination .* takes no query/);
    }
    // The agent's own --libvirt-uri (the operator's) may still carry a keyfile.
    assert.equal(parseLibvirtUri('qemu+ssh://host-b/system?keyfile=/etc/vfleet/id', '--libvirt-uri'), 'qemu+ssh://host-b/system?keyfile=/etc/vfleet/id');
  });
});


describe('migration attacks: tasks that outlive their reason', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open()));
  afterEach(() => lab.close());

  it('a plug task out when the destination VF is lost: its outcome is waited for, and no plug of a freed VF is handed out afterwards', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' });
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.report('host-a', [], [{ id: `${m.id}:migrate:host-a`, ok: true, detail: 'completed' }]);
    const plug = `${m.id}:plug:host-b`;
    assert.deepEqual((await lab.desired('host-b')).tasks.map((t) => t.id), [plug]);
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'failed', reason: 'VF vanished' }]);
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).step, 'switch', 'the plug may be running: its outcome first');
    await lab.report('host-b', [], [{ id: plug, ok: false, detail: 'NOT_FOUND: no such host device' }]);
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).step, 'release');
    assert.deepEqual((await lab.desired('host-b')).tasks, [], 'nothing left to plug');
    await lab.report('host-a', [{ id: source.id, state: 'released' }]);
    const done = await lab.control.migrations.get(ADMIN, m.id);
    assert.equal(done.state, 'completed');
    assert.deepEqual(done.tasks!.map((t) => t.outcome), ['ok', 'failed'], 'no task left pending in an ended migration');
  });
});

describe('migration attacks: what agents write into a migration', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open()));
  afterEach(() => lab.close());

  it('a task result or an allocation reason with newlines and escapes becomes one line in the record (no forged history rows or terminal escapes)', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' });
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.report('host-a', [], [{ id: `${m.id}:migrate:host-a`, ok: false, detail: 'HOST_ERROR: failed\n2026-12-01T00:00:00Z  done  done  \u001b[2Jforged' }]);
    await lab.report('host-a', [], [{ id: `${m.id}:plug-back:host-a`, ok: true, detail: 'plugged' }]);
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'released' }]);
    const done = await lab.control.migrations.get(ADMIN, m.id);
    assert.equal(done.state, 'failed');
    assert.match(done.reason!, /HOST_ERROR: failed 2026-12-01T00:00:00Z .*forged/);
    for (const text of [done.reason!, ...done.history.map((e) => e.detail), ...done.tasks!.map((t) => t.detail ?? '')]) {
      assert.doesNotMatch(text, /\p{Cc}/u, JSON.stringify(text));
    }
  });
});

describe('migration attacks: sriovctl migrations show', { timeout: 60_000 }, () => {
  let rc: RemoteController;
  const { ok } = remoteCli(() => rc);
  beforeEach(async () => (rc = await startRemoteController('vfleet-attack-cli-', 'node1')));
  afterEach(() => rc.close());

  it('prints a stored reason with a newline or an escape on its own one line', async () => {
    const inventory = makeHost({ name: 'node1', pfs: 2, vfs: 4, physnet: null }).inventory;
    await ok(['tenant', 'create', 'a']);
    await ok(['network', 'create', 'red', '--tenant', 'a', '--physnet', 'fabric', '--vlan', '100']);
    const a = await rc.control.allocations.create(ADMIN, { network: 'red', host: 'node1', pciAddress: '0000:10:00.1', workload: { kind: 'container', name: 'web' }, attach: { kind: 'container', netns: '/var/run/netns/web', ifname: 'net1' } });
    await rc.control.hosts.report({ id: 'local', role: 'admin' }, inventory, [{ id: a.id, state: 'attached', hostIfName: 'ens1v0' }]);
    const m = await rc.control.migrations.start(ADMIN, { allocation: a.id, to: { host: 'node1', pf: null } });
    // A record as an older controller (or a reason an agent wrote before this one cleaned it) left it.
    await rc.store.tx.updateMigration({ ...m, reason: 'boom\nforged: line\u001b[2J' });
    const out = await ok(['migrations', 'show', m.id]);
    assert.ok(!out.includes('\u001b'), 'no escape reaches the terminal');
    assert.match(out, /^reason: boom forged: line \[2J$/m);
    assert.doesNotMatch(out, /^forged/m);
  });
});

describe('migration attacks: the hook, driven by a hostile or confused orchestrator', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open()));
  afterEach(() => lab.close());

  it('refuses complete and prepare of a migration the hook does not drive, and complete of an ended one, saying what to do, nothing changed', async () => {
    const source = await lab.vm('vm1', true);
    const qemu = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' });
    await lab.report('host-b', [{ id: qemu.to!.allocation, state: 'configured' }]);
    for (const call of [() => lab.control.migrations.complete(ADMIN, qemu.id), () => lab.control.migrations.prepare(ADMIN, qemu.id, 0)]) {
      const before = await lab.snapshot();
      const err = await refusal(call(), 'INVALID_ARGUMENT');
      assert.match(err.message, new RegExp(`migration ${qemu.id} is moved by qemu, not by an orchestrator's hook; .*sriovctl migrations show ${qemu.id}`));
      assert.equal(await lab.snapshot(), before);
    }
    // A hook migration that was aborted cannot be completed afterwards.
    const other = await lab.vm('vm2', true, 'host-b');
    const hook = await lab.control.migrations.start(ADMIN, { allocation: other.id, to: { host: 'host-a', pf: null }, hypervisor: 'hook' });
    await lab.control.migrations.abort(ADMIN, hook.id);
    await lab.report('host-a', [{ id: hook.to!.allocation, state: 'released' }]);
    assert.equal((await lab.control.migrations.get(ADMIN, hook.id)).state, 'aborted');
    const before = await lab.snapshot();
    const err = await refusal(lab.control.migrations.complete(ADMIN, hook.id), 'CONFLICT');
    assert.match(err.message, new RegExp(`migration ${hook.id} is aborted \\(aborted by admin/test\\); .*start a new migration`));
    assert.doesNotMatch(err.message, /\n/);
    assert.equal(await lab.snapshot(), before);
  });
});

describe('migration attacks: a destination host that never comes back', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open()));
  afterEach(() => lab.close());

  it('does not pin the source: rolling back towards a dead host, the workload can still release its VF', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'hook' });
    await lab.control.hosts.sweep(Date.now() + 60_000);
    await lab.report('host-a');
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).state, 'rolling-back');
    // Abort cannot help (there is nothing left to abort), so the release must not wait for host-b.
    const released = await lab.control.allocations.delete(ADMIN, source.id);
    assert.equal(released.state, 'releasing');
    await lab.report('host-a', [{ id: source.id, state: 'released' }]);
    assert.equal((await lab.allocation(source.id)).state, 'released');
    // host-b comes back and scrubs the destination: the migration ends, and no MAC is held twice on the way.
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'released' }]);
    const done = await lab.control.migrations.get(ADMIN, m.id);
    assert.equal(done.state, 'failed');
    assert.deepEqual([(await lab.allocation(source.id)).migration, (await lab.allocation(m.to!.allocation)).migration], [null, null]);
  });

  it('while a VF is being plugged back, the source release waits, and says what it waits for', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' });
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.report('host-a', [], [{ id: `${m.id}:migrate:host-a`, ok: false, detail: 'HOST_ERROR: failed' }]);
    const before = await lab.snapshot();
    const err = await refusal(lab.control.allocations.delete(ADMIN, source.id), 'CONFLICT');
    assert.match(err.message, new RegExp(`migration ${m.id} is rolling back and plugs VF .* back into VM vm1; wait for it \\(sriovctl migrations show ${m.id}\\), then release`));
    assert.equal(await lab.snapshot(), before);
  });
});

describe('migration attacks: the QMP socket directory', { timeout: 60_000 }, () => {
  it('does not follow a symlink to another VM\'s monitor: a VF plugged into vm2 must not land in vm1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qmp-attack-'));
    const network = new QmpNetwork();
    try {
      const vm1 = await network.start({ socket: join(dir, 'vm1.qmp'), rootPorts: ['rp1'], devices: [{ driver: 'virtio-net-pci', id: 'net-1', bus: 'rp1', mac: '02:00:00:00:00:01', failover: 'on' }], vfioDevices: ['0000:3b:02.0'] });
      await symlink(join(dir, 'vm1.qmp'), join(dir, 'vm2.qmp'));
      const qmp = new QmpHypervisor({ qmpDir: dir });
      const err = await refusal(qmp.plug({ vm: 'vm2', pciAddress: '0000:3b:02.0', device: 'hostdev-2', mac: '02:00:00:00:00:01', failoverPairId: 'net-1' }), 'PERMISSION_DENIED');
      assert.match(err.message, /QMP socket .*vm2\.qmp is a symbolic link.*; vfleet talks only to a socket QEMU created there \(-qmp unix:.*vm2\.qmp,server=on\)/);
      assert.deepEqual(vm1.commands, [], 'vm1 heard nothing');
    } finally {
      await network.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('migration attacks: a monitor that floods', { timeout: 60_000 }, () => {
  it('a QMP line without end is cut off at a bound, with a one-line error, instead of growing the agent without limit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qmp-flood-'));
    const path = join(dir, 'vm1.qmp');
    const server = createServer((s) => {
      s.on('error', () => {});
      s.write('x'.repeat(2 * 1024 * 1024));
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const err = await refusal(QmpClient.connect(path, { timeoutMs: 30_000 }), 'HOST_ERROR');
      assert.match(err.message, /QMP socket .*vm1\.qmp sent a line longer than 1048576 characters/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('migration attacks: what a tenant reads', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open()));
  afterEach(() => lab.close());

  it('a tenant does not learn where a destination QEMU listens (-incoming takes the first stream that comes)', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' });
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.report('host-a', [], [{ id: `${m.id}:migrate:host-a`, ok: true, detail: 'VM vm1 migrated to tcp:198.18.0.2:4444: completed' }]);
    const seen = [await lab.control.migrations.get(TENANT, m.id), ...(await lab.control.migrations.list(TENANT)), await lab.control.migrations.wait(TENANT, m.id, 0)];
    for (const x of seen) {
      assert.equal(x.migrateUri, null);
      assert.doesNotMatch(JSON.stringify(x), /198\.18\.0\.2/);
    }
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).migrateUri, 'tcp:198.18.0.2:4444', 'staff see it');
  });
});

describe('migration attacks: a controller restarted at a bad moment', { timeout: 60_000 }, () => {
  let lab: MigrationLab;
  beforeEach(async () => (lab = await MigrationLab.open()));
  afterEach(() => lab.close());

  it('restarted after the destination was lost with the migrate task out: the task is still out, and its result still decides', async () => {
    const source = await lab.vm('vm1', true);
    const m = await lab.control.migrations.start(ADMIN, { allocation: source.id, to: { host: 'host-b', pf: null }, hypervisor: 'qemu', migrateUri: 'tcp:198.18.0.2:4444' });
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'configured' }]);
    await lab.report('host-b', [{ id: m.to!.allocation, state: 'failed', reason: 'VF vanished' }]);
    await lab.reopen();
    await lab.report('host-a');
    await lab.report('host-b');
    assert.equal((await lab.control.migrations.get(ADMIN, m.id)).state, 'running');
    assert.deepEqual((await lab.desired('host-a')).tasks.map((t) => t.id), [`${m.id}:migrate:host-a`]);
    // The MAC is still the source's: nobody else may take it, after the restart too.
    const err = await refusal(lab.control.allocations.create(ADMIN, { network: 'red', host: 'host-a', mac: source.mac, workload: { kind: 'container', name: 'thief' } }), 'CONFLICT');
    assert.match(err.message, new RegExp(source.mac));
    await lab.report('host-a', [], [{ id: `${m.id}:migrate:host-a`, ok: false, detail: 'HOST_ERROR: failed' }]);
    assert.deepEqual((await lab.desired('host-a')).tasks.map((t) => t.id), [`${m.id}:plug-back:host-a`]);
  });
});
