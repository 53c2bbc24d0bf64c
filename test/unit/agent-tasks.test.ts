/**
 * The agent's hypervisor tasks: each id runs once, its result is reported at
 * once through the link and kept (sent with every report) until the task
 * leaves the desired state. Against an in-memory hypervisor, and end to end
 * through an agent on a simulated host with the QMP adapter and a simulated QEMU.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import type { ControllerLink } from '../../src/agent/link.js';
import { TaskRunner } from '../../src/agent/tasks.js';
import type { DesiredState, HypervisorTask, HypervisorTaskResult } from '../../src/controller/desired-state.js';
import { SriovError } from '../../src/host/errors.js';
import { SriovHost } from '../../src/host/configurator.js';
import type { Hypervisor, MigrateRequest, PlugRequest, UnplugRequest } from '../../src/hypervisor/hypervisor.js';
import { QmpHypervisor } from '../../src/hypervisor/qmp-hypervisor.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { eventually } from '../helpers/daemon.js';
import { QmpNetwork } from '../support/qmp-server.js';

/** Records calls; each call waits for `release` when gated. */
class RecordingHypervisor implements Hypervisor {
  readonly kind = 'qemu' as const;
  calls: string[] = [];
  gate: Promise<void> | null = null;
  fail: SriovError | null = null;

  async migrate(req: MigrateRequest, progress?: (s: string) => void) {
    this.calls.push(`migrate ${req.vm}`);
    await this.gate;
    if (this.fail) throw this.fail;
    progress?.('completed');
    return { statuses: ['setup', 'wait-unplug', 'active', 'completed'], downtimeMs: 78, totalMs: 2700 };
  }
  async plug(req: PlugRequest) {
    this.calls.push(`plug ${req.device}`);
    await this.gate;
    if (this.fail) throw this.fail;
  }
  async unplug(req: UnplugRequest) {
    this.calls.push(`unplug ${req.device}`);
    await this.gate;
  }
}

const migrateTask = (id = 'm1:migrate:host-a'): HypervisorTask => ({
  id,
  migration: 'm1',
  hypervisor: 'qemu',
  op: 'migrate',
  request: { vm: 'vm1', destination: 'tcp:198.18.0.2:4444', sourceDevice: 'hostdev-0a1b2c3d' },
});
const plugTask = (id = 'm1:plug:host-b'): HypervisorTask => ({
  id,
  migration: 'm1',
  hypervisor: 'qemu',
  op: 'plug',
  request: { vm: 'vm1', pciAddress: '0000:3b:12.0', device: 'hostdev-0a1b2c3d', mac: '02:5f:00:00:00:07', failoverPairId: 'net-0a1b2c3d' },
});

