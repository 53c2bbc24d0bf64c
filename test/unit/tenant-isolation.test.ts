/**
 * A tenant must never reach another tenant's objects or a host namespace.
 * Tenant alpha's token tries every route of the API (walked from the OpenAPI
 * document, so a new route is covered the day it is added) on tenant bravo's
 * objects and on host paths; nothing of bravo's may come back. Node and
 * agent tokens are walked the same way against what they may use.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NODE_ROUTES } from '../../src/api/auth.js';
import type { Allocation, AuditEvent } from '../../src/domain/types.js';
import { expectStatus, inventoryOf, newToken, POLICY_FABRIC, startApi, type ApiHarness, type Reply } from '../helpers/api-harness.js';

let h: ApiHarness;
const tok = { operator: '', alpha: '', bravo: '', nodeA: '', nodeB: '', agentA: '', bravoTokenId: '' };

/** What bravo holds, which no request of alpha's names: none of it may appear in a reply to alpha. */
const BRAVO = {
  netns: '/var/run/netns/bravo-secret-pod',
  vm: 'bravo-secret-vm',
  workload: 'bravo-secret-workload',
  vmWorkload: 'bravo-secret-vm-workload',
  mac: '02:5f:00:ba:0b:01',
  vlan: 3907,
  reason: 'net1 already exists in bravo-secret-pod',
};
let bravoAlloc: Allocation;
let bravoVmAlloc: Allocation;
let alphaAlloc: Allocation;

/** Paths on a host that only the orchestrator may name. */
const HOST_PATHS = ['/proc/1/ns/net', '/var/run/netns/x', BRAVO.netns, '/proc/self/ns/net'];

before(async () => {
  h = await startApi();
  for (const name of ['alpha', 'bravo']) await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name }), 201);
  tok.operator = (await newToken(h, 'operator')).token;
  tok.alpha = (await newToken(h, 'tenant:alpha')).token;
  const bravo = await newToken(h, 'tenant:bravo');
  tok.bravo = bravo.token;
  tok.bravoTokenId = bravo.id;
  tok.nodeA = (await newToken(h, 'node:host-a')).token;
  tok.nodeB = (await newToken(h, 'node:host-b')).token;
  tok.agentA = (await newToken(h, 'agent:host-a')).token;
  await expectStatus(h.call(tok.agentA, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a') }), 200);
  await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-a/policy', { document: POLICY_FABRIC }), 200);
  await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'alpha-net', tenant: 'alpha', physnet: 'fabric', vlan: 3801 }), 201);
  await expectStatus(
    h.call(h.admin, 'POST', '/v1/networks', {
      name: 'bravo-net',
      tenant: 'bravo',
      physnet: 'fabric',
      vlan: BRAVO.vlan,
      ipam: { cidr: '198.18.7.0/24' },
    }),
    201,
  );
  // The orchestrator (node token) attaches bravo's pod and VM on host-a.
  bravoAlloc = (
    await expectStatus(
      h.call<Allocation>(tok.nodeA, 'POST', '/v1/allocations', {
        network: 'bravo-net',
        workload: { kind: 'container', name: BRAVO.workload },
        attach: { kind: 'container', netns: BRAVO.netns, ifname: 'net1' },
      }),
      201,
    )
  ).body;
  bravoVmAlloc = (
    await expectStatus(
      h.call<Allocation>(tok.nodeA, 'POST', '/v1/allocations', {
        network: 'bravo-net',
        workload: { kind: 'vm', name: BRAVO.vmWorkload },
        mac: BRAVO.mac,
        attach: { kind: 'vm', vm: BRAVO.vm },
      }),
      201,
    )
  ).body;
  // The attach fails inside bravo's namespace, and says why.
  await expectStatus(
    h.call(tok.agentA, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a'), statuses: [{ id: bravoAlloc.id, state: 'failed', reason: BRAVO.reason }] }),
    200,
  );
  alphaAlloc = (await expectStatus(h.call<Allocation>(tok.alpha, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'container', name: 'alpha-w' } }), 201)).body;
});

