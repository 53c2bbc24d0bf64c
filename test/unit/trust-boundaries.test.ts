/**
 * Regression tests for the outside test's trust-boundary findings: tokens
 * that outlive what they name (2), conflicts that named other tenants' data
 * (3), an open /metrics and agent inventories taken on trust (9).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { access, chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { readMetricsToken } from '../../src/api/metrics.js';
import type { Allocation, AuditEvent } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import type { HostInventory } from '../../src/host/model.js';
import { MIGRATIONS, openSqliteStore } from '../../src/store/sqlite/index.js';
import { SRIOVD, startDaemon } from '../helpers/daemon.js';
import { expectStatus, inventoryOf, newToken, POLICY_FABRIC, startApi, type ApiHarness } from '../helpers/api-harness.js';

const METRICS_TOKEN = 'scrape-0123456789abcdef';

let h: ApiHarness;

before(async () => {
  h = await startApi({ metricsToken: METRICS_TOKEN });
});

after(() => h.close());

const events = async (action: string) => (await h.store.tx.listEvents({ limit: 100_000 })).filter((e: AuditEvent) => e.action === action);

describe('tokens name something that exists (finding 2)', () => {
  it('refuses a token for a tenant that does not exist, naming it; hosts may come later', async () => {
    const before = (await h.store.tx.listTokens()).length;
    const r = await expectStatus(h.call(h.admin, 'POST', '/v1/tokens', { role: 'tenant:ghost' }), 404, 'NOT_FOUND');
    assert.match(r.body.error.message, /^tenant ghost does not exist; create it first/);
    assert.equal((await h.store.tx.listTokens()).length, before);
    for (const role of ['node:node-not-yet.example.com', 'agent:agent-not-yet']) {
      const made = await expectStatus(h.call<{ role: string }>(h.admin, 'POST', '/v1/tokens', { role }), 201);
      assert.equal(made.body.role, role);
    }
    const bad = await expectStatus(h.call(h.admin, 'POST', '/v1/tokens', { role: 'node:Bad_Host' }), 400, 'INVALID_ARGUMENT');
    assert.match(bad.body.error.message, /host name must be a lower-case DNS name/);
  });

  it('deleting a tenant revokes its tokens, and a tenant re-created under the name is out of their reach', async () => {
    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'charlie' }), 201);
    const old = await newToken(h, 'tenant:charlie');
    const other = await newToken(h, 'operator');
    await expectStatus(h.call(old.token, 'GET', '/v1/networks'), 200);
    await expectStatus(h.call(h.admin, 'DELETE', '/v1/tenants/charlie'), 204);
    await expectStatus(h.call(old.token, 'GET', '/v1/networks'), 401, 'UNAUTHENTICATED');
    await expectStatus(h.call(other.token, 'GET', '/v1/hosts'), 200);
    const ids = (await h.store.tx.listTokens()).map((t) => t.id);
    assert.ok(!ids.includes(old.id), 'the tenant token is gone from the store');
    const revoked = await events('token.revoke');
    assert.ok(revoked.some((e) => e.object === `token/${old.id}`));

    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'charlie' }), 201);
    await expectStatus(h.call(old.token, 'GET', '/v1/networks'), 401, 'UNAUTHENTICATED');
    const fresh = await newToken(h, 'tenant:charlie');
    await expectStatus(h.call(fresh.token, 'GET', '/v1/networks'), 200);
  });

  it('a token bound to an earlier tenant of the same name is refused even if it survived', async () => {
    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'delta' }), 201);
    const t = await newToken(h, 'tenant:delta');
    // As if the tenant had been deleted and re-created behind the controller's back (another version, a restore).
    const record = (await h.store.tx.listTokens()).find((x) => x.id === t.id)!;
    await h.store.tx.putToken({ ...record, tenantId: 'some-earlier-tenant' });
    await expectStatus(h.call(t.token, 'GET', '/v1/networks'), 401, 'UNAUTHENTICATED');
  });

  it('the migration gives existing tenants an id and binds their tokens; a token of a vanished tenant stays dead', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-migrate-'));
    try {
      const mine = MIGRATIONS.findIndex((m) => m.includes('ALTER TABLE tenants ADD COLUMN id'));
      assert.ok(mine > 0);
      const db = new Database(join(dir, 'vfleet.db'));
      for (const sql of MIGRATIONS.slice(0, mine)) db.exec(sql);
      db.pragma(`user_version = ${mine}`);
      db.prepare("INSERT INTO tenants (name, created_at) VALUES ('echo', 'x')").run();
      const token = db.prepare('INSERT INTO tokens (id, role, hash, created_at) VALUES (?, ?, ?, ?)');
      token.run('tok-echo', 'tenant:echo', 'a'.repeat(64), 'x');
      token.run('tok-gone', 'tenant:gone', 'b'.repeat(64), 'x');
      db.close();
      const store = await openSqliteStore(dir);
      try {
        const echo = await store.tx.getTenant('echo');
        assert.match(echo?.id ?? '', /^[0-9a-f]{32}$/);
        assert.equal((await store.tx.findTokenByHash('a'.repeat(64)))?.tenantId, echo?.id);
        assert.equal((await store.tx.findTokenByHash('b'.repeat(64)))?.tenantId, null);
      } finally {
        await store.close();
      }
      const raw = new Database(join(dir, 'vfleet.db'));
      try {
        assert.throws(() => raw.prepare("UPDATE tenants SET id = 'another' WHERE name = 'echo'").run(), /tenant ids are immutable/);
      } finally {
        raw.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('agent reports are checked (finding 9)', () => {
  let agentA = '';
  let agentB = '';

  before(async () => {
    agentA = (await newToken(h, 'agent:host-a')).token;
    agentB = (await newToken(h, 'agent:host-b')).token;
    await expectStatus(h.call(agentA, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-a', 0xa) }), 200);
  });

  const report = (token: string, inventory: HostInventory) => h.call(token, 'POST', '/v1/agent/report', { inventory });

  /** One impossible inventory per rule; each is 400, stores nothing and is in the audit log. */
  const impossible: Array<[string, (inv: HostInventory) => void, RegExp]> = [
    ['numVfs above totalVfs', (inv) => { inv.pfs[0]!.numVfs = 257; inv.pfs[0]!.totalVfs = 256; }, /numVfs 257 is more than its totalVfs 256/],
    ['more VFs than numVfs', (inv) => { inv.pfs[0]!.numVfs = 2; }, /lists VF index 2, outside 0-1 \(numVfs 2\)/],
    ['a VF of a PF with no VFs', (inv) => { inv.pfs[1]!.numVfs = 0; }, /ens2f0 \(0000:11:00\.0\): lists VF index 0, but numVfs is 0$/],
    ['a duplicate PF address', (inv) => { inv.pfs[1]!.pciAddress = inv.pfs[0]!.pciAddress; }, /PCI address 0000:10:00\.0 is claimed twice/],
    ['a VF at its PF’s address', (inv) => { inv.pfs[0]!.vfs[1]!.pciAddress = inv.pfs[1]!.pciAddress; }, /PCI address 0000:11:00\.0 is claimed twice/],
    ['a VF in another PCI domain', (inv) => { inv.pfs[0]!.vfs[0]!.pciAddress = '0001:10:00.1'; }, /cannot belong to it/],
    ['a VF before its PF', (inv) => { inv.pfs[1]!.vfs[0]!.pciAddress = '0000:05:00.1'; }, /cannot belong to it/],
    ['a duplicate VF index', (inv) => { inv.pfs[0]!.vfs[1]!.index = 0; }, /VF index 0 appears twice/],
    ['a NUMA node that does not exist', (inv) => { inv.pfs[0]!.numaNode = 64; }, /NUMA node must be 0-63 or null/],
    ['a duplicate PF name', (inv) => { inv.pfs[1]!.name = inv.pfs[0]!.name; }, /PF name ens1f0 appears twice/],
  ];

  for (const [what, spoil, message] of impossible) {
    it(`refuses ${what}`, async () => {
      const before = await h.store.tx.getHost('host-b');
      const refusedBefore = (await events('host.report.refused')).length;
      const inventory = inventoryOf('host-b', 0xb);
      spoil(inventory);
      const r = await expectStatus(report(agentB, inventory), 400, 'INVALID_ARGUMENT');
      assert.match(r.body.error.message, message);
      assert.match(r.body.error.message, /^inventory refused: /);
      assert.deepEqual(await h.store.tx.getHost('host-b'), before);
      const refused = await events('host.report.refused');
      assert.equal(refused.length, refusedBefore + 1);
      assert.equal(refused.at(-1)!.object, 'host/host-b');
    });
  }

  it('refuses driver, netdev and NIC names that are not one short line (they reach tenants’ refusals and the console)', async () => {
    const spoilers: Array<[(inv: HostInventory) => void, RegExp]> = [
      [(inv) => { inv.pfs[0]!.driver = 'ice\nforged line'; }, /inventory\.pfs\.0\.driver must be a kernel driver name/],
      [(inv) => { inv.pfs[0]!.driver = 'x'.repeat(100_000); }, /inventory\.pfs\.0\.driver must be a kernel driver name/],
      [(inv) => { inv.pfs[0]!.vfs[0]!.driverOverride = '\u001b[31mred'; }, /driverOverride must be a kernel driver name/],
      [(inv) => { inv.pfs[0]!.vfs[0]!.netdev = 'eth0\nx'; }, /netdev must be an interface name/],
      [(inv) => { inv.pfs[0]!.vendorName = 'Intel\r\nforged'; }, /vendorName must be one line of at most 256 printable characters/],
      [(inv) => { inv.pfs[0]!.deviceName = 'E'.repeat(257); }, /deviceName must be at most 256 characters long/],
      [(inv) => { inv.pfs[0]!.localCpus = '0-15; reboot'; }, /localCpus must be a CPU list like 0-15,32-47/],
    ];
    const before = await h.store.tx.getHost('host-b');
    for (const [spoil, message] of spoilers) {
      const inventory = inventoryOf('host-b', 0xb);
      spoil(inventory);
      const r = await expectStatus(report(agentB, inventory), 400, 'INVALID_ARGUMENT');
      assert.match(r.body.error.message, message);
      const line = r.body.error.message;
      assert.ok(!['\n', '\r', '\u001b'].some((c) => line.includes(c)) && line.length <= 300, line.slice(0, 300));
    }
    assert.deepEqual(await h.store.tx.getHost('host-b'), before);
  });

  it('refuses an event whose object is not one printable word (it would print a forged audit row)', async () => {
    const before = (await h.store.tx.listEvents({ limit: 100_000 })).length;
    const forged = { action: 'drift.repaired', object: 'x\n2026-12-01T05:00:00.000Z  admin/tok-1  token.create  token/tok-evil', detail: 'fine' };
    const r = await expectStatus(h.call(agentB, 'POST', '/v1/agent/report', { inventory: inventoryOf('host-b', 0xb), events: [forged] }), 400, 'INVALID_ARGUMENT');
    assert.match(r.body.error.message, /events\.0\.object must be what the event is about, like allocation\/ID: printable ASCII, no spaces/);
    assert.equal((await h.store.tx.listEvents({ limit: 100_000 })).length, before);
  });

  it('refuses an inventory copied from another live host (same PF address and MAC), not one of an identical server', async () => {
    const copied = inventoryOf('host-a', 0xa);
    copied.hostname = 'host-b';
    const r = await expectStatus(report(agentB, copied), 409, 'CONFLICT');
    assert.match(r.body.error.message, /PF 0000:10:00\.0 with MAC b8:ce:f6:00:0a:00 belongs to live host host-a/);
    assert.equal(await h.store.tx.getHost('host-b'), null);
    const refused = (await events('host.report.refused')).filter((e) => String(e.after).includes('belongs to live host host-a'));
    assert.equal(refused.length, 1);
    // The same report again (every heartbeat, say) is refused again, and logged once.
    await expectStatus(report(agentB, copied), 409, 'CONFLICT');
    assert.equal((await events('host.report.refused')).filter((e) => String(e.after).includes('belongs to live host host-a')).length, 1);
    // Identical hardware (same PCI addresses), its own MACs: accepted.
    await expectStatus(report(agentB, inventoryOf('host-b', 0xb)), 200);
  });

  it('lets a NIC move once the host that had it is no longer live', async () => {
    await h.control.hosts.sweep(Date.now() + 3_600_000);
    const moved = inventoryOf('host-c', 0xa);
    const agentC = (await newToken(h, 'agent:host-c')).token;
    await expectStatus(report(agentC, moved), 200);
  });

  it('answers 403, not 404, for another host’s desired state', async () => {
    const r = await expectStatus(h.call(agentB, 'GET', '/v1/agent/desired?host=host-a'), 403, 'FORBIDDEN');
    assert.match(r.body.error.message, /agent:host-b may not read the desired state of host host-a/);
  });
});

