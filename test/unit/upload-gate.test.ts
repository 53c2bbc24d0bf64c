// Inventory uploads taken at once (api/upload-gate.ts): a fresh controller
// that the whole fleet answers with its inventory takes a few at a time and
// refuses the others unread, 503 with Retry-After; the agent's reporter sends
// again after a jittered wait. Liveness reports are never held back.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Reporter } from '../../src/agent/reporter.js';
import { UploadGate, SMALL_REPORT_BYTES, UPLOAD_RETRY_AFTER_S } from '../../src/api/upload-gate.js';
import type { AgentReport } from '../../src/controller/hosts.js';
import { SriovError } from '../../src/host/errors.js';
import { inventoryHash } from '../../src/host/inventory-hash.js';
import type { HostInventory } from '../../src/host/model.js';
import { expectStatus, startApi, type ApiHarness } from '../helpers/api-harness.js';
import { makeHost } from '../helpers/inventory.js';

const big = (name: string): HostInventory => makeHost({ name, pfs: 2, vfs: 128, driver: 'ice', linkSpeedMbps: 100_000 }).inventory;

describe('UploadGate', () => {
  it('takes up to its limit, refuses the next with UNAVAILABLE and a retry hint, and takes again once one leaves', () => {
    const gate = new UploadGate(2);
    const a = gate.enter('host-a');
    gate.enter('host-b');
    assert.throws(() => gate.enter('host-c'), (e: unknown) => {
      assert.ok(e instanceof SriovError);
      assert.equal(e.code, 'UNAVAILABLE');
      assert.equal(e.details.nothingChanged, true);
      assert.deepEqual(e.details.data, { retryAfterS: UPLOAD_RETRY_AFTER_S });
      assert.match(e.message, /taking 2 inventories already; the report of host-c was not read: send it again in 2 s/);
      return true;
    });
    a();
    a(); // leaving twice gives back one place
    assert.equal(gate.taking, 1);
    gate.enter('host-c');
    assert.throws(() => gate.enter('host-d'), { code: 'UNAVAILABLE' });
  });

  it('holds back only reports that may carry an inventory', () => {
    assert.equal(UploadGate.large(String(SMALL_REPORT_BYTES)), false);
    assert.equal(UploadGate.large('120'), false);
    assert.equal(UploadGate.large(String(SMALL_REPORT_BYTES + 1)), true);
    assert.equal(UploadGate.large(undefined), true, 'a chunked body has no length');
    assert.equal(UploadGate.large('x'), true);
  });

  it('refuses a limit below 1', () => {
    assert.throws(() => new UploadGate(0), /at least 1, got 0/);
  });
});