after(() => h.close());

/** Every documented route, as `METHOD /path/:param`. */
async function apiRoutes(): Promise<Array<{ method: string; path: string }>> {
  const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops)
      .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
      .map((m) => ({ method: m.toUpperCase(), path: path.replace(/\{(\w+)\}/g, ':$1') })),
  );
}

/**
 * What a hostile caller sends to each route: aimed at bravo's objects and at
 * host paths. A route missing here fails the walk, so whoever adds a route
 * says how a tenant might abuse it.
 */
function attempts(route: string): Array<{ url: string; body?: unknown }> {
  const inventory = inventoryOf('host-a');
  const table: Record<string, Array<{ url: string; body?: unknown }>> = {
    'GET /healthz': [{ url: '/healthz' }],
    'GET /v1/info': [{ url: '/v1/info' }],
    'GET /v1/tenants': [{ url: '/v1/tenants' }],
    'POST /v1/tenants': [{ url: '/v1/tenants', body: { name: 'bravo' } }, { url: '/v1/tenants', body: { name: 'charlie' } }],
    'DELETE /v1/tenants/:name': [{ url: '/v1/tenants/bravo' }],
    'GET /v1/tenants/:name': [{ url: '/v1/tenants/bravo' }],
    'PUT /v1/tenants/:name': [{ url: '/v1/tenants/bravo', body: { pfMaxTxRateMbps: 100 } }, { url: '/v1/tenants/alpha', body: { pfMaxTxRateMbps: 100 } }],
    'GET /v1/physnets': [{ url: '/v1/physnets' }],
    'PUT /v1/physnets/:name': [{ url: '/v1/physnets/fabric', body: { accountingOnly: true } }],
    'GET /v1/networks': [{ url: '/v1/networks' }],
    'POST /v1/networks': [
      { url: '/v1/networks', body: { name: 'alpha-in-bravo', tenant: 'bravo', physnet: 'fabric', vlan: 3802 } },
      { url: '/v1/networks', body: { name: 'alpha-on-bravo-vlan', tenant: 'alpha', physnet: 'fabric', vlan: BRAVO.vlan } },
    ],
    'GET /v1/networks/:name': [{ url: '/v1/networks/bravo-net' }],
    'GET /v1/networks/:name/capacity': [{ url: '/v1/networks/bravo-net/capacity?host=host-a' }, { url: '/v1/networks/bravo-net/capacity?host=host-b' }],
    'PUT /v1/networks/:name': [{ url: '/v1/networks/bravo-net', body: { maxTxRateMbps: 1 } }, { url: '/v1/networks/bravo-net', body: { vlan: 3803 } }],
    'DELETE /v1/networks/:name': [{ url: '/v1/networks/bravo-net' }],
    'GET /v1/hosts': [{ url: '/v1/hosts' }],
    'GET /v1/hosts/:name': [{ url: '/v1/hosts/host-a' }],
    'GET /v1/hosts/:name/policy': [{ url: '/v1/hosts/host-a/policy' }],
    'PUT /v1/hosts/:name/policy': [{ url: '/v1/hosts/host-a/policy', body: { document: POLICY_FABRIC } }],
    'POST /v1/hosts/:name/reconcile': [{ url: '/v1/hosts/host-a/reconcile' }],
    // A plan lists what a policy would change on the host's PFs, whoever's VFs they are: staff only.
    'POST /v1/hosts/:name/policy/plan': [{ url: '/v1/hosts/host-a/policy/plan', body: { document: POLICY_FABRIC } }],
    // The fleet's counts and every tenant's failed allocations: staff only.
    'GET /v1/overview': [{ url: '/v1/overview' }],
    // Draining a PF would starve every tenant on it of new VFs: staff only.
    'POST /v1/hosts/:name/pfs/:pf/drain': [{ url: '/v1/hosts/host-a/pfs/ens1f0/drain' }, { url: `/v1/hosts/host-a/pfs/${encodeURIComponent(inventory.pfs[0]!.pciAddress)}/drain` }],
    'POST /v1/hosts/:name/pfs/:pf/undrain': [{ url: '/v1/hosts/host-a/pfs/ens1f0/undrain' }],
    // A drain moves every tenant's workloads off a PF or host: staff only, even its dry run (it shows them all).
    'POST /v1/drains': [{ url: '/v1/drains', body: { host: 'host-a' } }, { url: '/v1/drains', body: { host: 'host-a', pf: 'ens1f0', dryRun: true } }],
    'GET /v1/allocations': [
      { url: '/v1/allocations' },
      { url: '/v1/allocations?network=bravo-net' },
      { url: '/v1/allocations?host=host-a' },
      { url: '/v1/allocations?ifname=net1' },
    ],
    'POST /v1/allocations': [
      { url: '/v1/allocations', body: { network: 'bravo-net', workload: { kind: 'container', name: 'w' } } },
      ...HOST_PATHS.flatMap((netns) => [
        { url: '/v1/allocations', body: { network: 'alpha-net', workload: { kind: 'container', name: 'w' }, attach: { kind: 'container', netns, ifname: 'net9' } } },
        { url: '/v1/allocations', body: { network: 'bravo-net', workload: { kind: 'container', name: 'w' }, attach: { kind: 'container', netns, ifname: 'net9' } } },
      ]),
      { url: '/v1/allocations', body: { network: 'alpha-net', workload: { kind: 'vm', name: 'w' }, attach: { kind: 'vm', vm: BRAVO.vm } } },
      { url: '/v1/allocations', body: { network: 'alpha-net', workload: { kind: 'vm', name: 'w' }, attach: { kind: 'vm', vm: 'instance-00000001' } } },
      { url: '/v1/allocations', body: { network: 'alpha-net', workload: { kind: 'container', name: 'w' }, mac: BRAVO.mac } },
      { url: '/v1/allocations', body: { network: 'alpha-net', workload: { kind: 'container', name: 'w' }, host: 'host-a', pciAddress: bravoVmAlloc.pciAddress } },
    ],
    'GET /v1/allocations/:id': [{ url: `/v1/allocations/${bravoAlloc.id}` }, { url: `/v1/allocations/${bravoVmAlloc.id}` }],
    'DELETE /v1/allocations/:id': [{ url: `/v1/allocations/${bravoVmAlloc.id}` }],
    'GET /v1/allocations/:id/vm-config': [{ url: `/v1/allocations/${bravoVmAlloc.id}/vm-config` }],
    // Migrations move any tenant's workload between hosts: staff start and drive them; a tenant reads its own.
    'GET /v1/migrations': [{ url: '/v1/migrations' }, { url: '/v1/migrations?host=host-a' }, { url: `/v1/migrations?allocation=${bravoVmAlloc.id}` }],
    'POST /v1/migrations': [
      { url: '/v1/migrations', body: { allocation: bravoVmAlloc.id, to: { host: 'host-a' }, hypervisor: 'hook' } },
      { url: '/v1/migrations', body: { allocation: alphaAlloc.id, to: { host: 'host-a' }, dryRun: true } },
    ],
    'GET /v1/migrations/:id': [{ url: `/v1/migrations/${bravoVmAlloc.id}` }],
    'POST /v1/migrations/:id/abort': [{ url: `/v1/migrations/${bravoVmAlloc.id}/abort` }],
    'POST /v1/migrations/:id/prepare': [{ url: `/v1/migrations/${bravoVmAlloc.id}/prepare` }],
    'POST /v1/migrations/:id/complete': [{ url: `/v1/migrations/${bravoVmAlloc.id}/complete` }],
    'GET /v1/audit/isolation': [{ url: '/v1/audit/isolation' }],
    'GET /v1/events': [{ url: '/v1/events' }, { url: `/v1/events?object=allocation/${bravoAlloc.id}` }],
    'GET /v1/events/stream': [{ url: '/v1/events/stream' }, { url: `/v1/events/stream?object=allocation/${bravoAlloc.id}` }],
    // Its own VFs and tenant series only, whatever it filters on (asking for bravo's tenant series or PFs is refused: traffic-api.test.ts).
    'GET /v1/traffic': [
      { url: '/v1/traffic' },
      { url: '/v1/traffic?scope=tenant' },
      { url: '/v1/traffic?network=bravo-net' },
      { url: `/v1/traffic?host=host-a&pf=${bravoVmAlloc.pf}&vf=${bravoVmAlloc.vfIndex}` },
    ],
    'GET /v1/tokens': [{ url: '/v1/tokens' }],
    'POST /v1/tokens': [{ url: '/v1/tokens', body: { role: 'tenant:bravo' } }, { url: '/v1/tokens', body: { role: 'node:host-a' } }],
    'DELETE /v1/tokens/:id': [{ url: `/v1/tokens/${tok.bravoTokenId}` }],
    'POST /v1/agent/report': [{ url: '/v1/agent/report', body: { inventory } }],
    'GET /v1/agent/desired': [{ url: '/v1/agent/desired?host=host-a' }],
    // The device view lists every tenant's networks and holders on the host: agents and staff only.
    'GET /v1/agent/devices': [{ url: '/v1/agent/devices?host=host-a' }],
    'POST /v1/agent/device-claims': [
      { url: '/v1/agent/device-claims', body: { host: 'host-a', resource: 'vfleet.io/red', network: 'alpha-net', pciAddresses: [bravoVmAlloc.pciAddress] } },
      { url: '/v1/agent/device-claims', body: { host: 'host-a', resource: 'vfleet.io/red', network: 'bravo-net', pciAddresses: ['0000:11:00.4'] } },
    ],
  };
  const found = table[route];
  assert.ok(found, `no isolation attempt for ${route}: add one to attempts() in test/unit/tenant-isolation.test.ts`);
  return found;
}

