// Tenant bandwidth groups through the API, on a simulated mlx5 host whose
// first PF is in switchdev mode (devlink rate nodes: the group is enforced by
// the NIC) and whose second stays in legacy mode (no rate nodes: refused, or
// only accounted when the physnet says so). Both PFs: 100 Gbit/s, 8 VFs.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DesiredState } from '../../src/controller/desired-state.js';
import type { TenantView } from '../../src/controller/tenant-groups.js';
import type { Allocation, Physnet, Tenant } from '../../src/domain/types.js';
import { SriovHost } from '../../src/host/configurator.js';
import type { HostInventory } from '../../src/host/model.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { expectStatus, newToken, policyOf, startApi, type ApiHarness } from '../helpers/api-harness.js';

interface Refusal {
  error: { code: string; message: string; field?: string; data?: Record<string, unknown> };
}

/** Two mlx5 PFs of 8 VFs: the first switched to switchdev before its VFs were made (the sim's devlink). */
async function simInventory(dir: string, hostname: string): Promise<HostInventory> {
  const file = join(dir, `${hostname}.json`);
  await initSimHost(file, { profile: 'mlx5', pfs: 2, hostname });
  const ports = createSimPorts(file);
  const host = new SriovHost(ports);
  const [pf0, pf1] = (await host.inventory()).pfs;
  await ports.devlink.setEswitchMode(pf0!.pciAddress, 'switchdev');
  await host.setNumVfs(pf0!.pciAddress, 8);
  await host.setNumVfs(pf1!.pciAddress, 8);
  return host.inventory();
}

