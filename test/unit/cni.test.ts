// vfleet-cni end to end: the bundled executable, run as a container runtime
// runs it (CNI_* environment, configuration on stdin), against a real sriovd
// whose agent drives a simulated host. The simulated host's namespaces are
// plain files.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Allocation, HostRecord } from '../../src/domain/types.js';
import { SriovHost } from '../../src/host/configurator.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { api, eventually, startDaemon, type Daemon } from '../helpers/daemon.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PLUGIN = join(ROOT, 'dist', 'vfleet-cni');
const HOST = hostname();
const NETWORK = 'blue-100';
/** A second vfleet network, for a second CNI network on the same container. */
const NETWORK2 = 'blue-200';
const POLICY = `policies:\n  - name: fabric\n    selector: { drivers: [ice] }\n    numVfs: 4\n    physnet: fabric\n`;
const POOL = { cidr: '198.18.0.0/24', rangeStart: '198.18.0.10', gateway: '198.18.0.1', routes: [{ dst: 'default', gw: '198.18.0.1' }] };
const POOL2 = { cidr: '198.18.1.0/24', rangeStart: '198.18.1.10', gateway: '198.18.1.1', routes: [] };

interface PluginRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout as JSON; null when the plugin printed nothing. */
  json: Record<string, unknown> | null;
}

/** Runs the plugin once, as a runtime does: a fresh process, CNI_* in the environment, the configuration on stdin. */
function runPlugin(command: string, stdin: string | object, env: Record<string, string> = {}): Promise<PluginRun> {
  const input = typeof stdin === 'string' ? stdin : JSON.stringify(stdin);
  const child = spawn(PLUGIN, [], { env: { PATH: process.env.PATH ?? '', CNI_COMMAND: command, CNI_PATH: '/opt/cni/bin', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr, json: stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : null }));
  });
}

function assertCniError(run: PluginRun, code: number, msg?: RegExp): void {
  assert.notEqual(run.status, 0, `expected a failure, got ${run.stdout}`);
  assert.equal(run.json?.code, code, `expected code ${code}: ${run.stdout}${run.stderr}`);
  assert.equal(typeof run.json?.msg, 'string');
  if (msg) assert.match(run.json!.msg as string, msg);
}