/** What a tenant may read back, with its own objects only; everything else is 403 or 404 to it. */
const TENANT_READS = new Set(['GET /healthz', 'GET /v1/info', 'GET /v1/tenants', 'GET /v1/networks', 'GET /v1/allocations', 'GET /v1/migrations', 'GET /v1/traffic']);

/** bravo's data that alpha's request did not itself contain. */
function leaks(reply: Reply<unknown>, requestText: string): string[] {
  const markers = [BRAVO.netns, BRAVO.vm, BRAVO.workload, BRAVO.vmWorkload, BRAVO.mac, BRAVO.reason, bravoAlloc.id, bravoVmAlloc.id, '198.18.7.', tok.bravoTokenId, 'bravo'];
  const found = markers.filter((m) => !requestText.includes(m) && reply.text.toLowerCase().includes(m.toLowerCase()));
  if (new RegExp(`(vlan\\D{0,4})${BRAVO.vlan}\\b`, 'i').test(reply.text) && !requestText.includes(String(BRAVO.vlan))) found.push(`VLAN ${BRAVO.vlan}`);
  return found;
}

async function counts(): Promise<{ allocations: number; networks: number; tenants: number; tokens: number }> {
  const tx = h.store.tx;
  return {
    allocations: (await tx.listAllocations()).length,
    networks: (await tx.listNetworks()).length,
    tenants: (await tx.listTenants()).length,
    tokens: (await tx.listTokens()).length,
  };
}

