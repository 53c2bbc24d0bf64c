// Lab suite (needs root and the SR-IOV lab, 2 PFs): the kubelet device plugin
// of sriovd on real igb VFs, driven by the fake kubelet (test/support) as the
// kubelet's device manager drives it, and the pod's CNI ADD through the
// reference CNI client (cnitool), with `deviceID` in vfleet-cni's config as
// Multus puts it there.
//
// igb has no min_tx_rate (EINVAL), so the physnet is accounting-only: the
// network's guarantee is counted by admission and by the bandwidth resource,
// never written to the VF; its max_tx_rate is.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DeviceView } from '../../src/controller/device-view.js';
import type { Allocation } from '../../src/domain/types.js';
import { assertCniToolsInstalled, CniTool, type Conflist, type CniToolRun } from '../helpers/cnitool.js';
import { sriovctl } from '../helpers/cli.js';
import { api, eventually, startDaemon, type Daemon } from '../helpers/daemon.js';
import { FakeKubelet, type Device } from '../support/fake-kubelet.js';
import { labPfs, rawVfs } from './lab-host.js';

const HOST = 'lab-host';
const NUM_VFS = 3;
const RATIO = 0.9;
const UNIT_MBPS = 100;
const MIN_TX = 100;
const MAX_TX = 300;
const NETWORK = 'red';
const RESOURCE = 'vfleet.io/red';
const BW_RESOURCE = 'vfleet.io/red-bw';
const POD_NS = 'dp-pod';
const PLAIN_NS = 'dp-plain';
const NAMESPACES = [POD_NS, PLAIN_NS];
const nsPath = (ns: string) => `/var/run/netns/${ns}`;
/** The emulated guest is slow (node starts in ~0.6 s there): generous waits, never timed assertions. */
const WAIT_MS = 120_000;

/** The VFs of a PF as sysfs lists them: virtfnN → its PCI address (no vfleet code in between). */
function sysfsVfs(pf: string): Array<{ index: number; pci: string }> {
  const dir = `/sys/class/net/${pf}/device`;
  return readdirSync(dir)
    .filter((f) => /^virtfn\d+$/.test(f))
    .map((f) => ({ index: Number(f.slice('virtfn'.length)), pci: basename(readlinkSync(join(dir, f))) }))
    .sort((a, b) => a.index - b.index);
}
const sysfsNumber = (path: string) => Number(readFileSync(path, 'utf8').trim());
/** What the plugin owes the kubelet per PF: floor((speed × ratio − guarantees of non-claims) / unit). */
const unitsOf = (speedMbps: number, committedMbps: number) => Math.max(0, Math.floor((speedMbps * RATIO - committedMbps) / UNIT_MBPS));

interface IpLink {
  ifname: string;
  address: string;
  parentbus?: string;
  parentdev?: string;
}
/** `ip -n NS -j -d link show`: the links in a namespace, with the bus device behind each. */
const linksIn = (ns: string): IpLink[] => JSON.parse(execFileSync('ip', ['-n', ns, '-j', '-d', 'link', 'show'], { encoding: 'utf8' })) as IpLink[];
/** The PCI device behind a netdev of a namespace, read from the namespace's own sysfs (ip netns exec mounts it). */
const pciOfNetdevIn = (ns: string, ifname: string) =>
  basename(execFileSync('ip', ['netns', 'exec', ns, 'readlink', '-f', `/sys/class/net/${ifname}/device`], { encoding: 'utf8' }).trim());
/** The netdevs of a PCI device in the host namespace (none while it is in a container). */
const hostNetdevsOf = (pci: string) => spawnSync('ls', [`/sys/bus/pci/devices/${pci}/net`], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean);

