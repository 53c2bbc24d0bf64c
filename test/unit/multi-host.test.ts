// End to end: a controller and two agents in separate processes, each agent
// on its own simulated host, talking over HTTP on loopback.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Allocation, HostRecord } from '../../src/domain/types.js';
import type { HostSummary } from '../../src/controller/host-summaries.js';
import { SriovHost } from '../../src/host/configurator.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { api, eventually, startDaemon, type Daemon } from '../helpers/daemon.js';

const POLICY = `policies:
  - name: fabric
    selector: { drivers: [ice] }
    numVfs: 8
    physnet: fabric
`;

describe('controller with two remote agents', { timeout: 120_000 }, () => {
  let dir: string;
  let controller: Daemon;
  const agents: Record<string, Daemon> = {};
  let admin: string;
  const hostFile = (h: string) => join(dir, `${h}.json`);
  const call = <T>(method: string, path: string, body?: unknown) => api<T>(controller.url, admin, method, path, body);

  const startController = async () => {
    controller = await startDaemon(['--data-dir', join(dir, 'ctl'), '--listen', '127.0.0.1:0', '--no-agent', '--heartbeat-timeout', '3', '--log-level', 'info']);
    admin = (await readFile(join(dir, 'ctl', 'admin.token'), 'utf8')).trim();
  };
  const startAgent = async (host: string, token: string) => {
    agents[host] = await startDaemon(['agent', '--server', controller.url, '--token', token, '--host', `sim:${hostFile(host)}`, '--heartbeat-interval', '1', '--log-level', 'info']);
  };
  const vfOf = async (a: Allocation) => {
    const pf = await new SriovHost(createSimPorts(hostFile(a.host))).pf(a.pfPciAddress);
    return pf.vfs[a.vfIndex]!;
  };
  const waitState = (id: string, state: string) =>
    eventually(`allocation ${id} ${state}`, 20_000, async () => {
      const r = await call<Allocation>('GET', `/v1/allocations/${id}`);
      return r.body.state === state ? r.body : undefined;
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-multi-'));
    for (const h of ['host-a', 'host-b']) await initSimHost(hostFile(h), { profile: 'ice', pfs: 2, hostname: h });
    await startController();
    for (const h of ['host-a', 'host-b']) {
      const t = await call<{ token: string }>('POST', '/v1/tokens', { role: `agent:${h}` });
      assert.equal(t.status, 201);
      await startAgent(h, t.body.token);
    }
  });

  after(async () => {
    await Promise.all([controller?.kill(), ...Object.values(agents).map((a) => a.kill())]);
    await rm(dir, { recursive: true, force: true });
  });

  it('registers both hosts, and their agents apply the stored node policies', async () => {
    for (const h of ['host-a', 'host-b']) assert.equal((await call('PUT', `/v1/hosts/${h}/policy`, { document: POLICY })).status, 200);
    await eventually('8 VFs per PF on both hosts', 30_000, async () => {
      const hosts = (await call<HostSummary[]>('GET', '/v1/hosts')).body;
      const ok = hosts.length === 2 && hosts.every((h) => h.state === 'ready' && h.pfs.every((p) => p.vfs.total === 8));
      return ok ? true : undefined;
    });
    assert.equal((await call('POST', '/v1/tenants', { name: 'blue' })).status, 201);
    assert.equal((await call('POST', '/v1/networks', { name: 'blue-100', tenant: 'blue', physnet: 'fabric', vlan: 100, maxTxRateMbps: 1000 })).status, 201);
  });

  it('allocates a redundant pair across hosts, and each agent configures its VF', async () => {
    const body = { network: 'blue-100', workload: { kind: 'vm', name: 'upf-1' }, group: 'uplink', groupAcrossHosts: true };
    const first = await call<Allocation>('POST', '/v1/allocations', body);
    const second = await call<Allocation>('POST', '/v1/allocations', body);
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    assert.notEqual(first.body.host, second.body.host);
    for (const a of [first.body, second.body]) {
      await waitState(a.id, 'configured');
      const vf = await vfOf(a);
      assert.equal(vf.mac, a.mac);
      assert.equal(vf.vlan, 100);
      assert.equal(vf.maxTxRateMbps, 1000);
    }
  });

  it('releases an allocation: the agent scrubs the VF before it is free', async () => {
    const a = (await call<Allocation>('POST', '/v1/allocations', { network: 'blue-100', workload: { kind: 'container', name: 'pod-x' } })).body;
    await waitState(a.id, 'configured');
    assert.equal((await call('DELETE', `/v1/allocations/${a.id}`)).status, 200);
    await waitState(a.id, 'released');
    const vf = await vfOf(a);
    assert.deepEqual([vf.mac, vf.vlan, vf.maxTxRateMbps, vf.spoofChk, vf.trust], ['00:00:00:00:00:00', 0, 0, true, false]);
  });

  it('marks a host unreachable when its agent dies, and schedules nothing there', async () => {
    await agents['host-b']!.kill('SIGKILL');
    await eventually('host-b unreachable', 15_000, async () => {
      const h = await call<HostRecord>('GET', '/v1/hosts/host-b');
      return h.body.state === 'unreachable' ? true : undefined;
    });
    const pinned = await call<{ error: { code: string } }>('POST', '/v1/allocations', { network: 'blue-100', workload: { kind: 'container', name: 'pod-b' }, host: 'host-b' });
    assert.equal(pinned.status, 409);
    assert.equal(pinned.body.error.code, 'NO_CAPACITY');
  });

  it('after kill -9 of the controller mid-burst, no allocation is lost or duplicated, and hosts converge', async () => {
    const burst = Array.from({ length: 12 }, (_, i) =>
      call<Allocation>('POST', '/v1/allocations', { network: 'blue-100', workload: { kind: 'container', name: `burst-${i}` } }).catch(() => null),
    );
    await new Promise((r) => setTimeout(r, 15));
    await controller.kill('SIGKILL');
    const answered = (await Promise.all(burst)).filter((r) => r?.status === 201).map((r) => r!.body);
    const url = controller.url;
    controller = await startDaemon(['--data-dir', join(dir, 'ctl'), '--listen', url.replace(/^http:\/\//, ''), '--no-agent', '--heartbeat-timeout', '3', '--log-level', 'info']);
    const all = (await call<Allocation[]>('GET', '/v1/allocations')).body;
    for (const a of answered) assert.ok(all.some((b) => b.id === a.id), `allocation ${a.id} acknowledged before the crash survives`);
    const holding = all.filter((a) => ['pending', 'configured', 'attached', 'releasing'].includes(a.state));
    const vfKeys = holding.map((a) => `${a.host}/${a.pfPciAddress}/${a.vfIndex}`);
    assert.equal(new Set(vfKeys).size, vfKeys.length, 'no VF is held twice');
    assert.equal(new Set(holding.map((a) => a.mac)).size, holding.length, 'no MAC is used twice');
    for (const a of holding.filter((x) => x.host === 'host-a')) {
      const done = await waitState(a.id, 'configured');
      assert.equal((await vfOf(done)).mac, a.mac);
    }
  });
});