describe('tenant isolation: every route, as tenant alpha, against tenant bravo and the host', () => {
  it('walks a real route list', async () => {
    const routes = await apiRoutes();
    assert.ok(routes.length >= 25, `only ${routes.length} routes found`);
    assert.ok(routes.some((r) => r.method === 'POST' && r.path === '/v1/allocations'));
  });

  it('gets 403 or 404 (or its own objects only), changes nothing, and learns nothing of bravo', async () => {
    const before = await counts();
    for (const { method, path } of await apiRoutes()) {
      const route = `${method} ${path}`;
      for (const attempt of attempts(route)) {
        const requestText = `${attempt.url} ${JSON.stringify(attempt.body ?? null)}`;
        const r = await h.call<unknown>(tok.alpha, method, attempt.url, attempt.body);
        const what = `${method} ${requestText} → ${r.status} ${r.text.slice(0, 300)}`;
        if (TENANT_READS.has(route)) assert.equal(r.status, 200, what);
        // 409 only where a conflict is all there is to say (alpha's own VLAN or MAC request against bravo's).
        else assert.ok([403, 404, 409].includes(r.status), what);
        assert.deepEqual(leaks(r, requestText), [], what);
      }
    }
    assert.deepEqual(await counts(), before, 'no attempt of alpha changed the store');
  });

  it('names no host path: a netns path or VM domain is 403 with who may, whatever the network', async () => {
    for (const netns of HOST_PATHS) {
      const r = await expectStatus(
        h.call(tok.alpha, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'container', name: 'w' }, attach: { kind: 'container', netns, ifname: 'net1' } }),
        403,
        'FORBIDDEN',
      );
      assert.equal(r.body.error.message, "tenant:alpha may not name a network namespace or VM: only the orchestrator's node token (node:<host>), an operator or an admin may");
    }
    await expectStatus(h.call(tok.alpha, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'vm', name: 'w' }, attach: { kind: 'vm', vm: BRAVO.vm } }), 403, 'FORBIDDEN');
  });

  it('a tenant still lists, reserves and releases its own allocations', async () => {
    const own = (await expectStatus(h.call<Allocation[]>(tok.alpha, 'GET', '/v1/allocations'), 200)).body;
    assert.deepEqual(own.map((a) => a.id), [alphaAlloc.id]);
    const reserved = (await expectStatus(h.call<Allocation>(tok.alpha, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'vm', name: 'alpha-vm' } }), 201)).body;
    assert.equal(reserved.attachment, null);
    const released = (await expectStatus(h.call<Allocation>(tok.alpha, 'DELETE', `/v1/allocations/${reserved.id}`), 200)).body;
    assert.equal(released.state, 'releasing');
  });

  it('a tenant lists nothing of bravo’s, whatever it filters on', async () => {
    for (const query of ['', '?network=bravo-net', '?host=host-a', `?workload=${BRAVO.workload}`]) {
      const list = (await expectStatus(h.call<Allocation[]>(tok.alpha, 'GET', `/v1/allocations${query}`), 200)).body;
      assert.ok(list.every((a) => a.tenant === 'alpha'), query);
    }
  });
});