describe('the kubelet device plugin on igb VFs: ListAndWatch, Allocate, the pod ADD with deviceID, the bandwidth resource', { timeout: 1_400_000 }, () => {
  let dir: string;
  let kubeletDir: string;
  let daemon: Daemon;
  let kubelet: FakeKubelet;
  let admin: string;
  let tokenFile: string;
  let cni: CniTool;
  let pfs: string[];
  /** PF name → its link speed (sysfs), its VFs (sysfs) and its NUMA node (sysfs, -1: none). */
  const pfFacts = new Map<string, { speed: number; numa: number; pci: string; vfs: Array<{ index: number; pci: string }> }>();
  /** The VF the kubelet gave the pod, and its claim, as Allocate left them. */
  let podVf: { pci: string; pf: string; index: number };
  let podAllocation: Allocation;
  let plainAllocation: Allocation;
  const call = <T>(method: string, path: string, body?: unknown) => api<T>(daemon.url, admin, method, path, body);
  const ok = (run: CniToolRun, what: string) => assert.equal(run.code, 0, `${what}: exit ${run.code}\n${run.stderr}${run.stdout}`);
  const view = async () => (await call<DeviceView>('GET', `/v1/agent/devices?host=${HOST}`)).body;
  const allocationOf = async (ns: string) => {
    const all = (await call<Allocation[]>('GET', `/v1/allocations?workload=${CniTool.containerId(nsPath(ns))}`)).body;
    assert.equal(all.length, 1, `one allocation for ${ns}: ${JSON.stringify(all)}`);
    return all[0]!;
  };
  /** The pod's network as Multus hands it to the delegate: vfleet-cni's config with `deviceID` at its top level. */
  const podConflist = (deviceID?: string): Conflist => ({
    name: 'red-pod',
    cniVersion: '1.0.0',
    plugins: [{ type: 'vfleet-cni', network: NETWORK, server: daemon.url, tokenFile, host: HOST, timeoutSeconds: 300, ...(deviceID ? { deviceID } : {}) }],
  });
  const bwUnits = () => kubelet.endpoint(BW_RESOURCE)?.devices?.length;
  const expectedUnits = (committedByPf: Map<string, number>) => pfs.reduce((sum, pf) => sum + unitsOf(pfFacts.get(pf)!.speed, committedByPf.get(pf) ?? 0), 0);

  before(async () => {
    await assertCniToolsInstalled();
    pfs = await labPfs();
    assert.ok(pfs.length >= 2, 'this suite needs 2 PFs (lab.sh --pfs 2)');
    for (const ns of NAMESPACES) execFileSync('ip', ['netns', 'add', ns]);
    dir = await mkdtemp(join(tmpdir(), 'vfleet-lab-dp-'));
    kubeletDir = join(dir, 'device-plugins');
    await mkdir(kubeletDir);
    // The kubelet is up first, as on a node: the plugin registers when it starts.
    kubelet = await FakeKubelet.start(kubeletDir);
    const pools = join(dir, 'pools.yaml');
    await writeFile(pools, `bandwidthUnitMbps: ${UNIT_MBPS}\npools:\n  - name: red\n    network: ${NETWORK}\n`);
    daemon = await startDaemon([
      '--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--host', 'linux', '--hostname', HOST,
      '--heartbeat-interval', '1', '--resync-interval', '3', '--bandwidth-ratio', String(RATIO), '--log-level', 'info',
      '--device-plugin', pools, '--kubelet-dir', kubeletDir,
    ]);
    admin = (await readFile(join(dir, 'data', 'admin.token'), 'utf8')).trim();
    const policy = `policies:\n  - name: lab\n    selector: { drivers: [igb] }\n    numVfs: ${NUM_VFS}\n    physnet: lab\n`;
    assert.equal((await call('PUT', `/v1/hosts/${HOST}/policy`, { document: policy })).status, 200);
    await eventually(`${NUM_VFS} VFs on each PF`, WAIT_MS, async () => (pfs.every((pf) => rawVfs(pf).length === NUM_VFS) ? true : undefined));
    // The plugin lists a VF as soon as this host's sysfs shows it, but the controller can place it (Allocate's
    // claim) only once the agent has reported it: until then Allocate answers NOT_FOUND ("not in the host's
    // inventory"). A kubelet does not retry a failed Allocate (the pod fails admission), so wait for the report.
    await eventually("the controller's inventory with the VFs", WAIT_MS, async () => {
      const record = (await call<{ inventory: { pfs: Array<{ name: string; vfs: unknown[] }> } }>('GET', `/v1/hosts/${HOST}`)).body;
      return pfs.every((pf) => record.inventory.pfs.find((p) => p.name === pf)?.vfs.length === NUM_VFS) ? true : undefined;
    });
    // igb resets the PF when its VFs are created: its link (and so its speed) comes back a moment later.
    await eventually('the PFs link up again', WAIT_MS, async () => (pfs.every((pf) => sysfsNumber(`/sys/class/net/${pf}/speed`) > 0) ? true : undefined));
    for (const pf of pfs) {
      const dev = `/sys/class/net/${pf}`;
      pfFacts.set(pf, { speed: sysfsNumber(`${dev}/speed`), numa: sysfsNumber(`${dev}/device/numa_node`), pci: basename(readlinkSync(`${dev}/device`)), vfs: sysfsVfs(pf) });
    }
    // igb cannot enforce a guarantee: the physnet says it is only accounted (else admission refuses min_tx_rate there).
    const physnet = await call<{ accountingOnly: boolean }>('PUT', '/v1/physnets/lab', { accountingOnly: true });
    assert.equal(physnet.status, 200, JSON.stringify(physnet.body));
    assert.equal((await call('POST', '/v1/tenants', { name: 'k8s' })).status, 201);
    const ipam = { cidr: '198.18.0.0/24', rangeStart: '198.18.0.10', gateway: '198.18.0.1' };
    const net = await call('POST', '/v1/networks', { name: NETWORK, tenant: 'k8s', physnet: 'lab', vlan: 100, minTxRateMbps: MIN_TX, maxTxRateMbps: MAX_TX, ipam });
    assert.equal(net.status, 201, JSON.stringify(net.body));
    const token = await call<{ token: string }>('POST', '/v1/tokens', { role: `node:${HOST}` });
    tokenFile = join(dir, 'cni.token');
    await writeFile(tokenFile, `${token.body.token}\n`, { mode: 0o600 });
    cni = await CniTool.create();
  });

  after(async () => {
    // What went wrong at the agent or the plugin, in the suite's output (the guest's log goes with it).
    const notable = daemon?.log().split('\n').filter((l) => /warn|error|device plugin/i.test(l)) ?? [];
    if (notable.length) console.log(`sriovd said:\n${notable.slice(-60).join('\n')}`);
    await daemon?.kill();
    await kubelet?.stop();
    for (const ns of NAMESPACES) spawnSync('ip', ['netns', 'del', ns]);
    await cni?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('registers both resources; the kubelet sees every lab VF by its PCI address, and link speed × ratio / unit bandwidth units', async () => {
    assert.deepEqual((await view()).accountingOnly, ['lab'], 'the device view says the physnet is accounting-only');
    const vfs = pfs.flatMap((pf) => pfFacts.get(pf)!.vfs.map((vf) => ({ ...vf, numa: pfFacts.get(pf)!.numa })));
    assert.equal(vfs.length, NUM_VFS * pfs.length);
    const ids = vfs.map((vf) => vf.pci).sort();
    const listed = await kubelet.waitForDevices(RESOURCE, (d) => d.length === ids.length, WAIT_MS);
    assert.deepEqual(listed.map((d) => d.ID).sort(), ids, 'one device per lab VF, by its sysfs PCI address');
    for (const d of listed) {
      assert.equal(d.health, 'Healthy', `${d.ID}: ${JSON.stringify(d)}`);
      const numa = vfs.find((vf) => vf.pci === d.ID)!.numa;
      assert.deepEqual(d.topology?.nodes ?? [], numa < 0 ? [] : [{ ID: numa }], `${d.ID}: the PF's NUMA node`);
    }
    const registered = kubelet.endpoint(RESOURCE)!;
    assert.equal(registered.endpoint, 'vfleet-red.sock');
    assert.equal(registered.options.pre_start_required, true);
    assert.equal(registered.options.get_preferred_allocation_available, true);

    const units = expectedUnits(new Map());
    assert.ok(units > 0, `link speeds ${pfs.map((pf) => pfFacts.get(pf)!.speed).join(', ')} Mbps give units`);
    const bw = await kubelet.waitForDevices(BW_RESOURCE, (d) => d.length === units, WAIT_MS);
    assert.deepEqual(bw.map((d) => d.ID).sort(), Array.from({ length: units }, (_, n) => `red-bw-${n}`).sort());
    assert.ok(bw.every((d) => d.health === 'Healthy' && !d.topology?.nodes?.length), 'units are healthy and tied to no NUMA node');
    assert.equal(kubelet.endpoint(BW_RESOURCE)!.endpoint, 'vfleet-red-bw.sock');
  });

  it('Allocate claims the VF the kubelet chose; the CNI ADD with that deviceID puts exactly it into the pod with max_tx_rate 300', async (t) => {
    const free = (await kubelet.waitForDevices(RESOURCE, (d) => d.length > 0, WAIT_MS)).map((d) => d.ID);
    const preferred = await kubelet.getPreferredAllocation(RESOURCE, {
      container_requests: [{ available_deviceIDs: free, must_include_deviceIDs: [], allocation_size: 1 }],
    });
    const chosen = preferred.container_responses[0]!.deviceIDs;
    assert.equal(chosen.length, 1);
    assert.ok(free.includes(chosen[0]!));
    const pci = chosen[0]!;
    const pf = pfs.find((p) => pfFacts.get(p)!.vfs.some((vf) => vf.pci === pci))!;
    podVf = { pci, pf, index: pfFacts.get(pf)!.vfs.find((vf) => vf.pci === pci)!.index };
    t.diagnostic(`the kubelet gives ${pci} (${pf} vf ${podVf.index})`);

    // The pod asks for one VF and its network's guarantee in units: two resources, two Allocates (as the kubelet does per resource).
    const allocated = await kubelet.allocate(RESOURCE, { container_requests: [{ devices_ids: [pci] }] });
    const envs = allocated.container_responses[0]!.envs;
    assert.equal(envs.PCIDEVICE_VFLEET_IO_RED, pci);
    assert.deepEqual(JSON.parse(envs.PCIDEVICE_VFLEET_IO_RED_INFO!), { [pci]: { generic: { deviceID: pci } } });
    assert.deepEqual(allocated.container_responses[0]!.devices, [], 'a netdevice VF needs no device node');
    const units = Array.from({ length: MIN_TX / UNIT_MBPS }, (_, n) => `red-bw-${n}`);
    const bw = await kubelet.allocate(BW_RESOURCE, { container_requests: [{ devices_ids: units }] });
    assert.equal(bw.container_responses[0]!.envs.VFLEET_RED_BW_UNITS, String(units.length));

    const claims = (await call<Allocation[]>('GET', `/v1/allocations?host=${HOST}`)).body.filter((a) => a.deviceClaim !== null);
    assert.equal(claims.length, 1, JSON.stringify(claims));
    const claim = claims[0]!;
    assert.equal(claim.pciAddress, pci);
    assert.equal(claim.network, NETWORK);
    assert.equal(claim.attachment, null, 'held for the pod, bound by its ADD');
    assert.deepEqual(claim.deviceClaim, { resource: RESOURCE });
    assert.equal(claim.minTxRateMbps, MIN_TX, 'the claim carries the guarantee');
    // The agent prepares the claimed VF before the pod's ADD comes (igb: VLAN and max_tx_rate; no min_tx_rate, accounted only).
    const prepared = await eventually('the claim configured by the agent', WAIT_MS, async () => {
      const a = (await call<Allocation>('GET', `/v1/allocations/${claim.id}`)).body;
      return a.state === 'pending' ? undefined : a;
    });
    assert.equal(prepared.state, 'configured', `claim ${claim.id}: ${prepared.state} (${prepared.reason ?? ''})`);
    // The same VF is no longer the kubelet's to give: another pool's, a VM's or a CLI user's allocation would be refused.
    const busy = await call<{ error: { code: string } }>('POST', '/v1/allocations', { network: NETWORK, host: HOST, pciAddress: pci, workload: { kind: 'container', name: 'thief' } });
    assert.equal(busy.status, 409, JSON.stringify(busy.body));

    // The sandbox's CNI ADD (Multus passes deviceID at the top of the delegate's config).
    await cni.writeConflist(podConflist(pci));
    const add = await cni.run('add', 'red-pod', nsPath(POD_NS));
    ok(add, 'ADD with deviceID');
    podAllocation = await allocationOf(POD_NS);
    assert.equal(podAllocation.id, claim.id, 'the ADD bound the claim rather than allocating anew');
    assert.equal(podAllocation.state, 'attached');
    assert.equal(podAllocation.pciAddress, pci);

    const links = linksIn(POD_NS).filter((l) => l.ifname !== 'lo');
    assert.deepEqual(links.map((l) => l.ifname), ['net1'], 'exactly one VF netdev in the pod');
    const net1 = links[0]!;
    t.diagnostic(`net1 in ${POD_NS}: ${JSON.stringify(net1)}`);
    assert.equal(net1.parentdev, pci, 'ip -d link: the netdev is that PCI device (parentdev)');
    assert.equal(pciOfNetdevIn(POD_NS, 'net1'), pci, 'sysfs in the namespace: the netdev is that PCI device');
    assert.deepEqual(hostNetdevsOf(pci), [], 'no netdev of it left in the host');
    assert.equal(net1.address, podAllocation.mac);

    const vf = rawVfs(pf).find((v) => v.vf === podVf.index)!;
    t.diagnostic(`ip -j -d link show ${pf}, vf ${podVf.index}: ${JSON.stringify(vf)}`);
    assert.equal(vf.rate?.max_tx, MAX_TX, "the network's max_tx_rate is on the VF");
    assert.equal((vf.rate as { min_tx?: number } | undefined)?.min_tx ?? 0, 0, 'igb has no min_tx_rate: the guarantee is only accounted');
    assert.equal(vf.vlan_list?.[0]?.vlan, 100);
    assert.equal(vf.address, podAllocation.mac);

    // A runtime's CHECK compares the VF with the network: max_tx_rate 300, and no min_tx_rate wanted where igb has none.
    ok(await cni.run('check', 'red-pod', nsPath(POD_NS)), 'CHECK');

    // The kubelet's PreStartContainer, before the pod's containers start: the VF is configured and attached.
    await kubelet.preStartContainer(RESOURCE, [pci]);
    // While the pod holds it the kubelet keeps counting it as the pod's: still listed, still healthy for this resource.
    const listed = kubelet.endpoint(RESOURCE)!.devices!.find((d: Device) => d.ID === pci);
    assert.equal(listed?.health, 'Healthy');
  });

  it("the bandwidth resource shrinks by a non-Kubernetes allocation's guarantee; admission counts the pod's too", async (t) => {
    const before = bwUnits();
    assert.equal(before, expectedUnits(new Map()), "the pod's claim is the kubelet's to count (its units), not subtracted again");

    // A container attached by the CLI, outside Kubernetes, on the other PF's VFs or the same: wherever the scheduler puts it.
    const r = await sriovctl(
      ['--server', daemon.url, 'attach', 'container', '--network', NETWORK, '--netns', nsPath(PLAIN_NS), '--ifname', 'net1', '--host', HOST, '--timeout', '300', '-o', 'json'],
      { SRIOV_TOKEN: admin },
    );
    assert.equal(r.code, 0, r.stderr);
    plainAllocation = JSON.parse(r.stdout) as Allocation;
    assert.equal(plainAllocation.state, 'attached');
    assert.equal(plainAllocation.deviceClaim, null);
    assert.notEqual(plainAllocation.pciAddress, podVf.pci);
    t.diagnostic(`the CLI's container got ${plainAllocation.pf} vf ${plainAllocation.vfIndex}`);
    assert.equal(rawVfs(plainAllocation.pf).find((v) => v.vf === plainAllocation.vfIndex)?.rate?.max_tx, MAX_TX);

    const shrunk = expectedUnits(new Map([[plainAllocation.pf, MIN_TX]]));
    assert.equal(shrunk, before! - MIN_TX / UNIT_MBPS, `the arithmetic: ${before} units less ${MIN_TX} Mbps`);
    await kubelet.waitForDevices(BW_RESOURCE, (d) => d.length === shrunk, WAIT_MS);
    // The VF the CLI took is no longer the kubelet's to give.
    const taken = await kubelet.waitForDevices(RESOURCE, (d) => d.find((x) => x.ID === plainAllocation.pciAddress)?.health === 'Unhealthy', WAIT_MS);
    assert.equal(taken.filter((d) => d.health === 'Unhealthy').map((d) => d.ID).join(), plainAllocation.pciAddress);

    // Admission counts both guarantees per PF: on the pod's PF, a guarantee of the whole headroom plus 1 Mbps does not fit.
    const facts = pfFacts.get(podVf.pf)!;
    const committed = MIN_TX * (plainAllocation.pf === podVf.pf ? 2 : 1);
    const headroom = Math.round(facts.speed * RATIO - committed);
    const big = await call('POST', '/v1/networks', { name: 'big', tenant: 'k8s', physnet: 'lab', vlan: 300, minTxRateMbps: headroom + 1 });
    assert.equal(big.status, 201, JSON.stringify(big.body));
    const spare = facts.vfs.find((vf) => vf.pci !== podVf.pci && vf.pci !== plainAllocation.pciAddress)!;
    const refused = await call<{ error: { code: string; message: string } }>('POST', '/v1/allocations', {
      network: 'big', host: HOST, pciAddress: spare.pci, workload: { kind: 'container', name: 'too-big' },
    });
    t.diagnostic(`a ${headroom + 1} Mbps guarantee on ${podVf.pf}: ${refused.status} ${JSON.stringify(refused.body)}`);
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.match(refused.body.error.message, new RegExp(`${podVf.pf}|${facts.pci}`), 'the refusal names the PF');
    // The whole headroom fits: the pod's guarantee is counted, and nothing more.
    const fits = await call('POST', '/v1/networks', { name: 'fits', tenant: 'k8s', physnet: 'lab', vlan: 301, minTxRateMbps: headroom });
    assert.equal(fits.status, 201, JSON.stringify(fits.body));
    const okay = await call<Allocation>('POST', '/v1/allocations', { network: 'fits', host: HOST, pciAddress: spare.pci, workload: { kind: 'container', name: 'just-fits' } });
    assert.equal(okay.status, 201, JSON.stringify(okay.body));
    assert.ok((await call('DELETE', `/v1/allocations/${okay.body.id}`)).status < 300);
    await eventually('the fitting allocation released', WAIT_MS, async () => ((await call<Allocation>('GET', `/v1/allocations/${okay.body.id}`)).body.state === 'released' ? true : undefined));
  });

  it('CNI DEL releases the pod’s VF: scrubbed, back in the host, healthy and free again; the units come back', async () => {
    await cni.writeConflist(podConflist(podVf.pci));
    ok(await cni.run('del', 'red-pod', nsPath(POD_NS)), 'DEL');
    assert.equal((await allocationOf(POD_NS)).state, 'released');
    assert.deepEqual(linksIn(POD_NS).map((l) => l.ifname), ['lo']);
    assert.equal(hostNetdevsOf(podVf.pci).length, 1, 'the netdev is back in the host');
    const vf = rawVfs(podVf.pf).find((v) => v.vf === podVf.index)!;
    assert.equal(vf.rate?.max_tx ?? 0, 0, 'max_tx_rate scrubbed');
    assert.equal(vf.vlan_list?.[0]?.vlan ?? 0, 0);
    assert.notEqual(vf.address, podAllocation.mac);
    ok(await cni.run('del', 'red-pod', nsPath(POD_NS)), 'DEL again');

    const r = await sriovctl(['--server', daemon.url, 'detach', plainAllocation.id, '--timeout', '300', '-o', 'json'], { SRIOV_TOKEN: admin });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as Allocation).state, 'released');
    await kubelet.waitForDevices(BW_RESOURCE, (d) => d.length === expectedUnits(new Map()), WAIT_MS);
    const all = await kubelet.waitForDevices(RESOURCE, (d) => d.length === NUM_VFS * pfs.length && d.every((x) => x.health === 'Healthy'), WAIT_MS);
    assert.ok(all.some((d) => d.ID === podVf.pci));
    const holding = (await call<Allocation[]>('GET', `/v1/allocations?host=${HOST}`)).body.filter((a) => !['released', 'failed'].includes(a.state));
    assert.deepEqual(holding.map((a) => `${a.id} ${a.state}`), [], 'nothing left held');
  });
});
