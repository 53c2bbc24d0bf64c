// The netns contract on the simulated igb host (test/lab runs it on real igbvf), plus what only the simulator can show cheaply.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SriovHost } from '../../src/host/configurator.js';
import { SriovError } from '../../src/host/errors.js';
import { KernelError, type ContainerLinkSpec } from '../../src/host/ports.js';
import { parseCidr, parseContainerLinkSpec, parseIp, parseNetnsPath } from '../../src/host/validate.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost, updateSimState } from '../../src/sim/state.js';
import { netnsContract } from '../contract/netns-contract.js';

let dir: string;
let seq = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-netns-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** A namespace on the simulated host is any file at its path. */
async function newNamespace(): Promise<string> {
  const path = join(dir, `ns-${seq++}`);
  await writeFile(path, '');
  return path;
}

/** A simulated igb host with 2 VFs bound to igbvf. */
async function igbHost() {
  const file = join(dir, `host-${seq++}.json`);
  await initSimHost(file, { profile: 'igb', pfs: 1 });
  const host = new SriovHost(createSimPorts(file));
  const pf = (await host.inventory()).pfs[0]!.name;
  await host.setNumVfs(pf, 2, { deviceType: 'netdevice' });
  const vfs = (await host.pf(pf)).vfs;
  return { file, host, ports: host.ports, pf, vfs: [vfs[0]!.pciAddress, vfs[1]!.pciAddress] as [string, string] };
}

netnsContract('simulated igb', async () => ({ ...(await igbHost()), newNamespace }));

const SPEC: ContainerLinkSpec = { ifname: 'net1', mac: '02:5f:00:00:0b:01', mtu: null, addresses: ['198.18.30.10/24'], routes: [] };

async function errnoOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => assert.fail('expected a KernelError'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof KernelError, String(err));
  return err.errno;
}

describe('simulated namespaces: what the kernel does on its own', () => {
  it('a deleted namespace gives the netdev back to the host, under its in-namespace name when free', async () => {
    const { ports, vfs } = await igbHost();
    const [original] = (await ports.sysfs.readVf(vfs[0])).netdevs;
    const ns = await newNamespace();
    await ports.netns.attach(original!, ns, SPEC);
    await rm(ns);
    assert.equal(await ports.netns.exists(ns), false);
    assert.equal(await errnoOf(ports.netns.links(ns)), 'ENOENT');
    assert.deepEqual((await ports.sysfs.readVf(vfs[0])).netdevs, ['net1']);
    const back = await ports.sysfs.readNetdev('net1');
    assert.deepEqual([back?.mac, back?.operState], [SPEC.mac, 'down']);
    await ports.netns.rename('net1', original!);
    assert.deepEqual((await ports.sysfs.readVf(vfs[0])).netdevs, [original]);
  });

  it('comes back as devN when its name is taken in the host', async () => {
    const { ports, vfs } = await igbHost();
    const [a, b] = [(await ports.sysfs.readVf(vfs[0])).netdevs[0]!, (await ports.sysfs.readVf(vfs[1])).netdevs[0]!];
    await ports.netns.rename(b, 'net1');
    const ns = await newNamespace();
    await ports.netns.attach(a, ns, SPEC);
    await rm(ns);
    // An inventory-style read of this one VF notices on its own.
    assert.deepEqual((await ports.sysfs.readVf(vfs[0])).netdevs, ['dev0']);
    assert.deepEqual((await ports.sysfs.readVf(vfs[1])).netdevs, ['net1']);
  });

  it('sriov_numvfs=0 destroys a netdev inside a namespace', async () => {
    const { host, ports, pf, vfs } = await igbHost();
    const ns = await newNamespace();
    await ports.netns.attach((await ports.sysfs.readVf(vfs[0])).netdevs[0]!, ns, SPEC);
    await host.setNumVfs(pf, 0);
    assert.deepEqual((await ports.netns.links(ns)).map((l) => l.ifname), ['lo']);
    await host.setNumVfs(pf, 2, { deviceType: 'netdevice' });
    const facts = await ports.sysfs.readVf(vfs[0]);
    assert.equal(facts.netdevs.length, 1);
    assert.notEqual((await ports.sysfs.readNetdev(facts.netdevs[0]!))?.mac, SPEC.mac, 'a new netdev, not the old one');
  });

  it('rebinding the VF driver destroys it too; the new netdev is in the host', async () => {
    const { ports, vfs } = await igbHost();
    const [original] = (await ports.sysfs.readVf(vfs[0])).netdevs;
    const ns = await newNamespace();
    await ports.netns.attach(original!, ns, SPEC);
    await ports.drivers.bind(vfs[0], 'vfio-pci');
    assert.deepEqual((await ports.netns.links(ns)).map((l) => l.ifname), ['lo']);
    await ports.drivers.bind(vfs[0], 'igbvf');
    assert.deepEqual((await ports.sysfs.readVf(vfs[0])).netdevs, [original]);
    assert.deepEqual((await ports.netns.links(ns)).map((l) => l.ifname), ['lo']);
  });

  it('without the udev rule a new VF netdev takes the first free ethN, one freed by a move into a namespace included', async () => {
    const { file, ports, host, pf, vfs } = await igbHost();
    await updateSimState(file, (s) => {
      s.vfNetdevNames = 'kernel';
    });
    await host.setNumVfs(pf, 0);
    await host.setNumVfs(pf, 2, { deviceType: 'netdevice' });
    const name = async (i: 0 | 1) => (await ports.sysfs.readVf(vfs[i])).netdevs;
    assert.deepEqual([await name(0), await name(1)], [['eth0'], ['eth1']]);
    const ns = await newNamespace();
    await ports.netns.attach('eth0', ns, SPEC);
    // A driver reload (igbvf after a new admin MAC) makes a new netdev: it gets the eth0 just freed.
    await ports.drivers.bind(vfs[1], 'igbvf');
    assert.deepEqual(await name(1), ['eth0']);
    // So the first one cannot have its name back: it comes out under its transit name.
    assert.equal(await errnoOf(ports.netns.detach(ns, 'net1', 'eth0')), 'EEXIST');
    assert.match((await name(0))[0] ?? '', /^vfl[0-9a-f]{8}$/);
  });

  it('another process sees the same namespaces (state in the file)', async () => {
    const { file, ports, vfs } = await igbHost();
    const ns = await newNamespace();
    await ports.netns.attach((await ports.sysfs.readVf(vfs[0])).netdevs[0]!, ns, SPEC);
    const links = await createSimPorts(file).netns.links(ns);
    assert.deepEqual(links.map((l) => l.pciAddress), [null, vfs[0]]);
  });
});