describe('node and agent tokens: only their routes, only their host', () => {
  it('a node token reaches exactly NODE_ROUTES; everything else is 403', async () => {
    for (const { method, path } of await apiRoutes()) {
      const route = `${method} ${path}`;
      if (route === 'GET /healthz') continue;
      for (const attempt of attempts(route)) {
        const r = await h.call<unknown>(tok.nodeB, method, attempt.url, attempt.body);
        const what = `${route} ${attempt.url} → ${r.status} ${r.text}`;
        // On its routes a node may still be refused by the controller (another host, say), never by the route guard.
        if (NODE_ROUTES.has(route)) assert.doesNotMatch(r.text, /node tokens only/, what);
        else {
          assert.equal(r.status, 403, what);
          assert.match(r.text, /node tokens only read networks and allocate, attach and release on their host/, what);
        }
      }
    }
  });

  it('an agent token reaches only /v1/agent/* and /v1/info', async () => {
    for (const { method, path } of await apiRoutes()) {
      const route = `${method} ${path}`;
      if (route === 'GET /healthz' || route === 'GET /v1/info' || path.startsWith('/v1/agent/')) continue;
      for (const attempt of attempts(route)) {
        const r = await h.call<unknown>(tok.agentA, method, attempt.url, attempt.body);
        assert.equal(r.status, 403, `${route} → ${r.status} ${r.text}`);
      }
    }
  });

  it('a node attaches any tenant’s network on its own host, and never on another', async () => {
    const a = (
      await expectStatus(
        h.call<Allocation>(tok.nodeA, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'container', name: 'pod-1' }, attach: { kind: 'container', netns: '/var/run/netns/pod-1', ifname: 'net1' } }),
        201,
      )
    ).body;
    assert.equal(a.host, 'host-a');
    const other = await expectStatus(
      h.call(tok.nodeA, 'POST', '/v1/allocations', { network: 'alpha-net', host: 'host-b', workload: { kind: 'container', name: 'pod-2' }, attach: { kind: 'container', netns: '/var/run/netns/pod-2', ifname: 'net1' } }),
      403,
      'FORBIDDEN',
    );
    assert.match(other.body.error.message, /node:host-a may only allocate on its own host host-a, not on host-b/);
    // host-b has no VFs: its node's allocation cannot land on host-a instead.
    await expectStatus(
      h.call(tok.nodeB, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'container', name: 'pod-3' }, attach: { kind: 'container', netns: '/var/run/netns/pod-3', ifname: 'net1' } }),
      404,
    );
    await expectStatus(h.call(tok.nodeB, 'GET', `/v1/allocations/${a.id}`), 404, 'NOT_FOUND');
    await expectStatus(h.call(tok.nodeB, 'DELETE', `/v1/allocations/${a.id}`), 404, 'NOT_FOUND');
    assert.deepEqual((await expectStatus(h.call<Allocation[]>(tok.nodeB, 'GET', '/v1/allocations'), 200)).body, []);
    assert.deepEqual((await expectStatus(h.call<Allocation[]>(tok.nodeA, 'GET', '/v1/allocations?host=host-b'), 200)).body, []);
    const seen = (await expectStatus(h.call<Allocation[]>(tok.nodeA, 'GET', '/v1/allocations?workload=pod-1'), 200)).body;
    assert.deepEqual(seen.map((x) => x.id), [a.id]);
    await expectStatus(h.call(tok.nodeA, 'DELETE', `/v1/allocations/${a.id}`), 200);
  });
});