describe('vfleet-cni', { timeout: 180_000 }, () => {
  let dir: string;
  let daemon: Daemon;
  let admin: string;
  let simFile: string;
  let tokenFile: string;
  let nsCount = 0;
  const call = <T>(method: string, path: string, body?: unknown) => api<T>(daemon.url, admin, method, path, body);
  const conf = (extra: Record<string, unknown> = {}) => ({ cniVersion: '1.0.0', name: 'vfleet-blue', type: 'vfleet-cni', network: NETWORK, server: daemon.url, tokenFile, ...extra });
  const newNetns = async () => {
    const path = join(dir, `netns-${++nsCount}`);
    await writeFile(path, '');
    return path;
  };
  const containerEnv = (id: string, netns: string, ifname = 'net1') => ({ CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: ifname });
  const allocationsOf = async (id: string) => (await call<Allocation[]>('GET', `/v1/allocations?workload=${id}`)).body;
  const linksIn = (netns: string) => createSimPorts(simFile).netns.links(netns);

  before(async () => {
    const build = spawnSync('npm', ['run', '--silent', 'build:cni'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(build.status, 0, `npm run build:cni failed:\n${build.stdout}${build.stderr}`);
    dir = await mkdtemp(join(tmpdir(), 'vfleet-cni-'));
    simFile = join(dir, 'host.json');
    await initSimHost(simFile, { profile: 'ice', pfs: 1, hostname: HOST });
    daemon = await startDaemon(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--host', `sim:${simFile}`, '--heartbeat-interval', '1']);
    admin = (await readFile(join(dir, 'data', 'admin.token'), 'utf8')).trim();
    await setUpFleet();
  });

  after(async () => {
    await daemon?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  /** Tenant blue with a VLAN 100 network and an IP pool on physnet fabric; the plugin gets the host's node token. */
  async function setUpFleet(): Promise<void> {
    assert.equal((await call('PUT', `/v1/hosts/${HOST}/policy`, { document: POLICY })).status, 200);
    await eventually('4 VFs on the PF', 30_000, async () => {
      const host = (await call<HostRecord>('GET', `/v1/hosts/${HOST}`)).body;
      return host.inventory?.pfs.every((p) => p.numVfs === 4) ? true : undefined;
    });
    assert.equal((await call('POST', '/v1/tenants', { name: 'blue' })).status, 201);
    const network = await call('POST', '/v1/networks', { name: NETWORK, tenant: 'blue', physnet: 'fabric', vlan: 100, maxTxRateMbps: 1000, ipam: POOL });
    assert.equal(network.status, 201, JSON.stringify(network.body));
    const second = await call('POST', '/v1/networks', { name: NETWORK2, tenant: 'blue', physnet: 'fabric', vlan: 200, mtu: 1400, ipam: POOL2 });
    assert.equal(second.status, 201, JSON.stringify(second.body));
    const token = await call<{ token: string }>('POST', '/v1/tokens', { role: `node:${HOST}` });
    tokenFile = join(dir, 'cni.token');
    await writeFile(tokenFile, `${token.body.token}\n`, { mode: 0o600 });
  }

  it('VERSION: the spec versions it speaks, up to 1.1.0, so negotiation can pick the highest common one', async () => {
    for (const cniVersion of ['1.0.0', '1.1.0']) {
      const run = await runPlugin('VERSION', { cniVersion });
      assert.equal(run.status, 0);
      // As the reference plugins (skel): the answer is in the plugin's own newest version.
      assert.deepEqual(run.json, { cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    }
  });

  it('refuses bad input with the spec’s error codes', async () => {
    const env = containerEnv('c-bad', '/var/run/netns/x');
    assertCniError(await runPlugin('ADD', '{"cniVersion": ', env), 6, /not JSON/);
    assertCniError(await runPlugin('ADD', { ...conf(), network: undefined }, env), 7, /"network" is required/);
    assertCniError(await runPlugin('ADD', conf({ timeoutSeconds: 0 }), env), 7, /timeoutSeconds/);
    assertCniError(await runPlugin('ADD', conf({ deviceID: 'not-a-bdf' }), env), 7, /PCI address/);
    assertCniError(await runPlugin('ADD', conf({ cniVersion: '0.2.0' }), env), 1, /0\.2\.0/);
    assertCniError(await runPlugin('ADD', conf(), { ...env, CNI_IFNAME: 'bad/name' }), 4, /interface name/);
    assertCniError(await runPlugin('ADD', conf(), { ...env, CNI_NETNS: 'var/run/netns/x' }), 4, /namespace path/);
    assertCniError(await runPlugin('ADD', conf(), { ...env, CNI_CONTAINERID: '' }), 4, /CNI_CONTAINERID/);
    assertCniError(await runPlugin('FROB', conf(), env), 4, /unknown CNI_COMMAND/);
  });

  it('answers an error in the configuration’s cniVersion', async () => {
    const run = await runPlugin('ADD', { cniVersion: '0.4.0', name: 'x', type: 'vfleet-cni' }, containerEnv('c-bad', '/var/run/netns/x'));
    assertCniError(run, 7);
    assert.equal(run.json?.cniVersion, '0.4.0');
  });

  it('STATUS (1.1.0): ready while sriovd answers, accepts the token and has a VF free here; 50 otherwise', async () => {
    const v11 = (extra: Record<string, unknown> = {}) => conf({ cniVersion: '1.1.0', ...extra });
    const ok = await runPlugin('STATUS', v11());
    assert.equal(ok.status, 0, ok.stdout);
    assert.equal(ok.stdout, '');
    assertCniError(await runPlugin('STATUS', v11({ server: 'http://127.0.0.1:1' })), 50, /cannot reach sriovd/);
    assertCniError(await runPlugin('STATUS', v11({ tokenFile: join(dir, 'missing.token') })), 50, /token/);
    assertCniError(await runPlugin('STATUS', v11({ token: 'not-a-token' })), 50, /not available/);
    assertCniError(await runPlugin('STATUS', v11({ network: 'nowhere' })), 50, /nowhere/);
    // libcni sends STATUS for 1.1.0 only; an older configuration has no STATUS.
    assertCniError(await runPlugin('STATUS', conf()), 1, /STATUS needs cniVersion 1\.1\.0/);
  });

  it('STATUS answers 50 while every VF of the host is held, and is ready again after a DEL', async () => {
    const envs = [];
    for (let i = 0; i < 4; i++) {
      const env = containerEnv(`c-full-${i}`, await newNetns());
      assert.equal((await runPlugin('ADD', conf(), env)).status, 0);
      envs.push(env);
    }
    assertCniError(await runPlugin('STATUS', conf({ cniVersion: '1.1.0' })), 50, /no free VF for network blue-100/);
    assert.equal((await runPlugin('DEL', conf(), envs[0]!)).status, 0);
    assert.equal((await runPlugin('STATUS', conf({ cniVersion: '1.1.0' }))).status, 0);
    for (const env of envs.slice(1)) assert.equal((await runPlugin('DEL', conf(), env)).status, 0);
  });

  it('reaches a daemon on a unix socket; STATUS is 51 while the host’s agent is not reporting', async () => {
    const socket = join(dir, 'sriovd.sock');
    // Just enough of sriovd for STATUS: the capacity of this network on this host.
    const capacity = `/v1/networks/${NETWORK}/capacity?host=${HOST}`;
    let answer = { hostState: 'ready', freeVfs: 1 };
    const server = createServer((req, res) => res.writeHead(req.url === capacity ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(answer)));
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const { server: _tcp, ...overSocket } = conf({ socket, cniVersion: '1.1.0' });
      const run = await runPlugin('STATUS', overSocket);
      assert.equal(run.status, 0, run.stdout);
      answer = { hostState: 'unreachable', freeVfs: 1 };
      assertCniError(await runPlugin('STATUS', overSocket), 51, /not reporting/);
      answer = { hostState: 'ready', freeVfs: 0 };
      assertCniError(await runPlugin('STATUS', overSocket), 50, /no free VF/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('ADD attaches a VF with an address from the pool; a repeated ADD returns the same attachment', async () => {
    const netns = await newNetns();
    const env = containerEnv('c-add', netns);
    const run = await runPlugin('ADD', conf(), env);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const a = (await allocationsOf('c-add'))[0]!;
    assert.equal(a.state, 'attached');
    assert.equal((a.attachment as { cniNetwork?: string }).cniNetwork, 'vfleet-blue');
    assert.deepEqual(run.json, {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'net1', mac: a.mac, sandbox: netns }],
      ips: [{ address: '198.18.0.10/24', gateway: '198.18.0.1', interface: 0 }],
      routes: [{ dst: '0.0.0.0/0', gw: '198.18.0.1' }],
      dns: {},
    });
    const link = (await linksIn(netns)).find((l) => l.ifname === 'net1');
    assert.equal(link?.mac, a.mac);
    assert.deepEqual(link?.addresses, ['198.18.0.10/24']);

    const again = await runPlugin('ADD', conf(), env);
    assert.deepEqual(again.json, run.json);
    assert.equal((await allocationsOf('c-add')).length, 1);

    // Behind another plugin in a chain: its result is passed on, ours appended.
    const eth0 = { name: 'eth0', sandbox: netns };
    const prevResult = { cniVersion: '1.0.0', interfaces: [eth0], ips: [{ address: '10.0.0.5/16', interface: 0 }], dns: { nameservers: ['10.0.0.1'] } };
    const chained = await runPlugin('ADD', conf({ prevResult }), env);
    assert.deepEqual(chained.json?.interfaces, [eth0, ...(run.json!.interfaces as object[])]);
    assert.deepEqual(chained.json?.ips, [prevResult.ips[0], { address: '198.18.0.10/24', gateway: '198.18.0.1', interface: 1 }]);
    assert.deepEqual(chained.json?.dns, prevResult.dns);
    assert.equal((await runPlugin('DEL', conf(), env)).status, 0);
  });

  it('CHECK passes on a healthy attachment and reports drift on the VF and in prevResult', async () => {
    const netns = await newNetns();
    const env = containerEnv('c-check', netns);
    const added = await runPlugin('ADD', conf(), env);
    assert.equal(added.status, 0, added.stdout);
    const prevResult = added.json!;
    const ok = await runPlugin('CHECK', conf({ prevResult, hostBackend: `sim:${simFile}` }), env);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.equal(ok.stdout, '');

    const badPrev = { ...prevResult, ips: [{ address: '198.18.0.99/24', interface: 0 }] };
    assertCniError(await runPlugin('CHECK', conf({ prevResult: badPrev, hostBackend: `sim:${simFile}` }), env), 106, /198\.18\.0\.99/);

    // Drift on a copy of the host: the agent repairs drift on the live one.
    const a = (await allocationsOf('c-check'))[0]!;
    const drifted = join(dir, 'drifted.json');
    await copyFile(simFile, drifted);
    await new SriovHost(createSimPorts(drifted)).setVfSettings(a.pfPciAddress, [{ vf: a.vfIndex, settings: { vlan: 200 } }]);
    assertCniError(await runPlugin('CHECK', conf({ prevResult, hostBackend: `sim:${drifted}` }), env), 106, /vlan is 200, the allocation wants 100/);

    assertCniError(await runPlugin('CHECK', conf({ hostBackend: `sim:${simFile}` }), containerEnv('c-nobody', netns)), 3);
    assertCniError(await runPlugin('CHECK', conf({ cniVersion: '0.3.1', prevResult }), env), 1);
    assert.equal((await runPlugin('DEL', conf(), env)).status, 0);
  });

  it('DEL releases the VF, returns the netdev to the host, and is idempotent', async () => {
    const netns = await newNetns();
    const env = containerEnv('c-del', netns);
    assert.equal((await runPlugin('ADD', conf(), env)).status, 0);
    const del = await runPlugin('DEL', conf(), env);
    assert.equal(del.status, 0, del.stdout + del.stderr);
    assert.equal(del.stdout, '');
    const a = (await allocationsOf('c-del'))[0]!;
    assert.equal(a.state, 'released');
    assert.equal((await linksIn(netns)).find((l) => l.ifname === 'net1'), undefined);

    assert.equal((await runPlugin('DEL', conf(), env)).status, 0);
    assert.equal((await runPlugin('DEL', conf(), { ...env, CNI_NETNS: '' })).status, 0);
    assert.equal((await runPlugin('DEL', conf(), containerEnv('c-never', ''))).status, 0);
  });

  it('DEL succeeds after the namespace is gone', async () => {
    const netns = await newNetns();
    const env = containerEnv('c-gone', netns);
    assert.equal((await runPlugin('ADD', conf(), env)).status, 0);
    await rm(netns);
    const del = await runPlugin('DEL', conf(), env);
    assert.equal(del.status, 0, del.stdout);
    assert.deepEqual((await allocationsOf('c-gone')).map((a) => a.state), ['released']);
  });

  it('ADD in a 0.4.0 configuration tags addresses with their IP version; deviceID pins the VF', async () => {
    const host = (await call<HostRecord>('GET', `/v1/hosts/${HOST}`)).body;
    const vf = host.inventory.pfs[0]!.vfs[3]!.pciAddress;
    const netns = await newNetns();
    const env = containerEnv('c-v04', netns, 'sriov0');
    const run = await runPlugin('ADD', conf({ cniVersion: '0.4.0', runtimeConfig: { deviceID: vf } }), env);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const a = (await allocationsOf('c-v04'))[0]!;
    assert.equal(a.pciAddress, vf);
    assert.deepEqual(run.json?.interfaces, [{ name: 'sriov0', mac: a.mac, sandbox: netns }]);
    assert.deepEqual(run.json?.ips, [{ address: (a.attachment as { ips: string[] }).ips[0], gateway: '198.18.0.1', interface: 0, version: '4' }]);
    assert.equal((await runPlugin('DEL', conf({ cniVersion: '0.4.0' }), env)).status, 0);
  });

  it('ADD into a namespace that does not exist fails with the agent’s reason, holding nothing', async () => {
    const env = containerEnv('c-nons', join(dir, 'no-such-netns'));
    const run = await runPlugin('ADD', conf(), env);
    assertCniError(run, 105, /no-such-netns/);
    assert.deepEqual((await allocationsOf('c-nons')).map((a) => a.state), ['failed']);
    assert.equal((await runPlugin('DEL', conf(), env)).status, 0);
  });

  it('maps the daemon’s refusals to plugin codes', async () => {
    const env = containerEnv('c-refused', await newNetns());
    assertCniError(await runPlugin('ADD', conf({ network: 'nowhere' }), env), 102, /nowhere/);
    assertCniError(await runPlugin('ADD', conf({ token: 'not-a-token' }), env), 103);
    assertCniError(await runPlugin('ADD', conf({ tokenFile: join(dir, 'missing.token') }), env), 5, /missing\.token/);
  });

  // ---- issue 9: scoped DEL, CNI 1.1, capabilities, chained CHECK, concurrent ADDs ----

  const blue2 = (extra: Record<string, unknown> = {}) => conf({ name: 'vfleet-blue2', network: NETWORK2, ...extra });
  const stateOf = async (id: string) => (await call<Allocation>('GET', `/v1/allocations/${id}`)).body.state;

  it('a failed ADD on a second network, then the DEL after it, leaves the first network’s VF attached', async () => {
    const netns = await newNetns();
    const env = containerEnv('c-two-nets', netns);
    const first = await runPlugin('ADD', conf(), env);
    assert.equal(first.status, 0, first.stdout);
    const a = (await allocationsOf('c-two-nets'))[0]!;
    assertCniError(await runPlugin('ADD', blue2(), env), 101, new RegExp(`already allocation ${a.id}`));
    const del = await runPlugin('DEL', blue2(), env);
    assert.equal(del.status, 0, del.stdout);
    assert.deepEqual((await allocationsOf('c-two-nets')).map((x) => [x.id, x.state]), [[a.id, 'attached']]);
    assert.equal((await linksIn(netns)).find((l) => l.ifname === 'net1')?.mac, a.mac);
    const checked = await runPlugin('CHECK', conf({ prevResult: first.json, hostBackend: `sim:${simFile}` }), env);
    assert.equal(checked.status, 0, checked.stdout);
    // The second network on another interface of the same container is its own attachment.
    const env2 = containerEnv('c-two-nets', netns, 'net2');
    assert.equal((await runPlugin('ADD', blue2(), env2)).status, 0);
    assert.equal((await runPlugin('DEL', conf(), env2)).status, 0, 'a DEL naming the other CNI network on net2 releases nothing');
    assert.equal((await allocationsOf('c-two-nets')).filter((x) => x.state === 'attached').length, 2);
    assert.equal((await runPlugin('DEL', blue2(), env2)).status, 0);
    assert.equal((await runPlugin('DEL', conf(), env)).status, 0);
    assert.deepEqual((await allocationsOf('c-two-nets')).map((x) => x.state), ['released', 'released']);
  });

  it('DEL tears down with a configuration that changed or went partly invalid since ADD', async () => {
    for (const changed of [{ cniVersion: '1.1.0' }, { cniVersion: '1.2.0' }, { deviceID: 'not-a-bdf' }, { timeoutSeconds: 0, ipam: { type: 'host-local' } }]) {
      const env = containerEnv('c-changed', await newNetns());
      assert.equal((await runPlugin('ADD', conf(), env)).status, 0);
      const del = await runPlugin('DEL', conf(changed), env);
      assert.equal(del.status, 0, `${JSON.stringify(changed)}: ${del.stdout}`);
      assert.ok((await allocationsOf('c-changed')).every((a) => a.state === 'released'), JSON.stringify(changed));
    }
    // What DEL cannot do without is still refused, as one line naming it.
    const env = containerEnv('c-changed', await newNetns());
    assertCniError(await runPlugin('DEL', conf({ name: 'bad/name' }), env), 7, /"name"/);
    assertCniError(await runPlugin('DEL', conf({ cniVersion: 'latest' }), env), 1, /cniVersion/);
    assertCniError(await runPlugin('DEL', conf({ server: 'http://127.0.0.1:1' }), env), 11, /cannot reach sriovd/);
  });

  it('DEL clears the failed allocation of its attachment', async () => {
    const env = containerEnv('c-failed', join(dir, 'no-such-netns-2'));
    assertCniError(await runPlugin('ADD', conf(), env), 105);
    assert.equal((await runPlugin('DEL', conf(), env)).status, 0);
    assert.deepEqual((await allocationsOf('c-failed')).map((a) => a.state), ['released']);
  });

  it('an allocation made before attachments recorded their CNI network is matched on its vfleet network', async () => {
    const netns = await newNetns();
    // As an older plugin made it: no cniNetwork.
    const made = await call<Allocation>('POST', '/v1/allocations', {
      network: NETWORK,
      host: HOST,
      workload: { kind: 'container', name: 'c-legacy' },
      attach: { kind: 'container', netns, ifname: 'net1' },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const env = containerEnv('c-legacy', netns);
    const added = await runPlugin('ADD', conf(), env);
    assert.equal(added.status, 0, added.stdout);
    assert.equal((await allocationsOf('c-legacy')).length, 1, 'the retried ADD found it');
    assert.equal((await runPlugin('DEL', blue2(), env)).status, 0);
    assert.equal(await stateOf(made.body.id), 'attached', 'a DEL of another vfleet network leaves it');
    assert.equal((await runPlugin('DEL', conf(), env)).status, 0);
    assert.equal(await stateOf(made.body.id), 'released');
  });

  it('results carry the fields of their version: 1.0.0 without pciID, 1.1.0 with pciID and mtu', async () => {
    const netns = await newNetns();
    const env = containerEnv('c-v11', netns);
    const run = await runPlugin('ADD', blue2({ cniVersion: '1.1.0' }), env);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const a = (await allocationsOf('c-v11'))[0]!;
    assert.deepEqual(run.json, {
      cniVersion: '1.1.0',
      interfaces: [{ name: 'net1', mac: a.mac, mtu: 1400, sandbox: netns, pciID: a.pciAddress }],
      ips: [{ address: '198.18.1.10/24', gateway: '198.18.1.1', interface: 0 }],
      routes: [],
      dns: {},
    });
    const v10 = await runPlugin('ADD', blue2(), env);
    assert.deepEqual(v10.json?.interfaces, [{ name: 'net1', mac: a.mac, sandbox: netns }]);
    const checked = await runPlugin('CHECK', blue2({ cniVersion: '1.1.0', prevResult: run.json, hostBackend: `sim:${simFile}` }), env);
    assert.equal(checked.status, 0, checked.stdout);
    assert.equal((await runPlugin('DEL', blue2({ cniVersion: '1.1.0' }), env)).status, 0);
  });

  it('GC releases this CNI network’s attachments that are not listed, and never another network’s', async () => {
    const gcConf = (extra: Record<string, unknown> = {}) => conf({ cniVersion: '1.1.0', name: 'vfleet-gc', ...extra });
    const keep = containerEnv('c-gc-keep', await newNetns());
    const stale = containerEnv('c-gc-stale', await newNetns());
    const other = containerEnv('c-gc-other', await newNetns());
    for (const env of [keep, stale]) assert.equal((await runPlugin('ADD', gcConf(), env)).status, 0);
    assert.equal((await runPlugin('ADD', conf({ name: 'vfleet-gc-other' }), other)).status, 0);
    const ids = async (id: string) => (await allocationsOf(id))[0]!.id;
    const [keepId, staleId, otherId] = [await ids('c-gc-keep'), await ids('c-gc-stale'), await ids('c-gc-other')];

    assertCniError(await runPlugin('GC', conf({ name: 'vfleet-gc' })), 1, /GC needs cniVersion 1\.1\.0/);
    const valid = [{ containerID: 'c-gc-keep', ifname: 'net1' }, { containerID: 'c-gc-stale', ifname: 'net9' }];
    const gc = await runPlugin('GC', gcConf({ 'cni.dev/valid-attachments': valid }));
    assert.equal(gc.status, 0, gc.stdout);
    assert.equal(gc.stdout, '');
    assert.deepEqual([await stateOf(keepId), await stateOf(staleId), await stateOf(otherId)], ['attached', 'released', 'attached']);

    // cnitool's GC lists none: every attachment of the network goes, the other network's stays.
    assert.equal((await runPlugin('GC', gcConf())).status, 0);
    assert.deepEqual([await stateOf(keepId), await stateOf(otherId)], ['released', 'attached']);
    assert.equal((await runPlugin('GC', gcConf({ 'cni.dev/valid-attachments': null }))).status, 0, 'nothing left to collect');
    assertCniError(await runPlugin('GC', gcConf({ 'cni.dev/valid-attachments': [{ containerID: 7 }] })), 7, /valid-attachments/);
    assert.equal((await runPlugin('DEL', conf({ name: 'vfleet-gc-other' }), other)).status, 0);
  });

  it('two concurrent identical ADDs converge on one attachment, both succeeding', async () => {
    const netns = await newNetns();
    const env = containerEnv('c-race', netns);
    const [one, two] = await Promise.all([runPlugin('ADD', conf(), env), runPlugin('ADD', conf(), env)]);
    assert.equal(one.status, 0, one.stdout);
    assert.equal(two.status, 0, two.stdout);
    assert.deepEqual(one.json, two.json);
    const held = await allocationsOf('c-race');
    assert.deepEqual(held.map((a) => a.state), ['attached']);
    assert.equal((await runPlugin('DEL', conf(), env)).status, 0);
  });

  it('honours the mac and ips capabilities, and refuses ones it cannot honour with a clear error', async () => {
    const netns = await newNetns();
    const env = containerEnv('c-caps', netns);
    const runtimeConfig = { mac: '02:00:5E:10:00:09', ips: ['198.18.0.200/24'] };
    const run = await runPlugin('ADD', conf({ capabilities: { mac: true, ips: true }, runtimeConfig }), env);
    assert.equal(run.status, 0, run.stdout);
    assert.deepEqual(run.json?.interfaces, [{ name: 'net1', mac: '02:00:5e:10:00:09', sandbox: netns }]);
    assert.deepEqual(run.json?.ips, [{ address: '198.18.0.200/24', gateway: '198.18.0.1', interface: 0 }]);
    const link = (await linksIn(netns)).find((l) => l.ifname === 'net1');
    assert.equal(link?.mac, '02:00:5e:10:00:09');
    assert.deepEqual(link?.addresses, ['198.18.0.200/24']);
    // A retry asking for something else is not the same ADD.
    assertCniError(await runPlugin('ADD', conf({ runtimeConfig: { mac: '02:00:5e:10:00:0a' } }), env), 101, /runtimeConfig\.mac/);

    // A bare address takes the pool's prefix.
    const bare = containerEnv('c-caps-bare', await newNetns());
    const bareRun = await runPlugin('ADD', conf({ runtimeConfig: { ips: ['198.18.0.201'] } }), bare);
    assert.equal(bareRun.status, 0, bareRun.stdout);
    assert.equal((bareRun.json?.ips as Array<{ address: string }>)[0]!.address, '198.18.0.201/24');

    const refusedEnv = containerEnv('c-caps-refused', await newNetns());
    assertCniError(await runPlugin('ADD', conf({ runtimeConfig: { ips: ['198.18.5.5/24'] } }), refusedEnv), 104, /runtimeConfig\.ips.*outside the pool/);
    assertCniError(await runPlugin('ADD', conf({ runtimeConfig: { ips: ['198.18.0.200/24'] } }), refusedEnv), 101, /runtimeConfig\.ips.*in use/);
    assertCniError(await runPlugin('ADD', conf({ runtimeConfig: { mac: '02:00:5e:10:00:09' } }), refusedEnv), 101, /runtimeConfig\.mac.*in use/);
    assertCniError(await runPlugin('ADD', conf({ runtimeConfig: { mac: '01:00:5e:00:00:01' } }), refusedEnv), 7, /multicast/);
    assertCniError(await runPlugin('ADD', conf({ runtimeConfig: { ips: ['2001:db8::5/64'] } }), refusedEnv), 2, /2001:db8::5\/64.*IPv4/);
    assertCniError(await runPlugin('ADD', conf({ runtimeConfig: { ips: '198.18.0.9/24' } }), refusedEnv), 7, /runtimeConfig\.ips must be a list/);
    assert.deepEqual(await allocationsOf('c-caps-refused'), [], 'a refused capability holds nothing');
    for (const e of [env, bare]) assert.equal((await runPlugin('DEL', conf(), e)).status, 0);
  });

  it('CHECK accepts the MAC a later plugin in the chain set, and still checks what vfleet owns', async () => {
    const netns = await newNetns();
    const env = containerEnv('c-tuned', netns);
    const added = await runPlugin('ADD', conf(), env);
    assert.equal(added.status, 0, added.stdout);
    const a = (await allocationsOf('c-tuned'))[0]!;
    // As `tuning` with `mac` does: the netdev in the namespace gets another MAC, and the chain's result names it.
    const tunedMac = '02:00:5e:77:00:01';
    const tuned = join(dir, 'tuned.json');
    await writeFile(tuned, JSON.stringify(withNetdevMac(JSON.parse(await readFile(simFile, 'utf8')), a.pciAddress, tunedMac)));
    const prevResult = { ...added.json!, interfaces: [{ ...(added.json!.interfaces as object[])[0]!, mac: tunedMac }] };
    const ok = await runPlugin('CHECK', conf({ prevResult, hostBackend: `sim:${tuned}` }), env);
    assert.equal(ok.status, 0, ok.stdout);
    // The chain's result says one MAC, the netdev has another: drift.
    assertCniError(await runPlugin('CHECK', conf({ prevResult: added.json, hostBackend: `sim:${tuned}` }), env), 106, new RegExp(`has MAC ${tunedMac}`));
    // The PF-side settings stay vfleet's: the VF's MAC may be ours or the chain's, nothing else.
    const pfSide = join(dir, 'tuned-pf.json');
    await copyFile(tuned, pfSide);
    await new SriovHost(createSimPorts(pfSide)).setVfSettings(a.pfPciAddress, [{ vf: a.vfIndex, settings: { mac: '02:00:5e:77:00:02' } }]);
    assertCniError(await runPlugin('CHECK', conf({ prevResult, hostBackend: `sim:${pfSide}` }), env), 106, /mac is 02:00:5e:77:00:02/);
    await new SriovHost(createSimPorts(tuned)).setVfSettings(a.pfPciAddress, [{ vf: a.vfIndex, settings: { spoofChk: false } }]);
    assertCniError(await runPlugin('CHECK', conf({ prevResult, hostBackend: `sim:${tuned}` }), env), 106, /spoofChk is false/);
    assert.equal((await runPlugin('DEL', conf(), env)).status, 0);
  });
});

/** A copy of the simulated host's state where the VF at `pciAddress` has set `mac` on its netdev. */
function withNetdevMac(state: unknown, pciAddress: string, mac: string): unknown {
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null) return;
    const o = node as Record<string, unknown>;
    if (o.pciAddress === pciAddress && 'netdevUp' in o) o.netdevMac = mac;
    Object.values(o).forEach(visit);
  };
  visit(state);
  return state;
}
