// The kubelet device plugin as it runs in production, seen from outside: a
// real `sriovd --device-plugin pools.yaml --kubelet-dir DIR` driving a
// simulated host, the fake kubelet on DIR/kubelet.sock, the fleet set up
// through the HTTP API, and the bundled vfleet-cni run as a runtime runs it.
// Nothing in-process but the fake kubelet and the simulated host's file
// (where the test pulls a cable and reads a VF's rates, as `ip link` would).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { Allocation, HostRecord } from '../../src/domain/types.js';
import { SriovHost } from '../../src/host/configurator.js';
import type { PfInfo } from '../../src/host/model.js';
import { setSimCable } from '../../src/sim/cable.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { api, eventually, startDaemon, type Daemon } from '../helpers/daemon.js';
import { FakeKubelet, type Device } from '../support/fake-kubelet.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** vfleet-cni names its host by os.hostname(): the simulated host must carry that name. */
const HOST = hostname();
const RED = 'vfleet.io/red';
const RED_BW = 'vfleet.io/red-bw';
const UNIT_MBPS = 1000;
const RATIO = 0.5;
const GUARANTEE_MBPS = 1000;
const MAX_RATE_MBPS = 5000;
/** Generous: each wait ends as soon as its condition holds (the 2 s target is measured in bench/). */
const WAIT_MS = 30_000;

const POOLS = `bandwidthUnitMbps: ${UNIT_MBPS}
pools:
  - name: red
    network: red
    redundancy: true
`;

/** One policy per PF, so a VF count can change on one PF while the other holds VFs. */
const policy = (pfs: string[], numVfs: number[]) =>
  `policies:\n${pfs.map((pf, i) => `  - name: fabric-${i}\n    selector: { pfNames: [${pf}] }\n    numVfs: ${numVfs[i]}\n    physnet: fabric\n`).join('')}`;

/**
 * dist/vfleet-cni is what ships, but cni.test.ts rebuilds it while the unit
 * tests run in parallel: the same `npm run build:cni` command (read from
 * package.json), with its output in this test's directory.
 */
function buildCniPlugin(outfile: string): void {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const command = pkg.scripts['build:cni']!.split(' && ')[0]!;
  // Shell words: a quoted part may sit inside a word (--banner:js='...').
  const words = (command.match(/(?:[^\s']+|'[^']*')+/g) ?? []).map((w) => w.replace(/'([^']*)'/g, '$1'));
  assert.equal(words[0], 'esbuild');
  const args = words.slice(1).map((w) => (w.startsWith('--outfile=') ? `--outfile=${outfile}` : w));
  const run = spawnSync(join(ROOT, 'node_modules', '.bin', 'esbuild'), args, { cwd: ROOT, encoding: 'utf8' });
  assert.equal(run.status, 0, `esbuild failed:\n${run.stdout}${run.stderr}`);
}

interface PluginRun {
  status: number | null;
  stdout: string;
  json: Record<string, unknown> | null;
}

/** Runs vfleet-cni once as a runtime does: CNI_* in the environment, the configuration on stdin. */
function runCni(plugin: string, command: string, config: object, env: Record<string, string>): Promise<PluginRun> {
  const child = spawn(plugin, [], { env: { PATH: process.env.PATH ?? '', CNI_COMMAND: command, CNI_PATH: '/opt/cni/bin', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  child.stdin.end(JSON.stringify(config));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout: stdout + stderr, json: stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : null }));
  });
}

const healthy = (devices: Device[]) => devices.filter((d) => d.health === 'Healthy');
const ids = (devices: Device[]) => devices.map((d) => d.ID).sort();

