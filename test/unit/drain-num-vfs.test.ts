// End to end (a controller and an agent in separate processes, the agent on a
// simulated E810): changing a PF's VF count once it is drained and nothing
// holds its VFs, with the workload on the other PF untouched; and the refusal,
// naming the holder, while one still does.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Allocation, HostRecord } from '../../src/domain/types.js';
import { SriovHost } from '../../src/host/configurator.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { api, eventually, startDaemon, type Daemon } from '../helpers/daemon.js';

const HOST = 'host-a';
const PF0 = '0000:3b:00.0';
const policy = (vfs0: number) => `policies:
  - name: port0
    selector: { pfNames: [ens1f0] }
    numVfs: ${vfs0}
    physnet: fabric
  - name: port1
    selector: { pfNames: [ens1f1] }
    numVfs: 4
    physnet: fabric
`;

describe('a VF count change on a drained PF', { timeout: 120_000 }, () => {
  let dir: string;
  let controller: Daemon;
  let agent: Daemon;
  let admin: string;
  const call = <T>(method: string, path: string, body?: unknown) => api<T>(controller.url, admin, method, path, body);
  const host = async () => (await call<HostRecord>('GET', `/v1/hosts/${HOST}`)).body;
  const waitState = (id: string, state: string) =>
    eventually(`allocation ${id} ${state}`, 20_000, async () => {
      const r = await call<Allocation>('GET', `/v1/allocations/${id}`);
      return r.body.state === state ? r.body : undefined;
    });
  const simPf = (pf: string) => new SriovHost(createSimPorts(join(dir, 'host.json'))).pf(pf);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-numvfs-'));
    await initSimHost(join(dir, 'host.json'), { profile: 'ice', pfs: 2, hostname: HOST });
    controller = await startDaemon(['--data-dir', join(dir, 'ctl'), '--listen', '127.0.0.1:0', '--no-agent', '--log-level', 'info']);
    admin = (await readFile(join(dir, 'ctl', 'admin.token'), 'utf8')).trim();
    const token = await call<{ token: string }>('POST', '/v1/tokens', { role: `agent:${HOST}` });
    agent = await startDaemon(['agent', '--server', controller.url, '--token', token.body.token, '--host', `sim:${join(dir, 'host.json')}`, '--heartbeat-interval', '1', '--log-level', 'info']);
    await eventually('the host registered', 20_000, async () => ((await call('GET', `/v1/hosts/${HOST}`)).status === 200 ? true : undefined));
    assert.equal((await call('PUT', `/v1/hosts/${HOST}/policy`, { document: policy(4) })).status, 200);
    await eventually('4 VFs on each PF', 30_000, async () => ((await host()).inventory.pfs.every((p) => p.numVfs === 4) ? true : undefined));
    assert.equal((await call('POST', '/v1/tenants', { name: 'blue' })).status, 201);
    assert.equal((await call('POST', '/v1/networks', { name: 'blue-100', tenant: 'blue', physnet: 'fabric', vlan: 100 })).status, 201);
  });

  after(async () => {
    await Promise.all([controller?.kill(), agent?.kill()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('is refused, naming the holder, while an allocation holds a VF of it; then done with nothing else down', async () => {
    const alloc = async (name: string, pciAddress: string) => {
      const r = await call<Allocation>('POST', '/v1/allocations', { network: 'blue-100', workload: { kind: 'container', name }, host: HOST, pciAddress });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return waitState(r.body.id, 'configured');
    };
    const stays = await alloc('stays', (await simPf('ens1f1')).vfs[0]!.pciAddress);
    const leaves = await alloc('leaves', (await simPf('ens1f0')).vfs[0]!.pciAddress);
    const staysVf = (await simPf('ens1f1')).vfs[0]!;
    assert.equal(staysVf.mac, stays.mac);

    assert.equal((await call('POST', `/v1/hosts/${HOST}/pfs/ens1f0/drain`)).status, 200);
    const busy = await call<{ error: { code: string; message: string } }>('PUT', `/v1/hosts/${HOST}/policy`, { document: policy(8) });
    assert.equal(busy.status, 409);
    assert.equal(
      busy.body.error.message,
      `policy port0 changes ens1f0 from 4 to 8 VFs, which recreates them, and 1 of its VFs are held: VF 0 container/leaves (allocation ${leaves.id.slice(0, 8)}, configured); ` +
        `move them off with sriovctl drain ${HOST}/ens1f0 (or release them), then apply again`,
    );

    // Off the PF (a drain's migration would do the same); then the change goes through.
    assert.equal((await call('DELETE', `/v1/allocations/${leaves.id}`)).status, 200);
    await waitState(leaves.id, 'released');
    assert.equal((await call('PUT', `/v1/hosts/${HOST}/policy`, { document: policy(8) })).status, 200);
    const after = await eventually('8 VFs on ens1f0', 30_000, async () => {
      const h = await host();
      return h.inventory.pfs.find((p) => p.name === 'ens1f0')?.numVfs === 8 ? h : undefined;
    });
    assert.deepEqual(after.drainedPfs, [PF0], 'still drained: it takes nothing until undrained');
    assert.equal((await simPf('ens1f0')).vfs.length, 8);

    // The other PF's workload: the same VF, the same MAC, still configured.
    assert.deepEqual((await simPf('ens1f1')).vfs[0], staysVf);
    assert.equal((await call<Allocation>('GET', `/v1/allocations/${stays.id}`)).body.state, 'configured');
    const next = await call<Allocation>('POST', '/v1/allocations', { network: 'blue-100', workload: { kind: 'container', name: 'new' } });
    assert.equal(next.body.pf, 'ens1f1', 'the drained PF takes nothing new');
    assert.equal((await call('POST', `/v1/hosts/${HOST}/pfs/ens1f0/undrain`)).status, 200);
  });
});
