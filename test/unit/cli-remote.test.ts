// sriovctl in remote mode, run as a user would, against a real controller
// (SQLite store, ControlPlane, HTTP server) in this process. No agent runs:
// the test reports allocation states itself, as the host's agent would.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/api/server.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { IsolationReport } from '../../src/controller/isolation-audit.js';
import type { Actor } from '../../src/domain/actor.js';
import type { Allocation, AuditEvent, HostRecord, Network, Physnet, Tenant } from '../../src/domain/types.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { remoteCli, sriovctl } from '../helpers/cli.js';
import { makeHost } from '../helpers/inventory.js';

const HOST = 'node1';
const ADMIN: Actor = { id: 'test', role: 'admin' };

let dir: string;
let store: Store;
let control: ControlPlane;
let app: FastifyInstance;
let server: string;
let adminTokenFile: string;
/** Nothing from the environment running the tests: no server, token or config file of theirs. */
let env: NodeJS.ProcessEnv;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-cli-remote-'));
  store = await openSqliteStore(dir);
  control = await ControlPlane.open(store);
  adminTokenFile = await control.tokens.bootstrapAdmin(dir);
  app = await buildServer({ control, controllerHost: HOST, version: 'test' });
  server = await app.listen({ host: '127.0.0.1', port: 0 });
  await control.hosts.report({ id: 'local', role: 'admin' }, makeHost({ name: HOST, pfs: 2, vfs: 8, physnet: null }).inventory);
  env = { HOME: dir, SRIOV_SERVER: server, SRIOV_TOKEN: '', SRIOV_CONFIG: '' };
});