describe('the device plugin in a running sriovd, through a fake kubelet', { timeout: 240_000 }, () => {
  let dir: string;
  let simFile: string;
  let kubeletDir: string;
  let cniPlugin: string;
  let tokenFile: string;
  let kubelet: FakeKubelet;
  let daemon: Daemon;
  let admin: string;
  /** The simulated host's two PFs as first read (names, addresses, NUMA nodes). */
  let pfs: PfInfo[];
  const call = <T>(method: string, path: string, body?: unknown) => api<T>(daemon.url, admin, method, path, body);
  const inventory = async () => (await call<HostRecord>('GET', `/v1/hosts/${HOST}`)).body.inventory;
  const simHost = () => new SriovHost(createSimPorts(simFile));
  const devices = (resource: string, ok: (d: Device[]) => boolean) => kubelet.waitForDevices(resource, ok, WAIT_MS);
  const units = (count: number) => devices(RED_BW, (d) => healthy(d).length === count);
  /** Units of one PF: link speed × ratio / unit. */
  const perPf = () => Math.floor((pfs[0]!.linkSpeedMbps! * RATIO) / UNIT_MBPS);
  const pfOf = (pci: string) => pfs.findIndex((pf) => pf.vfs.some((v) => v.pciAddress === pci));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-dp-e2e-'));
    cniPlugin = join(dir, 'vfleet-cni');
    buildCniPlugin(cniPlugin);
    simFile = join(dir, 'host.json');
    await initSimHost(simFile, { profile: 'ice', pfs: 2, numaNodes: 2, hostname: HOST });
    kubeletDir = join(dir, 'kubelet');
    await mkdir(kubeletDir);
    kubelet = await FakeKubelet.start(kubeletDir);
    await writeFile(join(dir, 'pools.yaml'), POOLS);
    daemon = await startDaemon([
      '--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--host', `sim:${simFile}`, '--heartbeat-interval', '1',
      '--bandwidth-ratio', String(RATIO), '--device-plugin', join(dir, 'pools.yaml'), '--kubelet-dir', kubeletDir,
    ]);
    admin = (await readFile(join(dir, 'data', 'admin.token'), 'utf8')).trim();

    // The fleet, as an admin sets it up: tenant, physnet (guarantees enforced), VFs by policy, the network.
    assert.equal((await call('POST', '/v1/tenants', { name: 'acme' })).status, 201);
    assert.equal((await call('PUT', '/v1/physnets/fabric', { accountingOnly: false })).status, 200);
    const names = (await simHost().inventory()).pfs.map((p) => p.name);
    assert.equal((await call('PUT', `/v1/hosts/${HOST}/policy`, { document: policy(names, [4, 4]) })).status, 200);
    pfs = await eventually('4 VFs on each PF', WAIT_MS, async () => {
      const inv = await inventory();
      return inv.pfs.length === 2 && inv.pfs.every((p) => p.vfs.length === 4) ? inv.pfs : undefined;
    });
    const network = await call('POST', '/v1/networks', {
      name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100, minTxRateMbps: GUARANTEE_MBPS, maxTxRateMbps: MAX_RATE_MBPS,
      ipam: { cidr: '198.18.0.0/24', gateway: '198.18.0.1' },
    });
    assert.equal(network.status, 201, JSON.stringify(network.body));
    const token = await call<{ token: string }>('POST', '/v1/tokens', { role: `node:${HOST}` });
    tokenFile = join(dir, 'cni.token');
    await writeFile(tokenFile, `${token.body.token}\n`);
    await chmod(tokenFile, 0o600);
  });

  after(async () => {
    await daemon?.kill();
    await kubelet?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('registers vfleet.io/red and, once its network carries a guarantee, vfleet.io/red-bw', async () => {
    const red = await kubelet.waitForRegistrations(RED, 1, WAIT_MS);
    const bw = await kubelet.waitForRegistrations(RED_BW, 1, WAIT_MS);
    assert.deepEqual([red.endpoint, red.version], ['vfleet-red.sock', 'v1beta1']);
    assert.deepEqual([bw.endpoint, bw.version], ['vfleet-red-bw.sock', 'v1beta1']);
    assert.deepEqual(kubelet.endpoint(RED)?.options, { pre_start_required: true, get_preferred_allocation_available: true });
    assert.equal(kubelet.endpoint(RED_BW)?.options.get_preferred_allocation_available, true);
  });

  it('ListAndWatch lists one healthy device per VF with its PF’s NUMA node, and the free guarantee in units', async () => {
    const listed = await devices(RED, (d) => d.length === 8);
    const want = pfs.flatMap((pf) => pf.vfs.map((vf) => ({ ID: vf.pciAddress, health: 'Healthy', topology: { nodes: [{ ID: pf.numaNode }] } })));
    assert.deepEqual([...listed].sort((a, b) => a.ID.localeCompare(b.ID)), want.sort((a, b) => a.ID.localeCompare(b.ID)));
    assert.deepEqual(new Set(pfs.map((pf) => pf.numaNode)), new Set([0, 1]), 'the PFs sit on two NUMA nodes');
    // 2 PFs × 100 Gb/s × 0.5 in units of 1 Gb/s; nothing committed yet. Units carry no topology.
    const bw = await units(2 * perPf());
    assert.equal(perPf(), 50);
    assert.ok(bw.every((d) => d.topology === null && /^red-bw-\d+$/.test(d.ID)));
  });

  it('GetPreferredAllocation puts 2 VFs of the redundant pool on different PFs, keeping mustInclude', async () => {
    const available = ids(await devices(RED, (d) => healthy(d).length === 8));
    const request = (must: string[]) => ({ container_requests: [{ available_deviceIDs: available, must_include_deviceIDs: must, allocation_size: 2 }] });
    const [free] = (await kubelet.getPreferredAllocation(RED, request([]))).container_responses;
    assert.equal(free!.deviceIDs.length, 2);
    assert.deepEqual(new Set(free!.deviceIDs.map(pfOf)), new Set([0, 1]));
    const must = pfs[1]!.vfs[2]!.pciAddress;
    const [kept] = (await kubelet.getPreferredAllocation(RED, request([must]))).container_responses;
    assert.equal(kept!.deviceIDs[0], must);
    assert.equal(pfOf(kept!.deviceIDs[1]!), 0);
  });

  it('a pulled cable turns that PF’s VFs Unhealthy (and its units gone) in the next update; plugged back, they recover', async () => {
    const onPf = (d: Device[], pf: number) => d.filter((x) => pfOf(x.ID) === pf).map((x) => x.health);
    await setSimCable(simFile, pfs[0]!.name, 'down');
    const down = await devices(RED, (d) => onPf(d, 0).every((h) => h === 'Unhealthy') && onPf(d, 0).length === 4);
    assert.deepEqual(onPf(down, 1), ['Healthy', 'Healthy', 'Healthy', 'Healthy']);
    await units(perPf());
    // The kubelet would not offer it, but a stale list might: Allocate refuses it with a status the kubelet shows, claiming nothing.
    const broken = pfs[0]!.vfs[0]!.pciAddress;
    await assert.rejects(kubelet.allocate(RED, { container_requests: [{ devices_ids: [broken] }] }), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
      assert.match(e.details, new RegExp(`unhealthy device ids ${broken}.*nothing was claimed`));
      return true;
    });
    assert.deepEqual((await call<Allocation[]>('GET', '/v1/allocations')).body, []);
    await setSimCable(simFile, pfs[0]!.name, 'up');
    await devices(RED, (d) => healthy(d).length === 8);
    await units(2 * perPf());
  });

  it('a VF count changed by policy adds and removes devices, without a restart', async () => {
    const names = pfs.map((p) => p.name);
    const registered = kubelet.registrationsOf(RED).length;
    assert.equal((await call('PUT', `/v1/hosts/${HOST}/policy`, { document: policy(names, [4, 6]) })).status, 200);
    const more = await devices(RED, (d) => healthy(d).length === 10);
    const added = (await inventory()).pfs[1]!.vfs.slice(4).map((v) => v.pciAddress);
    assert.deepEqual(ids(more).filter((id) => pfOf(id) === -1).sort(), added.sort());
    assert.equal((await call('PUT', `/v1/hosts/${HOST}/policy`, { document: policy(names, [4, 4]) })).status, 200);
    const fewer = await devices(RED, (d) => d.length === 8 && healthy(d).length === 8);
    assert.deepEqual(ids(fewer), pfs.flatMap((pf) => pf.vfs.map((v) => v.pciAddress)).sort());
    assert.equal(kubelet.registrationsOf(RED).length, registered, 'the same registration, the same stream');
  });

  it('a guarantee committed outside Kubernetes takes its units off red-bw and its VF off red; released, both come back', async () => {
    await units(2 * perPf());
    const created = await call<Allocation>('POST', '/v1/allocations', { network: 'red', workload: { kind: 'vm', name: 'vm-1' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const a = created.body;
    assert.equal(a.deviceClaim, null);
    await units(2 * perPf() - GUARANTEE_MBPS / UNIT_MBPS);
    await devices(RED, (d) => d.find((x) => x.ID === a.pciAddress)?.health === 'Unhealthy' && healthy(d).length === 7);
    const released = await call('DELETE', `/v1/allocations/${a.id}`);
    assert.ok(released.status < 300, JSON.stringify(released.body));
    await units(2 * perPf());
    await devices(RED, (d) => healthy(d).length === 8);
  });

  it('Allocate claims the VF at the controller; the CNI ADD with that deviceID attaches exactly it, at the network’s rates', async () => {
    const available = ids(await devices(RED, (d) => healthy(d).length === 8));
    const [preferred] = (await kubelet.getPreferredAllocation(RED, { container_requests: [{ available_deviceIDs: available, must_include_deviceIDs: [], allocation_size: 1 }] })).container_responses;
    const vf = preferred!.deviceIDs[0]!;
    const [response] = (await kubelet.allocate(RED, { container_requests: [{ devices_ids: [vf] }] })).container_responses;
    assert.equal(response!.envs.PCIDEVICE_VFLEET_IO_RED, vf);
    assert.deepEqual(JSON.parse(response!.envs.PCIDEVICE_VFLEET_IO_RED_INFO!), { [vf]: { generic: { deviceID: vf } } });
    assert.deepEqual(response!.devices, [], 'a netdevice pool mounts no /dev/vfio');

    const claims = (await call<Allocation[]>('GET', '/v1/allocations?network=red')).body.filter((a) => a.deviceClaim !== null && a.state !== 'released');
    assert.equal(claims.length, 1);
    const claim = claims[0]!;
    assert.deepEqual([claim.pciAddress, claim.host, claim.deviceClaim, claim.attachment, claim.minTxRateMbps], [vf, HOST, { resource: RED }, null, GUARANTEE_MBPS]);
    // The pod's own claim keeps its VF Healthy for this resource, and its guarantee is the kubelet's to count (via red-bw).
    assert.equal((await devices(RED, () => true)).find((d) => d.ID === vf)?.health, 'Healthy');

    const netns = join(dir, 'netns-pod-a');
    await writeFile(netns, '');
    const conf = { cniVersion: '1.0.0', name: 'vfleet-red', type: 'vfleet-cni', network: 'red', server: daemon.url, tokenFile, deviceID: vf };
    const env = { CNI_CONTAINERID: 'pod-a', CNI_NETNS: netns, CNI_IFNAME: 'net1' };
    const add = await runCni(cniPlugin, 'ADD', conf, env);
    assert.equal(add.status, 0, add.stdout);
    const bound = (await call<Allocation>('GET', `/v1/allocations/${claim.id}`)).body;
    assert.deepEqual([bound.state, bound.workload.name, bound.pciAddress, bound.deviceClaim], ['attached', 'pod-a', vf, { resource: RED }]);
    const links = (await createSimPorts(simFile).netns.links(netns)).filter((l) => l.pciAddress !== null);
    assert.deepEqual(links.map((l) => [l.pciAddress, l.ifname, l.mac]), [[vf, 'net1', claim.mac]]);
    const pf = pfs[pfOf(vf)]!;
    const configured = (await simHost().pf(pf.pciAddress)).vfs.find((v) => v.pciAddress === vf)!;
    assert.deepEqual([configured.vlan, configured.maxTxRateMbps, configured.minTxRateMbps], [100, MAX_RATE_MBPS, GUARANTEE_MBPS]);
    // The kubelet's PreStartContainer now finds the claim bound and configured.
    await kubelet.preStartContainer(RED, [vf]);

    const del = await runCni(cniPlugin, 'DEL', conf, env);
    assert.equal(del.status, 0, del.stdout);
    await eventually('the claim released', WAIT_MS, async () => ((await call<Allocation>('GET', `/v1/allocations/${claim.id}`)).body.state === 'released' ? true : undefined));
  });

  it('registers again when kubelet.sock is deleted and re-created, and after a kubelet restart that wipes the plugins’ sockets', async () => {
    const before = { red: kubelet.registrationsOf(RED).length, bw: kubelet.registrationsOf(RED_BW).length };
    await kubelet.restart({ wipePluginSockets: false });
    await kubelet.waitForRegistrations(RED, before.red + 1, WAIT_MS);
    await kubelet.waitForRegistrations(RED_BW, before.bw + 1, WAIT_MS);
    await devices(RED, (d) => healthy(d).length === 8);
    await kubelet.restart();
    await kubelet.waitForRegistrations(RED, before.red + 2, WAIT_MS);
    await kubelet.waitForRegistrations(RED_BW, before.bw + 2, WAIT_MS);
    await devices(RED, (d) => healthy(d).length === 8);
    await units(2 * perPf());
    assert.equal(kubelet.endpoint(RED)?.streaming, true);
  });
});