describe('POST /v1/agent/report through the gate', () => {
  let h: ApiHarness;
  const gate = new UploadGate(1);
  const tokens: Record<string, string> = {};

  before(async () => {
    h = await startApi({ uploads: gate });
    for (const name of ['host-a', 'host-b']) tokens[name] = await h.token(`agent:${name}`);
  });
  after(() => h.close());

  /** A report whose body arrives only when `finish` is called: it holds its place at the gate meanwhile. */
  function slowUpload(name: string) {
    const inventory = big(name);
    const body = Buffer.from(JSON.stringify({ inventory, inventoryHash: inventoryHash(inventory) }));
    const url = new URL('/v1/agent/report', h.base);
    let answered: (status: number) => void;
    const status = new Promise<number>((resolve) => (answered = resolve));
    const req = request(url, { method: 'POST', headers: { authorization: `Bearer ${tokens[name]}`, 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      res.resume();
      res.once('end', () => answered(res.statusCode!));
    });
    req.write(body.subarray(0, 1000));
    return { status, finish: () => req.end(body.subarray(1000)) };
  }

  /** Until the controller has taken the slow upload's headers, and so its place. */
  async function placeTaken(): Promise<void> {
    for (let i = 0; gate.taking === 0; i++) {
      assert.ok(i < 500, 'the slow upload reached the gate');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  it('refuses a second inventory while one is read, 503 with Retry-After and nothing written; a liveness report passes', async () => {
    const inventory = big('host-b');
    assert.ok(JSON.stringify(inventory).length > SMALL_REPORT_BYTES, 'the inventory is above the small-report size');
    const slow = slowUpload('host-a');
    await placeTaken();
    const refused = await expectStatus(h.call<{ error: { code: string; message: string } }>(tokens['host-b']!, 'POST', '/v1/agent/report', { inventory, inventoryHash: inventoryHash(inventory) }), 503, 'UNAVAILABLE');
    assert.equal(refused.body.error.code, 'UNAVAILABLE');
    assert.match(refused.body.error.message, /taking 1 inventories already; the report of host-b was not read/);
    assert.equal((await h.control.hosts.list({ id: 'local', role: 'admin' })).length, 0, 'nothing written');
    // A report without inventory is small: never held back (the controller does not know host-b's hash yet: 409, not 503).
    await expectStatus(h.call(tokens['host-b']!, 'POST', '/v1/agent/report', { inventoryHash: inventoryHash(inventory) }), 409, 'CONFLICT');
    slow.finish();
    assert.equal(await slow.status, 200);
    await expectStatus(h.call(tokens['host-b']!, 'POST', '/v1/agent/report', { inventory, inventoryHash: inventoryHash(inventory) }), 200);
    const names = (await h.control.hosts.list({ id: 'local', role: 'admin' })).map((x) => x.name).sort();
    assert.deepEqual(names, ['host-a', 'host-b']);
  });

  it('says Retry-After in the header', async () => {
    const slow = slowUpload('host-a');
    const inventory = big('host-b');
    await placeTaken();
    const res = await fetch(new URL('/v1/agent/report', h.base), {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens['host-b']}`, 'content-type': 'application/json' },
      body: JSON.stringify({ inventory, inventoryHash: inventoryHash(inventory) }),
    });
    await res.text();
    const header = res.headers.get('retry-after');
    assert.equal(res.status, 503);
    slow.finish();
    assert.equal(await slow.status, 200);
    assert.equal(header, String(UPLOAD_RETRY_AFTER_S));
  });
});

describe('the reporter and a busy controller', () => {
  const inventory = big('host-a');
  const busy = () => new SriovError('UNAVAILABLE', 'controller answered 503: busy', { data: { retryAfterS: 2 } });

  it('sends the inventory again after a wait of 1-3 times Retry-After, at random', async () => {
    const waits: number[] = [];
    const sent: AgentReport[] = [];
    let refusals = 2;
    const randoms = [0, 0.999];
    const reporter = new Reporter(
      async (r) => {
        sent.push(r);
        if (r.inventory && refusals-- > 0) throw busy();
      },
      { sleep: async (ms) => void waits.push(ms), random: () => randoms.shift()! },
    );
    await reporter.report(inventory, []);
    assert.deepEqual(waits, [2000, 2000 * (1 + 2 * 0.999)]);
    assert.equal(sent.filter((r) => r.inventory).length, 3);
    // Accepted: the next report is the hash alone.
    await reporter.report(inventory, []);
    assert.equal(sent.at(-1)!.inventory, undefined);
  });

  it('gives up after 8 tries, and retries no refusal without a wait asked for', async () => {
    let tries = 0;
    const patient = new Reporter(async () => { tries++; throw busy(); }, { sleep: async () => {}, random: () => 0.5 });
    await assert.rejects(patient.report(inventory, []), { code: 'UNAVAILABLE' });
    assert.equal(tries, 8);
    tries = 0;
    const quorum = new Reporter(async () => { tries++; throw new SriovError('UNAVAILABLE', 'etcd lost quorum'); }, { sleep: async () => {} });
    await assert.rejects(quorum.report(inventory, []), /lost quorum/);
    assert.equal(tries, 1);
  });
});
