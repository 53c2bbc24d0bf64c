/**
 * Traffic through the API: agents' reports carry deltas (checked by the
 * report's schema), GET /v1/traffic serves them scoped by role, and /metrics
 * exposes them as counters labelled host, pf, vf, tenant, network.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TrafficReport } from '../../src/domain/traffic.js';
import type { TrafficDeltas } from '../../src/domain/traffic-deltas.js';
import type { Allocation } from '../../src/domain/types.js';
import { expectStatus, inventoryOf, POLICY_FABRIC, startApi, type ApiHarness, type ErrorBody } from '../helpers/api-harness.js';

let h: ApiHarness;
const tokens = { operator: '', alpha: '', beta: '', agent: '' };
const allocs: Record<'a1' | 'a2' | 'b1', Allocation> = {} as never;
let free: { pf: string; vf: number };

const get = (token: string, query: string) => h.call<TrafficReport & ErrorBody>(token, 'GET', `/v1/traffic${query}`);

/** Deltas: each allocated VF and one free VF moved `bytes` rx per 5 s sample; the PF twice that. */
function traffic(t: number, bytes: number): TrafficDeltas {
  const rows = [allocs.a1, allocs.a2, allocs.b1].map((a) => ({ pf: a.pf, row: [a.vfIndex, bytes, bytes / 2, 10, 5, 0, 0] }));
  rows.push({ pf: free.pf, row: [free.vf, bytes, 0, 1, 0, 1, 0] });
  const pfs = [...new Set(rows.map((r) => r.pf))].map((pf) => ({ pf, d: [2 * bytes, bytes, 20, 10, 0, 0] as [number, number, number, number, number, number], vfs: rows.filter((r) => r.pf === pf).map((r) => r.row) }));
  return { intervalS: 5, samples: [{ t, dt: 5000, pfs }] };
}

before(async () => {
  h = await startApi();
  for (const t of ['alpha', 'beta']) await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: t }), 201);
  tokens.operator = await h.token('operator');
  tokens.alpha = await h.token('tenant:alpha');
  tokens.beta = await h.token('tenant:beta');
  tokens.agent = await h.token('agent:host-a');
  await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-a/policy', { document: POLICY_FABRIC }), 200);
  await expectStatus(h.call(tokens.agent, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a') }), 200);
  await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'alpha-n', tenant: 'alpha', physnet: 'fabric', vlan: 100 }), 201);
  await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'beta-n', tenant: 'beta', physnet: 'fabric', vlan: 200 }), 201);
  const allocate = async (token: string, network: string, name: string) =>
    (await expectStatus(h.call<Allocation>(token, 'POST', '/v1/allocations', { network, workload: { kind: 'vm', name } }), 201)).body;
  allocs.a1 = await allocate(tokens.alpha, 'alpha-n', 'vm-a1');
  allocs.a2 = await allocate(tokens.alpha, 'alpha-n', 'vm-a2');
  allocs.b1 = await allocate(tokens.beta, 'beta-n', 'vm-b1');
  const taken = new Set(Object.values(allocs).map((a) => `${a.pf}#${a.vfIndex}`));
  const pf = allocs.a1.pf;
  free = { pf, vf: [0, 1, 2, 3].find((i) => !taken.has(`${pf}#${i}`))! };
  // One report through the API (its schema and ingest), then one a bucket later, after the allocations were made.
  await expectStatus(h.call(tokens.agent, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a'), traffic: traffic(Date.now(), 5000) }), 200);
  h.control.traffic.ingest('host-a', traffic(Date.now(), 10_000), Date.now() + 10_000);
});

after(() => h.close());

