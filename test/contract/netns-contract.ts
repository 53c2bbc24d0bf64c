/**
 * The netns contract: how every NetnsPort backend hands a VF netdev to a
 * container's network namespace and takes it back. It runs against the
 * simulated host in the unit suite and against real igbvf VFs in the SR-IOV
 * lab (`test/lab/`), so the simulator cannot drift from the kernel.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { KernelError, type ContainerLinkSpec, type HostPorts, type NetnsLink } from '../../src/host/ports.js';

export interface NetnsTarget {
  ports: HostPorts;
  /** PCI addresses of two VFs whose netdevs are in the host namespace, free for the test. */
  vfs: [string, string];
  /** Makes a new, empty network namespace and returns its path. */
  newNamespace(): Promise<string>;
}

async function rejectsErrno(p: Promise<unknown>, errno: string): Promise<KernelError> {
  const err = await p.then(
    () => assert.fail(`expected ${errno}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof KernelError, `expected a KernelError, got ${String(err)}`);
  assert.equal(err.errno, errno, err.message);
  return err;
}

async function rejectsInvalid(p: Promise<unknown>, what: string): Promise<void> {
  const err = await p.then(
    () => assert.fail(`${what}: expected INVALID_ARGUMENT`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SriovError, `${what}: expected a SriovError, got ${String(err)}`);
  assert.equal(err.code, 'INVALID_ARGUMENT', `${what}: ${err.message}`);
  assert.equal(err.exitCode, 2);
}

const SPEC: ContainerLinkSpec = {
  ifname: 'net1',
  mac: '02:5f:00:00:0a:01',
  mtu: 1400,
  addresses: ['198.18.10.10/24'],
  routes: [{ dst: '198.19.10.0/24', gw: '198.18.10.1' }],
};

export function netnsContract(name: string, setup: () => Promise<NetnsTarget>): void {
  describe(`netns contract: ${name}`, () => {
    let t: NetnsTarget;
    let ns: string;
    /** The two VFs' netdev names in the host namespace. */
    let dev: [string, string];
    const netdevs = async (i: 0 | 1) => (await t.ports.sysfs.readVf(t.vfs[i])).netdevs;
    const linkOf = async (i: 0 | 1): Promise<NetnsLink | undefined> => (await t.ports.netns.links(ns)).find((l) => l.pciAddress === t.vfs[i]);

    before(async () => {
      t = await setup();
      ns = await t.newNamespace();
      const names = await Promise.all([netdevs(0), netdevs(1)]);
      assert.ok(names[0][0] && names[1][0], 'both VFs have a netdev in the host namespace');
      dev = [names[0][0], names[1][0]];
    });

    it('tells a namespace from a path that is none', async () => {
      assert.equal(await t.ports.netns.exists(ns), true);
      assert.equal(await t.ports.netns.exists(`${ns}-missing`), false);
      const links = await t.ports.netns.links(ns);
      assert.ok(links.some((l) => l.ifname === 'lo'), 'a new namespace has its loopback');
      assert.ok(!links.some((l) => l.pciAddress !== null), 'and no PCI netdev');
    });

    it('attaches a VF netdev: configured in the namespace, gone from the host', async () => {
      await t.ports.netns.attach(dev[0], ns, SPEC);
      const link = await linkOf(0);
      assert.deepEqual(link, { ifname: 'net1', pciAddress: t.vfs[0], mac: SPEC.mac, mtu: 1400, up: true, addresses: SPEC.addresses });
      assert.deepEqual(await netdevs(0), [], 'no net/ entry under the VF in the host');
      assert.equal(await t.ports.sysfs.readNetdev(dev[0]), null);
    });

    it('refuses a taken ifname with EEXIST and changes nothing', async () => {
      const inside = await t.ports.netns.links(ns);
      const outside = await t.ports.sysfs.readNetdev(dev[1]);
      const err = await rejectsErrno(t.ports.netns.attach(dev[1], ns, { ...SPEC, mac: '02:5f:00:00:0a:02' }), 'EEXIST');
      assert.match(err.message, /net1/);
      assert.deepEqual(await t.ports.netns.links(ns), inside);
      assert.deepEqual(await netdevs(1), [dev[1]]);
      assert.deepEqual(await t.ports.sysfs.readNetdev(dev[1]), outside);
    });

    it('refuses a namespace that does not exist with ENOENT, changing nothing', async () => {
      await rejectsErrno(t.ports.netns.links(`${ns}-missing`), 'ENOENT');
      await rejectsErrno(t.ports.netns.attach(dev[1], `${ns}-missing`, { ...SPEC, ifname: 'net2' }), 'ENOENT');
      assert.deepEqual(await netdevs(1), [dev[1]]);
    });

    it("refuses the host's own namespace (the agent's), by any of its paths, with EPERM, changing nothing", async () => {
      for (const own of ['/proc/self/ns/net', `/proc/${process.pid}/ns/net`]) {
        const err = await rejectsErrno(t.ports.netns.attach(dev[1], own, { ...SPEC, ifname: 'net2' }), 'EPERM');
        assert.match(err.message, /is the host's own network namespace/);
      }
      assert.deepEqual(await netdevs(1), [dev[1]]);
    });

    it('gives the netdev back under its own name when the kernel refuses part of the spec', async () => {
      // The gateway is on no subnet of the link: the route fails after the move.
      const spec = {
        ...SPEC,
        ifname: 'net2',
        mac: '02:5f:00:00:0a:02',
        addresses: ['198.18.11.10/24'],
        routes: [{ dst: '198.19.20.0/24', gw: '198.19.99.1' }],
      };
      await rejectsErrno(t.ports.netns.attach(dev[1], ns, spec), 'EINVAL');
      assert.deepEqual(await netdevs(1), [dev[1]]);
      assert.equal(await linkOf(1), undefined);
    });

    it('detaches it back into the host under its name, down, keeping MAC and MTU', async () => {
      await t.ports.netns.detach(ns, 'net1', dev[0]);
      assert.deepEqual(await netdevs(0), [dev[0]]);
      assert.equal(await linkOf(0), undefined);
      const facts = await t.ports.sysfs.readNetdev(dev[0]);
      assert.deepEqual([facts?.mac, facts?.mtu, facts?.operState], [SPEC.mac, 1400, 'down']);
    });

    it('detaching what is not in the namespace is ENODEV', async () => {
      await rejectsErrno(t.ports.netns.detach(ns, 'net1', dev[0]), 'ENODEV');
      await rejectsErrno(t.ports.netns.detach(ns, 'lo', dev[0]), 'EINVAL');
    });

    it('detaches under a transit name when the host name is taken, and renames it back', async () => {
      await t.ports.netns.attach(dev[0], ns, SPEC);
      const err = await rejectsErrno(t.ports.netns.detach(ns, 'net1', dev[1]), 'EEXIST');
      const [transit] = await netdevs(0);
      assert.match(transit ?? '', /^vfl[0-9a-f]{8}$/);
      assert.match(err.message, new RegExp(`as ${transit}`));
      assert.equal(await linkOf(0), undefined);
      await t.ports.netns.rename(transit!, dev[0]);
      assert.deepEqual(await netdevs(0), [dev[0]]);
    });

    it('renames a host netdev, refusing a taken name with EEXIST', async () => {
      await t.ports.netns.rename(dev[0], 'vflren0');
      assert.deepEqual(await netdevs(0), ['vflren0']);
      await rejectsErrno(t.ports.netns.rename('vflren0', dev[1]), 'EEXIST');
      await t.ports.netns.rename('vflren0', dev[0]);
      assert.deepEqual(await netdevs(0), [dev[0]]);
      await rejectsErrno(t.ports.netns.rename('vflren0', 'vflren1'), 'ENODEV');
    });

    it('refuses invalid input with INVALID_ARGUMENT before running anything', async () => {
      const inside = await t.ports.netns.links(ns);
      const bad: Array<[string, Promise<unknown>]> = [
        ['relative path', t.ports.netns.attach(dev[0], 'var/run/netns/x', SPEC)],
        ['path with ..', t.ports.netns.attach(dev[0], `${ns}/../x`, SPEC)],
        ['path with a newline', t.ports.netns.attach(dev[0], `${ns}\nx`, SPEC)],
        ['bad netdev', t.ports.netns.attach(`${dev[0]};x`, ns, SPEC)],
        ['bad ifname', t.ports.netns.attach(dev[0], ns, { ...SPEC, ifname: 'net 1' })],
        ['octet above 255', t.ports.netns.attach(dev[0], ns, { ...SPEC, addresses: ['198.18.10.300/24'] })],
        ['no prefix length', t.ports.netns.attach(dev[0], ns, { ...SPEC, addresses: ['198.18.10.10'] })],
        ['prefix above 32', t.ports.netns.attach(dev[0], ns, { ...SPEC, addresses: ['198.18.10.10/33'] })],
        ['route with host bits', t.ports.netns.attach(dev[0], ns, { ...SPEC, routes: [{ dst: '198.19.10.5/24' }] })],
        ['multicast MAC', t.ports.netns.attach(dev[0], ns, { ...SPEC, mac: '03:00:00:00:00:01' })],
        ['MTU too small', t.ports.netns.attach(dev[0], ns, { ...SPEC, mtu: 10 })],
        ['links of a relative path', t.ports.netns.links('netns')],
        ['exists of a relative path', t.ports.netns.exists('netns')],
        ['detach bad ifname', t.ports.netns.detach(ns, '../x', dev[0])],
        ['detach bad host name', t.ports.netns.detach(ns, 'net1', 'a/b')],
        ['rename to a bad name', t.ports.netns.rename(dev[0], 'a b')],
      ];
      for (const [what, p] of bad) await rejectsInvalid(p, what);
      assert.deepEqual(await t.ports.netns.links(ns), inside);
      assert.deepEqual(await netdevs(0), [dev[0]]);
    });

    // ---- what a re-home does inside the namespace (agent/rehome.ts) ----

    const NEW: ContainerLinkSpec = { ifname: 'vfnew0', mac: '02:5f:00:00:0a:03', mtu: 1400, addresses: ['198.18.12.10/24'], routes: [{ dst: '198.19.12.0/24', gw: '198.18.12.1' }] };

    it('moves a netdev in down and bare under a name, refusing a taken one with EEXIST and changing nothing', async () => {
      await rejectsErrno(t.ports.netns.moveIn(dev[1], ns, 'lo'), 'EEXIST');
      assert.deepEqual(await netdevs(1), [dev[1]]);
      await t.ports.netns.moveIn(dev[1], ns, 'vfnew0');
      const link = await linkOf(1);
      assert.deepEqual([link?.ifname, link?.up, link?.addresses], ['vfnew0', false, []]);
      assert.deepEqual(await netdevs(1), [], 'gone from the host');
    });

    it('sets a per-interface sysctl inside the namespace and reads it back', async () => {
      await t.ports.netns.writeSysctl(ns, 'vfnew0', 'arp_notify', 1);
      assert.equal(await t.ports.netns.readSysctl(ns, 'vfnew0', 'arp_notify'), 1);
      await t.ports.netns.writeSysctl(ns, 'vfnew0', 'arp_notify', 0);
      assert.equal(await t.ports.netns.readSysctl(ns, 'vfnew0', 'arp_notify'), 0);
      // ndisc_notify is IPv6's: a kernel without IPv6 has no entry (null), never another value.
      const v6 = await t.ports.netns.writeSysctl(ns, 'vfnew0', 'ndisc_notify', 1).then(
        () => t.ports.netns.readSysctl(ns, 'vfnew0', 'ndisc_notify'),
        (e: unknown) => (e instanceof KernelError && e.errno === 'ENOENT' ? null : Promise.reject(e)),
      );
      assert.ok(v6 === 1 || v6 === null, `ndisc_notify reads ${v6}`);
      await rejectsErrno(t.ports.netns.readSysctl(ns, 'vfmissing', 'arp_notify'), 'ENODEV');
      await rejectsErrno(t.ports.netns.writeSysctl(ns, 'vfmissing', 'arp_notify', 1), 'ENODEV');
    });

    it('configures a link in place (MTU, MAC, addresses, up, routes), and again without error', async () => {
      await t.ports.netns.configure(ns, NEW);
      const want = { ifname: 'vfnew0', pciAddress: t.vfs[1], mac: NEW.mac, mtu: 1400, up: true, addresses: NEW.addresses };
      assert.deepEqual(await linkOf(1), want);
      await t.ports.netns.configure(ns, NEW);
      assert.deepEqual(await linkOf(1), want);
      await rejectsErrno(t.ports.netns.configure(ns, { ...NEW, ifname: 'vfmissing' }), 'ENODEV');
    });

    it('announces a link by setting the MAC it has, once it has carrier, leaving it as it was', async () => {
      const before = await linkOf(1);
      // Whether the VF has carrier is the PF cable's business: either answer, but a boolean, and the link unchanged.
      assert.equal(typeof (await t.ports.netns.announce(ns, 'vfnew0')), 'boolean');
      assert.deepEqual(await linkOf(1), before);
      await rejectsErrno(t.ports.netns.announce(ns, 'vfmissing'), 'ENODEV');
    });

    it('renames a link that is up only where the kernel allows it (EBUSY before Linux 6.2, changing nothing)', async () => {
      const outcome = await t.ports.netns.renameIn(ns, 'vfnew0', 'vfnew1').then(
        () => 'renamed',
        (e: unknown) => e,
      );
      if (outcome === 'renamed') {
        assert.equal((await linkOf(1))?.ifname, 'vfnew1');
        await t.ports.netns.renameIn(ns, 'vfnew1', 'vfnew0');
      } else {
        assert.ok(outcome instanceof KernelError && outcome.errno === 'EBUSY', String(outcome));
      }
      assert.deepEqual([(await linkOf(1))?.ifname, (await linkOf(1))?.up], ['vfnew0', true]);
    });

    it('takes a link down: its IPv4 addresses stay, and then it can be renamed, to a free name only', async () => {
      await t.ports.netns.setDown(ns, 'vfnew0');
      const link = await linkOf(1);
      assert.deepEqual([link?.up, link?.addresses], [false, NEW.addresses]);
      await rejectsErrno(t.ports.netns.renameIn(ns, 'vfnew0', 'lo'), 'EEXIST');
      await t.ports.netns.renameIn(ns, 'vfnew0', 'vfnew1');
      assert.equal((await linkOf(1))?.ifname, 'vfnew1');
      await rejectsErrno(t.ports.netns.renameIn(ns, 'vfnew0', 'vfnew2'), 'ENODEV');
      await rejectsErrno(t.ports.netns.setDown(ns, 'vfnew0'), 'ENODEV');
      await t.ports.netns.detach(ns, 'vfnew1', dev[1]);
      assert.deepEqual(await netdevs(1), [dev[1]]);
    });

    it('refuses invalid input to the re-home operations with INVALID_ARGUMENT, changing nothing', async () => {
      const inside = await t.ports.netns.links(ns);
      const bad: Array<[string, Promise<unknown>]> = [
        ['moveIn bad netdev', t.ports.netns.moveIn(`${dev[1]};x`, ns, 'vfnew0')],
        ['moveIn bad ifname', t.ports.netns.moveIn(dev[1], ns, 'vf new')],
        ['moveIn relative path', t.ports.netns.moveIn(dev[1], 'netns', 'vfnew0')],
        ['setDown bad ifname', t.ports.netns.setDown(ns, '../x')],
        ['renameIn bad name', t.ports.netns.renameIn(ns, 'lo', 'a/b')],
        ['configure bad MAC', t.ports.netns.configure(ns, { ...NEW, mac: '03:00:00:00:00:01' })],
        ['sysctl not ours', t.ports.netns.writeSysctl(ns, 'lo', 'forwarding' as never, 1)],
        ['sysctl value', t.ports.netns.writeSysctl(ns, 'lo', 'arp_notify', 2 as never)],
        ['sysctl bad ifname', t.ports.netns.readSysctl(ns, '../../x', 'arp_notify')],
        ['announce bad ifname', t.ports.netns.announce(ns, 'a b')],
      ];
      for (const [what, p] of bad) await rejectsInvalid(p, what);
      assert.deepEqual(await t.ports.netns.links(ns), inside);
      assert.deepEqual(await netdevs(1), [dev[1]]);
    });
  });
}
