// The drain over the real migration service (control.migrations),
// the agents played through hosts.report as the migration tests play them:
// a PF drain re-homes its containers to the other PF, a bounded number at a
// time, to the end; a re-run while it runs starts nothing twice; and a move
// the service refuses (a VM with no standby and no vfio migration driver)
// refuses the whole drain, nothing changed.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { AllocationStatus } from '../../src/controller/desired-state.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import { DrainService } from '../../src/controller/drain.js';
import type { Migrations } from '../../src/controller/migration-request.js';
import type { Actor } from '../../src/domain/actor.js';
import type { Allocation, Migration } from '../../src/domain/types.js';
import type { HostInventory } from '../../src/host/model.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { policyOf } from '../helpers/api-harness.js';
import { makeHost } from '../helpers/inventory.js';
import { refusal } from '../helpers/refusal.js';

const ADMIN: Actor = { id: 'test', role: 'admin' };
const OPERATOR: Actor = { id: 'op', role: 'operator' };
const AGENT: Actor = { id: 'agent-a', role: 'agent:host-a' };
const DRAIN = 'host-a/ens1f0';

describe('drain over the migration service', { timeout: 60_000 }, () => {
  let dir: string;
  let store: Store;
  let control: ControlPlane;
  let drains: DrainService;
  let inventory: HostInventory;

  const migrations = (): Migrations => control.migrations;
  const report = (statuses: AllocationStatus[]) => control.hosts.report(AGENT, inventory, statuses);
  const snapshot = async () => JSON.stringify([await store.tx.listAllocations(), await migrations().list(ADMIN), (await store.tx.listEvents({ limit: 100_000 })).length]);
  let next = 0;
  const attached = async (workload: Allocation['workload'], attach: NonNullable<Parameters<ControlPlane['allocations']['create']>[1]['attach']>) => {
    const pciAddress = `0000:10:00.${++next}`;
    const a = await control.allocations.create(ADMIN, { network: 'red', host: 'host-a', pciAddress, workload, attach });
    await report([{ id: a.id, state: 'attached', ...(attach.kind === 'container' ? { hostIfName: `ens1v${next}` } : {}) }]);
    return (await store.tx.getAllocation(a.id))!;
  };
  const container = (name: string) => attached({ kind: 'container', name }, { kind: 'container', netns: `/var/run/netns/${name}`, ifname: 'net1' });

  beforeEach(async () => {
    next = 0;
    dir = await mkdtemp(join(tmpdir(), 'vfleet-drain-mig-'));
    store = await openSqliteStore(dir);
    control = await ControlPlane.open(store);
    inventory = makeHost({ name: 'host-a', pfs: 2, vfs: 4, driver: 'ice', linkSpeedMbps: 10_000 }).inventory;
    await report([]);
    await control.hosts.putPolicy(ADMIN, 'host-a', policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
    await control.networks.createTenant(ADMIN, 'acme');
    await control.networks.createNetwork(ADMIN, { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100 });
    drains = new DrainService(control.ctx, control.drains, migrations(), { concurrency: 2, waitMs: 10_000 });
  });

  afterEach(async () => {
    drains.shutdown();
    control.shutdown();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** host-a's agent moving one container: destination configured, then attached (re-homed), then the old VF released. */
  async function agentMoves(m: Migration): Promise<void> {
    await report([{ id: m.to!.allocation, state: 'configured' }]);
    await report([{ id: m.to!.allocation, state: 'attached', hostIfName: `ens2v${m.to!.vfIndex}` }]);
    await report([{ id: m.from.allocation, state: 'released' }]);
  }

  /** The drain's migrations once `count` of them exist, yielding to the event loop (its workers) between looks. */
  async function started(count: number): Promise<Migration[]> {
    for (let turn = 0; turn < 10_000; turn++) {
      const all = await migrations().list(ADMIN, { drain: DRAIN });
      if (all.length >= count) return all;
      await new Promise((resolve) => setImmediate(resolve));
    }
    throw new Error(`the drain never had ${count} migrations`);
  }

  it('re-homes every container of the PF to the other one, two at a time, to the end', async () => {
    const pods = [await container('pod-1'), await container('pod-2'), await container('pod-3')];
    const report0 = await drains.drain(OPERATOR, { host: 'host-a', pf: 'ens1f0' });
    assert.equal(report0.state, 'running');
    assert.equal(report0.moves.filter((m) => m.migration !== null).length, 2);
    assert.deepEqual((await store.tx.getHost('host-a'))!.drainedPfs, ['0000:10:00.0']);
    const again = await drains.drain(OPERATOR, { host: 'host-a', pf: 'ens1f0' });
    assert.deepEqual(again.moves.map((m) => m.migration), report0.moves.map((m) => m.migration), 'a re-run joins it');

    for (const m of (await started(2)).filter((x) => x.state === 'running')) await agentMoves(m);
    const third = (await started(3)).find((x) => x.state === 'running')!;
    await agentMoves(third);
    const end = (await drains.settled(DRAIN))!;
    assert.equal(end.state, 'completed', JSON.stringify(end));
    const all = await migrations().list(ADMIN, { drain: DRAIN });
    assert.deepEqual(all.map((m) => m.state), ['completed', 'completed', 'completed']);
    assert.deepEqual(all.map((m) => m.from.allocation).sort(), pods.map((p) => p.id).sort(), 'each moved once');
    const held = await store.tx.listAllocations({ host: 'host-a', holding: true });
    assert.deepEqual(held.map((a) => a.pf), ['ens2f0', 'ens2f0', 'ens2f0']);
    assert.deepEqual(held.map((a) => a.mac).sort(), pods.map((p) => p.mac).sort(), 'the same MACs');

    // Nothing left to move: the PF is empty and stays drained, ready for its VF count change.
    const empty = await drains.drain(OPERATOR, { host: 'host-a', pf: 'ens1f0', dryRun: true });
    assert.deepEqual([empty.state, empty.moves], ['planned', []]);
  });

  it('refuses the whole drain, nothing changed, when the service refuses one move', async () => {
    await container('pod-1');
    const vm = await attached({ kind: 'vm', name: 'vm-1' }, { kind: 'vm', vm: 'vm-1', failover: false });
    const before = await snapshot();
    const err = await refusal(drains.drain(OPERATOR, { host: 'host-a', pf: 'ens1f0', hypervisor: 'hook' }), 'NO_CAPACITY');
    assert.match(err.message, new RegExp(`^drain of ${DRAIN} refused, nothing changed: 1 of 2 allocations cannot move: ${vm.id.slice(0, 8)} \\(vm vm-1\\): VM vm-1 has no failover standby`));
    assert.equal(await snapshot(), before);
    assert.deepEqual((await store.tx.getHost('host-a'))!.drainedPfs, []);
  });
});