describe('TaskRunner', () => {
  it('runs a task once, reports its result at once, and keeps it until the task leaves the desired state', async () => {
    const hv = new RecordingHypervisor();
    const reported: HypervisorTaskResult[] = [];
    const runner = new TaskRunner({ qemu: hv }, async (r) => void reported.push(r));
    runner.sync([migrateTask()]);
    runner.sync([migrateTask()]); // the next long poll, while it runs
    await runner.idle();
    runner.sync([migrateTask()]); // and after it finished
    await runner.idle();
    assert.deepEqual(hv.calls, ['migrate vm1']);
    assert.equal(reported.length, 1);
    assert.equal(reported[0]!.ok, true);
    assert.deepEqual(reported[0]!.result?.statuses, ['setup', 'wait-unplug', 'active', 'completed']);
    assert.match(reported[0]!.detail, /migrated to tcp:198\.18\.0\.2:4444: setup → wait-unplug → active → completed; downtime 78 ms, total 2700 ms/);
    assert.deepEqual(runner.results(), reported);
    runner.sync([]);
    assert.deepEqual(runner.results(), []);
    runner.sync([migrateTask()]); // listed again after it left: a new request
    await runner.idle();
    assert.equal(hv.calls.length, 2);
  });

  it('reports a failure as one line with its code, and a task for a hypervisor this agent lacks', async () => {
    const hv = new RecordingHypervisor();
    hv.fail = new SriovError('HOST_ERROR', 'migration of VM vm1 to tcp:198.18.0.2:4444 failed: Broken pipe');
    const runner = new TaskRunner({ qemu: hv }, async () => {});
    runner.sync([migrateTask(), { ...plugTask(), hypervisor: 'libvirt' }]);
    await runner.idle();
    const [m, p] = runner.results();
    assert.deepEqual(m, { id: 'm1:migrate:host-a', ok: false, detail: 'HOST_ERROR: migration of VM vm1 to tcp:198.18.0.2:4444 failed: Broken pipe' });
    assert.equal(p!.ok, false);
    assert.match(p!.detail, /^UNSUPPORTED: this agent does not run libvirt VMs \(its --hypervisor: qemu\)/);
  });

  it('runs different tasks side by side, and drops the result of one that left while it ran', async () => {
    const hv = new RecordingHypervisor();
    let release = () => {};
    hv.gate = new Promise((r) => (release = r));
    const reported: string[] = [];
    const runner = new TaskRunner({ qemu: hv }, async (r) => void reported.push(r.id));
    runner.sync([migrateTask(), plugTask()]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(hv.calls, ['migrate vm1', 'plug hostdev-0a1b2c3d']);
    runner.sync([plugTask()]);
    release();
    await runner.idle();
    assert.deepEqual(reported, ['m1:plug:host-b']);
    assert.deepEqual(runner.results().map((r) => r.id), ['m1:plug:host-b']);
  });

  it('keeps a result whose report failed, for the next report', async () => {
    const runner = new TaskRunner({ qemu: new RecordingHypervisor() }, async () => {
      throw new Error('controller unreachable');
    });
    runner.sync([plugTask()]);
    await runner.idle();
    assert.equal(runner.results().length, 1);
  });
});

describe('agent with the QMP adapter (simulated host, simulated QEMU)', () => {
  it('migrates the VM for the desired state\'s task and reports the result through the link', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agent-tasks-'));
    const network = new QmpNetwork();
    try {
      await initSimHost(join(dir, 'host.json'), { profile: 'igb', pfs: 1, hostname: 'host-a' });
      await mkdir(join(dir, 'qmp'));
      const migrateTo = `unix:${join(dir, 'in.sock')}`;
      const standby = { driver: 'virtio-net-pci', id: 'net-0a1b2c3d', bus: 'rp1', mac: '02:5f:00:00:00:07', failover: 'on' };
      const src = await network.start({
        socket: join(dir, 'qmp', 'vm1.qmp'),
        rootPorts: ['rp1', 'rp2'],
        devices: [standby, { driver: 'vfio-pci', id: 'hostdev-0a1b2c3d', bus: 'rp2', host: '0000:3b:02.0', failover_pair_id: 'net-0a1b2c3d' }],
      });
      await network.start({ socket: join(dir, 'vm1-dst.qmp'), rootPorts: ['rp1', 'rp2'], devices: [standby], incoming: migrateTo });
      const task = { ...migrateTask(), request: { ...(migrateTask().request as MigrateRequest), destination: migrateTo } } as HypervisorTask;
      const reports: Array<HypervisorTaskResult[]> = [];
      const link: ControllerLink = {
        async report(_inventory, _statuses, _events, results = []) {
          reports.push(results);
        },
        async desired(host, after): Promise<DesiredState> {
          if (after) await new Promise((r) => setTimeout(r, 20));
          return { host, revision: '1', policies: [], allocations: [], macPrefix: '02:5f:00', orphanGraceMs: 60_000, resync: 0, tasks: [task], rateGroups: [] };
        },
      };
      const agent = new Agent(new SriovHost(createSimPorts(join(dir, 'host.json'))), link, {
        heartbeatMs: 20,
        hypervisors: { qemu: new QmpHypervisor({ qmpDir: join(dir, 'qmp'), pollMs: 5 }) },
      });
      agent.start();
      const first = await eventually('the task result', 10_000, async () => reports.find((r) => r.length > 0)?.[0]);
      await eventually('a heartbeat that repeats it', 10_000, async () => (reports.filter((r) => r.length > 0).length >= 2 ? true : undefined));
      await agent.stop();
      await agent.tasksIdle();
      assert.equal(first.ok, true, first.detail);
      assert.deepEqual(first.result?.statuses, ['setup', 'wait-unplug', 'active', 'device', 'completed']);
      assert.equal(src.commands.filter((c) => c.execute === 'migrate').length, 1);
      assert.ok(src.exited, 'the source QEMU was told to quit once the VM left');
      assert.equal(src.commands.at(-1)?.execute, 'quit');
    } finally {
      await network.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
