// Representors and rate trees over the API: an agent reports a switchdev PF (schema accepts the new fields,
// netdevsim addresses too), and an allocation shows its VF's representor from memory (null in legacy mode).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Actor } from '../../src/domain/actor.js';
import type { HostInventory } from '../../src/host/model.js';
import { expectStatus, inventoryOf, POLICY_FABRIC, startApi, type ApiHarness } from '../helpers/api-harness.js';

const ADMIN: Actor = { id: 'test', role: 'admin' };

/** inventoryOf's host with ens1f0 in switchdev mode: representors, leaves and a node. */
function switchdevInventory(): HostInventory {
  const inv = inventoryOf('host-a');
  const pf = inv.pfs[0]!;
  pf.eswitchMode = 'switchdev';
  pf.rateNodes = [{ name: 'vfleet-acme', txShareMbps: 1000, txMaxMbps: 5000, parent: null }];
  for (const vf of pf.vfs) {
    vf.representor = { netdev: `ens1f0r${vf.index}`, devlinkPort: `pci/${pf.pciAddress}/${128 + vf.index}` };
    vf.rateParent = vf.index === 0 ? 'vfleet-acme' : null;
  }
  return inv;
}

describe('representors in the API', { timeout: 60_000 }, () => {
  let h: ApiHarness;
  let agent: string;

  before(async () => {
    h = await startApi();
    agent = await h.token('agent:host-a');
    await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventory: switchdevInventory() }), 200);
    await h.control.hosts.putPolicy(ADMIN, 'host-a', POLICY_FABRIC);
    await h.control.networks.createTenant(ADMIN, 'acme');
    await h.control.networks.createNetwork(ADMIN, { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100 });
  });
  after(async () => h.close());

  it("keeps the switchdev fields of a reported inventory (GET /v1/hosts/:name)", async () => {
    const r = await expectStatus(h.call<{ inventory: HostInventory }>(h.admin, 'GET', '/v1/hosts/host-a'), 200);
    const pf = r.body.inventory.pfs[0]!;
    assert.deepEqual(pf.rateNodes, [{ name: 'vfleet-acme', txShareMbps: 1000, txMaxMbps: 5000, parent: null }]);
    assert.deepEqual(pf.vfs[0]!.representor, { netdev: 'ens1f0r0', devlinkPort: `pci/${pf.pciAddress}/128` });
    assert.equal(pf.vfs[0]!.rateParent, 'vfleet-acme');
  });

  it('an allocation reports its VF representor (get, list, create); null on a legacy PF', async () => {
    const inv = switchdevInventory();
    const onSwitchdev = inv.pfs[0]!.vfs[1]!.pciAddress;
    const onLegacy = inv.pfs[1]!.vfs[0]!.pciAddress;
    type Shown = { id: string; representor: unknown };
    const a = await expectStatus(h.call<Shown>(h.admin, 'POST', '/v1/allocations', { network: 'red', workload: { kind: 'container', name: 'pod-1' }, host: 'host-a', pciAddress: onSwitchdev }), 201);
    assert.deepEqual(a.body.representor, { netdev: 'ens1f0r1', devlinkPort: `pci/${inv.pfs[0]!.pciAddress}/129` });
    const b = await expectStatus(h.call<Shown>(h.admin, 'POST', '/v1/allocations', { network: 'red', workload: { kind: 'container', name: 'pod-2' }, host: 'host-a', pciAddress: onLegacy }), 201);
    assert.equal(b.body.representor, null);
    const got = await expectStatus(h.call<Shown>(h.admin, 'GET', `/v1/allocations/${a.body.id}`), 200);
    assert.deepEqual(got.body.representor, a.body.representor);
    const list = await expectStatus(h.call<{ items?: Shown[] } | Shown[]>(h.admin, 'GET', '/v1/allocations'), 200);
    const items = Array.isArray(list.body) ? list.body : (list.body.items ?? []);
    assert.deepEqual(new Map(items.map((x) => [x.id, x.representor])), new Map([[a.body.id, a.body.representor], [b.body.id, null]]));
  });

  it('the representor follows the next inventory: back in legacy mode it is null', async () => {
    await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a') }), 200);
    const list = await expectStatus(h.call<{ items?: Array<{ representor: unknown }> } | Array<{ representor: unknown }>>(h.admin, 'GET', '/v1/allocations'), 200);
    const items = Array.isArray(list.body) ? list.body : (list.body.items ?? []);
    assert.equal(items.length, 2);
    for (const x of items) assert.equal(x.representor, null);
  });

  it('refuses a representor whose devlink port is not a devlink port handle (400), storing nothing', async () => {
    const inv = switchdevInventory();
    inv.pfs[0]!.vfs[0]!.representor = { netdev: 'ens1f0r0', devlinkPort: '../../etc' };
    await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventory: inv }), 400, 'INVALID_ARGUMENT');
  });

  it('accepts a netdevsim PF (device name, VFs netdevsim<N>:vf<M>) and refuses a VF address that is not its own', async () => {
    const nsim = (vfAddress: (i: number) => string) => {
      const inv = inventoryOf('host-b', 2);
      const pf = inv.pfs[1]!;
      Object.assign(pf, { name: 'eni10np1', pciAddress: 'netdevsim10', driver: 'netdevsim' });
      pf.vfs.forEach((vf, i) => Object.assign(vf, { pciAddress: vfAddress(i), driver: null, netdev: null, iommuGroup: null }));
      return inv;
    };
    const agentB = await h.token('agent:host-b');
    const bad = await expectStatus(h.call(agentB, 'POST', '/v1/agent/report', { inventory: nsim((i) => `netdevsim11:vf${i}`) }), 400, 'INVALID_ARGUMENT');
    assert.match(bad.text, /must be netdevsim10:vf0/);
    await expectStatus(h.call(agentB, 'POST', '/v1/agent/report', { inventory: nsim((i) => `netdevsim10:vf${i}`) }), 200);
    const r = await expectStatus(h.call<{ inventory: HostInventory }>(h.admin, 'GET', '/v1/hosts/host-b'), 200);
    assert.deepEqual(r.body.inventory.pfs[1]!.vfs.map((v) => v.pciAddress), ['netdevsim10:vf0', 'netdevsim10:vf1', 'netdevsim10:vf2', 'netdevsim10:vf3']);
  });
});