after(async () => {
  await app.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const { cli, ok, json, fails } = remoteCli(() => ({ env, adminTokenFile }));

async function writeTemp(name: string, text: string, mode = 0o600): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  await chmod(file, mode);
  return file;
}

/** The allocation of `workload`, once the CLI running in the background has created it. */
async function allocationOf(workload: string): Promise<Allocation> {
  for (;;) {
    const found = (await control.allocations.list(ADMIN)).find((a) => a.workload.name === workload);
    if (found) return found;
    await sleep(20);
  }
}

const POLICY = `policies:
  - name: fabric
    selector:
      vendor: "8086"
    numVfs: 8
    physnet: fabric
`;

describe('sriovctl remote mode', () => {
  let allocId: string;
  let tenantToken: string;
  let tenantTokenId: string;

  it('creates and lists tenants', async () => {
    const a = await json<Tenant>(['tenant', 'create', 'a']);
    assert.equal(a.name, 'a');
    await ok(['tenant', 'create', 'b']);
    assert.match(await ok(['tenant', 'list']), /^NAME\s+PF MIN TX\s+PF MAX TX\s+CREATED\n(a|b)\s+-\s+-\s/);
    assert.deepEqual((await json<Tenant[]>(['tenant', 'list'])).map((t) => t.name).sort(), ['a', 'b']);
    await fails(['tenant', 'create', 'a'], 2, /CONFLICT/);
    await fails(['tenant', 'create', 'Not_A_Name'], 2, /tenant name/);
  });

  it('host apply stores the node policy for --host NAME, and labels the PFs', async () => {
    const stored = await json<{ host: string; policies: number }>(['host', 'apply', '-f', await writeTemp('policy.yaml', POLICY), '--host', HOST]);
    assert.deepEqual(stored, { host: HOST, policies: 1 });
    const host = await json<HostRecord>(['host', 'show', HOST]);
    assert.deepEqual(Object.values(host.physnets), ['fabric', 'fabric']);
    assert.match(await ok(['host', 'list']), new RegExp(`^${HOST}\\s+ready\\s+2\\s+16`, 'm'));
    assert.deepEqual(await json<Physnet[]>(['physnet', 'list']), [{ name: 'fabric', accountingOnly: false, groupsAccountingOnly: false, tenantVlans: [] }]);
    assert.deepEqual(await json<Physnet>(['physnet', 'set', 'fabric', '--accounting-only', 'on']), { name: 'fabric', accountingOnly: true, groupsAccountingOnly: false, tenantVlans: [] });
    await ok(['physnet', 'set', 'fabric', '--accounting-only', 'off']);
    assert.equal((await json<Physnet>(['physnet', 'set', 'fabric', '--groups-accounting-only', 'on'])).groupsAccountingOnly, true);
    await ok(['physnet', 'set', 'fabric', '--groups-accounting-only', 'off']);
  });

  it('tenant set gives a tenant a bandwidth group; bad limits exit 2 and store nothing; tenant show says how it stands per PF', async () => {
    await fails(['tenant', 'set', 'a', '--pf-min-tx-rate', '3000', '--pf-max-tx-rate', '2000'], 2, /pfMinTxRateMbps 3000 exceeds pfMaxTxRateMbps 2000/);
    await fails(['tenant', 'set', 'a', '--pf-min-tx-rate', '1.5'], 2, /whole number/);
    await fails(['tenant', 'set', 'a'], 2, /needs --pf-min-tx-rate or --pf-max-tx-rate/);
    const set = await json<Tenant>(['tenant', 'set', 'a', '--pf-min-tx-rate', '2000', '--pf-max-tx-rate', '4000']);
    assert.deepEqual([set.pfMinTxRateMbps, set.pfMaxTxRateMbps], [2000, 4000]);
    // The sim's PFs here are legacy: the group is refused on them (no network yet: none listed).
    assert.match(await ok(['tenant', 'show', 'a']), /^a\s+2000\s+4000\s/m);
    const cleared = await json<Tenant>(['tenant', 'set', 'a', '--pf-min-tx-rate', 'none', '--pf-max-tx-rate', '0']);
    assert.deepEqual([cleared.pfMinTxRateMbps, cleared.pfMaxTxRateMbps], [null, null]);
    assert.match(await ok(['tenant', 'show', 'a']), /no bandwidth group/);
  });

  it('host apply refuses a bad policy file before making any request', async () => {
    const bad = await writeTemp('bad.yaml', POLICY.replace('numVfs: 8', 'numVfs: 8\n    colour: red'));
    // An unreachable server would make any request exit 1; exit 2 shows none was made.
    await fails(['host', 'apply', '-f', bad, '--host', HOST, '--server', 'http://127.0.0.1:1'], 2, /policy file/);
    assert.equal(await control.hosts.getPolicy(ADMIN, HOST), POLICY);
  });

  it('creates networks; refuses a bad VLAN locally and a taken VLAN on the server, storing nothing', async () => {
    const net = await json<Network>(['network', 'create', 'net-a', '--tenant', 'a', '--physnet', 'fabric', '--vlan', '100', '--max-tx-rate', '500']);
    assert.equal(net.vlan, 100);
    assert.equal(net.maxTxRateMbps, 500);
    assert.equal(net.spoofChk, true);
    await ok(['network', 'create', 'net-b', '--tenant', 'b', '--physnet', 'fabric', '--vlan', '200']);
    await fails(['network', 'create', 'net-x', '--tenant', 'a', '--physnet', 'fabric', '--vlan', '4095'], 2, /VLAN/);
    await fails(['network', 'create', 'net-x', '--tenant', 'b', '--physnet', 'fabric', '--vlan', '100'], 2, /CONFLICT: VLAN 100/);
    await fails(['network', 'create', 'net-x', '--tenant', 'a', '--physnet', 'nowhere', '--vlan', '300'], 2, /NOT_FOUND/);
    assert.deepEqual((await json<Network[]>(['network', 'list'])).map((n) => n.name).sort(), ['net-a', 'net-b']);
    assert.equal((await json<Network>(['network', 'show', 'net-a'])).tenant, 'a');
    assert.match(await ok(['network', 'list']), /^net-a\s+a\s+fabric\s+100\s/m);
  });

  it('alloc create --no-wait prints the pending allocation with the contract fields', async () => {
    const a = await json<Allocation>(['alloc', 'create', '--network', 'net-a', '--workload', 'pod1', '--no-wait']);
    for (const f of ['id', 'host', 'pf', 'vfIndex', 'pciAddress', 'mac', 'vlan', 'state'] as const) assert.ok(Object.hasOwn(a, f), f);
    assert.equal(a.host, HOST);
    assert.equal(a.vlan, 100);
    assert.equal(a.state, 'pending');
    assert.match(a.mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    allocId = a.id;
    await ok(['alloc', 'create', '--network', 'net-b', '--workload', 'pod-b', '--no-wait']);
  });

  it('alloc list and show', async () => {
    assert.equal((await json<Allocation[]>(['alloc', 'list'])).length, 2);
    assert.deepEqual(
      (await json<Allocation[]>(['alloc', 'list', '--network', 'net-a'])).map((a) => a.id),
      [allocId],
    );
    assert.equal((await json<Allocation[]>(['alloc', 'list', '--host', HOST])).length, 2);
    assert.deepEqual(await json<Allocation[]>(['alloc', 'list', '--host', 'elsewhere']), []);
    assert.equal((await json<Allocation>(['alloc', 'show', allocId])).id, allocId);
    const table = await ok(['alloc', 'show', allocId]);
    assert.match(table, /^ID\s+NETWORK\s+WORKLOAD\s+HOST\s+PF\s+VF\s+PCI\s+MAC\s+VLAN\s+STATE/);
    assert.match(table, new RegExp(`^${allocId}\\s+net-a\\s+container/pod1\\s+${HOST}\\s`, 'm'));
    await fails(['alloc', 'show', 'no-such-id'], 2, /NOT_FOUND/);
  });

  it('alloc create waits until the agent reports configured', async () => {
    const run = cli(['alloc', 'create', '--network', 'net-a', '--workload', 'pod2', '--kind', 'vm', '-o', 'json', '--timeout', '20']);
    const pending = await allocationOf('pod2');
    await sleep(300);
    await control.allocations.applyStatus(HOST, [{ id: pending.id, state: 'configured' }]);
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(r.stdout) as Allocation;
    assert.deepEqual([a.id, a.state, a.workload.kind], [pending.id, 'configured', 'vm']);
  });

  it('alloc create exits 1 with the reason when the agent reports failed', async () => {
    const run = cli(['alloc', 'create', '--network', 'net-a', '--workload', 'pod3', '--timeout', '20']);
    const pending = await allocationOf('pod3');
    await control.allocations.applyStatus(HOST, [{ id: pending.id, state: 'failed', reason: 'VF 3 refused the MAC' }]);
    const r = await run;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /failed on node1: VF 3 refused the MAC/);
    assert.match(r.stdout, /failed/);
  });

  it('alloc create exits 1 when nothing answers within --timeout', async () => {
    const r = await cli(['alloc', 'create', '--network', 'net-a', '--workload', 'pod4', '--timeout', '1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /TIMEOUT: .*still pending after 1 s/);
  });

  it('alloc delete waits for released; --no-wait returns releasing', async () => {
    const pod2 = await allocationOf('pod2');
    const run = cli(['alloc', 'delete', pod2.id, '-o', 'json']);
    for (;;) {
      if ((await control.allocations.get(ADMIN, pod2.id)).state === 'releasing') break;
      await sleep(20);
    }
    await control.allocations.applyStatus(HOST, [{ id: pod2.id, state: 'released' }]);
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as Allocation).state, 'released');
    const pod4 = await allocationOf('pod4');
    assert.equal((await json<Allocation>(['alloc', 'delete', pod4.id, '--no-wait'])).state, 'releasing');
  });

  it('a tenant token sees only its own tenant, networks and allocations', async () => {
    const created = await json<{ id: string; role: string; token: string }>(['token', 'create', '--role', 'tenant:a']);
    assert.equal(created.role, 'tenant:a');
    [tenantToken, tenantTokenId] = [created.token, created.id];
    const asA = { SRIOV_TOKEN: tenantToken };
    assert.deepEqual((await json<Tenant[]>(['tenant', 'list'], asA)).map((t) => t.name), ['a']);
    assert.deepEqual((await json<Network[]>(['network', 'list'], asA)).map((n) => n.name), ['net-a']);
    const allocations = await json<Allocation[]>(['alloc', 'list'], asA);
    assert.ok(allocations.length > 0);
    assert.ok(allocations.every((a) => a.tenant === 'a'));
    await fails(['network', 'show', 'net-b'], 2, /NOT_FOUND/, asA);
    await fails(['alloc', 'create', '--network', 'net-b', '--workload', 'sneaky', '--no-wait'], 2, /NOT_FOUND/, asA);
    await fails(['audit', 'isolation'], 2, /FORBIDDEN/, asA);
    await fails(['tenant', 'create', 'c'], 2, /FORBIDDEN/, asA);
  });

  it('audit isolation -o json gives the report', async () => {
    const report = await json<IsolationReport>(['audit', 'isolation']);
    assert.ok(Array.isArray(report.segments));
    assert.ok(Array.isArray(report.violations));
    assert.equal(typeof report.reachability, 'object');
    assert.equal(typeof report.generatedAt, 'string');
    assert.match(await ok(['audit', 'isolation']), /^PHYSNET\s+VLAN\s+VFS\s+TENANTS/);
  });

  it('events -o json gives the audit log, with --after, --limit and --object', async () => {
    const events = await json<AuditEvent[]>(['events']);
    assert.ok(events.some((e) => e.action === 'tenant.create' && e.object === 'tenant/a'));
    assert.ok(events.some((e) => e.action === 'network.create'));
    assert.equal((await json<AuditEvent[]>(['events', '--limit', '2'])).length, 2);
    const later = await json<AuditEvent[]>(['events', '--after', String(events[0]!.seq)]);
    assert.ok(later.every((e) => e.seq > events[0]!.seq));
    assert.ok((await json<AuditEvent[]>(['events', '--object', 'tenant/b'])).every((e) => e.object === 'tenant/b'));
    await fails(['events', '--limit', 'lots'], 2, /--limit/);
  });

  it('token list and delete; a deleted token is refused', async () => {
    const tokens = await json<Array<{ id: string; role: string }>>(['token', 'list']);
    assert.ok(tokens.some((t) => t.id === tenantTokenId && t.role === 'tenant:a'));
    assert.ok(tokens.every((t) => !('hash' in t)));
    assert.deepEqual(await json(['token', 'delete', tenantTokenId]), { deleted: `token/${tenantTokenId}` });
    await fails(['tenant', 'list'], 2, /UNAUTHENTICATED/, { SRIOV_TOKEN: tenantToken });
  });

  it('deletes networks and tenants in order', async () => {
    await fails(['tenant', 'delete', 'b'], 2, /CONFLICT/);
    const podB = (await control.allocations.list(ADMIN, { network: 'net-b' }))[0]!;
    await ok(['alloc', 'delete', podB.id, '--no-wait']);
    // Still releasing: the VF is not scrubbed yet.
    await fails(['network', 'delete', 'net-b'], 2, /CONFLICT/);
    await control.allocations.applyStatus(HOST, [{ id: podB.id, state: 'released' }]);
    assert.equal(await ok(['network', 'delete', 'net-b']), 'network/net-b deleted\n');
    assert.equal(await ok(['tenant', 'delete', 'b']), 'tenant/b deleted\n');
    await fails(['tenant', 'delete', 'b'], 2, /NOT_FOUND/);
  });
});

describe('sriovctl remote mode: connection settings', () => {
  it('a controller that does not answer is exit 1, naming the URL', async () => {
    await fails(['tenant', 'list', '--server', 'http://127.0.0.1:9'], 1, /cannot reach the controller at http:\/\/127\.0\.0\.1:9/);
  });

  it('a server URL that is not http(s) is exit 2', async () => {
    await fails(['tenant', 'list', '--server', 'ftp://example'], 2, /http:\/\/ or https:\/\//);
  });

  it('no token anywhere is exit 2', async () => {
    const r = await sriovctl(['tenant', 'list'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no API token/);
  });

  it('takes server and token from the config file', async () => {
    const token = (await readFile(adminTokenFile, 'utf8')).trim();
    const config = await writeTemp('config.yaml', `server: ${server}\ntoken: ${token}\n`);
    const r = await sriovctl(['tenant', 'list', '-o', 'json'], { ...env, SRIOV_SERVER: '', SRIOV_CONFIG: config });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Array.isArray(JSON.parse(r.stdout)));
  });

  it('refuses a config file with a token that others can read', async () => {
    const config = await writeTemp('open-config.yaml', `server: ${server}\ntoken: secret\n`, 0o644);
    const r = await sriovctl(['tenant', 'list'], { ...env, SRIOV_SERVER: '', SRIOV_CONFIG: config });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /readable by group or others.*chmod 600/);
  });

  it('refuses a config file with unknown keys', async () => {
    const config = await writeTemp('typo-config.yaml', `servr: ${server}\n`);
    const r = await sriovctl(['tenant', 'list'], { ...env, SRIOV_SERVER: '', SRIOV_CONFIG: config });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /servr/);
  });
});