describe('traffic api: reports', () => {
  it('refuses a report whose traffic is malformed, naming the field, and changes nothing', async () => {
    const bad = (traffic: unknown) => h.call(tokens.agent, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a'), traffic });
    const cases: Array<[unknown, RegExp]> = [
      [{ intervalS: 5, samples: [{ t: 1, dt: 5000, pfs: [{ pf: 'ens1f0', vfs: [[5000, 1, 1, 1, 1, 1, 1]] }] }] }, /traffic\.samples\.0\.pfs\.0\.vfs\.0\.0 must be 0-4095/],
      [{ intervalS: 5, samples: [{ t: 1, dt: 5000, pfs: [{ pf: 'ens1f0', d: [-1, 0, 0, 0, 0, 0] }] }] }, /traffic\.samples\.0\.pfs\.0\.d\.0/],
      [{ intervalS: 5, samples: [{ t: 1, dt: 5000, pfs: [{ pf: '../etc' }] }] }, /traffic\.samples\.0\.pfs\.0\.pf/],
      [{ intervalS: 5, samples: [], extra: 1 }, /extra/],
    ];
    const before = JSON.stringify((await get(h.admin, '?scope=pf')).body.series);
    for (const [t, says] of cases) {
      const r = await expectStatus(bad(t), 400, 'INVALID_ARGUMENT');
      assert.match(r.body.error.message, says);
      assert.doesNotMatch(r.body.error.message, /\n/);
    }
    assert.equal(JSON.stringify((await get(h.admin, '?scope=pf')).body.series), before);
  });
});

describe('traffic api: who sees what', () => {
  it('staff see every VF that is held or moved, labelled with its allocation', async () => {
    const r = (await expectStatus(get(tokens.operator, '?scope=vf&host=host-a'), 200)).body;
    assert.equal(r.windowS, 900);
    assert.equal(r.intervalS, 5);
    const labels = r.series.map((s) => `${s.pf}#${s.vf}:${s.tenant ?? '-'}/${s.network ?? '-'}`).sort();
    const expected = [
      `${allocs.a1.pf}#${allocs.a1.vfIndex}:alpha/alpha-n`,
      `${allocs.a2.pf}#${allocs.a2.vfIndex}:alpha/alpha-n`,
      `${allocs.b1.pf}#${allocs.b1.vfIndex}:beta/beta-n`,
      `${free.pf}#${free.vf}:-/-`,
    ].sort();
    assert.deepEqual(labels, expected);
    for (const s of r.series) {
      assert.equal(s.simulated, false);
      assert.equal(s.source, 'vf-stats');
      assert.equal(s.t.length, s.rxBps.length);
      assert.deepEqual([s.rxBps.length, s.txBps.length, s.rxPps.length, s.txPps.length, s.rxDropsPs.length, s.txDropsPs.length].every((n) => n === s.t.length), true);
    }
    // 10,000 bytes in a 5 s sample: 2,000 bytes per second.
    const a1 = r.series.find((s) => s.vf === allocs.a1.vfIndex && s.pf === allocs.a1.pf)!;
    assert.equal(a1.rxBps.at(-1), 16000, '2,000 bytes/s, in bits');
  });

  it('a tenant sees only its own VFs, from when each was allocated, and only its own tenant series', async () => {
    const vfs = (await expectStatus(get(tokens.alpha, '?scope=vf'), 200)).body;
    assert.deepEqual(vfs.series.map((s) => s.vf).sort(), [allocs.a1.vfIndex, allocs.a2.vfIndex].sort());
    assert.ok(vfs.series.every((s) => s.tenant === 'alpha'));
    // The bucket of the first report began before the allocations: nothing of it is shown to the tenant.
    assert.ok(vfs.series.every((s) => s.rxBps.every((v) => v === 16000)), JSON.stringify(vfs.series));
    const tenants = (await expectStatus(get(tokens.alpha, '?scope=tenant'), 200)).body;
    assert.deepEqual(tenants.series.map((s) => s.tenant), ['alpha']);
    assert.equal(tenants.series[0]!.rxBps.at(-1), 32000, 'the sum of its two VFs');
    assert.equal(tenants.series[0]!.host, undefined);
    // Another tenant's objects: not found; its network: nothing; PFs: staff only.
    await expectStatus(get(tokens.alpha, '?scope=tenant&tenant=beta'), 404, 'NOT_FOUND');
    assert.deepEqual((await expectStatus(get(tokens.alpha, '?network=beta-n'), 200)).body.series, []);
    assert.deepEqual((await expectStatus(get(tokens.alpha, `?pf=${allocs.b1.pf}&vf=${allocs.b1.vfIndex}`), 200)).body.series, [], 'beta’s VF asked for by name');
    await expectStatus(get(tokens.alpha, '?scope=pf'), 403, 'FORBIDDEN');
    await expectStatus(get(tokens.agent, '?scope=vf'), 403, 'FORBIDDEN');
    const text = JSON.stringify((await get(tokens.alpha, '?scope=vf')).body) + JSON.stringify((await get(tokens.alpha, '?scope=tenant')).body);
    assert.doesNotMatch(text, /beta/);
  });

  it('staff get per-tenant sums and per-PF series', async () => {
    const tenants = (await expectStatus(get(h.admin, '?scope=tenant'), 200)).body;
    assert.deepEqual(tenants.series.map((s) => [s.tenant, s.rxBps.at(-1)]), [['alpha', 32000], ['beta', 16000]]);
    const pfs = (await expectStatus(get(h.admin, `?scope=pf&pf=${allocs.a1.pf}`), 200)).body;
    assert.equal(pfs.series.length, 1);
    assert.equal(pfs.series[0]!.rxBps.at(-1), 32000);
  });

  it('refuses a bad query in one line naming the field', async () => {
    const cases: Array<[string, RegExp]> = [
      ['?scope=host', /scope/],
      ['?vf=1', /"vf" needs field "pf"/],
      ['?pf=ens1f0&vf=9999', /vf must be a VF index 0-4095/],
      ['?pf=ens1f0&vf=x', /vf/],
      ['?host=Host_A', /host/],
      ['?pf=../../x', /pf/],
      ['?tenant=-bad', /tenant/],
      ['?network=a%0Ab', /network/],
      ['?scope=pf&tenant=alpha', /scope=pf takes host and pf only/],
      ['?since=5', /since/],
    ];
    for (const [query, says] of cases) {
      const r = await expectStatus(get(h.admin, query), 400, 'INVALID_ARGUMENT');
      assert.match(r.body.error.message, says, query);
      assert.doesNotMatch(r.body.error.message, /\n/);
    }
  });
});

describe('traffic api: /metrics', () => {
  it('exposes per-VF counters labelled host, pf, vf, tenant, network (no allocation ids) and per-PF counters', async () => {
    const text = (await expectStatus(h.call(null, 'GET', '/metrics'), 200)).text;
    const line = (a: Allocation, tenant: string, network: string) => `vfleet_vf_rx_bytes_total{host="host-a",pf="${a.pf}",vf="${a.vfIndex}",tenant="${tenant}",network="${network}"} 15000`;
    assert.ok(text.includes(line(allocs.a1, 'alpha', 'alpha-n')), text);
    assert.ok(text.includes(line(allocs.b1, 'beta', 'beta-n')));
    assert.ok(text.includes(`vfleet_vf_rx_dropped_total{host="host-a",pf="${free.pf}",vf="${free.vf}",tenant="",network=""} 2`));
    assert.match(text, /^# TYPE vfleet_pf_tx_bytes_total counter$/m);
    assert.ok(text.includes(`vfleet_pf_rx_bytes_total{host="host-a",pf="${allocs.a1.pf}"} 30000`));
    assert.ok(text.includes('vfleet_traffic_simulated{host="host-a"} 0'));
    for (const a of Object.values(allocs)) assert.ok(!text.includes(a.id), 'no allocation id');
  });

  it('drops a host’s traffic when the host is forgotten', async () => {
    h.control.hosts.forget('host-a');
    assert.deepEqual((await get(h.admin, '?scope=pf')).body.series, []);
    const text = (await h.call(null, 'GET', '/metrics')).text;
    assert.doesNotMatch(text, /vfleet_pf_rx_bytes_total\{host="host-a"/);
    assert.doesNotMatch(text, /tenant="",network=""/, 'a free VF that moved goes with its host');
  });
});
