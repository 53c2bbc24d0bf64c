// Draining a PF on the real controller (SQLite store): no new allocation on
// it, by the scheduler's choice, a pinned VF or a device-plugin claim, while
// what it has stays; idempotent, audited, staff only; kept across a host's
// reports and a controller restart; carried in the device view.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { Actor } from '../../src/domain/actor.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { policyOf } from '../helpers/api-harness.js';
import { makeHost } from '../helpers/inventory.js';
import { refusal } from '../helpers/refusal.js';

const HOST = 'host-a';
const ADMIN: Actor = { id: 'test', role: 'admin' };
const OPERATOR: Actor = { id: 'op', role: 'operator' };
const AGENT: Actor = { id: 'agent-tok', role: `agent:${HOST}` };
/** ens1f0 is 0000:10:00.0, ens2f0 0000:11:00.0; VF i of PF p is 0000:1p:00.(i+1). */
const PF0 = '0000:10:00.0';
const vf = (pf: 0 | 1, index: number) => `0000:1${pf}:00.${index + 1}`;
const inventory = (pfs = 2) => makeHost({ name: HOST, pfs, vfs: 4, driver: 'ice', linkSpeedMbps: 10_000 }).inventory;

describe('draining a PF', { timeout: 60_000 }, () => {
  let dir: string;
  let store: Store;
  let control: ControlPlane;

  const events = async (action: string) => (await control.events(ADMIN, { limit: 100_000 })).filter((e) => e.action === action);
  const drainedPfs = async () => (await store.tx.getHost(HOST))!.drainedPfs;
  const allocate = (name: string, fields: { host?: string; pciAddress?: string } = {}) =>
    control.allocations.create(ADMIN, { network: 'red', workload: { kind: 'container', name }, ...fields });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-drain-'));
    store = await openSqliteStore(dir);
    control = await ControlPlane.open(store);
    await control.hosts.report(AGENT, inventory());
    await control.hosts.putPolicy(ADMIN, HOST, policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
    await control.networks.createTenant(ADMIN, 'acme');
    await control.networks.createNetwork(ADMIN, { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100 });
  });

  afterEach(async () => {
    control.shutdown();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('takes no new allocation, and returns what it still has, untouched', async () => {
    const held = await allocate('before', { host: HOST, pciAddress: vf(0, 0) });
    const revision = control.ctx.feed.revision(HOST);
    const state = await control.drains.drainPf(OPERATOR, HOST, 'ens1f0');
    assert.deepEqual({ ...state, holding: state.holding.map((a) => a.id) }, { host: HOST, pf: 'ens1f0', pfPciAddress: PF0, drained: true, changed: true, holding: [held.id] });
    assert.deepEqual(await drainedPfs(), [PF0]);
    assert.notEqual(control.ctx.feed.revision(HOST), revision, 'the device view and the agent wake');
    assert.equal((await store.tx.getAllocation(held.id))!.state, 'pending', 'what it has stays');

    for (let i = 0; i < 4; i++) assert.equal((await allocate(`after-${i}`)).pf, 'ens2f0');
    const full = await refusal(allocate('one-too-many'), 'NO_CAPACITY');
    assert.match(full.message, /all 1 candidate PFs on physnet fabric with device type netdevice are full; host-a\/ens1f0 is drained \(sriovctl pf undrain host-a\/ens1f0\)$/);
    assert.equal(full.details.nothingChanged, true);
  });

  it('refuses a pinned VF on it, and a device-plugin claim of one, saying it is drained', async () => {
    await control.drains.drainPf(ADMIN, HOST, 'ens1f0');
    const before = (await store.tx.listAllocations()).length;
    const pinned = await refusal(allocate('pinned', { host: HOST, pciAddress: vf(0, 1) }), 'NO_CAPACITY');
    assert.equal(pinned.message, `VF ${HOST}/${vf(0, 1)} is on PF ens1f0: host-a/ens1f0 is drained (sriovctl pf undrain host-a/ens1f0)`);
    const claim = await refusal(control.devices.claim(AGENT, { host: HOST, resource: 'vfleet.io/red', network: 'red', pciAddresses: [vf(1, 0), vf(0, 1)] }), 'NO_CAPACITY');
    assert.match(claim.message, /is drained \(sriovctl pf undrain host-a\/ens1f0\)/);
    assert.equal((await store.tx.listAllocations()).length, before, 'all or nothing: not even the VF of ens2f0 was claimed');
    const view = await control.devices.view(AGENT, HOST);
    assert.deepEqual(view.drainedPfs, [PF0]);
  });

  it('is idempotent: a second drain or undrain writes nothing and wakes nobody', async () => {
    await control.drains.drainPf(ADMIN, HOST, 'ens1f0');
    const revision = control.ctx.feed.revision(HOST);
    const again = await control.drains.drainPf(ADMIN, HOST, PF0);
    assert.deepEqual([again.drained, again.changed, again.pf], [true, false, 'ens1f0']);
    assert.equal(control.ctx.feed.revision(HOST), revision);
    assert.deepEqual(await drainedPfs(), [PF0]);
    assert.equal((await events('pf.drain')).length, 1);

    // By PCI address, short form too.
    const undrained = await control.drains.undrainPf(ADMIN, HOST, '10:00.0');
    assert.deepEqual([undrained.drained, undrained.changed], [false, true]);
    assert.deepEqual((await control.drains.undrainPf(ADMIN, HOST, 'ens1f0')).changed, false);
    assert.deepEqual(await drainedPfs(), []);
    const [drain, undrain] = [(await events('pf.drain'))[0]!, (await events('pf.undrain'))[0]!];
    assert.deepEqual([drain.actor, drain.object, drain.before, drain.after], ['admin/test', `host/${HOST}/pf/${PF0}`, { pf: 'ens1f0', drained: false }, { pf: 'ens1f0', drained: true }]);
    assert.deepEqual([undrain.object, undrain.after], [`host/${HOST}/pf/${PF0}`, { pf: 'ens1f0', drained: false }]);
    assert.equal((await events('pf.undrain')).length, 1);
    assert.equal((await allocate('back')).pf, 'ens1f0', 'pack fills the first PF again');
  });

  it('is staff only: a tenant, an agent and a node token are refused, and nothing changes', async () => {
    const seq = (await control.events(ADMIN, { limit: 100_000 })).length;
    for (const actor of [{ id: 't', role: 'tenant:acme' }, AGENT, { id: 'n', role: `node:${HOST}` }] as Actor[]) {
      const err = await refusal(control.drains.drainPf(actor, HOST, 'ens1f0'), 'FORBIDDEN');
      assert.equal(err.message, `${actor.role} may not drain PFs`);
      await refusal(control.drains.undrainPf(actor, HOST, 'ens1f0'), 'FORBIDDEN');
    }
    assert.deepEqual(await drainedPfs(), []);
    assert.equal((await control.events(ADMIN, { limit: 100_000 })).length, seq);
  });

  it('refuses an unknown host or PF naming what exists, and a malformed PF, changing nothing', async () => {
    const host = await refusal(control.drains.drainPf(ADMIN, 'host-z', 'ens1f0'), 'NOT_FOUND');
    assert.equal(host.message, 'host host-z is not known; the hosts are: host-a');
    const pf = await refusal(control.drains.drainPf(ADMIN, HOST, 'ens9f0'), 'NOT_FOUND');
    assert.equal(pf.message, "PF ens9f0 is not in host host-a's last report; its PFs: ens1f0 (0000:10:00.0), ens2f0 (0000:11:00.0)");
    await refusal(control.drains.drainPf(ADMIN, HOST, '0000:99:00.0'), 'NOT_FOUND');
    const bad = await refusal(control.drains.drainPf(ADMIN, HOST, '../../sys'), 'INVALID_ARGUMENT');
    assert.match(bad.message, /^PF must be its netdev name like ens1f0 or its PCI address like 0000:3b:00.0, got "\.\.\/\.\.\/sys"$/);
    await refusal(control.drains.drainPf(ADMIN, 'Host_A', 'ens1f0'), 'INVALID_ARGUMENT');
    assert.deepEqual(await drainedPfs(), []);
    assert.equal((await events('pf.drain')).length, 0);
  });

  it("survives the host's reports and a controller restart", async () => {
    await control.drains.drainPf(ADMIN, HOST, 'ens1f0');
    await control.hosts.report(AGENT, inventory());
    assert.deepEqual(await drainedPfs(), [PF0], 'a report keeps it');
    assert.equal((await allocate('after-report')).pf, 'ens2f0');

    control.shutdown();
    control = await ControlPlane.open(store);
    assert.equal((await allocate('after-restart')).pf, 'ens2f0', 'the scheduler is rebuilt with it');
    assert.deepEqual((await control.hosts.get(ADMIN, HOST)).drainedPfs, [PF0]);
  });

  it('undrains, by its PCI address, a drained PF gone from the report; drains none that is gone', async () => {
    await control.drains.drainPf(ADMIN, HOST, 'ens2f0');
    await control.hosts.report(AGENT, inventory(1));
    assert.deepEqual(await drainedPfs(), ['0000:11:00.0'], 'kept while it is gone: it may come back');
    await refusal(control.drains.undrainPf(ADMIN, HOST, 'ens2f0'), 'NOT_FOUND');
    const state = await control.drains.undrainPf(ADMIN, HOST, '0000:11:00.0');
    assert.deepEqual([state.pf, state.drained, state.changed, state.holding], ['0000:11:00.0', false, true, []]);
    assert.deepEqual(await drainedPfs(), []);
    await refusal(control.drains.drainPf(ADMIN, HOST, '0000:11:00.0'), 'NOT_FOUND');
  });
});
