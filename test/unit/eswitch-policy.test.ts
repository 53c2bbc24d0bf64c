// A node policy's eswitchMode: parsed, planned as the steps the PF's driver
// needs (with a VF count change among them), applied on the simulated host,
// and refused at plan time through the API where it cannot or must not run.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SriovHost } from '../../src/host/configurator.js';
import { SriovError } from '../../src/host/errors.js';
import { applyPlan } from '../../src/policy/apply.js';
import { excludingVfs, isEmpty, planPolicies, renderPlan } from '../../src/policy/plan.js';
import { parsePolicyDocument } from '../../src/policy/schema.js';
import type { SimProfileName } from '../../src/sim/profiles.js';
import { SimHost } from '../../src/sim/sim-host.js';
import { MemorySimState } from '../../src/sim/state.js';
import { Reconciler } from '../../src/agent/reconciler.js';
import { containerAllocation, desiredState } from '../helpers/migration-host.js';
import { expectStatus, inventoryOf, newToken, policyOf, startApi, type ApiHarness } from '../helpers/api-harness.js';
import { makeHost } from '../helpers/inventory.js';

const simHost = (profile: SimProfileName) => {
  const sim = new SimHost(new MemorySimState({ profile, pfs: 1, hostname: 'sim-a' }));
  return { sim, host: new SriovHost(sim.ports) };
};

const policy = (numVfs: number, extra = '') => `policies:
  - name: uplink
    selector: { pfNames: [ens1f0] }
    numVfs: ${numVfs}
${extra}`;

const refusal = (fn: () => unknown): SriovError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof SriovError) return err;
    throw err;
  }
  assert.fail('expected a refusal');
};