describe('/metrics with --metrics-token-file (finding 9)', () => {
  it('needs the metrics token or a staff token', async () => {
    await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name: 'metrics-t' }), 201);
    const tenantToken = (await newToken(h, 'tenant:metrics-t')).token;
    const node = (await newToken(h, 'node:host-a')).token;
    await expectStatus(h.call(null, 'GET', '/metrics'), 401, 'UNAUTHENTICATED');
    await expectStatus(h.call('not-the-token', 'GET', '/metrics'), 401, 'UNAUTHENTICATED');
    await expectStatus(h.call(tenantToken, 'GET', '/metrics'), 403, 'FORBIDDEN');
    await expectStatus(h.call(node, 'GET', '/metrics'), 403, 'FORBIDDEN');
    for (const token of [METRICS_TOKEN, h.admin, (await newToken(h, 'operator')).token]) {
      const r = await expectStatus(h.call<null>(token, 'GET', '/metrics'), 200);
      assert.match(r.text, /^# HELP vfleet_hosts /m);
    }
  });

  it('stays open without the flag', async () => {
    const open = await startApi();
    try {
      await expectStatus(open.call(null, 'GET', '/metrics'), 200);
    } finally {
      await open.close();
    }
  });

  it('reads the token only from a file others cannot open, holding one plausible token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-metrics-'));
    try {
      const file = join(dir, 'metrics.token');
      await writeFile(file, `${METRICS_TOKEN}\n`, { mode: 0o600 });
      assert.equal(await readMetricsToken(file), METRICS_TOKEN);
      await chmod(file, 0o640);
      assert.equal(await readMetricsToken(file), METRICS_TOKEN);
      await chmod(file, 0o644);
      await assert.rejects(readMetricsToken(file), (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT' && /is open to others \(mode 0644\); run chmod 600/.test(e.message));
      await writeFile(file, 'short\n', { mode: 0o600 });
      await chmod(file, 0o600);
      await assert.rejects(readMetricsToken(file), /must hold one token of 16-4096 printable characters/);
      await assert.rejects(readMetricsToken(join(dir, 'missing')), /no such file/);
      await assert.rejects(readMetricsToken(dir), /is not a regular file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('sriovd --metrics-token-file', () => {
  it('serves /metrics to the token only, and refuses to start on a file open to others, creating nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-metrics-daemon-'));
    try {
      const file = join(dir, 'metrics.token');
      await writeFile(file, `${METRICS_TOKEN}\n`, { mode: 0o644 });
      await chmod(file, 0o644);
      const refused = spawnSync(process.execPath, [SRIOVD, '--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--no-agent', '--metrics-token-file', file], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(refused.status, 2, refused.stderr);
      assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
      assert.match(refused.stderr, /--metrics-token-file .* is open to others \(mode 0644\); run chmod 600/);
      await assert.rejects(access(join(dir, 'data')), 'no data dir was created');

      await chmod(file, 0o600);
      const daemon = await startDaemon(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--no-agent', '--metrics-token-file', file]);
      try {
        assert.equal((await fetch(`${daemon.url}/metrics`)).status, 401);
        const ok = await fetch(`${daemon.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
        assert.equal(ok.status, 200);
        assert.match(await ok.text(), /^# HELP vfleet_hosts /m);
      } finally {
        await daemon.kill();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('conflicts name nothing of another tenant (finding 3)', () => {
  let bravoAlloc: Allocation;
  let alpha = '';

  before(async () => {
    const admin = h.admin;
    // host-c: the host that reported last, still live.
    await expectStatus(h.call(admin, 'PUT', '/v1/hosts/host-c/policy', { document: POLICY_FABRIC }), 200);
    for (const name of ['alpha', 'bravo']) await expectStatus(h.call(admin, 'POST', '/v1/tenants', { name }), 201);
    await expectStatus(h.call(admin, 'POST', '/v1/networks', { name: 'alpha-net', tenant: 'alpha', physnet: 'fabric', vlan: 3801 }), 201);
    await expectStatus(h.call(admin, 'POST', '/v1/networks', { name: 'bravo-net', tenant: 'bravo', physnet: 'fabric', vlan: 3907 }), 201);
    bravoAlloc = (await expectStatus(h.call<Allocation>(admin, 'POST', '/v1/allocations', { network: 'bravo-net', host: 'host-c', workload: { kind: 'vm', name: 'bravo-vm' }, mac: '02:5f:00:ba:0b:02' }), 201)).body;
    alpha = (await newToken(h, 'tenant:alpha')).token;
  });

  it('a MAC in use, a VF held, a VLAN taken: said so, with no owner', async () => {
    const mac = await h.call(alpha, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'vm', name: 'a' }, mac: bravoAlloc.mac });
    assert.equal(mac.status, 409, mac.text);
    assert.equal(mac.body.error.message, `MAC ${bravoAlloc.mac} is in use`);
    assert.equal(mac.body.error.claim, 'mac', 'a stable word for what was taken');
    const vf = await h.call(alpha, 'POST', '/v1/allocations', { network: 'alpha-net', workload: { kind: 'vm', name: 'a' }, host: 'host-c', pciAddress: bravoAlloc.pciAddress });
    assert.equal(vf.status, 409, vf.text);
    assert.match(vf.body.error.message, /is held by another allocation/);
    // A tenant may be refused an explicit VLAN outright (403); if it may ask, the 409 names no owner.
    const vlan = await h.call(alpha, 'POST', '/v1/networks', { name: 'alpha-2', tenant: 'alpha', physnet: 'fabric', vlan: 3907 });
    assert.ok([403, 409].includes(vlan.status), vlan.text);
    for (const r of [mac, vf, vlan]) {
      assert.doesNotMatch(r.text, /bravo/);
      assert.ok(!r.text.includes(bravoAlloc.id));
    }
    // Staff are told whose it is.
    const staff = await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'alpha-2', tenant: 'alpha', physnet: 'fabric', vlan: 3907 }), 409, 'CONFLICT');
    assert.match(staff.body.error.message, /VLAN 3907 on physnet fabric is taken by tenant bravo \(network bravo-net\)/);
  });
});
