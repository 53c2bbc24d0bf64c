// A guarantee on a driver that cannot enforce it (igb answers min_tx_rate
// with EINVAL): the physnet is accounting-only, admission counts the
// guarantee, and the VF gets the network's max_tx_rate but no min_tx_rate:
// the agent attaches it, and neither drift repair nor the isolation audit
// wants a min_tx_rate back. An explicit min_tx_rate on such a VF is still
// refused. A simulated igb host.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import { InProcessLink } from '../../src/agent/link.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { Actor } from '../../src/domain/actor.js';
import type { Allocation } from '../../src/domain/types.js';
import { enforceableSettings } from '../../src/host/capabilities.js';
import { SriovHost } from '../../src/host/configurator.js';
import { SriovError } from '../../src/host/errors.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { eventually } from '../helpers/daemon.js';

const ADMIN: Actor = { id: 'test', role: 'admin' };
const HOST = 'sim-igb';
const POLICY = 'policies:\n  - name: fabric\n    selector: { drivers: [igb] }\n    numVfs: 4\n    physnet: fabric\n';

describe('a guarantee on igb, accounted only', { timeout: 60_000 }, () => {
  let dir: string;
  let store: Store;
  let control: ControlPlane;
  let host: SriovHost;
  let agent: Agent;
  const ns = (name: string) => join(dir, `ns-${name}`);
  const settled = (id: string) =>
    eventually(`allocation ${id} settled`, 10_000, async () => {
      const a = await control.allocations.get(ADMIN, id);
      return a.state === 'pending' ? undefined : a;
    });
  const attach = async (name: string) => {
    await writeFile(ns(name), '');
    return control.allocations.create(ADMIN, { network: 'gold', workload: { kind: 'container', name }, attach: { kind: 'container', netns: ns(name), ifname: 'net1' } });
  };
  const vfOf = async (a: Allocation) => (await host.pf(a.pfPciAddress)).vfs[a.vfIndex]!;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-accounting-'));
    await initSimHost(join(dir, 'host.json'), { profile: 'igb', pfs: 1, hostname: HOST });
    host = new SriovHost(createSimPorts(join(dir, 'host.json')));
    store = await openSqliteStore(join(dir, 'data'));
    control = await ControlPlane.open(store, { orphanGraceMs: 60_000 });
    agent = new Agent(host, new InProcessLink(control, { id: 'local', role: `agent:${HOST}` }), { heartbeatMs: 100, resyncMs: 600_000 });
    agent.start();
    await control.hosts.putPolicy(ADMIN, HOST, POLICY);
    await eventually('VFs reported', 10_000, async () => ((await control.hosts.get(ADMIN, HOST)).inventory.pfs.every((pf) => pf.numVfs === 4) ? true : undefined));
    await control.networks.createTenant(ADMIN, 'blue');
    await control.networks.createNetwork(ADMIN, { name: 'gold', tenant: 'blue', physnet: 'fabric', vlan: 100, minTxRateMbps: 100, maxTxRateMbps: 300, ipam: { cidr: '198.18.0.0/24' } });
  });

  after(async () => {
    await agent.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('without accountingOnly, admission refuses the guarantee igb cannot enforce', async () => {
    await assert.rejects(attach('refused'), (e: unknown) => e instanceof SriovError && e.code === 'NO_CAPACITY' && /accountingOnly/.test(e.message));
  });

  it('on an accounting-only physnet the VF is attached with max_tx_rate and no min_tx_rate; a pass repairs nothing, the audit sees no drift', async () => {
    await control.networks.putPhysnet(ADMIN, 'fabric', { accountingOnly: true });
    const a = await settled((await attach('pod')).id);
    assert.equal(a.state, 'attached', a.reason ?? '');
    assert.equal(a.minTxRateMbps, 100, 'the allocation carries the guarantee admission counted');
    const vf = await vfOf(a);
    assert.deepEqual([vf.vlan, vf.maxTxRateMbps, vf.minTxRateMbps], [100, 300, 0]);

    // A hand-made VLAN change, and a whole pass: it puts VLAN 100 back and finds nothing else to repair.
    await host.applyVfSettings(await host.pf(a.pfPciAddress), [{ vf: a.vfIndex, settings: { vlan: 999 } }]);
    await control.hosts.reconcile(ADMIN, HOST);
    await eventually('VLAN 100 back', 10_000, async () => ((await vfOf(a)).vlan === 100 ? true : undefined));
    const repairs = await eventually('the repair recorded', 10_000, async () => {
      const found = (await control.events(ADMIN, { limit: 1000 })).filter((e) => e.action === 'drift.repaired');
      return found.length ? found : undefined;
    });
    assert.equal(repairs.length, 1, JSON.stringify(repairs));
    assert.doesNotMatch(JSON.stringify(repairs[0]), /min_tx|minTx/i, 'no min_tx_rate to repair');
    assert.deepEqual([(await vfOf(a)).maxTxRateMbps, (await vfOf(a)).minTxRateMbps], [300, 0]);
    assert.equal((await control.allocations.get(ADMIN, a.id)).state, 'attached');
    const audit = await control.auditIsolation(ADMIN);
    assert.deepEqual(audit.violations, []);
  });

  it('an explicit min_tx_rate on an igb VF is still refused; the settings helper zeroes only what the driver refuses', async () => {
    const pf = (await host.inventory()).pfs[0]!;
    await assert.rejects(host.applyVfSettings(pf, [{ vf: 3, settings: { minTxRateMbps: 100 } }]), (e: unknown) => e instanceof SriovError && e.code === 'UNSUPPORTED');
    assert.deepEqual(enforceableSettings('igb', { minTxRateMbps: 100, maxTxRateMbps: 300 }), { minTxRateMbps: 0, maxTxRateMbps: 300 });
    assert.deepEqual(enforceableSettings('ice', { minTxRateMbps: 100, maxTxRateMbps: 300 }), { minTxRateMbps: 100, maxTxRateMbps: 300 });
    assert.deepEqual(enforceableSettings('igb', { vlan: 5 }), { vlan: 5 });
  });
});
