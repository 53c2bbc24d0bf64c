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
const POLICY = `policies:\n  - name: fabric\n    selector: { drivers: [ice] }\n    numVfs: 4\n    physnet: fabric\n`;
const POOL = { cidr: '198.18.0.0/24', rangeStart: '198.18.0.10', gateway: '198.18.0.1', routes: [{ dst: 'default', gw: '198.18.0.1' }] };

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
    const token = await call<{ token: string }>('POST', '/v1/tokens', { role: `node:${HOST}` });
    tokenFile = join(dir, 'cni.token');
    await writeFile(tokenFile, `${token.body.token}\n`, { mode: 0o600 });
  }

  it('VERSION: the spec versions it speaks', async () => {
    const run = await runPlugin('VERSION', { cniVersion: '1.0.0' });
    assert.equal(run.status, 0);
    assert.deepEqual(run.json, { cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });
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

  it('STATUS: ready while sriovd answers, 50 when it does not', async () => {
    const ok = await runPlugin('STATUS', conf());
    assert.equal(ok.status, 0, ok.stdout);
    assert.equal(ok.stdout, '');
    assertCniError(await runPlugin('STATUS', conf({ server: 'http://127.0.0.1:1' })), 50, /cannot reach sriovd/);
    assertCniError(await runPlugin('STATUS', conf({ tokenFile: join(dir, 'missing.token') })), 50, /token/);
  });

  it('reaches a daemon on a unix socket', async () => {
    const socket = join(dir, 'sriovd.sock');
    const server = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' }).end('{"ok":true}'));
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const { server: _tcp, ...overSocket } = conf({ socket });
      const run = await runPlugin('STATUS', overSocket);
      assert.equal(run.status, 0, run.stdout);
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
    assert.deepEqual(run.json, {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'net1', mac: a.mac, sandbox: netns, pciID: a.pciAddress }],
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
});
