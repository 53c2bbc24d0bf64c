// vfleet-cni's node configuration (/etc/vfleet/cni.json, here a temp file
// named by VFLEET_CNI_NODE_CONFIG): when it exists it decides whom the plugin
// talks to and which token file it reads, and a network configuration (in
// Kubernetes a NAD, which a namespace's users write) that names another is
// refused before any file is read or request sent. The built plugin runs
// against two recording HTTP servers: the node's sriovd (a fake that answers
// what STATUS, DEL and GC ask) and an attacker's.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, beforeEach, describe, it } from 'node:test';
import { loadNodeConfig, parseConfig, parseDelConfig } from '../../src/cni/config.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PLUGIN = join(ROOT, 'dist', 'vfleet-cni');
const NODE_TOKEN = 'node-token-secret';
const HOST = 'node-a';

interface Recorded {
  method: string;
  url: string;
  authorization?: string;
}

interface Recorder {
  server: Server;
  url: string;
  requests: Recorded[];
}

/** A server that records every request and answers as sriovd would for an empty host with free VFs. */
async function recorder(): Promise<Recorder> {
  const requests: Recorded[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    req.resume();
    const body = req.url?.includes('/capacity') ? { hostState: 'ready', freeVfs: 2 } : req.url?.startsWith('/v1/allocations') ? [] : { error: { code: 'NOT_FOUND', message: 'not here' } };
    res.writeHead(req.url?.includes('/capacity') || req.url?.startsWith('/v1/allocations') ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

interface PluginRun {
  status: number | null;
  stdout: string;
  json: Record<string, unknown> | null;
}

function runPlugin(command: string, stdin: object, env: Record<string, string>): Promise<PluginRun> {
  const child = spawn(PLUGIN, [], { env: { PATH: process.env.PATH ?? '', CNI_COMMAND: command, CNI_PATH: '/opt/cni/bin', ...env } });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stdin.end(JSON.stringify(stdin));
  return new Promise((resolve, reject) => {
    // A plugin that opened the FIFO "token file" would block: the test fails on this timer rather than hang.
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, json: stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : null });
    });
  });
}

function assertCniError(run: PluginRun, code: number, msg?: RegExp): void {
  assert.notEqual(run.status, 0, `expected a failure, got ${run.stdout}`);
  assert.equal(run.json?.code, code, `expected code ${code}: ${run.stdout}`);
  if (msg) assert.match(run.json!.msg as string, msg);
}

