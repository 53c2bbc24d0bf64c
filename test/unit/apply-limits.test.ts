/**
 * What the agent could not apply is refused at the API, naming the limit
 * (issue 8, findings 4, 5 and 8), and the refusal stores nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Allocation, Network } from '../../src/domain/types.js';
import type { StoreTx } from '../../src/store/store.js';
import { makeHost } from '../helpers/inventory.js';
import { expectStatus, policyOf, startApi, type ApiHarness, type ErrorBody } from '../helpers/api-harness.js';

describe('api: refusing what the host cannot apply', () => {
  let h: ApiHarness;
  let operator: string;
  const network = (body: Record<string, unknown>) =>
    h.call<Network & ErrorBody>(h.admin, 'POST', '/v1/networks', { tenant: 'alpha', physnet: 'fabric', ...body });
  async function refused(reply: Promise<{ status: number; body: unknown; text: string }>, status: number, message: RegExp): Promise<void> {
    const r = await reply;
    assert.equal(r.status, status, r.text);
    assert.match((r.body as ErrorBody).error.message, message);
  }

  /** host-fast: one 100G PF; host-slow: one 10G PF; both on physnet fabric. */
  before(async () => {
    h = await startApi();
    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'alpha' }), 201);
    operator = await h.token('operator');
    for (const [name, speed] of [['host-fast', 100_000], ['host-slow', 10_000]] as const) {
      await h.control.hosts.report({ id: 'local', role: 'admin' }, makeHost({ name, pfs: 1, vfs: 4, linkSpeedMbps: speed, physnet: null }).inventory);
      await expectStatus(h.call(h.admin, 'PUT', `/v1/hosts/${name}/policy`, { document: policyOf([['f', 'ens1f0', 'fabric']]) }), 200);
    }
  });
  after(() => h.close());

  it('maxTxRate or minTxRate above the fastest PF of the physnet', async () => {
    await refused(network({ name: 'too-fast', vlan: 10, maxTxRateMbps: 200_000 }), 400, /maxTxRateMbps 200000 exceeds the 100000 Mbps link of the fastest PF on physnet fabric/);
    await refused(network({ name: 'too-fast', vlan: 10, minTxRateMbps: 150_000, maxTxRateMbps: 0 }), 400, /minTxRateMbps 150000 exceeds the 100000 Mbps link/);
    await expectStatus(h.call(h.admin, 'GET', '/v1/networks/too-fast'), 404);
  });

  it('a network’s rates are checked against the hosts in the scheduler’s memory: its transaction reads no host record', async () => {
    // Every host's ~100 KB inventory: ~100 MB at 1,000 hosts, and on etcd any host's report failed the commit.
    const store = h.store as { transaction: (fn: (tx: StoreTx) => Promise<unknown>) => Promise<unknown> };
    const transaction = store.transaction.bind(h.store);
    let hostReads = 0;
    store.transaction = (fn) =>
      transaction((tx) =>
        fn(new Proxy(tx, {
          get(target, prop) {
            const value = Reflect.get(target, prop) as unknown;
            if (prop === 'listHosts' || prop === 'getHost') hostReads++;
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        })),
      );
    try {
      await expectStatus(network({ name: 'checked', vlan: 13, maxTxRateMbps: 90_000 }), 201);
      await assert.rejects(h.control.networks.updateNetwork({ id: 'local', role: 'admin' }, 'checked', { maxTxRateMbps: 120_000 }), /maxTxRateMbps 120000 exceeds the 100000 Mbps link of the fastest PF on physnet fabric/);
      assert.equal(hostReads, 0);
    } finally {
      store.transaction = transaction;
    }
  });

  it('at allocation, the network’s rate against the PF chosen', async () => {
    await expectStatus(network({ name: 'fast', vlan: 11, maxTxRateMbps: 50_000 }), 201);
    await refused(
      h.call(h.admin, 'POST', '/v1/allocations', { network: 'fast', workload: { kind: 'vm', name: 'vm1' }, host: 'host-slow' }),
      400,
      /maxTxRateMbps 50000 exceeds the 10000 Mbps link of host-slow\/ens1f0, where VF [0-9a-f:.]+ is/,
    );
    assert.deepEqual((await h.call<Allocation[]>(h.admin, 'GET', '/v1/allocations')).body, []);
    await expectStatus(h.call(h.admin, 'POST', '/v1/allocations', { network: 'fast', workload: { kind: 'vm', name: 'vm1' }, host: 'host-fast' }), 201);
  });

  it('a QoS priority with VLAN 0', async () => {
    await refused(network({ name: 'untagged', vlan: 0, qos: 3 }), 400, /qos 3 needs a VLAN/);
  });

  it('a route whose gateway is off the subnet, or whose destination has host bits', async () => {
    const ipam = (routes: unknown[]) => ({ cidr: '198.18.0.0/24', routes });
    await refused(network({ name: 'r1', vlan: 12, ipam: ipam([{ dst: 'default', gw: '198.19.0.1' }]) }), 400, /route gateway 198\.19\.0\.1 is outside the pool 198\.18\.0\.0\/24/);
    await refused(network({ name: 'r1', vlan: 12, ipam: ipam([{ dst: '198.19.0.5/16', gw: '198.18.0.1' }]) }), 400, /route destination 198\.19\.0\.5\/16 has host bits set; write 198\.19\.0\.0\/16/);
    await expectStatus(network({ name: 'r1', vlan: 12, ipam: ipam([{ dst: '198.19.0.0/16', gw: '198.18.0.1' }, { dst: 'default', gw: '198.18.0.254' }]) }), 201);
  });

  for (const cidr of ['0.0.0.0/0', '128.0.0.0/1', '198.0.0.0/7', '198.18.0.0/31', '198.18.0.1/32']) {
    it(`an IP pool ${cidr}`, async () => {
      await refused(network({ name: 'wide', vlan: 13, ipam: { cidr } }), 400, /must be a \/8 to \/30 subnet/);
    });
  }

  it('numaPolicy without numaNode', async () => {
    await refused(
      h.call(h.admin, 'POST', '/v1/allocations', { network: 'fast', workload: { kind: 'vm', name: 'vm2' }, numaPolicy: 'preferred' }),
      400,
      /field "numaPolicy" needs field "numaNode"; give both or neither/,
    );
  });

  it('a policy numVfs above the PF’s totalvfs', async () => {
    const before = await h.call<{ document: string }>(h.admin, 'GET', '/v1/hosts/host-fast/policy');
    await refused(
      h.call(h.admin, 'PUT', '/v1/hosts/host-fast/policy', { document: policyOf([['f', 'ens1f0', 'fabric']], 257) }),
      400,
      /numVfs 257 is above ens1f0's sriov_totalvfs of \d+/,
    );
    assert.deepEqual((await h.call(h.admin, 'GET', '/v1/hosts/host-fast/policy')).body, before.body);
  });

  it('a numVfs change (0 included) while VFs of the PF are allocated', async () => {
    // host-fast's ens1f0 carries vm1's allocation since the test above.
    for (const numVfs of [0, 2]) {
      await refused(
        h.call(h.admin, 'PUT', '/v1/hosts/host-fast/policy', { document: policyOf([['f', 'ens1f0', 'fabric']], numVfs) }),
        409,
        new RegExp(
          `policy f changes ens1f0 from 4 to ${numVfs} VFs, which recreates them, and 1 of its VFs are held: VF 0 vm/vm1 \\(allocation [0-9a-f]{8}, pending\\); ` +
            'move them off with sriovctl drain host-fast/ens1f0 \\(or release them\\), then apply again',
        ),
      );
    }
    // host-slow has none: numVfs 0 removes its VFs.
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-slow/policy', { document: policyOf([['f', 'ens1f0', 'fabric']], 0) }), 200);
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-slow/policy', { document: policyOf([['f', 'ens1f0', 'fabric']], 4) }), 200);
  });

  it('trust on or spoof check off in a node policy is admin-only', async () => {
    const document = (vfs: string) => policyOf([['f', 'ens1f0', 'fabric']]) + `    vfs:\n      "0-1": ${vfs}\n`;
    await refused(h.call(operator, 'PUT', '/v1/hosts/host-slow/policy', { document: document('{ trust: on }') }), 403, /policy f sets trust on on VF 0, which is admin-only; operator may not apply it/);
    await refused(h.call(operator, 'PUT', '/v1/hosts/host-slow/policy', { document: document('{ spoofChk: off }') }), 403, /spoof checking off .* admin-only/);
    await expectStatus(h.call(operator, 'PUT', '/v1/hosts/host-slow/policy', { document: document('{ qos: 0 }') }), 200);
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-slow/policy', { document: document('{ trust: on, spoofChk: off }') }), 200);
  });
});
