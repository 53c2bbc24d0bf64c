// The first-run demo: seeded through the control plane onto a simulated host
// whose agent runs in process, idempotent across restarts, and never written
// into a store that holds someone else's objects.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import { InProcessLink } from '../../src/agent/link.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import { DEMO_ACTOR, DEMO_ATTACHMENTS, DEMO_NETWORK, DEMO_POLICY, seedDemo } from '../../src/demo/seed.js';
import { SriovHost } from '../../src/host/configurator.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import type { Allocation } from '../../src/domain/types.js';
import { api, eventually, startDaemon } from '../helpers/daemon.js';

const HOST = 'demo-host';

describe('first-run demo', { timeout: 60_000 }, () => {
  let dir: string;
  let store: Store;
  let control: ControlPlane;
  let host: SriovHost;
  let agent: Agent;

  const open = async () => {
    store = await openSqliteStore(join(dir, 'data'));
    control = await ControlPlane.open(store);
    agent = new Agent(host, new InProcessLink(control, { id: 'local', role: `agent:${HOST}` }), { heartbeatMs: 100, resyncMs: 200 });
    agent.start();
  };
  const close = async () => {
    await agent.stop();
    control.shutdown();
    await store.close();
  };
  const seed = () => seedDemo(control, { host: HOST, dataDir: join(dir, 'data'), timeoutMs: 20_000 });
  const allocations = () => control.allocations.list(DEMO_ACTOR);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-demo-'));
    await initSimHost(join(dir, 'host.json'), { profile: 'ice', pfs: 2, hostname: HOST });
    host = new SriovHost(createSimPorts(join(dir, 'host.json')));
    await open();
  });

  afterEach(async () => {
    await close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates VFs by node policy, a physnet, a tenant, a guaranteed network and attached containers', async () => {
    assert.equal(await seed(), 'seeded');
    assert.equal(await control.hosts.getPolicy(DEMO_ACTOR, HOST), DEMO_POLICY);
    const inventory = await host.inventory();
    assert.deepEqual(inventory.pfs.map((pf) => pf.numVfs), [8, 8]);
    assert.deepEqual(
      (await control.networks.listPhysnets(DEMO_ACTOR)).map((p) => [p.name, p.tenantVlans]),
      [['demo-fabric', [{ from: 1000, to: 1099 }]]],
    );
    const [network] = await control.networks.listNetworks(DEMO_ACTOR);
    assert.equal(network?.minTxRateMbps, 2000);
    assert.equal(network?.ipam?.cidr, '198.18.10.0/24');
    const attached = await eventually('demo containers attached', 20_000, async () => {
      const all = await allocations();
      return all.length === DEMO_ATTACHMENTS.length && all.every((a) => a.state === 'attached') ? all : undefined;
    });
    // The UPF's two VFs are a redundancy group: one per port.
    const upf = attached.filter((a) => a.workload.name === 'upf-1');
    assert.equal(new Set(upf.map((a) => a.pf)).size, 2);
    // Each VF is in its simulated container's namespace.
    for (const a of attached) {
      assert.equal(a.attachment?.kind, 'container');
      if (a.attachment?.kind !== 'container') continue;
      const links = await host.ports.netns.links(a.attachment.netns);
      assert.ok(links.some((l) => l.pciAddress === a.pciAddress && l.ifname === (a.attachment as { ifname: string }).ifname));
    }
  });

  it('seeds nothing twice across a restart', async () => {
    await seed();
    const before = (await allocations()).map((a) => a.id).sort();
    await close();
    await open();
    assert.equal(await seed(), 'seeded');
    assert.deepEqual((await allocations()).map((a) => a.id).sort(), before);
    assert.equal((await control.networks.listTenants(DEMO_ACTOR)).length, 1);
    assert.equal((await control.networks.listNetworks(DEMO_ACTOR)).length, 1);
  });

  it('completes a demo interrupted after its network', async () => {
    await control.hosts.putPolicy(DEMO_ACTOR, HOST, DEMO_POLICY);
    await control.networks.createTenant(DEMO_ACTOR, 'demo');
    assert.equal(await seed(), 'seeded');
    assert.equal((await allocations()).length, DEMO_ATTACHMENTS.length);
    assert.deepEqual((await control.networks.listNetworks(DEMO_ACTOR)).map((n) => n.name), [DEMO_NETWORK.name]);
  });

  it('leaves a store with other objects alone', async () => {
    await control.networks.createTenant(DEMO_ACTOR, 'blue');
    assert.equal(await seed(), 'left-alone');
    assert.equal(await control.hosts.getPolicy(DEMO_ACTOR, HOST), null);
    assert.deepEqual((await control.networks.listTenants(DEMO_ACTOR)).map((t) => t.name), ['blue']);
    assert.deepEqual(await control.networks.listNetworks(DEMO_ACTOR), []);
    assert.deepEqual(await allocations(), []);
  });
});

describe('sriovd on a machine without SR-IOV', { timeout: 60_000 }, () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-first-run-'));
    // An empty sysfs: `--host auto` finds no PF and falls back to the simulated NIC, even on a lab machine.
    await mkdir(join(dir, 'sys'));
  });

  afterEach(() => rm(dir, { recursive: true, force: true }));

  const start = (...extra: string[]) => startDaemon(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--sysfs-root', join(dir, 'sys'), '--heartbeat-interval', '1', ...extra]);
  const token = async () => (await readFile(join(dir, 'data', 'admin.token'), 'utf8')).trim();

  it('comes up with the demo, labelled as simulated in the log and in /v1/info', async () => {
    const daemon = await start();
    try {
      const admin = await token();
      const info = await api<{ demo: boolean; hostBackend: string }>(daemon.url, admin, 'GET', '/v1/info');
      assert.equal(info.body.demo, true);
      assert.equal(info.body.hostBackend, 'simulated (no SR-IOV hardware found)');
      await eventually('the demo containers attached', 30_000, async () => {
        const all = (await api<Allocation[]>(daemon.url, admin, 'GET', '/v1/allocations')).body;
        return all.length === DEMO_ATTACHMENTS.length && all.every((a) => a.state === 'attached') ? true : undefined;
      });
      assert.match(daemon.log(), /DEMO: \S+ is a SIMULATED dual-port E810/);
      assert.match(daemon.log(), /DEMO: ready/);
    } finally {
      await daemon.kill();
    }
  });

  it('starts empty with --no-demo, and says to apply a node policy first', async () => {
    const daemon = await start('--no-demo');
    try {
      const admin = await token();
      assert.equal((await api<{ demo: boolean }>(daemon.url, admin, 'GET', '/v1/info')).body.demo, false);
      await eventually('the first-step hint', 10_000, async () => (/has no node policy yet/.test(daemon.log()) ? true : undefined));
      assert.match(daemon.log(), /npx sriovctl --server http:\/\/127\.0\.0\.1:\d+ host apply -f node-policy\.yaml/);
      assert.deepEqual((await api(daemon.url, admin, 'GET', '/v1/tenants')).body, []);
      assert.deepEqual((await api(daemon.url, admin, 'GET', '/v1/allocations')).body, []);
    } finally {
      await daemon.kill();
    }
  });
});
