/**
 * The device plugin's HTTP protocol (GET /v1/agent/devices, POST
 * /v1/agent/device-claims) on a real server over loopback, driven as the
 * plugin drives it: through HttpLink, with an agent token.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HttpLink } from '../../src/agent/link.js';
import type { DeviceView } from '../../src/controller/device-view.js';
import type { Allocation } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import { expectStatus, inventoryOf, newToken, POLICY_FABRIC, startApi, type ApiHarness } from '../helpers/api-harness.js';

let h: ApiHarness;
const tokens = { agentA: '', agentB: '', tenant: '', node: '', operator: '' };
/** ens1f0's VF 0 and ens2f0's VF 0 on host-a. */
const VFS = ['0000:10:00.1', '0000:11:00.1'];
const CLAIM = { host: 'host-a', resource: 'vfleet.io/red', network: 'red', pciAddresses: VFS };

before(async () => {
  h = await startApi();
  tokens.agentA = (await newToken(h, 'agent:host-a')).token;
  tokens.agentB = (await newToken(h, 'agent:host-b')).token;
  tokens.operator = (await newToken(h, 'operator')).token;
  tokens.node = (await newToken(h, 'node:host-a')).token;
  await expectStatus(h.call(tokens.agentA, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a') }), 200);
  await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-a/policy', { document: POLICY_FABRIC }), 200);
  await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'acme' }), 201);
  tokens.tenant = (await newToken(h, 'tenant:acme')).token;
  await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100 }), 201);
});

after(async () => {
  await h.close();
});

describe('api: device plugin protocol', () => {
  // The long poll below waits 30 s: a test timeout of 20 s fails it if the claim does not wake it.
  it('serves the view and takes claims from the host’s agent over HttpLink; a retried claim gets the same allocations', { timeout: 20_000 }, async () => {
    const link = new HttpLink(h.base, tokens.agentA);
    const view = await link.devices('host-a', undefined, 0);
    assert.deepEqual(view.networks.map((n) => n.name), ['red']);
    const polled = link.devices('host-a', view.revision, 30_000);
    const claims = await link.claimDevices(CLAIM);
    assert.deepEqual(claims.map((a) => [a.pciAddress, a.state, a.deviceClaim?.resource]), [[VFS[0], 'pending', 'vfleet.io/red'], [VFS[1], 'pending', 'vfleet.io/red']]);
    const changed = await polled;
    assert.notEqual(changed.revision, view.revision);
    assert.deepEqual(changed.allocations.map((a) => a.id).sort(), claims.map((a) => a.id).sort());
    assert.deepEqual((await link.claimDevices(CLAIM)).map((a) => a.id), claims.map((a) => a.id));
    // Other allocations say they are no claim.
    const plain = await expectStatus(h.call<Allocation>(tokens.operator, 'POST', '/v1/allocations', { network: 'red', workload: { kind: 'vm', name: 'vm-1' } }), 201);
    assert.equal(plain.body.deviceClaim, null);
  });

  it('passes refusals on with their code, and says when the controller cannot be reached', async () => {
    const link = new HttpLink(h.base, tokens.agentA);
    await assert.rejects(link.claimDevices({ ...CLAIM, resource: 'vfleet.io/other' }), (e: unknown) => e instanceof SriovError && e.code === 'BUSY' && /is held by allocation/.test(e.message));
    // A port nobody listens on: taken, then closed.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const gone = new HttpLink(`http://127.0.0.1:${port}`, tokens.agentA);
    await assert.rejects(gone.claimDevices(CLAIM), (e: unknown) => e instanceof SriovError && e.code === 'TRY_AGAIN' && /cannot be reached/.test(e.message));
  });

  it('is open to the host’s agent and staff only', async () => {
    await expectStatus(h.call<DeviceView>(tokens.operator, 'GET', '/v1/agent/devices?host=host-a'), 200);
    await expectStatus(h.call(tokens.agentB, 'GET', '/v1/agent/devices?host=host-a'), 403, 'FORBIDDEN');
    await expectStatus(h.call(tokens.tenant, 'GET', '/v1/agent/devices?host=host-a'), 403, 'FORBIDDEN');
    await expectStatus(h.call(tokens.node, 'GET', '/v1/agent/devices?host=host-a'), 403, 'FORBIDDEN');
    const claim = { ...CLAIM, pciAddresses: ['0000:10:00.3'] };
    await expectStatus(h.call(tokens.agentB, 'POST', '/v1/agent/device-claims', claim), 403, 'FORBIDDEN');
    await expectStatus(h.call(tokens.tenant, 'POST', '/v1/agent/device-claims', claim), 403, 'FORBIDDEN');
    await expectStatus(h.call(tokens.node, 'POST', '/v1/agent/device-claims', claim), 403, 'FORBIDDEN');
    const made = await expectStatus(h.call<{ allocations: Allocation[] }>(h.admin, 'POST', '/v1/agent/device-claims', claim), 200);
    assert.equal(made.body.allocations[0]!.pciAddress, '0000:10:00.3');
  });

  it('refuses malformed requests by their schema, naming the field', async () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ ...CLAIM, extra: 1 }, /unknown field "extra"/],
      [{ ...CLAIM, pciAddresses: [] }, /pciAddresses/],
      [{ ...CLAIM, pciAddresses: [VFS[0], VFS[0]] }, /lists VF 0000:10:00.1 twice/],
      [{ ...CLAIM, pciAddresses: ['0000:10:00.9'] }, /PCI address/],
      [{ ...CLAIM, resource: 'red' }, /resource must be an extended resource/],
      [{ host: 'host-a', resource: 'vfleet.io/red', network: 'red' }, /needs field "pciAddresses"/],
    ];
    for (const [body, message] of bad) {
      const r = await expectStatus(h.call(tokens.agentA, 'POST', '/v1/agent/device-claims', body), 400, 'INVALID_ARGUMENT');
      assert.match(r.body.error.message, message);
    }
    await expectStatus(h.call(tokens.agentA, 'GET', '/v1/agent/devices?host=host-a&wait=x'), 400, 'INVALID_ARGUMENT');
    await expectStatus(h.call(tokens.agentA, 'GET', '/v1/agent/devices'), 400, 'INVALID_ARGUMENT');
  });

  it('documents both routes and the DeviceView in the OpenAPI document', async () => {
    const doc = (await expectStatus(h.call<{ paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } }>(null, 'GET', '/openapi.json'), 200)).body;
    assert.ok(doc.paths['/v1/agent/devices']?.get);
    assert.ok(doc.paths['/v1/agent/device-claims']?.post);
    assert.ok(doc.components.schemas.DeviceView);
  });
});
