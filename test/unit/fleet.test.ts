/**
 * The fleet simulator against a real controller over HTTP: its hosts
 * register with their VFs, and attach what is allocated on them, as real
 * agents do.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Fleet } from '../../src/agent/fleet.js';
import type { Allocation, HostRecord } from '../../src/domain/types.js';
import { fleetLayout } from '../../src/sim/fleet-layout.js';
import { simProfile } from '../../src/sim/profiles.js';
import { startApi, type ApiHarness } from '../helpers/api-harness.js';
import { runProcess } from '../helpers/cli.js';
import { eventually, SRIOVD } from '../helpers/daemon.js';

const ADMIN = { id: 'test', role: 'admin' } as const;
const HOSTS = fleetLayout({ hosts: 4, profile: 'mix', pfs: 2, vfsPerPf: 4, prefix: 'sim' });

describe('fleet simulator', () => {
  let api: ApiHarness;
  let fleet: Fleet;
  const warnings: string[] = [];

  before(async () => {
    api = await startApi();
    fleet = new Fleet({ hosts: HOSTS, servers: [api.base], adminToken: api.admin, physnet: 'fleet', heartbeatMs: 200, resyncMs: 1_000, staggerMs: 5, log: (level, m) => level !== 'info' && warnings.push(m) });
    await fleet.start();
  });
  after(async () => {
    await fleet.stop();
    await api.close();
  });

  it('registers every host with the VFs of its node policy, each with its own agent token', async () => {
    const hosts = await eventually('every host with its VFs', 20_000, async () => {
      const hosts = await api.control.hosts.list(ADMIN);
      const full = hosts.filter((h) => h.inventory.pfs.every((p) => p.vfs.length === 4));
      return full.length === HOSTS.length ? hosts : undefined;
    });
    assert.deepEqual(hosts.map((h) => h.name).sort(), HOSTS.map((h) => h.name));
    for (const spec of HOSTS) {
      const host = hosts.find((h) => h.name === spec.name) as HostRecord;
      assert.equal(host.inventory.pfs.length, 2);
      assert.ok(host.inventory.pfs.every((p) => p.driver === simProfile(spec.profile).pfDriver));
      assert.deepEqual([...new Set(host.inventory.pfs.map((p) => p.numaNode))].sort(), spec.numaNodes === 2 ? [0, 1] : [0]);
    }
    const tokens = await api.control.tokens.list(ADMIN);
    assert.deepEqual(tokens.filter((t) => t.role.startsWith('agent:')).map((t) => t.role).sort(), HOSTS.map((h) => `agent:${h.name}`));
    // The fleet counts a report once the controller has answered it, just after the controller recorded it.
    await eventually('the fleet counts every VF', 5_000, async () => (fleet.progress().vfs === 4 * 2 * 4 ? true : undefined));
    assert.deepEqual(fleet.progress(), { hosts: 4, started: 4, reporting: 4, vfs: 4 * 2 * 4 });
  });

  it('attaches a container allocated on one of its hosts, as a real agent', async () => {
    await api.control.networks.createTenant(ADMIN, 'blue');
    await api.control.networks.createNetwork(ADMIN, { name: 'blue', tenant: 'blue', physnet: 'fleet', vlan: 100 });
    const ns = join(api.dir, 'ns');
    await mkdir(ns, { recursive: true });
    await writeFile(join(ns, 'pod-a'), '');
    const made = await api.control.allocations.create(ADMIN, {
      network: 'blue',
      host: HOSTS[1]!.name,
      workload: { kind: 'container', name: 'pod-a' },
      attach: { kind: 'container', netns: join(ns, 'pod-a'), ifname: 'net1' },
    });
    const attached = await eventually('the allocation attached', 20_000, async () => {
      const a: Allocation = await api.control.allocations.get(ADMIN, made.id);
      return a.state === 'attached' ? a : undefined;
    });
    assert.equal(attached.host, HOSTS[1]!.name);
    assert.deepEqual(warnings, []);
  });
});

describe('sriovd fleet-sim', () => {
  const run = (args: string[]) => runProcess(process.execPath, [SRIOVD, 'fleet-sim', ...args], { env: { ...process.env, SRIOV_TOKEN: '' } });

  it('refuses a bad option before it starts anything, naming it', async () => {
    const zero = await run(['--hosts', '0', '--server', 'http://198.18.0.1:7474', '--token', 't']);
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /INVALID_ARGUMENT: --hosts must be between 1 and 10000, got 0/);
    const noToken = await run(['--hosts', '3', '--server', 'http://198.18.0.1:7474']);
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /needs an admin token/);
    const badServer = await run(['--hosts', '3', '--server', 'ftp://198.18.0.1', '--token', 't']);
    assert.match(badServer.stderr, /controller URL 1 of --server \(ftp:\/\/198\.18\.0\.1\) has scheme ftp; use http or https/);
  });

  it('says in one line when the controller cannot be reached', async () => {
    const r = await run(['--hosts', '1', '--server', 'http://127.0.0.1:1', '--token', 't']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /TRY_AGAIN: fleet-sim: the controller at http:\/\/127\.0\.0\.1:1 cannot be reached/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });
});
