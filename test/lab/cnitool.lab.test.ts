// Lab suite (needs root and the SR-IOV lab, 2 PFs): vfleet-cni on real igb
// VFs driven only through the reference CNI client (cnitool, libcni 1.3.0),
// chained with Debian's reference `tuning` plugin, in namespaces from
// `ip netns add`. The guest sees this machine's root filesystem, so cnitool
// (/var/cache/vfleet-tools, test/cni/build-tools.sh) and /usr/lib/cni are
// the host's own.
//
// The reference plugins speak CNI up to 1.0.0, so the chains run at 0.4.0
// and 1.0.0 (1.1.0, STATUS and GC are the system suite's, on the simulated
// host). `static` is not chained: it is an IPAM plugin (it only computes
// addresses for the plugin that delegates to it), vfleet-cni takes its
// addresses from the vfleet network's pool and refuses delegated IPAM, and
// as a link of the chain static would replace the result with its own
// addresses without configuring anything.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Allocation } from '../../src/domain/types.js';
import { assertCniToolsInstalled, CniTool, type Conflist, type CniToolRun } from '../helpers/cnitool.js';
import { api, eventually, startDaemon, type Daemon } from '../helpers/daemon.js';
import { labPfs, ping, rawVfs } from './lab-host.js';

const HOST = 'lab-host';
const RESYNC_SECONDS = 3;
const NAMESPACES = ['cni-a', 'cni-b', 'cni-c', 'cni-d', 'cni-e', 'cni-f', 'cni-g'];
const nsPath = (ns: string) => `/var/run/netns/${ns}`;
/** A MAC outside vfleet's pool, for tuning to set. */
const TUNED_MAC = '0a:00:00:00:be:01';

interface IpLink {
  ifname: string;
  address: string;
  mtu: number;
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}
/** `ip -n NS -j addr show`: the links in a namespace, as the kernel reports them. */
const linksIn = (ns: string): IpLink[] => JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'addr', 'show'], { encoding: 'utf8' })) as IpLink[];
const sysctlIn = (ns: string, key: string) => execFileSync('ip', ['netns', 'exec', ns, 'cat', `/proc/sys/${key.replaceAll('.', '/')}`], { encoding: 'utf8' }).trim();
const addressOf = (run: CniToolRun) => (run.json?.ips as Array<{ address: string }>)[0]!.address;

