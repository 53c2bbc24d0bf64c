/**
 * LinuxNetns for real, on this machine (needs root, iproute2 and util-linux
 * nsenter): veth links stand in for VF netdevs (the dummy driver is not in
 * every kernel, this one's included) and namespaces come from `ip netns add`.
 * Only 198.18.0.0/15 (benchmarking) addresses, only inside test namespaces.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../../src/host/linux/exec.js';
import { LinuxNetns } from '../../src/host/linux/netns.js';
import { KernelError, type ContainerLinkSpec } from '../../src/host/ports.js';

const tag = randomBytes(2).toString('hex');
const nsName = `vfleet-test-${tag}`;
const ns = `/var/run/netns/${nsName}`;
/** Two veth pairs; the `p` peers stay in the host, and deleting them removes both ends wherever they are. */
const links = [`vflt${tag}0`, `vflt${tag}1`] as const;
const netns = new LinuxNetns();

async function sh(cmd: string, ...args: string[]): Promise<string> {
  const res = await run(cmd, args);
  if (res.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${res.stderr.trim()}`);
  return res.stdout;
}

const inHost = async (name: string) => (await run('ip', ['link', 'show', 'dev', name])).code === 0;

/** `ip -j link show dev NAME` in the host. */
async function hostLink(name: string): Promise<{ address: string; mtu: number; flags: string[] }> {
  const [link] = JSON.parse(await sh('ip', '-j', 'link', 'show', 'dev', name)) as Array<{ address: string; mtu: number; flags: string[] }>;
  return link!;
}

async function errnoOf(p: Promise<unknown>): Promise<KernelError> {
  const err = await p.then(
    () => assert.fail('expected a KernelError'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof KernelError, String(err));
  return err;
}

const SPEC: ContainerLinkSpec = {
  ifname: 'net1',
  mac: '02:5f:00:00:0c:01',
  mtu: 1400,
  addresses: ['198.18.40.10/24'],
  routes: [
    { dst: '198.19.40.0/24', gw: '198.18.40.1' },
    { dst: 'default', gw: '198.18.40.254' },
  ],
};

describe('LinuxNetns on this host (veth stand-ins)', () => {
  before(async () => {
    if (process.getuid?.() !== 0) {
      throw new Error('linux-netns.test needs root (it creates veth links and network namespaces): run it as root');
    }
    await sh('ip', 'netns', 'add', nsName);
    for (const link of links) await sh('ip', 'link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}p`);
  });

  after(async () => {
    await run('ip', ['netns', 'del', nsName]);
    for (const link of links) await run('ip', ['link', 'del', `${link}p`]);
  });

  it('exists: a namespace yes; a missing path, a plain file, a directory no', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-netns-'));
    try {
      await writeFile(join(dir, 'file'), '');
      assert.equal(await netns.exists(ns), true);
      assert.equal(await netns.exists(`/proc/${process.pid}/ns/net`), true);
      assert.equal(await netns.exists(join(dir, 'missing')), false);
      assert.equal(await netns.exists(join(dir, 'file')), false);
      assert.equal(await netns.exists(dir), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('attach: renamed, configured, up, with its routes; gone from the host', async () => {
    await netns.attach(links[0], ns, SPEC);
    const link = (await netns.links(ns)).find((l) => l.ifname === 'net1');
    assert.deepEqual(link, { ifname: 'net1', pciAddress: null, mac: SPEC.mac, mtu: 1400, up: true, addresses: SPEC.addresses });
    assert.equal(await inHost(links[0]), false);
    const routes = JSON.parse(await sh('nsenter', `--net=${ns}`, 'ip', '-j', 'route', 'show', 'dev', 'net1')) as Array<{ dst: string; gateway?: string }>;
    const via = Object.fromEntries(routes.filter((r) => r.gateway).map((r) => [r.dst, r.gateway]));
    assert.deepEqual(via, { '198.19.40.0/24': '198.18.40.1', default: '198.18.40.254' });
  });

  it('attach refuses a taken ifname with EEXIST, leaving the netdev in the host untouched', async () => {
    const before = await hostLink(links[1]);
    const err = await errnoOf(netns.attach(links[1], ns, { ...SPEC, mac: '02:5f:00:00:0c:02' }));
    assert.equal(err.errno, 'EEXIST');
    assert.deepEqual(await hostLink(links[1]), before);
  });

  it('attach moves the netdev back under its own name when a line fails inside', async () => {
    const spec = { ...SPEC, ifname: 'net2', addresses: ['198.18.41.10/24'], routes: [{ dst: '198.19.41.0/24', gw: '198.19.99.1' }] };
    const err = await errnoOf(netns.attach(links[1], ns, spec));
    assert.equal(err.errno, 'EINVAL');
    assert.match(err.message, /route add 198\.19\.41\.0\/24 via 198\.19\.99\.1 dev net2.*moved back to the host as/s);
    assert.equal(await inHost(links[1]), true);
    assert.ok(!(await netns.links(ns)).some((l) => l.ifname === 'net2'));
  });

  it('attach to a missing namespace is ENOENT, before anything changes', async () => {
    assert.equal((await errnoOf(netns.attach(links[1], `${ns}-missing`, SPEC))).errno, 'ENOENT');
    assert.equal((await errnoOf(netns.links(`${ns}-missing`))).errno, 'ENOENT');
    assert.equal(await inHost(links[1]), true);
  });

  it('detach: back in the host under its name, down, MAC and MTU kept; again is ENODEV', async () => {
    await netns.detach(ns, 'net1', links[0]);
    const link = await hostLink(links[0]);
    assert.deepEqual([link.address, link.mtu, link.flags.includes('UP')], [SPEC.mac, 1400, false]);
    assert.ok(!(await netns.links(ns)).some((l) => l.ifname === 'net1'));
    assert.equal((await errnoOf(netns.detach(ns, 'net1', links[0]))).errno, 'ENODEV');
    assert.equal((await errnoOf(netns.detach(ns, 'lo', links[0]))).errno, 'EINVAL');
  });

  it('detach onto a taken host name: EEXIST, left in the host under the transit name it reports', async () => {
    await netns.attach(links[0], ns, SPEC);
    const err = await errnoOf(netns.detach(ns, 'net1', links[1]));
    assert.equal(err.errno, 'EEXIST');
    const transit = /as (vfl[0-9a-f]{8})$/.exec(err.message)?.[1];
    assert.ok(transit && (await inHost(transit)), err.message);
    await netns.rename(transit, links[0]);
    assert.equal(await inHost(links[0]), true);
  });

  it('rename: down and renamed; a taken name is EEXIST, a missing netdev ENODEV', async () => {
    await sh('ip', 'link', 'set', 'dev', links[0], 'up');
    await netns.rename(links[0], `${links[0]}r`);
    assert.equal((await hostLink(`${links[0]}r`)).flags.includes('UP'), false);
    assert.equal((await errnoOf(netns.rename(`${links[0]}r`, links[1]))).errno, 'EEXIST');
    await netns.rename(`${links[0]}r`, links[0]);
    assert.equal((await errnoOf(netns.rename(`${links[0]}r`, 'vflnone'))).errno, 'ENODEV');
  });
});