describe('netns input validation', () => {
  const invalid = (fn: () => unknown) => assert.throws(fn, (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT');

  it('parseIp: canonical IPv4/IPv6, nothing ambiguous', () => {
    assert.equal(parseIp('198.18.0.1'), '198.18.0.1');
    assert.equal(parseIp('2001:DB8:0:0::1'), '2001:db8::1');
    for (const bad of ['198.18.0.01', '198.18.0', '198.18.0.1.', 'fe80::1%eth0', '::g', '', ' 198.18.0.1']) invalid(() => parseIp(bad));
  });

  it('parseCidr: prefix required and in range; networks without host bits', () => {
    assert.equal(parseCidr('198.18.0.10/24'), '198.18.0.10/24');
    assert.equal(parseCidr('2001:db8:0::10/64'), '2001:db8::10/64');
    assert.equal(parseCidr('198.19.0.0/16', { network: true }), '198.19.0.0/16');
    assert.equal(parseCidr('::ffff:198.18.0.0/120', { network: true }), '::ffff:198.18.0.0/120');
    for (const bad of ['198.18.0.10', '198.18.0.10/33', '198.18.0.10/024', '2001:db8::/129', '198.18.0.10/24/1', '/24']) invalid(() => parseCidr(bad));
    invalid(() => parseCidr('198.19.0.1/16', { network: true }));
    invalid(() => parseCidr('2001:db8::1/64', { network: true }));
  });

  it('parseNetnsPath: absolute, no .., no control characters, normalized', () => {
    assert.equal(parseNetnsPath('/var/run/netns/a'), '/var/run/netns/a');
    assert.equal(parseNetnsPath('//proc//1/ns/net/'), '/proc/1/ns/net');
    assert.equal(parseNetnsPath('/var/run/netns/a..b'), '/var/run/netns/a..b');
    for (const bad of ['netns/a', '/var/run/../netns/a', '/a/..', '/a\0b', '/a\nb', `/${'a'.repeat(4096)}`, '']) invalid(() => parseNetnsPath(bad));
  });

  it('parseContainerLinkSpec: routes of one family, nothing given twice', () => {
    const ok = parseContainerLinkSpec({ ...SPEC, mac: '02:5F:00:00:0B:01', routes: [{ dst: 'default', gw: '198.18.30.1' }] });
    assert.equal(ok.mac, '02:5f:00:00:0b:01');
    invalid(() => parseContainerLinkSpec({ ...SPEC, routes: [{ dst: '198.19.0.0/16', gw: '2001:db8::1' }] }));
    invalid(() => parseContainerLinkSpec({ ...SPEC, addresses: ['198.18.30.10/24', '198.18.30.10/24'] }));
    invalid(() => parseContainerLinkSpec({ ...SPEC, routes: [{ dst: 'default' }, { dst: 'default' }] }));
    invalid(() => parseContainerLinkSpec({ ...SPEC, mac: '00:00:00:00:00:00' }));
  });
});