describe('tenant bandwidth groups', { timeout: 60_000 }, () => {
  let h: ApiHarness;
  let dir: string;
  let inventory: HostInventory;
  let agent: string;
  let blue: string;
  let pf0: string;
  let pf1: string;
  const put = (body: unknown, token = h.admin) => h.call<Tenant & Refusal>(token, 'PUT', '/v1/tenants/blue', body);
  const show = async () => (await expectStatus(h.call<TenantView>(h.admin, 'GET', '/v1/tenants/blue'), 200)).body;
  const allocate = (network: string, name: string, extra: Record<string, unknown> = {}) =>
    h.call<Allocation & Refusal>(h.admin, 'POST', '/v1/allocations', { network, workload: { kind: 'container', name }, ...extra });
  const vfOn = (pf: string, index: number) => inventory.pfs.find((p) => p.pciAddress === pf)!.vfs[index]!.pciAddress;
  const desired = async () => (await expectStatus(h.call<DesiredState>(agent, 'GET', '/v1/agent/desired?host=host-a'), 200)).body;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-groups-'));
    inventory = await simInventory(dir, 'host-a');
    [pf0, pf1] = inventory.pfs.map((p) => p.pciAddress) as [string, string];
    assert.deepEqual(
      inventory.pfs.map((p) => [p.driver, p.eswitchMode, p.numVfs]),
      [
        ['mlx5_core', 'switchdev', 8],
        ['mlx5_core', 'legacy', 8],
      ],
    );
    h = await startApi();
    agent = await h.token('agent:host-a');
    await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventory }), 200);
    const names = inventory.pfs.map((p) => p.name).join(', ');
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-a/policy', { document: policyOf([['fabric', names, 'fabric']], 8) }), 200);
    for (const t of ['blue', 'red']) await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: t }), 201);
    const net = (name: string, tenant: string, vlan: number, minTxRateMbps: number) =>
      expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name, tenant, physnet: 'fabric', vlan, minTxRateMbps }), 201);
    await net('blue-net', 'blue', 100, 10_000);
    await net('blue-be', 'blue', 101, 0);
    await net('red-net', 'red', 200, 60_000);
    await net('red-small', 'red', 201, 1_000);
    blue = (await newToken(h, 'tenant:blue')).token;
  });

  after(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses bad groups with 400 and the field, a tenant with 403, and stores nothing', async () => {
    const refused = async (body: unknown, field: string, code = 'INVALID_ARGUMENT') => {
      const r = await expectStatus(put(body), 400, code);
      assert.equal(r.body.error.field, field, r.text);
    };
    await refused({ pfMinTxRateMbps: 3000, pfMaxTxRateMbps: 2000 }, 'pfMinTxRateMbps');
    await refused({ pfMinTxRateMbps: 200_000 }, 'pfMinTxRateMbps', 'OUT_OF_RANGE');
    await refused({ pfMaxTxRateMbps: 100_001 }, 'pfMaxTxRateMbps', 'OUT_OF_RANGE');
    assert.equal((await put({ pfMinTxRateMbps: 1.5 })).status, 400);
    assert.equal((await put({})).status, 400);
    await expectStatus(put({ pfMaxTxRateMbps: 5000 }, blue), 403);
    // One half of a pair checked against the other as stored: a cap under the stored share.
    await expectStatus(put({ pfMinTxRateMbps: 4000 }), 200);
    await refused({ pfMaxTxRateMbps: 3000 }, 'pfMinTxRateMbps');
    assert.deepEqual([(await show()).pfMinTxRateMbps, (await show()).pfMaxTxRateMbps], [4000, null]);
    // 0 clears, as null does.
    const cleared = (await expectStatus(put({ pfMinTxRateMbps: 0, pfMaxTxRateMbps: null }), 200)).body;
    assert.deepEqual([cleared.pfMinTxRateMbps, cleared.pfMaxTxRateMbps], [null, null]);
    assert.deepEqual((await show()).groupPfs, [], 'no group: nothing per PF');
  });

  it('sets a group; a tenant sees its own, per PF: enforced by the NIC on switchdev, refused on legacy', async () => {
    const set = (await expectStatus(put({ pfMinTxRateMbps: 40_000, pfMaxTxRateMbps: 60_000 }), 200)).body;
    assert.deepEqual([set.pfMinTxRateMbps, set.pfMaxTxRateMbps], [40_000, 60_000]);
    const own = (await expectStatus(h.call<TenantView>(blue, 'GET', '/v1/tenants/blue'), 200)).body;
    assert.deepEqual(
      own.groupPfs.map((p) => [p.pfPciAddress, p.enforcement]),
      [
        [pf0, 'nic'],
        [pf1, 'refused'],
      ],
    );
    assert.match(own.groupPfs[1]!.reason!, /legacy eswitch mode/);
    await expectStatus(h.call(blue, 'GET', '/v1/tenants/red'), 404);
  });

  it('places the group only where the NIC enforces it, and the VFs’ guarantees inside its share', async () => {
    const placed: Allocation[] = [];
    for (const name of ['b1', 'b2', 'b3', 'b4']) placed.push((await expectStatus(allocate('blue-net', name), 201)).body);
    assert.deepEqual(new Set(placed.map((a) => a.pfPciAddress)), new Set([pf0]), 'never the legacy PF');
    // Four VFs of 10 Gbit/s fill the 40 Gbit/s share on pf0; pf1 cannot enforce the group at all. The refusal gives the stage the best PF reached.
    const fifth = await expectStatus(allocate('blue-net', 'b5'), 409, 'NO_CAPACITY');
    assert.equal(fifth.body.error.data?.reason, 'group-share', fifth.text);
    assert.match(fifth.body.error.message, /does not fit inside tenant blue's bandwidth group \(share 40000 Mbps, cap 60000 Mbps\)/);
    const legacy = await expectStatus(allocate('blue-net', 'b5', { host: 'host-a', pciAddress: vfOn(pf1, 0) }), 409, 'NO_CAPACITY');
    assert.equal(legacy.body.error.data?.reason, 'group-not-enforced', legacy.text);
    assert.match(legacy.body.error.message, /legacy eswitch mode.*physnet fabric is not groupsAccountingOnly/);
    const pinned = await expectStatus(allocate('blue-net', 'b5', { host: 'host-a', pciAddress: vfOn(pf0, 7) }), 409, 'NO_CAPACITY');
    assert.equal(pinned.body.error.data?.reason, 'group-share', pinned.text);
    assert.match(pinned.body.error.message, /already guarantee 40000 of its 40000 Mbps/);
    // A best-effort VF of the tenant still fits: it adds nothing.
    await expectStatus(allocate('blue-be', 'b6'), 201);
  });

  it('counts the share once per PF: another tenant gets the rest of the PF’s headroom, and no more', async () => {
    // 100 Gbit/s link − 40 Gbit/s share = 60 Gbit/s, whatever the number of blue VFs there.
    const red = (await expectStatus(allocate('red-net', 'r1', { host: 'host-a', pciAddress: vfOn(pf0, 6) }), 201)).body;
    assert.equal(red.pfPciAddress, pf0);
    const full = await expectStatus(allocate('red-small', 'r2', { host: 'host-a', pciAddress: vfOn(pf0, 7) }), 409, 'NO_CAPACITY');
    assert.equal(full.body.error.data?.reason, 'headroom', full.text);
    assert.equal(full.body.error.data?.headroomMbps, 0);
  });

  it('refuses with 409, naming the PF and its headroom, a group that no longer fits where the tenant holds VFs; stores nothing', async () => {
    const r = await expectStatus(put({ pfMinTxRateMbps: 50_000 }), 409, 'CONFLICT');
    assert.match(r.body.error.message, new RegExp(`PF host-a/${inventory.pfs[0]!.name}.*headroom without the tenant is 40000 Mbps`), r.text);
    assert.deepEqual((r.body.error.data?.pfs as Array<{ pfPciAddress: string; headroomMbps: number }>).map((p) => [p.pfPciAddress, p.headroomMbps]), [[pf0, 40_000]]);
    // Below what its VFs already guarantee there.
    const inside = await expectStatus(put({ pfMinTxRateMbps: 30_000 }), 409, 'CONFLICT');
    assert.match(inside.body.error.message, /already guarantee 40000 Mbps/);
    assert.equal((await show()).pfMinTxRateMbps, 40_000);
    // A bigger cap changes no guarantee: fine.
    await expectStatus(put({ pfMaxTxRateMbps: 80_000 }), 200);
  });

  it('on a groupsAccountingOnly physnet the legacy PF takes the tenant, accounting the share there too', async () => {
    const physnet = (await expectStatus(h.call<Physnet>(h.admin, 'PUT', '/v1/physnets/fabric', { groupsAccountingOnly: true }), 200)).body;
    assert.equal(physnet.groupsAccountingOnly, true);
    const a = (await expectStatus(allocate('blue-net', 'b7'), 201)).body;
    assert.equal(a.pfPciAddress, pf1);
    assert.deepEqual(
      (await show()).groupPfs.map((p) => [p.pfPciAddress, p.enforcement, p.vfs, p.vfMinTxRateMbps]),
      [
        [pf0, 'nic', 5, 40_000],
        [pf1, 'accounted', 1, 10_000],
      ],
    );
    // pf1: 40 Gbit/s accounted for blue, so red's 60 Gbit/s fits once, and its 1 Gbit/s then does not.
    await expectStatus(allocate('red-net', 'r3', { host: 'host-a', pciAddress: vfOn(pf1, 6) }), 201);
    const over = await expectStatus(allocate('red-small', 'r4', { host: 'host-a', pciAddress: vfOn(pf1, 7) }), 409, 'NO_CAPACITY');
    assert.equal(over.body.error.data?.reason, 'headroom', over.text);
  });

  it('gives the agent one rate node per PF that enforces the group, and parents the tenant’s VFs there only', async () => {
    const state = await desired();
    assert.deepEqual(state.rateGroups, [{ pfPciAddress: pf0, node: 'vfleet-blue', txShareMbps: 40_000, txMaxMbps: 80_000 }]);
    const byTenant = (a: { pfPciAddress: string; rateGroup: string | null }) => [a.pfPciAddress, a.rateGroup];
    const groups = state.allocations.map(byTenant);
    assert.equal(groups.filter(([pf, g]) => pf === pf0 && g === 'vfleet-blue').length, 5, 'blue’s five VFs on pf0');
    assert.equal(groups.filter(([pf, g]) => pf === pf0 && g === null).length, 1, 'red’s VF on pf0 has no group');
    assert.ok(groups.filter(([pf]) => pf === pf1).every(([, g]) => g === null), 'accounted only on pf1: no node');
  });

  it('drops the rate node with the tenant’s last VF on the PF, and its share with it', async () => {
    const all = (await expectStatus(h.call<Allocation[]>(h.admin, 'GET', '/v1/allocations?tenant=blue'), 200)).body;
    const onPf0 = all.filter((x) => x.pfPciAddress === pf0 && x.state !== 'released');
    assert.equal(onPf0.length, 5);
    for (const a of onPf0) await expectStatus(h.call(h.admin, 'DELETE', `/v1/allocations/${a.id}`), 200);
    // Releasing VFs are un-parented; the node stays until their release is done (a node with children cannot go).
    const releasing = await desired();
    assert.deepEqual(releasing.rateGroups.map((g) => g.node), ['vfleet-blue']);
    assert.ok(releasing.allocations.filter((a) => onPf0.some((x) => x.id === a.id)).every((a) => a.state === 'releasing' && a.rateGroup === null));
    await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventory, statuses: onPf0.map((a) => ({ id: a.id, state: 'released' })) }), 200);
    assert.deepEqual((await desired()).rateGroups, []);
    // pf0 now commits red's 60 Gbit/s only: its 1 Gbit/s fits again.
    await expectStatus(allocate('red-small', 'r5', { host: 'host-a', pciAddress: vfOn(pf0, 7) }), 201);
  });
});