describe('node policy eswitchMode', () => {
  it('is switchdev or legacy, refused otherwise with the field and its line', () => {
    const err = refusal(() => parsePolicyDocument(policy(4, '    eswitchMode: offloads\n'), 'policy.yaml'));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(err.message, 'policy.yaml:5: policies[0].eswitchMode: must be switchdev or legacy (leave it out to leave the mode alone)');
    assert.equal(parsePolicyDocument(policy(4, '    eswitchMode: switchdev\n'))[0]!.eswitchMode, 'switchdev');
    assert.equal(parsePolicyDocument(policy(4))[0]!.eswitchMode, undefined);
  });

  it('ice: the plan removes the VFs, sets the mode, creates the new count; apply takes those steps and sets rates on the leaves', async () => {
    const { sim, host } = simHost('ice');
    await host.setNumVfs('ens1f0', 4, { deviceType: 'netdevice' });
    const policies = parsePolicyDocument(policy(8, '    eswitchMode: switchdev\n    vfs:\n      0-1: { maxTxRateMbps: 2000, minTxRateMbps: 100 }\n'));
    const plans = planPolicies(await host.inventory(), policies);
    const lines = renderPlan(plans);
    assert.ok(lines.includes('  ~ numVfs: 4 → 8'), lines.join('\n'));
    assert.ok(
      lines.includes('  ~ eswitchMode: legacy → switchdev (ice: 1. remove the VFs (sriov_numvfs=0); 2. devlink dev eswitch set pci/0000:3b:00.0 mode switchdev; 3. create 8 VFs (sriov_numvfs=8))'),
      lines.join('\n'),
    );
    await applyPlan(host, plans);
    const pf = await host.pf('ens1f0');
    assert.equal(pf.eswitchMode, 'switchdev');
    assert.equal(pf.numVfs, 8);
    const leaves = (await sim.ports.devlink.rates(pf.pciAddress)).filter((r) => r.type === 'leaf');
    assert.deepEqual(leaves.slice(0, 3).map((l) => [l.txShareMbps, l.txMaxMbps]), [[100, 2000], [100, 2000], [0, 0]]);
    // Converged: planning again neither changes the mode nor the VFs, and a policy without eswitchMode leaves the mode alone.
    assert.ok(planPolicies(await host.inventory(), policies).every((p) => !p.eswitchMode && !p.numVfs));
    assert.ok(planPolicies(await host.inventory(), parsePolicyDocument(policy(8))).every((p) => !p.eswitchMode));
  });

  it('mlx5: the plan creates the VFs without a driver, sets the mode and binds them; back to legacy unbinds and rebinds them', async () => {
    const { host } = simHost('mlx5');
    const plans = planPolicies(await host.inventory(), parsePolicyDocument(policy(4, '    eswitchMode: switchdev\n')));
    assert.deepEqual(plans[0]!.eswitchMode!.steps.map((s) => s.action), ['create-vfs', 'set-mode', 'bind-vfs']);
    assert.match(renderPlan(plans).join('\n'), /mlx5_core: 1\. create 4 VFs \(sriov_numvfs=4\) without a driver; 2\. devlink dev eswitch set pci\/0000:3b:00\.0 mode switchdev; 3\. bind the new VFs to their driver\)/);
    await applyPlan(host, plans);
    let pf = await host.pf('ens1f0');
    assert.equal(pf.eswitchMode, 'switchdev');
    assert.deepEqual(pf.vfs.map((vf) => vf.driver), ['mlx5_core', 'mlx5_core', 'mlx5_core', 'mlx5_core']);
    const back = planPolicies(await host.inventory(), parsePolicyDocument(policy(4, '    eswitchMode: legacy\n')));
    assert.deepEqual(back[0]!.eswitchMode!.steps.map((s) => s.action), ['unbind-vfs', 'set-mode', 'rebind-vfs']);
    await applyPlan(host, back);
    pf = await host.pf('ens1f0');
    assert.equal(pf.eswitchMode, 'legacy');
    assert.equal(pf.numVfs, 4);
    assert.ok(isEmpty(planPolicies(await host.inventory(), parsePolicyDocument(policy(4, '    eswitchMode: legacy\n')))[0]!));
  });

  it('an agent leaves a mode change that would disturb held VFs for later; settings of free VFs still apply', async () => {
    const { host } = simHost('ice');
    await host.setNumVfs('ens1f0', 4, { deviceType: 'netdevice' });
    const [plan] = planPolicies(await host.inventory(), parsePolicyDocument(policy(4, '    eswitchMode: switchdev\n    vfs:\n      0-3: { trust: on }\n')));
    const held = excludingVfs(plan!, new Set([2]));
    assert.equal(held.eswitchMode, undefined);
    assert.deepEqual(held.vfRequests.map((r) => r.vf), [0, 1, 3]);
    assert.ok(excludingVfs(plan!, new Set()).eswitchMode, 'nothing held: the change stays');
  });

  it('an agent says why it holds a mode change back, and changes neither the mode nor the held VF', async () => {
    const { sim, host } = simHost('ice');
    await host.setNumVfs('ens1f0', 4, { deviceType: 'netdevice' });
    const pf = await host.pf('ens1f0');
    const held = containerAllocation('a1', pf, 2, '/unused', { state: 'configured', attachment: null });
    const document = policy(4, '    eswitchMode: switchdev\n');
    const result = await new Reconciler(host).reconcile(desiredState([held], { policies: [document] }));
    assert.ok(
      result.errors.some((e) => /would change the eswitch mode of ens1f0 \(legacy → switchdev\) while 1 allocations hold its VFs/.test(e)),
      result.errors.join('\n'),
    );
    assert.equal(await sim.ports.devlink.eswitchMode(pf.pciAddress), 'legacy');
    assert.equal((await host.pf('ens1f0')).numVfs, 4);
  });

  it('a PF without an eswitch is refused at plan time with the reason, even when the mode is already as asked', async () => {
    const { host } = simHost('igb');
    for (const mode of ['switchdev', 'legacy']) {
      const err = refusal(() => planPolicies(makeHost({ name: 'h', pfs: 1, vfs: 2, driver: 'igb' }).inventory, parsePolicyDocument(policy(2, `    eswitchMode: ${mode}\n`))));
      assert.equal(err.code, 'UNSUPPORTED');
      assert.equal(err.details.field, 'eswitchMode');
      assert.match(err.message, /^policy uplink: eswitchMode: ens1f0 \(0000:10:00\.0\) cannot change its eswitch mode: its driver igb has no devlink eswitch/);
    }
    await assert.rejects(async () => planPolicies(await host.inventory(), parsePolicyDocument(policy(2, '    eswitchMode: switchdev\n'))), /driver igb has no devlink eswitch/);
  });
});

