// Lab suite (needs root and the SR-IOV lab, 2 PFs): the guest-side switchover
// that a live migration causes, without nesting. In a namespace, the real
// igbvf netdev of a VF that vfleet attached and a veth standby are the two
// legs of an active-backup bond (what net_failover does in a VM). A third
// namespace pings the bond every 10 ms; vfleet's release path unplugs the VF.
// The gap printed is the datapath cost of that unplug.
//
//   lab-fo:      bond0 198.18.7.10 = { net1 (VF of PF0, active), standby (veth) }
//   host:        br0 = { PF1, fo-standby (the standby's peer), fo-pinger }
//   lab-fo-ping: eth0 198.18.7.1 (peer fo-pinger)
//
// Before: pinger → br0 → PF1 → the wire → PF0 → the VF. After: pinger → br0 → the veth standby.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Allocation } from '../../src/domain/types.js';
import { sriovctl } from '../helpers/cli.js';
import { eventually, startDaemon, type Daemon } from '../helpers/daemon.js';
import { labPfs, rawVfs } from './lab-host.js';
import { insmodLab } from './lab-modules.js';
import { describeStats, Pinger } from './ping-gap.js';

const NS = 'lab-fo';
const PINGER = 'lab-fo-ping';
const BOND_IP = '198.18.7.10';
const INTERVAL_MS = 10;
const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const ipNs = (...args: string[]) => ip('-n', NS, ...args);
/** /proc/net/bonding/bond0 inside the namespace: the active slave and the slaves. */
const bondState = () => {
  const text = execFileSync('ip', ['netns', 'exec', NS, 'cat', '/proc/net/bonding/bond0'], { encoding: 'utf8' });
  return { active: /Currently Active Slave: (\S+)/.exec(text)?.[1], slaves: [...text.matchAll(/^Slave Interface: (\S+)/gm)].map((m) => m[1]), text };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the guest-side switchover: an igbvf VF and a veth standby in an active-backup bond', () => {
  let dir: string;
  let daemon: Daemon;
  let env: NodeJS.ProcessEnv;
  let pfs: string[];
  const ctl = async (...args: string[]) => {
    const r = await sriovctl(['--server', daemon.url, ...args], env);
    assert.equal(r.code, 0, `sriovctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    pfs = await labPfs();
    assert.ok(pfs.length >= 2, 'this suite needs 2 PFs (lab.sh --pfs 2)');
    // The lab's init loads bonding but not the bridge.
    insmodLab('bridge');
    for (const ns of [NS, PINGER]) ip('netns', 'add', ns);
    dir = await mkdtemp(join(tmpdir(), 'vfleet-lab-'));
    daemon = await startDaemon([
      '--data-dir', dir, '--listen', '127.0.0.1:0', '--host', 'linux', '--hostname', 'lab-host',
      '--heartbeat-interval', '1', '--resync-interval', '3', '--log-level', 'info',
    ]);
    env = { SRIOV_TOKEN: (await readFile(join(dir, 'admin.token'), 'utf8')).trim() };
    // VFs on PF0 only: PF1 is the bridge's uplink to the wire.
    const policy = join(dir, 'policy.yaml');
    await writeFile(policy, `policies:\n  - name: lab\n    selector: { pfNames: [${pfs[0]}] }\n    numVfs: 2\n    physnet: lab\n`);
    await ctl('host', 'apply', '-f', policy);
    await eventually(`2 VFs on ${pfs[0]}`, 90_000, async () => (rawVfs(pfs[0]!).length === 2 ? true : undefined));
    await ctl('tenant', 'create', 'fo');
    // Untagged (VLAN 0, admin only), and no address pool: the address is the bond's, not the VF's.
    await ctl('network', 'create', 'fo-net', '--tenant', 'fo', '--physnet', 'lab', '--vlan', '0');
  });

  after(async () => {
    await daemon?.kill();
    for (const ns of [NS, PINGER]) spawnSync('ip', ['netns', 'del', ns]);
    for (const dev of ['br0', 'fo-standby', 'fo-pinger']) spawnSync('ip', ['link', 'del', dev]);
    await rm(dir, { recursive: true, force: true });
  });

  it('fails over to the standby when vfleet releases the VF: the ping resumes, the VF leaves the namespace scrubbed', async (t) => {
    const a = JSON.parse(await ctl('attach', 'container', '--network', 'fo-net', '--netns', `/var/run/netns/${NS}`, '--ifname', 'net1', '-o', 'json')) as Allocation;
    assert.equal(a.state, 'attached');
    assert.equal(a.pf, pfs[0]);
    const mac = a.mac;

    // The bond. fail_over_mac=active: the bond never sets a slave's MAC (the VF's is the admin MAC, and
    // igb refuses a guest-side change with trust off); the standby carries the same MAC, as under net_failover.
    ip('link', 'add', 'fo-standby', 'type', 'veth', 'peer', 'name', 'standby', 'netns', NS);
    ipNs('link', 'set', 'dev', 'standby', 'address', mac);
    ipNs('link', 'add', 'bond0', 'type', 'bond', 'mode', 'active-backup', 'miimon', '10', 'fail_over_mac', 'active');
    for (const slave of ['net1', 'standby']) {
      ipNs('link', 'set', 'dev', slave, 'down');
      ipNs('link', 'set', 'dev', slave, 'master', 'bond0');
    }
    ipNs('link', 'set', 'dev', 'bond0', 'type', 'bond', 'primary', 'net1');
    ipNs('addr', 'add', `${BOND_IP}/24`, 'dev', 'bond0');
    ipNs('link', 'set', 'dev', 'bond0', 'up');

    // The other side: a bridge on PF1 (the wire) with the standby's peer and the pinger.
    ip('link', 'add', 'br0', 'type', 'bridge');
    ip('link', 'add', 'fo-pinger', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', PINGER);
    for (const port of [pfs[1]!, 'fo-standby', 'fo-pinger']) {
      ip('link', 'set', 'dev', port, 'master', 'br0');
      ip('link', 'set', 'dev', port, 'up');
    }
    ip('link', 'set', 'dev', 'br0', 'up');
    ip('-n', PINGER, 'addr', 'add', '198.18.7.1/24', 'dev', 'eth0');
    ip('-n', PINGER, 'link', 'set', 'dev', 'eth0', 'up');
    ip('-n', PINGER, 'link', 'set', 'dev', 'lo', 'up');

    await eventually('net1 active in bond0', 30_000, async () => (bondState().active === 'net1' ? true : undefined));
    const pinger = new Pinger(PINGER, BOND_IP, INTERVAL_MS);
    try {
      // Steady replies through the VF first.
      await eventually('replies through the VF', 60_000, async () => (pinger.replies().length >= 100 ? true : undefined));
      assert.equal(bondState().active, 'net1', 'the VF carried the traffic before the unplug');
      const seqBefore = pinger.lastSeq();
      const started = Date.now();
      const released = JSON.parse(await ctl('detach', a.id, '--timeout', '300', '-o', 'json')) as Allocation;
      t.diagnostic(`detach (vfleet's release path) took ${Date.now() - started} ms; replies up to icmp_seq ${seqBefore} came before it`);
      assert.equal(released.state, 'released', released.reason ?? '');
      const seqReleased = pinger.lastSeq();
      // Resumed: replies numbered after the release, through the standby.
      await eventually('replies after the release', 60_000, async () => (pinger.lastSeq() >= seqReleased + 100 ? true : undefined));
      await sleep(500);
      const stats = await pinger.stop(seqBefore + 1);
      t.diagnostic(`failover gap: ${describeStats(stats, INTERVAL_MS)}`);
      console.log(`LAB RESULT failover: unplug of an igbvf VF under an active-backup bond: ${describeStats(stats, INTERVAL_MS)}`);
      assert.ok(stats.replies.some((r) => r.seq > seqReleased), 'the ping resumed after the VF left');
    } finally {
      await pinger.kill();
    }

    const bond = bondState();
    assert.equal(bond.active, 'standby', bond.text);
    assert.deepEqual(bond.slaves, ['standby'], 'the VF left the bond');
    const inside = JSON.parse(ipNs('-j', 'link', 'show')) as Array<{ ifname: string }>;
    assert.deepEqual(inside.map((l) => l.ifname).sort(), ['bond0', 'lo', 'standby'], 'no VF netdev left in the namespace');
    const vf = rawVfs(a.pf).find((v) => v.vf === a.vfIndex)!;
    assert.ok(vf.address === '00:00:00:00:00:00' || vf.address !== mac, `the tenant's MAC ${mac} is gone from the VF (${vf.address})`);
    assert.equal(vf.vlan_list?.[0]?.vlan ?? 0, 0);
    assert.equal(vf.spoofchk, true);
    assert.equal(vf.trust, false);
    assert.equal(vf.rate?.max_tx ?? 0, 0);
    const netdevs = readFileSync('/proc/net/dev', 'utf8');
    const hostName = spawnSync('ls', [`/sys/bus/pci/devices/${a.pciAddress}/net`], { encoding: 'utf8' }).stdout.trim();
    assert.ok(hostName && netdevs.includes(`${hostName}:`), `the VF's netdev is back in the host (${hostName})`);
    const all = JSON.parse(await ctl('alloc', 'list', '--all', '-o', 'json')) as Allocation[];
    assert.equal(all.find((x) => x.id === a.id)?.state, 'released');
  });
});
