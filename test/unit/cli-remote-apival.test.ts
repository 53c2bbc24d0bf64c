// sriovctl remote mode for issue 8's API fixes: repeatable options, tenant VLAN
// ranges, clearing failed allocations and id prefixes. A real controller
// (SQLite store, ControlPlane, HTTP server) runs in this process; no agent:
// the test reports allocation states itself, as the host's agent would.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ControlPlane } from '../../src/controller/control-plane.js';
import type { Actor } from '../../src/domain/actor.js';
import type { Allocation, Network } from '../../src/domain/types.js';
import { remoteCli } from '../helpers/cli.js';
import { startRemoteController, type RemoteController } from '../helpers/remote-controller.js';

const HOST = 'node1';
const ADMIN: Actor = { id: 'test', role: 'admin' };

let rc: RemoteController;
let control: ControlPlane;

before(async () => {
  rc = await startRemoteController('vfleet-cli-apival-', HOST);
  control = rc.control;
  await ok(['tenant', 'create', 'a']);
});

after(() => rc.close());

const { cli, ok, json, fails } = remoteCli(() => rc);

describe('sriovctl network create: repeatable options', () => {
  it('--route is repeatable and each value may carry @GW, as the README shows', async () => {
    const net = await json<Network>([
      'network', 'create', 'routed', '--tenant', 'a', '--physnet', 'fabric', '--vlan', '100',
      '--ip-pool', '198.18.0.0/24', '--gateway', '198.18.0.1', '--route', 'default@198.18.0.1', '--route', '198.19.0.0/16@198.18.0.254',
    ]);
    assert.deepEqual(net.ipam?.routes, [{ dst: 'default', gw: '198.18.0.1' }, { dst: '198.19.0.0/16', gw: '198.18.0.254' }]);
  });

  it('a single --route is a list of one', async () => {
    const net = await json<Network>(['network', 'create', 'routed1', '--tenant', 'a', '--physnet', 'fabric', '--vlan', '101', '--ip-pool', '198.18.1.0/24', '--route', '198.19.0.0/16']);
    assert.deepEqual(net.ipam?.routes, [{ dst: '198.19.0.0/16' }]);
  });

  it('attach container --ip is repeatable and leaves the next word alone', async () => {
    const r = await cli([
      'attach', 'container', '--network', 'routed', '--netns', '/var/run/netns/pod-ip', '--ifname', 'net1',
      '--ip', '198.18.0.20/24', '--ip', '198.18.0.21/24', '--no-wait', '-o', 'json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(r.stdout) as Allocation & { ips: string[] };
    assert.deepEqual(a.ips, ['198.18.0.20/24', '198.18.0.21/24']);
    await control.allocations.delete(ADMIN, a.id);
  });
});

describe('sriovctl physnet set --tenant-vlans and network create without --vlan', () => {
  it('sets, shows and clears tenant VLAN ranges (admin)', async () => {
    const set = await json<{ tenantVlans: unknown }>(['physnet', 'set', 'fabric', '--tenant-vlans', '2000-2001,2100-2199']);
    assert.deepEqual(set.tenantVlans, [{ from: 2000, to: 2001 }, { from: 2100, to: 2199 }]);
    assert.match(await ok(['physnet', 'list']), /^NAME\s+ACCOUNTING-ONLY\s+GROUPS-ACCOUNTING-ONLY\s+TENANT VLANS\nfabric\s+off\s+off\s+2000-2001,2100-2199$/m);
    await ok(['physnet', 'set', 'fabric', '--accounting-only', 'on']);
    assert.match(await ok(['physnet', 'list']), /^fabric\s+on\s+off\s+2000-2001,2100-2199$/m, '--accounting-only alone keeps the ranges');
    await ok(['physnet', 'set', 'fabric', '--accounting-only', 'off']);
  });

  it('refuses bad ranges before making any request (exit 2)', async () => {
    for (const bad of ['0-10', '20-10', '100-200,150-160', '1000-', '4095']) {
      await fails(['physnet', 'set', 'fabric', '--tenant-vlans', bad, '--server', 'http://127.0.0.1:1'], 2, /tenant VLAN/);
    }
    await fails(['physnet', 'set', 'fabric', '--server', 'http://127.0.0.1:1'], 2, /needs --accounting-only, --groups-accounting-only or --tenant-vlans/);
  });

  it('a tenant creates a network without --vlan and gets the next free one; --vlan from a tenant is refused', async () => {
    const tenant = JSON.parse(await ok(['token', 'create', '--role', 'tenant:a', '-o', 'json'])) as { token: string };
    const asA = { SRIOV_TOKEN: tenant.token };
    assert.equal((await json<Network>(['network', 'create', 'auto1', '--tenant', 'a', '--physnet', 'fabric'], asA)).vlan, 2000);
    assert.equal((await json<Network>(['network', 'create', 'auto2', '--tenant', 'a', '--physnet', 'fabric'], asA)).vlan, 2001);
    await fails(['network', 'create', 'mine', '--tenant', 'a', '--physnet', 'fabric', '--vlan', '2150'], 2, /FORBIDDEN: only an admin or operator may pick a VLAN/, asA);
  });

  it('physnet set --tenant-vlans none clears them; a network without --vlan is then refused, saying why', async () => {
    assert.deepEqual((await json<{ tenantVlans: unknown }>(['physnet', 'set', 'fabric', '--tenant-vlans', 'none'])).tenantVlans, []);
    await fails(['network', 'create', 'auto3', '--tenant', 'a', '--physnet', 'fabric'], 2, /INVALID_ARGUMENT: physnet fabric has no tenant VLAN ranges/);
  });
});

describe('sriovctl detach and alloc delete of a failed allocation', () => {
  async function failedAllocation(workload: string): Promise<Allocation> {
    const a = await json<Allocation>(['alloc', 'create', '--network', 'routed', '--workload', workload, '--no-wait']);
    await control.allocations.applyStatus(HOST, [{ id: a.id, state: 'failed', reason: 'nsenter: cannot open /var/run/netns/gone' }]);
    return a;
  }

  it('detach clears it (exit 0), and again (exit 0), keeping the reason', async () => {
    const a = await failedAllocation('failed-1');
    for (let i = 0; i < 2; i++) {
      const cleared = await json<Allocation>(['detach', a.id]);
      assert.deepEqual([cleared.state, cleared.reason], ['released', 'nsenter: cannot open /var/run/netns/gone']);
    }
  });

  it('alloc delete clears it (exit 0)', async () => {
    const a = await failedAllocation('failed-2');
    assert.equal((await json<Allocation>(['alloc', 'delete', a.id])).state, 'released');
  });

  it('alloc list leaves released allocations out unless --all', async () => {
    const failed = await failedAllocation('failed-3');
    const listed = (await json<Allocation[]>(['alloc', 'list'])).map((a) => a.workload.name);
    assert.ok(listed.includes('failed-3'), 'a failed one is shown until cleared');
    assert.ok(!listed.includes('failed-1'));
    await ok(['alloc', 'delete', failed.id]);
    assert.ok(!(await json<Allocation[]>(['alloc', 'list'])).some((a) => a.state === 'released'));
    const all = (await json<Allocation[]>(['alloc', 'list', '--all'])).map((a) => a.workload.name);
    for (const w of ['failed-1', 'failed-2', 'failed-3']) assert.ok(all.includes(w), w);
  });
});

describe('sriovctl takes the 8-character ids the console shows', () => {
  it('alloc show, detach and alloc delete resolve a unique prefix', async () => {
    const a = await json<Allocation>(['alloc', 'create', '--network', 'routed', '--workload', 'short-id', '--no-wait']);
    const short = a.id.slice(0, 8);
    assert.equal((await json<Allocation>(['alloc', 'show', short])).id, a.id);
    assert.equal((await json<Allocation>(['alloc', 'delete', short, '--no-wait'])).state, 'releasing');
    await control.allocations.applyStatus(HOST, [{ id: a.id, state: 'released' }]);
    assert.equal((await json<Allocation>(['detach', short])).state, 'released');
    await fails(['alloc', 'show', 'ffffffff'], 2, /NOT_FOUND: allocation ffffffff not found/);
  });
});