interface Plan {
  changes: boolean;
  pfs: Array<{ pf: string; eswitchMode: { from: string; to: string; steps: string[] } | null }>;
}

describe('eswitchMode through the API: plan, refusals', () => {
  let h: ApiHarness;
  let agent: string;
  const base = policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]);
  const switchdev = base.replace('numVfs: 4', 'numVfs: 4\n    eswitchMode: switchdev');

  before(async () => {
    h = await startApi();
    agent = (await newToken(h, 'agent:host-a')).token;
    await expectStatus(h.call(agent, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a') }), 200);
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-a/policy', { document: base }), 200);
    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'alpha' }), 201);
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'alpha-net', tenant: 'alpha', physnet: 'fabric', vlan: 100 }), 201);
  });
  after(() => h.close());

  it('plans the mode change with its steps for each PF', async () => {
    const plan = (await expectStatus(h.call<Plan>(h.admin, 'POST', '/v1/hosts/host-a/policy/plan', { document: switchdev }), 200)).body;
    assert.equal(plan.changes, true);
    assert.deepEqual(plan.pfs[0]!.eswitchMode, {
      from: 'legacy',
      to: 'switchdev',
      steps: ['remove the VFs (sriov_numvfs=0)', 'devlink dev eswitch set pci/0000:10:00.0 mode switchdev', 'create 4 VFs (sriov_numvfs=4)'],
    });
  });

  it('refuses a mode change that would disturb held VFs, naming three and counting the rest, until the PF is drained', async () => {
    await expectStatus(h.call(h.admin, 'POST', '/v1/hosts/host-a/pfs/ens2f0/drain'), 200);
    const held: string[] = [];
    for (let i = 0; i < 4; i++) {
      held.push((await expectStatus(h.call<{ id: string }>(h.admin, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'container', name: `app-${i}` } }), 201)).body.id);
    }
    for (const [method, path] of [['POST', '/v1/hosts/host-a/policy/plan'], ['PUT', '/v1/hosts/host-a/policy']] as const) {
      const busy = await expectStatus(h.call(h.admin, method, path, { document: switchdev }), 409, 'BUSY');
      const message = (busy.body as { error: { message: string } }).error.message;
      assert.match(message, /^policy fabric: eswitchMode: changing ens1f0 from legacy to switchdev removes and recreates its VFs on ice, and 4 of them are held: /);
      assert.equal(message.match(/container\/app-\d/g)!.length, 3, message);
      assert.match(message, /and 1 more; drain the PF first \(sriovctl pf drain host-a\/ens1f0\) or release them/);
    }
    assert.equal((await expectStatus(h.call<{ document: string }>(h.admin, 'GET', '/v1/hosts/host-a/policy'), 200)).body.document, base, 'nothing stored');
    await expectStatus(h.call(h.admin, 'POST', '/v1/hosts/host-a/pfs/ens1f0/drain'), 200);
    await expectStatus(h.call(h.admin, 'POST', '/v1/hosts/host-a/policy/plan', { document: switchdev }), 200);
    for (const id of held) await expectStatus(h.call(h.admin, 'DELETE', `/v1/allocations/${id}`), 200);
  });

  it('refuses eswitchMode on a PF without an eswitch with 400 UNSUPPORTED, naming the field', async () => {
    const igb = makeHost({ name: 'host-b', pfs: 2, vfs: 4, driver: 'igb', linkSpeedMbps: 1000 }).inventory;
    igb.pfs.forEach((pf, i) => (pf.mac = `b8:ce:f6:00:02:0${i}`));
    const agentB = (await newToken(h, 'agent:host-b')).token;
    await expectStatus(h.call(agentB, 'POST', '/v1/agent/report', { inventory: igb }), 200);
    const r = await expectStatus(h.call(h.admin, 'POST', '/v1/hosts/host-b/policy/plan', { document: switchdev }), 400, 'UNSUPPORTED');
    assert.match(r.text, /eswitchMode: ens1f0 .*its driver igb has no devlink eswitch/);
  });
});