describe('vfleet-cni node configuration', { timeout: 120_000 }, () => {
  let dir: string;
  let node: Recorder;
  let attacker: Recorder;
  let nodeConfig: string;
  let nodeTokenFile: string;
  /** Another root-only file a NAD names as its token file: a FIFO, so reading it would hang the plugin. */
  let secretFile: string;
  const container = { CNI_CONTAINERID: 'c-1', CNI_NETNS: '/var/run/netns/c-1', CNI_IFNAME: 'net1' };
  const nad = (extra: Record<string, unknown> = {}) => ({ cniVersion: '1.1.0', name: 'vfleet-blue', type: 'vfleet-cni', network: 'blue-100', ...extra });
  const withNode = (env: Record<string, string> = {}) => ({ VFLEET_CNI_NODE_CONFIG: nodeConfig, ...env });

  before(async () => {
    const build = spawnSync('npm', ['run', '--silent', 'build:cni'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(build.status, 0, `npm run build:cni failed:\n${build.stdout}${build.stderr}`);
    dir = await mkdtemp(join(tmpdir(), 'vfleet-cni-node-'));
    node = await recorder();
    attacker = await recorder();
    nodeTokenFile = join(dir, 'cni.token');
    await writeFile(nodeTokenFile, `${NODE_TOKEN}\n`, { mode: 0o600 });
    secretFile = join(dir, 'agent.token');
    assert.equal(spawnSync('mkfifo', ['-m', '600', secretFile]).status, 0, 'mkfifo');
    nodeConfig = join(dir, 'cni.json');
    await writeFile(nodeConfig, JSON.stringify({ server: node.url, tokenFile: nodeTokenFile, host: HOST }));
  });

  beforeEach(() => {
    node.requests.length = 0;
    attacker.requests.length = 0;
  });

  after(async () => {
    node?.server.close();
    attacker?.server.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses a NAD that names another server or token file, with code 7, before reading a file or sending a request', async () => {
    const redirects: [Record<string, unknown>, string][] = [
      [{ server: attacker.url, tokenFile: secretFile }, 'server'],
      [{ server: attacker.url }, 'server'],
      [{ tokenFile: secretFile }, 'tokenFile'],
      [{ server: node.url, tokenFile: secretFile }, 'tokenFile'],
      [{ socket: join(dir, 'evil.sock') }, 'socket'],
      [{ token: 'attacker-token' }, 'token'],
      [{ host: 'node-b' }, 'host'],
    ];
    for (const [fields, field] of redirects) {
      for (const command of ['ADD', 'CHECK', 'DEL', 'STATUS', 'GC']) {
        const run = await runPlugin(command, nad(fields), withNode(container));
        assertCniError(run, 7, new RegExp(`^"${field}" in the network configuration differs from this node's: the node's ${nodeConfig.replace(/[.]/g, '\\.')} sets`));
        assert.doesNotMatch(run.stdout, /\n./, 'one line');
      }
    }
    assert.deepEqual(attacker.requests, [], 'nothing reached the attacker');
    assert.deepEqual(node.requests, [], 'nor the node server');
  });

  it('accepts a NAD that repeats the node’s values, and one that gives none, using the node’s server and token', async () => {
    for (const fields of [{}, { server: node.url, tokenFile: nodeTokenFile, host: HOST }, { server: `${node.url}/` }]) {
      const status = await runPlugin('STATUS', nad(fields), withNode());
      assert.equal(status.status, 0, status.stdout);
      const del = await runPlugin('DEL', nad(fields), withNode(container));
      assert.equal(del.status, 0, del.stdout);
      const gc = await runPlugin('GC', nad(fields), withNode());
      assert.equal(gc.status, 0, gc.stdout);
    }
    assert.ok(node.requests.length >= 9);
    for (const r of node.requests) {
      assert.equal(r.authorization, `Bearer ${NODE_TOKEN}`);
      assert.match(r.url, new RegExp(`host=${HOST}`), 'the node config’s host');
    }
    assert.deepEqual(attacker.requests, []);
  });

  it('DEL keeps its leniency for the other fields under a node config', async () => {
    const run = await runPlugin('DEL', nad({ cniVersion: '9.9.9', timeoutSeconds: 'soon', deviceID: 'junk', network: undefined }), withNode(container));
    assert.equal(run.status, 0, run.stdout);
    assert.equal(node.requests.length, 1);
  });

  it('a malformed node config is a clear error, naming the file', async () => {
    const bad = join(dir, 'bad.json');
    const cases: [string | null, RegExp][] = [
      ['{ not json', /node's plugin config .*bad\.json is not JSON/],
      ['[]', /must be a JSON object/],
      [JSON.stringify({ server: node.url }), /bad\.json is invalid: "tokenFile" is required/],
      [JSON.stringify({ tokenFile: nodeTokenFile }), /"server" is required/],
      [JSON.stringify({ server: 'ftp://x', tokenFile: nodeTokenFile }), /"server" must be an http or https URL/],
      [JSON.stringify({ server: node.url, tokenFile: 'cni.token' }), /"tokenFile" must be an absolute path/],
      [JSON.stringify({ server: node.url, tokenFile: nodeTokenFile, socket: '/x' }), /unknown field "socket"/],
      [JSON.stringify({ server: node.url, tokenFile: nodeTokenFile, pad: 'x'.repeat(70_000) }), /at most 65536/],
    ];
    for (const [text, msg] of cases) {
      await rm(bad, { recursive: true, force: true });
      await writeFile(bad, text!);
      assertCniError(await runPlugin('ADD', nad(), { VFLEET_CNI_NODE_CONFIG: bad, ...container }), 7, msg);
    }
    // Not a regular file, and not through a symlink.
    await rm(bad, { force: true });
    await mkdir(bad);
    assertCniError(await runPlugin('ADD', nad(), { VFLEET_CNI_NODE_CONFIG: bad, ...container }), 7, /is not a regular file/);
    const link = join(dir, 'link.json');
    await symlink(nodeConfig, link);
    assertCniError(await runPlugin('ADD', nad(), { VFLEET_CNI_NODE_CONFIG: link, ...container }), 5, /cannot open the node's plugin config/);
    assert.deepEqual(node.requests, []);
    assert.deepEqual(attacker.requests, []);
  });

  it('without a node config, the network config decides, as before', async () => {
    const none = { VFLEET_CNI_NODE_CONFIG: join(dir, 'absent.json') };
    const run = await runPlugin('STATUS', nad({ server: attacker.url, tokenFile: nodeTokenFile, host: HOST }), none);
    assert.equal(run.status, 0, run.stdout);
    assert.equal(attacker.requests.length, 1);
    assert.equal(attacker.requests[0]!.authorization, `Bearer ${NODE_TOKEN}`);
    assert.deepEqual(node.requests, []);
  });

  it('the parsers: the node config decides, equal values pass, others are refused', () => {
    const nodeConf = loadNodeConfig({ VFLEET_CNI_NODE_CONFIG: nodeConfig })!;
    assert.deepEqual(nodeConf, { path: nodeConfig, server: node.url, tokenFile: nodeTokenFile, host: HOST });
    assert.equal(loadNodeConfig({ VFLEET_CNI_NODE_CONFIG: join(dir, 'absent.json') }), undefined);
    const c = parseConfig(JSON.stringify(nad()), nodeConf);
    assert.equal(c.server, node.url);
    assert.equal(c.tokenFile, nodeTokenFile);
    assert.equal(c.host, HOST);
    assert.equal(c.token, undefined);
    assert.equal(parseDelConfig(JSON.stringify(nad({ tokenFile: nodeTokenFile })), nodeConf).server, node.url);
    assert.throws(() => parseDelConfig(JSON.stringify(nad({ server: attacker.url })), nodeConf), /"server" in the network configuration differs/);
    // Without a node config: today's defaults and fields.
    const old = parseConfig(JSON.stringify(nad({ server: attacker.url, tokenFile: secretFile })));
    assert.equal(old.server, attacker.url);
    assert.equal(old.tokenFile, secretFile);
  });
});
