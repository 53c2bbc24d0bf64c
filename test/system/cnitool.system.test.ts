/**
 * vfleet-cni driven only through the reference CNI client: cnitool on libcni
 * 1.3.0 (test/cni/build-tools.sh), against a real sriovd whose agent drives a
 * simulated host. libcni does what a container runtime does (version
 * negotiation, the result cache, prevResult on CHECK and DEL, GC and STATUS),
 * so these are the CNI 1.1 semantics of issue 9 as a runtime sees them.
 *
 * The simulated host's network namespaces are plain files; cnitool names the
 * container after the namespace path, so one file is one container.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Allocation, HostRecord } from '../../src/domain/types.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { assertCniToolsInstalled, CniTool, type Conflist, type CniToolRun } from '../helpers/cnitool.js';
import { api, eventually, startDaemon, type Daemon } from '../helpers/daemon.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const HOST = hostname();
// ens1f0 carries physnet fabric (the networks under test), ens1f1 physnet tiny with a single VF (STATUS when full).
const POLICY = `policies:
  - name: fabric
    selector: { pfNames: [ens1f0] }
    numVfs: 16
    physnet: fabric
  - name: tiny
    selector: { pfNames: [ens1f1] }
    numVfs: 1
    physnet: tiny
`;
const NETWORKS = [
  { name: 'blue-100', physnet: 'fabric', vlan: 100, pool: '198.18.0' },
  { name: 'blue-200', physnet: 'fabric', vlan: 200, pool: '198.18.1' },
  { name: 'blue-tiny', physnet: 'tiny', vlan: 300, pool: '198.18.2' },
] as const;
type NetworkName = (typeof NETWORKS)[number]['name'];

describe('vfleet-cni through cnitool (libcni 1.3.0) on a simulated host', { timeout: 300_000 }, () => {
  let dir: string;
  let simFile: string;
  let tokenFile: string;
  let daemon: Daemon;
  let admin: string;
  let cni: CniTool;
  let nsCount = 0;
  const call = <T>(method: string, path: string, body?: unknown) => api<T>(daemon.url, admin, method, path, body);

  /** A one-plugin list: vfleet-cni on a vfleet network; the plugin's own fields can be overridden. */
  const conflist = (name: string, version: string | { cniVersion: string; cniVersions: string[] }, network: NetworkName = 'blue-100', plugin: Record<string, unknown> = {}): Conflist => ({
    name,
    ...(typeof version === 'string' ? { cniVersion: version } : version),
    plugins: [{ type: 'vfleet-cni', network, server: daemon.url, tokenFile, hostBackend: `sim:${simFile}`, ...plugin }],
  });
  /** A container: its namespace, as the simulated host takes it (a plain file). */
  const newNetns = async () => {
    const path = join(dir, `netns-${++nsCount}`);
    await writeFile(path, '');
    return path;
  };
  const allocationsOf = async (netns: string) => (await call<Allocation[]>('GET', `/v1/allocations?workload=${CniTool.containerId(netns)}`)).body;
  const holding = async (netns: string) => (await allocationsOf(netns)).filter((a) => a.state !== 'released' && a.state !== 'failed');
  const linkIn = async (netns: string, ifname = 'net1') => (await createSimPorts(simFile).netns.links(netns)).find((l) => l.ifname === ifname);
  const ok = (run: CniToolRun, what: string) => assert.equal(run.code, 0, `${what}: exit ${run.code}\n${run.stderr}${run.stdout}`);
  /** The one allocation a container holds, attached. */
  const attached = async (netns: string): Promise<Allocation> => {
    const held = await holding(netns);
    assert.equal(held.length, 1, `one allocation for ${netns}: ${JSON.stringify(held)}`);
    assert.equal(held[0]!.state, 'attached');
    return held[0]!;
  };
  const released = (netns: string, id: string) =>
    eventually(`allocation ${id} released`, 30_000, async () => ((await allocationsOf(netns)).find((a) => a.id === id)?.state === 'released' ? true : undefined));

  before(async () => {
    const build = spawnSync('npm', ['run', '--silent', 'build:cni'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(build.status, 0, `npm run build:cni failed:\n${build.stdout}${build.stderr}`);
    await assertCniToolsInstalled();
    dir = await mkdtemp(join(tmpdir(), 'vfleet-cnitool-sys-'));
    simFile = join(dir, 'host.json');
    await initSimHost(simFile, { profile: 'ice', pfs: 2, hostname: HOST });
    daemon = await startDaemon(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--host', `sim:${simFile}`, '--heartbeat-interval', '1']);
    admin = (await readFile(join(dir, 'data', 'admin.token'), 'utf8')).trim();
    cni = await CniTool.create();
    await setUpFleet();
  });

  after(async () => {
    await daemon?.kill();
    await cni?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Tenant blue with three networks (two on fabric, one on the single-VF physnet); the plugin gets the host's node token. */
  async function setUpFleet(): Promise<void> {
    assert.equal((await call('PUT', `/v1/hosts/${HOST}/policy`, { document: POLICY })).status, 200);
    await eventually('VFs on both PFs', 30_000, async () => {
      const pfs = (await call<HostRecord>('GET', `/v1/hosts/${HOST}`)).body.inventory?.pfs ?? [];
      return pfs.map((p) => p.numVfs).join() === '16,1' ? true : undefined;
    });
    assert.equal((await call('POST', '/v1/tenants', { name: 'blue' })).status, 201);
    for (const n of NETWORKS) {
      const ipam = { cidr: `${n.pool}.0/24`, rangeStart: `${n.pool}.10`, gateway: `${n.pool}.1`, routes: [{ dst: 'default', gw: `${n.pool}.1` }] };
      const res = await call('POST', '/v1/networks', { name: n.name, tenant: 'blue', physnet: n.physnet, vlan: n.vlan, maxTxRateMbps: 1000, ipam });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    const token = await call<{ token: string }>('POST', '/v1/tokens', { role: `node:${HOST}` });
    tokenFile = join(dir, 'cni.token');
    await writeFile(tokenFile, `${token.body.token}\n`, { mode: 0o600 });
  }

  for (const version of ['0.4.0', '1.0.0', '1.1.0']) {
    it(`ADD, CHECK and DEL with a ${version} configuration`, async () => {
      const net = `vf-${version.replaceAll('.', '')}`;
      await cni.writeConflist(conflist(net, version));
      const netns = await newNetns();
      const add = await cni.run('add', net, netns);
      ok(add, 'ADD');
      const a = await attached(netns);
      const { kind, netns: attachedNetns, ifname, cniNetwork, ips } = a.attachment as { kind: string; netns: string; ifname: string; cniNetwork?: string; ips: string[] };
      assert.deepEqual({ kind, attachedNetns, ifname, cniNetwork }, { kind: 'container', attachedNetns: netns, ifname: 'net1', cniNetwork: net });
      const cidr = ips[0]!;
      assert.match(cidr, /^198\.18\.0\.\d+\/24$/);
      assert.equal(add.json?.cniVersion, version);
      // pciID is a CNI 1.1 field: a 1.0.0 result must not carry it.
      assert.deepEqual(add.json?.interfaces, [{ name: 'net1', mac: a.mac, sandbox: netns, ...(version === '1.1.0' ? { pciID: a.pciAddress } : {}) }]);
      const ip = { address: cidr, gateway: '198.18.0.1', interface: 0 };
      assert.deepEqual(add.json?.ips, [version === '0.4.0' ? { ...ip, version: '4' } : ip]);
      const link = await linkIn(netns);
      assert.equal(link?.mac, a.mac);
      assert.deepEqual(link?.addresses, [cidr]);

      ok(await cni.run('check', net, netns), 'CHECK');
      ok(await cni.run('del', net, netns), 'DEL');
      assert.deepEqual((await allocationsOf(netns)).map((x) => x.state), ['released']);
      assert.equal(await linkIn(netns), undefined);
    });
  }

  it('negotiates 1.1.0 from cniVersions ["1.0.0", "1.1.0"]', async () => {
    await cni.writeConflist(conflist('vf-negotiated', { cniVersion: '1.0.0', cniVersions: ['1.0.0', '1.1.0'] }));
    const netns = await newNetns();
    const add = await cni.run('add', 'vf-negotiated', netns);
    ok(add, 'ADD');
    assert.equal(add.json?.cniVersion, '1.1.0');
    const a = await attached(netns);
    assert.equal((add.json?.interfaces as Array<{ pciID?: string }>)[0]?.pciID, a.pciAddress);
    ok(await cni.run('check', 'vf-negotiated', netns), 'CHECK');
    ok(await cni.run('status', 'vf-negotiated'), 'STATUS');
    ok(await cni.run('del', 'vf-negotiated', netns), 'DEL');
    assert.deepEqual((await allocationsOf(netns)).map((x) => x.state), ['released']);
  });

  it('STATUS: ready with free VFs; 50 when the network has none left or sriovd is unreachable', async () => {
    await cni.writeConflist(conflist('status-fabric', '1.1.0'));
    await cni.writeConflist(conflist('status-tiny', '1.1.0', 'blue-tiny'));
    await cni.writeConflist(conflist('status-nowhere', '1.1.0', 'blue-100', { server: 'http://127.0.0.1:1' }));
    const fabric = await cni.run('status', 'status-fabric');
    ok(fabric, 'STATUS');
    assert.equal(fabric.stdout, '');
    ok(await cni.run('status', 'status-tiny'), 'STATUS with the one VF free');

    // The single VF of physnet tiny taken: an ADD could not be served (50); existing attachments are unaffected (not 51).
    const netns = await newNetns();
    ok(await cni.run('add', 'status-tiny', netns), 'ADD taking the last VF');
    const full = await cni.run('status', 'status-tiny');
    assert.equal(full.code, 1, `STATUS on a full network should fail: ${full.stderr}`);
    assert.equal(full.cniCode, 50, full.stderr);
    ok(await cni.run('status', 'status-fabric'), 'STATUS of a network with free VFs');

    ok(await cni.run('del', 'status-tiny', netns), 'DEL');
    ok(await cni.run('status', 'status-tiny'), 'STATUS once the VF is free again');

    const unreachable = await cni.run('status', 'status-nowhere');
    assert.equal(unreachable.cniCode, 50, unreachable.stderr);
  });

  it('GC releases the attachments of its network not in cni.dev/valid-attachments, and nothing else', async () => {
    await cni.writeConflist(conflist('gc-a', '1.1.0'));
    // The same vfleet network under another CNI name: only the CNI network tells their attachments apart.
    await cni.writeConflist(conflist('gc-b', '1.1.0'));
    const [keep, stale, other] = [await newNetns(), await newNetns(), await newNetns()];
    ok(await cni.run('add', 'gc-a', keep), 'ADD keep');
    ok(await cni.run('add', 'gc-a', stale), 'ADD stale');
    ok(await cni.run('add', 'gc-b', other), 'ADD on the other network');
    const [aKeep, aStale, aOther] = [await attached(keep), await attached(stale), await attached(other)];

    // A runtime that lost its cache: libcni has nothing to DEL, so only the plugin's GC can release the stale one.
    const validAttachments = [{ containerID: CniTool.containerId(keep), ifname: 'net1' }];
    ok(await cni.run('gc', 'gc-a', undefined, { cacheDir: await cni.emptyCache(), validAttachments }), 'GC with valid attachments');
    await released(stale, aStale.id);
    assert.equal((await attached(keep)).id, aKeep.id);
    assert.equal((await attached(other)).id, aOther.id);
    assert.equal(await linkIn(stale), undefined);
    assert.ok(await linkIn(keep));
    ok(await cni.run('check', 'gc-a', keep), 'CHECK of the kept attachment');

    // No valid attachments: every attachment of gc-a goes; gc-b's stays. (Upstream cnitool leaves the key
    // out altogether; the spec has the runtime always send the list, so this sends an empty one.)
    ok(await cni.run('gc', 'gc-a', undefined, { cacheDir: await cni.emptyCache(), validAttachments: [] }), 'GC without valid attachments');
    await released(keep, aKeep.id);
    assert.equal((await attached(other)).id, aOther.id);
    ok(await cni.run('check', 'gc-b', other), 'CHECK on the other network');

    // With the runtime's own cache, listing the attachment as valid keeps it.
    ok(await cni.run('gc', 'gc-b', undefined, { validAttachments: [{ containerID: CniTool.containerId(other), ifname: 'net1' }] }), 'GC keeping gc-b');
    assert.equal((await attached(other)).id, aOther.id);

    // Upstream cnitool's own GC sends no list at all, meaning (its comment says) that nothing is still valid.
    ok(await cni.run('gc', 'gc-b', undefined, { cacheDir: await cni.emptyCache() }), 'GC as upstream cnitool sends it');
    await released(other, aOther.id);
  });

  it('a failed ADD on a second network, and the DEL after it, leave the first network’s attachment alone', async () => {
    await cni.writeConflist(conflist('first', '1.0.0', 'blue-100'));
    await cni.writeConflist(conflist('second', '1.0.0', 'blue-200'));
    const netns = await newNetns();
    ok(await cni.run('add', 'first', netns), 'ADD on the first network');
    const first = await attached(netns);

    // Same container, same ifname on another network: refused (net1 is taken in that namespace).
    const clash = await cni.run('add', 'second', netns);
    assert.equal(clash.code, 1, `the second ADD should fail: ${clash.stdout}`);
    assert.notEqual(clash.cniCode, null, clash.stderr);
    // Every runtime sends DEL after a failed ADD: it is about the second network's attachment only.
    ok(await cni.run('del', 'second', netns), 'DEL after the failed ADD');

    assert.equal((await attached(netns)).id, first.id);
    assert.equal((await linkIn(netns))?.mac, first.mac);
    ok(await cni.run('check', 'first', netns), 'CHECK on the first network');
    ok(await cni.run('del', 'first', netns), 'DEL on the first network');
    assert.equal((await holding(netns)).length, 0);
  });

  it('DEL twice, and DEL of a container never added, succeed', async () => {
    await cni.writeConflist(conflist('del-twice', '1.0.0'));
    const netns = await newNetns();
    ok(await cni.run('add', 'del-twice', netns), 'ADD');
    const a = await attached(netns);
    ok(await cni.run('del', 'del-twice', netns), 'first DEL');
    ok(await cni.run('del', 'del-twice', netns), 'second DEL');
    assert.deepEqual((await allocationsOf(netns)).map((x) => [x.id, x.state]), [[a.id, 'released']]);
    ok(await cni.run('del', 'del-twice', await newNetns()), 'DEL of a container never added');
  });

  it('DEL after the namespace is gone releases the VF', async () => {
    await cni.writeConflist(conflist('del-gone', '1.0.0'));
    const netns = await newNetns();
    ok(await cni.run('add', 'del-gone', netns), 'ADD');
    const a = await attached(netns);
    await rm(netns);
    ok(await cni.run('del', 'del-gone', netns), 'DEL');
    assert.deepEqual((await allocationsOf(netns)).map((x) => [x.id, x.state]), [[a.id, 'released']]);
  });

  it('DEL after the configuration changed to a 1.1.0 one, or to an invalid deviceID, still releases the VF', async () => {
    for (const [name, changed] of [
      ['del-upgraded', conflist('del-upgraded', '1.1.0')],
      ['del-bad-device', conflist('del-bad-device', '1.0.0', 'blue-100', { deviceID: 'not-a-pci-address' })],
    ] as const) {
      await cni.writeConflist(conflist(name, '1.0.0'));
      const netns = await newNetns();
      ok(await cni.run('add', name, netns), `ADD on ${name}`);
      const a = await attached(netns);
      await cni.writeConflist(changed);
      ok(await cni.run('del', name, netns), `DEL on the changed ${name}`);
      assert.deepEqual((await allocationsOf(netns)).map((x) => [x.id, x.state]), [[a.id, 'released']]);
      assert.equal(await linkIn(netns), undefined);
    }
  });

  it('two concurrent identical ADDs converge: both succeed, one allocation', async () => {
    await cni.writeConflist(conflist('concurrent', '1.0.0'));
    // A few rounds: the race is between the two plugins' requests to sriovd and the agent's attach.
    for (let round = 0; round < 3; round++) {
      const netns = await newNetns();
      const [one, two] = await Promise.all([cni.run('add', 'concurrent', netns), cni.run('add', 'concurrent', netns)]);
      ok(one, `round ${round}: first ADD`);
      ok(two, `round ${round}: second ADD`);
      const a = await attached(netns);
      assert.deepEqual(one.json, two.json);
      assert.equal((one.json?.interfaces as Array<{ mac: string }>)[0]?.mac, a.mac);
      assert.equal((await allocationsOf(netns)).length, 1);
      ok(await cni.run('check', 'concurrent', netns), 'CHECK');
      ok(await cni.run('del', 'concurrent', netns), 'DEL');
    }
  });

  it('the mac and ips capabilities are honoured or refused, never ignored', async () => {
    await cni.writeConflist(conflist('caps', '1.0.0', 'blue-100', { capabilities: { mac: true, ips: true } }));
    for (const capabilityArgs of [{ mac: '02:5f:00:00:aa:01' }, { ips: ['198.18.0.200/24'] }]) {
      const netns = await newNetns();
      const add = await cni.run('add', 'caps', netns, { capabilityArgs });
      try {
        if (add.code === 0) {
          const iface = (add.json?.interfaces as Array<{ mac: string }>)[0];
          const ips = (add.json?.ips as Array<{ address: string }>).map((i) => i.address);
          const link = await linkIn(netns);
          if ('mac' in capabilityArgs) {
            assert.equal(iface?.mac, capabilityArgs.mac, 'the mac capability is honoured in the result');
            assert.equal(link?.mac, capabilityArgs.mac, 'and on the VF');
          }
          if ('ips' in capabilityArgs) {
            assert.deepEqual(ips, capabilityArgs.ips, 'the ips capability is honoured in the result');
            assert.deepEqual(link?.addresses, capabilityArgs.ips, 'and on the VF');
          }
        } else {
          assert.notEqual(add.cniCode, null, add.stderr);
          assert.match(add.stderr, 'mac' in capabilityArgs ? /\bmac\b/ : /\bips\b/);
          assert.equal((await holding(netns)).length, 0, 'a refused ADD holds nothing');
        }
      } finally {
        ok(await cni.run('del', 'caps', netns), 'DEL');
      }
    }
  });
});