describe('vfleet-cni on igb through cnitool, chained with the reference tuning plugin', { timeout: 1_400_000 }, () => {
  let dir: string;
  let daemon: Daemon;
  let admin: string;
  let tokenFile: string;
  let cni: CniTool;
  const call = <T>(method: string, path: string, body?: unknown) => api<T>(daemon.url, admin, method, path, body);
  /** vfleet-cni on `network`, then tuning with `tuning`'s fields when given. */
  const chain = (name: string, cniVersion: string, network: string, tuning?: Record<string, unknown>): Conflist => ({
    name,
    cniVersion,
    plugins: [
      // The emulated guest is slow: a generous deadline for each plugin call.
      { type: 'vfleet-cni', network, server: daemon.url, tokenFile, host: HOST, timeoutSeconds: 300 },
      ...(tuning ? [{ type: 'tuning', ...tuning }] : []),
    ],
  });
  const ok = (run: CniToolRun, what: string) => assert.equal(run.code, 0, `${what}: exit ${run.code}\n${run.stderr}${run.stdout}`);
  const allocationOf = async (ns: string) => {
    const all = (await call<Allocation[]>('GET', `/v1/allocations?workload=${CniTool.containerId(nsPath(ns))}`)).body;
    assert.equal(all.length, 1, `one allocation for ${ns}: ${JSON.stringify(all)}`);
    return all[0]!;
  };
  /** Released, and its VF scrubbed: no MAC of the tenant's or the chain's, no VLAN, trust off. */
  const assertScrubbed = async (ns: string, a: Allocation, ...macs: string[]) => {
    assert.equal((await allocationOf(ns)).state, 'released');
    const vf = rawVfs(a.pf).find((v) => v.vf === a.vfIndex)!;
    for (const mac of [a.mac, ...macs]) assert.notEqual(vf.address, mac, `${a.pf} vf ${a.vfIndex} still has ${mac}`);
    assert.equal(vf.vlan_list?.[0]?.vlan ?? 0, 0);
    assert.equal(vf.trust, false);
  };

  before(async () => {
    await assertCniToolsInstalled();
    const pfs = await labPfs();
    assert.ok(pfs.length >= 2, 'this suite needs 2 PFs (lab.sh --pfs 2)');
    for (const ns of NAMESPACES) execFileSync('ip', ['netns', 'add', ns]);
    dir = await mkdtemp(join(tmpdir(), 'vfleet-lab-cnitool-'));
    daemon = await startDaemon(['--data-dir', dir, '--listen', '127.0.0.1:0', '--host', 'linux', '--hostname', HOST, '--heartbeat-interval', '1', '--resync-interval', String(RESYNC_SECONDS), '--log-level', 'info']);
    admin = (await readFile(join(dir, 'admin.token'), 'utf8')).trim();
    const policy = 'policies:\n  - name: lab\n    selector: { drivers: [igb] }\n    numVfs: 3\n    physnet: lab\n';
    assert.equal((await call('PUT', `/v1/hosts/${HOST}/policy`, { document: policy })).status, 200);
    await eventually('3 VFs on each PF', 120_000, async () => (pfs.every((pf) => rawVfs(pf).length === 3) ? true : undefined));
    assert.equal((await call('POST', '/v1/tenants', { name: 'blue' })).status, 201);
    // lab-trusted's VFs may change their own MAC (igb lets only a trusted VF override the MAC the PF set).
    for (const [name, vlan, net, trust] of [['lab-100', 100, '198.18.0', false], ['lab-trusted', 200, '198.18.1', true]] as const) {
      const ipam = { cidr: `${net}.0/24`, rangeStart: `${net}.10`, gateway: `${net}.1` };
      const res = await call('POST', '/v1/networks', { name, tenant: 'blue', physnet: 'lab', vlan, trust, ipam });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    const token = await call<{ token: string }>('POST', '/v1/tokens', { role: `node:${HOST}` });
    tokenFile = join(dir, 'cni.token');
    await writeFile(tokenFile, `${token.body.token}\n`, { mode: 0o600 });
    cni = await CniTool.create();
  });

  after(async () => {
    await daemon?.kill();
    for (const ns of NAMESPACES) spawnSync('ip', ['netns', 'del', ns]);
    await cni?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const [version, [ns1, ns2]] of [['0.4.0', ['cni-a', 'cni-b']], ['1.0.0', ['cni-c', 'cni-d']]] as const) {
    it(`${version}: ADD configures the VF in the namespace (address, sysctl, MTU), traffic flows, CHECK passes, DEL returns it`, async () => {
      const net = `tuned-${version.replaceAll('.', '')}`;
      // tuning 1.1.1 substitutes IFNAME in sysctl keys on ADD but not on CHECK: the name is spelled out.
      await cni.writeConflist(chain(net, version, 'lab-100', { mtu: 1400, sysctl: { 'net.ipv4.conf.net1.arp_notify': '1' } }));
      const adds: CniToolRun[] = [];
      for (const ns of [ns1, ns2]) {
        const add = await cni.run('add', net, nsPath(ns));
        ok(add, `ADD in ${ns}`);
        adds.push(add);
        const a = await allocationOf(ns);
        assert.equal(add.json?.cniVersion, version);
        assert.deepEqual((add.json?.interfaces as Array<{ name: string; mac: string; sandbox: string }>).map((i) => [i.name, i.mac, i.sandbox]), [['net1', a.mac, nsPath(ns)]]);
        const link = linksIn(ns).find((l) => l.ifname === 'net1');
        assert.ok(link, `net1 in ${ns}`);
        assert.equal(link.address, a.mac);
        assert.equal(link.mtu, 1400, 'tuning set the MTU');
        assert.deepEqual(link.addr_info?.filter((i) => i.family === 'inet').map((i) => `${i.local}/${i.prefixlen}`), [addressOf(add)]);
        assert.equal(sysctlIn(ns, 'net.ipv4.conf.net1.arp_notify'), '1', 'tuning set the sysctl');
        const vf = rawVfs(a.pf).find((v) => v.vf === a.vfIndex)!;
        assert.equal(vf.vlan_list?.[0]?.vlan, 100);
      }
      assert.ok(ping(ns1, addressOf(adds[1]!).split('/')[0]!), `${ns1} reaches ${ns2} over VLAN 100`);
      for (const ns of [ns1, ns2]) ok(await cni.run('check', net, nsPath(ns)), `CHECK in ${ns}`);

      const [a1, a2] = [await allocationOf(ns1), await allocationOf(ns2)];
      ok(await cni.run('del', net, nsPath(ns1)), `DEL in ${ns1}`);
      assert.deepEqual(linksIn(ns1).map((l) => l.ifname), ['lo']);
      await assertScrubbed(ns1, a1);
      // The namespace goes first, as when a pod's sandbox is already torn down: its VF netdev falls back to the host.
      execFileSync('ip', ['netns', 'del', ns2]);
      ok(await cni.run('del', net, nsPath(ns2)), `DEL in ${ns2} after ip netns del`);
      await assertScrubbed(ns2, a2);
      ok(await cni.run('del', net, nsPath(ns2)), `DEL in ${ns2} again`);
    });
  }

  it('tuning `mac` on an untrusted VF: igb refuses it, the chain fails, and the DEL after it releases the VF', async () => {
    // igb keeps the MAC it set for a VF (ip link set PF vf N mac, as vfleet does) unless the VF is
    // trusted: the igbvf's own request is refused (EADDRNOTAVAIL, and "VF N attempted to override
    // administratively set MAC address" in the kernel log). A runtime then sends DEL.
    await cni.writeConflist(chain('mac-untrusted', '1.0.0', 'lab-100', { mac: TUNED_MAC }));
    const add = await cni.run('add', 'mac-untrusted', nsPath('cni-e'));
    assert.equal(add.code, 1, `igb should refuse the MAC of an untrusted VF: ${add.stdout}`);
    assert.match(add.stderr, /cannot assign requested address/i);
    const a = await allocationOf('cni-e');
    ok(await cni.run('del', 'mac-untrusted', nsPath('cni-e')), 'DEL after the failed ADD');
    assert.deepEqual(linksIn('cni-e').map((l) => l.ifname), ['lo']);
    await assertScrubbed('cni-e', a, TUNED_MAC);
  });

  it('tuning `mac` on a trusted VF: the MAC changes, traffic flows, CHECK passes before and after a reconcile, DEL scrubs', async (t) => {
    // On a trusted VF igb takes the VF's own MAC change, and records it as the VF's MAC (ip link
    // show PF). The MAC in the namespace is then the chain's, legitimately: vfleet's CHECK compares
    // only what vfleet owns, and neither CHECK nor the agent's reconcile puts vfleet's MAC back.
    await cni.writeConflist(chain('mac-trusted', '1.0.0', 'lab-trusted', { mac: TUNED_MAC }));
    await cni.writeConflist(chain('plain-trusted', '1.0.0', 'lab-trusted'));
    const igbRecord = (a: Allocation) => rawVfs(a.pf).find((v) => v.vf === a.vfIndex)?.address;
    const driftRepairs = async (a: Allocation) =>
      (await call<Array<{ action: string; object: string; after: string | null }>>('GET', '/v1/events?limit=1000')).body.filter((e) => e.action === 'drift.repaired' && e.object.includes(a.id));
    const add = await cni.run('add', 'mac-trusted', nsPath('cni-f'));
    ok(add, 'ADD with tuning mac');
    const a = await allocationOf('cni-f');
    t.diagnostic(`igb's record of ${a.pf} vf ${a.vfIndex} (vfleet's MAC ${a.mac}) after tuning: ${igbRecord(a)}`);
    assert.equal((add.json?.interfaces as Array<{ mac: string }>)[0]?.mac, TUNED_MAC, 'the result carries the MAC tuning set');
    assert.equal(linksIn('cni-f').find((l) => l.ifname === 'net1')?.address, TUNED_MAC);
    const peer = await cni.run('add', 'plain-trusted', nsPath('cni-g'));
    ok(peer, 'ADD of a peer');
    t.diagnostic(`igb's record after the peer's ADD: ${igbRecord(a)}; drift repairs of ${a.id}: ${JSON.stringify(await driftRepairs(a))}`);
    assert.ok(ping('cni-f', addressOf(peer).split('/')[0]!), 'the re-MACed VF reaches its peer');
    ok(await cni.run('check', 'mac-trusted', nsPath('cni-f')), 'CHECK after tuning changed the MAC');

    // A reconcile pass has no completion signal in the API: the agent reconciles every
    // RESYNC_SECONDS here, and the window spans several passes besides the one requested.
    assert.equal((await call('POST', `/v1/hosts/${HOST}/reconcile`)).status, 202);
    await new Promise((r) => setTimeout(r, 4 * RESYNC_SECONDS * 1000));
    assert.deepEqual(await driftRepairs(a), [], 'no drift repair of the chain’s MAC');
    assert.equal(linksIn('cni-f').find((l) => l.ifname === 'net1')?.address, TUNED_MAC, 'the reconcile left the chain’s MAC alone');
    ok(await cni.run('check', 'mac-trusted', nsPath('cni-f')), 'CHECK after a reconcile');

    assert.ok(ping('cni-f', addressOf(peer).split('/')[0]!), 'and still reaches it');
    const b = await allocationOf('cni-g');
    ok(await cni.run('del', 'mac-trusted', nsPath('cni-f')), 'DEL');
    ok(await cni.run('del', 'plain-trusted', nsPath('cni-g')), 'DEL of the peer');
    await assertScrubbed('cni-f', a, TUNED_MAC);
    await assertScrubbed('cni-g', b);
  });
});
