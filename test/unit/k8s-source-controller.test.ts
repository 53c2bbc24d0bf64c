// The device source end to end with the real controller (SQLite store), the real agent and InProcessLink on a simulated host.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import { InProcessLink } from '../../src/agent/link.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { Actor } from '../../src/domain/actor.js';
import { SriovHost } from '../../src/host/configurator.js';
import { ControllerDeviceSource } from '../../src/k8s/controller-source.js';
import { parsePoolDocument } from '../../src/k8s/pools.js';
import type { DeviceSnapshot } from '../../src/k8s/source.js';
import { setSimCable } from '../../src/sim/cable.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { eventually } from '../helpers/daemon.js';
import { nextSnapshot } from '../helpers/pool-fixtures.js';

const HOST = 'sim-a';
const ADMIN: Actor = { id: 'test', role: 'admin' };
const AGENT: Actor = { id: 'local', role: `agent:${HOST}` };
const POLICY = `policies:\n  - name: fabric\n    selector: { drivers: [ice] }\n    numVfs: 4\n    physnet: fabric\n`;
const POOLS = 'pools:\n  - name: red\n    network: red\n  - name: gold\n    network: gold\n    pfNames: ["ens1f0"]\n';

const next = nextSnapshot;

const devices = (s: DeviceSnapshot, name: string) => s.resources.find((r) => r.resourceName === name)?.devices ?? [];

describe('device source with the real controller', { timeout: 60_000 }, () => {
  let dir: string;
  let file: string;
  let store: Store;
  let control: ControlPlane;
  let agent: Agent;
  let source: ControllerDeviceSource;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-k8s-e2e-'));
    file = join(dir, 'host.json');
    await initSimHost(file, { profile: 'ice', pfs: 2, hostname: HOST });
    const host = new SriovHost(createSimPorts(file));
    store = await openSqliteStore(join(dir, 'data'));
    control = await ControlPlane.open(store);
    agent = new Agent(host, new InProcessLink(control, AGENT), { heartbeatMs: 100, resyncMs: 200 });
    agent.start();
    await control.hosts.putPolicy(ADMIN, HOST, POLICY);
    // The plugin lists VFs from this host's own reading; the controller claims only those the agent has reported.
    await eventually('8 VFs reported', 10_000, async () => ((await control.hosts.get(ADMIN, HOST)).inventory.pfs.every((pf) => pf.numVfs === 4) ? true : undefined));
    await control.networks.createTenant(ADMIN, 'acme');
    await control.networks.createNetwork(ADMIN, { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100 });
    source = new ControllerDeviceSource({ pools: parsePoolDocument(POOLS, 'pools.yaml'), host, link: new InProcessLink(control, AGENT), hostName: HOST, log: () => {}, pollMs: 200, waitMs: 1_000 });
    await source.start();
  });

  afterEach(async () => {
    await source.stop();
    await agent.stop();
    control.shutdown();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists the policy\'s VFs, claims on Allocate, passes PreStart once configured, follows a pulled cable and a network created later', async () => {
    const listed = await next(source, (s) => devices(s, 'vfleet.io/red').length === 8);
    assert.ok(devices(listed, 'vfleet.io/red').every((d) => d.health === 'Healthy'));
    const [id] = source.preferred('vfleet.io/red', { available: devices(listed, 'vfleet.io/red').map((d) => d.id), mustInclude: [], size: 1 });
    const got = await source.allocate('vfleet.io/red', [id!]);
    assert.equal(got.envs.PCIDEVICE_VFLEET_IO_RED, id);
    const claims = (await control.allocations.list(ADMIN)).filter((a) => a.deviceClaim?.resource === 'vfleet.io/red');
    assert.deepEqual(claims.map((a) => a.pciAddress), [id]);
    await eventually('claim configured', 10_000, async () => ((await control.allocations.get(ADMIN, claims[0]!.id)).state === 'configured' ? true : undefined));
    await eventually('preStart passes', 10_000, () => source.preStart('vfleet.io/red', [id!]).then(() => true));
    // Still healthy in its own resource.
    assert.equal(devices(source.snapshot(), 'vfleet.io/red').find((d) => d.id === id)!.health, 'Healthy');

    await setSimCable(file, 'ens1f1', 'down');
    await next(source, (s) => devices(s, 'vfleet.io/red').filter((d) => d.health === 'Unhealthy').length === 4);

    // gold is created after the plugin started, with a guarantee: its VFs and its bandwidth appear.
    await control.networks.createNetwork(ADMIN, { name: 'gold', tenant: 'acme', physnet: 'fabric', vlan: 102, minTxRateMbps: 4000 });
    const gold = await next(source, (s) => devices(s, 'vfleet.io/gold').length === 4 && devices(s, 'vfleet.io/gold-bw').length > 0);
    assert.equal(devices(gold, 'vfleet.io/gold-bw').length, 1000);
    await control.allocations.create(ADMIN, { network: 'gold', workload: { kind: 'container', name: 'pod-g' } });
    await next(source, (s) => devices(s, 'vfleet.io/gold-bw').length === 960);
  });
});