describe('errors from inside a namespace', () => {
  it('reach staff and the node of that host; a tenant reads a generic line; the audit log keeps the detail', async () => {
    const bravoSees = (await expectStatus(h.call<Allocation>(tok.bravo, 'GET', `/v1/allocations/${bravoAlloc.id}`), 200)).body;
    assert.equal(bravoSees.state, 'failed');
    assert.equal(bravoSees.reason, 'attach failed on the host; an operator can see the details in the audit log');
    const listed = (await expectStatus(h.call<Allocation[]>(tok.bravo, 'GET', '/v1/allocations'), 200)).body;
    assert.ok(listed.every((a) => !a.reason?.includes('already exists')));
    for (const token of [h.admin, tok.operator, tok.nodeA]) {
      const seen = (await expectStatus(h.call<Allocation>(token, 'GET', `/v1/allocations/${bravoAlloc.id}`), 200)).body;
      assert.equal(seen.reason, BRAVO.reason);
    }
    const events = (await expectStatus(h.call<AuditEvent[]>(tok.operator, 'GET', `/v1/events?object=allocation/${bravoAlloc.id}`), 200)).body;
    assert.ok(events.some((e) => e.action === 'allocation.failed' && JSON.stringify(e.after).includes(BRAVO.reason)));
  });
});
