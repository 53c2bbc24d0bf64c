/**
 * sriovctl follows the controller's pages (Link: rel="next") and prints them
 * as they come: `host list` summaries, `alloc list` with server-side filters,
 * as a table or as one JSON array.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { HostSummary } from '../../src/controller/host-summaries.js';
import type { Actor } from '../../src/domain/actor.js';
import type { Allocation } from '../../src/domain/types.js';
import { startApi, type ApiHarness } from '../helpers/api-harness.js';
import { remoteCli } from '../helpers/cli.js';
import { makeHost } from '../helpers/inventory.js';

const ADMIN: Actor = { id: 'test', role: 'admin' };
let h: ApiHarness;
let env: NodeJS.ProcessEnv;
let adminTokenFile: string;
const HOSTS = ['node-1', 'node-2', 'node-3', 'node-4', 'node-5'];

before(async () => {
  h = await startApi();
  adminTokenFile = `${h.dir}/admin.token`;
  await writeFile(adminTokenFile, h.admin, { mode: 0o600 });
  env = { HOME: h.dir, SRIOV_SERVER: h.base, SRIOV_TOKEN: '', SRIOV_CONFIG: '' };
  for (const name of HOSTS) {
    const record = makeHost({ name, pfs: 1, vfs: 4, driver: 'ice', linkSpeedMbps: 10_000, physnet: name === 'node-5' ? 'edge' : 'fabric' });
    await h.store.tx.putHost(record);
    h.control.ctx.scheduler.loadHost(record);
    h.control.hosts.seed([record]);
  }
  await h.control.networks.createTenant(ADMIN, 'blue');
  await h.control.networks.putPhysnet(ADMIN, 'fabric', {});
  await h.control.networks.createNetwork(ADMIN, { name: 'blue-fab', tenant: 'blue', physnet: 'fabric', vlan: 10 });
  for (let i = 0; i < 7; i++) await h.control.allocations.create(ADMIN, { network: 'blue-fab', workload: { kind: 'vm', name: `vm-${i}` } });
});

after(async () => {
  await h.close();
});

const { ok, json, fails } = remoteCli(() => ({ env, adminTokenFile }));

describe('sriovctl lists follow the pages', () => {
  it('host list prints every host summary across pages, in one table', async () => {
    const out = await ok(['host', 'list', '--page-size', '2']);
    const lines = out.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+STATE\s+PFS\s+VFS\s+ALLOCATED\s+FREE\s+GUARANTEED MBPS\s+HEARTBEAT\s+DRAINED$/);
    assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/)[0]), HOSTS);
    assert.match(lines[1]!, /^node-1\s+ready\s+1\s+4\s+\d\s+\d\s+0\/10000\s+\d+s ago\s+-$/);
  });

  it('host list -o json is one JSON array of summaries over all pages; --physnet filters on the server', async () => {
    const all = await json<HostSummary[]>(['host', 'list', '--page-size', '2']);
    assert.deepEqual(all.map((s) => s.name), HOSTS);
    assert.equal(all.reduce((n, s) => n + s.vfs.allocated, 0), 7);
    assert.deepEqual((await json<HostSummary[]>(['host', 'list', '--physnet', 'edge'])).map((s) => s.name), ['node-5']);
    assert.deepEqual(await json<HostSummary[]>(['host', 'list', '--state', 'unreachable']), []);
  });

  it('alloc list follows pages with its filters, as JSON and as a table', async () => {
    const all = await json<Allocation[]>(['alloc', 'list', '--page-size', '3']);
    assert.equal(all.length, 7);
    assert.deepEqual(all.map((a) => a.id), all.map((a) => a.id).sort());
    const [first] = all;
    await h.store.tx.updateAllocationState(first!.id, 'attached', null, new Date().toISOString());
    assert.deepEqual((await json<Allocation[]>(['alloc', 'list', '--state', 'attached', '--page-size', '1'])).map((a) => a.id), [first!.id]);
    assert.equal((await json<Allocation[]>(['alloc', 'list', '--physnet', 'fabric', '--tenant', 'blue', '--page-size', '2'])).length, 7);
    assert.deepEqual(await json<Allocation[]>(['alloc', 'list', '--physnet', 'edge']), []);
    const onHost = await json<Allocation[]>(['alloc', 'list', '--host', first!.host, '--page-size', '1']);
    assert.ok(onHost.length >= 1 && onHost.every((a) => a.host === first!.host));
    const table = (await ok(['alloc', 'list', '--page-size', '2'])).trimEnd().split('\n');
    assert.equal(table.length, 8);
    assert.match(table[0]!, /^ID\s+NETWORK/);
  });

  it('refuses a page size outside 1-1000 before asking', async () => {
    await fails(['alloc', 'list', '--page-size', '0'], 2, /--page-size/);
    await fails(['host', 'list', '--page-size', '1001'], 2, /--page-size/);
  });
});
