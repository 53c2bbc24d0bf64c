// Lab suite (needs root and the SR-IOV lab, 2 PFs): a container re-homed
// from PF 0 to PF 1, make-before-break, by a drain of its PF, while another
// namespace pings it every 10 ms. Two agents in one guest ("host A" owns
// PF 0, "host B" PF 1, `--pfs`) and the controller. Prints the blackout
// (lost or late replies × interval); checks the MAC and the address are
// unchanged and the old VF is scrubbed.
//
//   lab-mig:      net1 198.18.9.x, VF of PF0 (host-a) → VF of PF1 (host-b)
//   lab-mig-ping: net1 198.18.9.y, VF of PF1 (host-b): across the wire before, the NIC's switch after
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { Allocation, Migration } from '../../src/domain/types.js';
import { eventually } from '../helpers/daemon.js';
import { labPfs, rawVfs } from './lab-host.js';
import { describeStats, Pinger } from './ping-gap.js';
import { startTwoHosts, type TwoHosts } from './two-hosts.js';

const NS = 'lab-mig';
const PINGER = 'lab-mig-ping';
const INTERVAL_MS = 10;
/** `attach container -o json` puts the attachment's fields at the top; `alloc list` does not. */
type Held = Allocation & { ips: string[]; ifname: string; attachment: { hostIfName: string | null; ips: string[] } };
/** The container's net1 as the kernel shows it: its MAC and IPv4 addresses (`ip -j addr`). */
const net1 = (ns: string) => {
  const [link] = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', 'net1'], { encoding: 'utf8' })) as Array<{ address: string; addr_info: Array<{ family: string; local: string; prefixlen: number }> }>;
  return { mac: link!.address, ips: link!.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`) };
};
/** The PCI address behind a netdev in a namespace (its device link). */
const pciOf = (ns: string, ifname: string) => execFileSync('ip', ['netns', 'exec', ns, 'readlink', '-f', `/sys/class/net/${ifname}/device`], { encoding: 'utf8' }).trim().split('/').pop();

describe('a container re-homed PF0 → PF1 by a drain, make-before-break', () => {
  let pfs: [string, string];
  let lab: TwoHosts;

  before(async () => {
    const all = await labPfs();
    assert.ok(all.length >= 2, 'this suite needs 2 PFs (lab.sh --pfs 2)');
    pfs = [all[0]!, all[1]!];
    for (const ns of [NS, PINGER]) execFileSync('ip', ['netns', 'add', ns]);
    lab = await startTwoHosts(pfs, 2);
    await lab.ctl('tenant', 'create', 'mig');
    await lab.ctl('network', 'create', 'mig-net', '--tenant', 'mig', '--physnet', 'lab', '--vlan', '100', '--ip-pool', '198.18.9.0/24', '--ip-range', '198.18.9.10-198.18.9.19');
  });

  after(async () => {
    await lab?.stop();
    for (const ns of [NS, PINGER]) spawnSync('ip', ['netns', 'del', ns]);
  });

  it('drains host-a/PF0: the container keeps its MAC and address on a VF of PF1; the old VF is scrubbed; prints the blackout', async (t) => {
    const attach = async (ns: string, host: string) =>
      JSON.parse(await lab.ctl('attach', 'container', '--network', 'mig-net', '--netns', `/var/run/netns/${ns}`, '--ifname', 'net1', '--host', host, '--timeout', '300', '-o', 'json')) as Held;
    const src = await attach(NS, 'host-a');
    const peer = await attach(PINGER, 'host-b');
    assert.equal(src.pf, pfs[0]);
    assert.equal(peer.pf, pfs[1]);
    const seen = net1(NS);
    assert.equal(seen.mac, src.mac);
    assert.deepEqual(seen.ips, src.ips);
    const target = src.ips[0]!.split('/')[0]!;

    const pinger = new Pinger(PINGER, target, INTERVAL_MS);
    let drained: unknown;
    try {
      await eventually('replies before the drain', 60_000, async () => (pinger.replies().length >= 100 ? true : undefined));
      const eventSeq = pinger.lastSeq() + 1;
      const started = Date.now();
      drained = JSON.parse(await lab.ctl('drain', `host-a/${pfs[0]}`, '-o', 'json'));
      const done = await eventually('the migration to end', 300_000, async () => {
        const ms = JSON.parse(await lab.ctl('migrations', 'list', '-o', 'json')) as Migration[];
        const m = ms.find((x) => x.from.allocation === src.id);
        return m && m.state !== 'running' && m.state !== 'rolling-back' ? m : undefined;
      });
      t.diagnostic(`drain: ${JSON.stringify(drained)}; migration ${done.id} ${done.state} in ${Date.now() - started} ms: ${done.history.map((h) => `${h.step} ${h.outcome} (icmp_seq ≈ ${eventSeq + Math.round((Date.parse(h.at) - started) / INTERVAL_MS)})`).join(', ')}`);
      assert.equal(done.state, 'completed', done.reason ?? '');
      const seqDone = pinger.lastSeq();
      await eventually('replies after the re-home', 60_000, async () => (pinger.lastSeq() >= seqDone + 100 ? true : undefined));
      const stats = await pinger.stop(eventSeq);
      t.diagnostic(`re-home blackout: ${describeStats(stats, INTERVAL_MS)}`);
      console.log(`LAB RESULT migration (container re-home PF0 → PF1 by drain): ${describeStats(stats, INTERVAL_MS)}`);
      assert.ok(stats.replies.some((r) => r.seq > seqDone), 'the ping goes on after the re-home');
    } finally {
      await pinger.kill();
    }

    // The container: the same MAC and address, now on a VF of PF1.
    const all = JSON.parse(await lab.ctl('alloc', 'list', '--all', '-o', 'json')) as Held[];
    const now = all.find((a) => a.workload.name === src.workload.name && a.id !== src.id && a.state === 'attached');
    assert.ok(now, `an attached allocation for ${src.workload.name} after the drain: ${JSON.stringify(all.map((a) => [a.id, a.pf, a.state]))}`);
    assert.equal(now.pf, pfs[1]);
    assert.equal(now.mac, src.mac);
    assert.deepEqual(now.attachment.ips, src.ips);
    assert.equal(now.migration, null);
    const seenAfter = net1(NS);
    assert.equal(seenAfter.mac, src.mac, 'the MAC is unchanged');
    assert.deepEqual(seenAfter.ips, src.ips, 'the address is unchanged');
    assert.equal(pciOf(NS, 'net1'), now.pciAddress, "net1 is the new VF's netdev");
    const inside = (JSON.parse(execFileSync('ip', ['-n', NS, '-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string }>).map((l) => l.ifname);
    assert.deepEqual(inside.sort(), ['lo', 'net1'], 'the old VF left the namespace');

    // The old VF: released, scrubbed.
    assert.equal(all.find((a) => a.id === src.id)?.state, 'released');
    const old = rawVfs(pfs[0]).find((v) => v.vf === src.vfIndex)!;
    assert.ok(old.address === '00:00:00:00:00:00' || old.address !== src.mac, `the MAC ${src.mac} is gone from ${pfs[0]} vf ${src.vfIndex} (${old.address})`);
    assert.equal(old.vlan_list?.[0]?.vlan ?? 0, 0);
    assert.equal(old.spoofchk, true);
    assert.equal(old.trust, false);
    // The MAC is on exactly one VF of the two PFs.
    const holders = pfs.flatMap((pf) => rawVfs(pf).filter((v) => v.address === src.mac).map((v) => `${pf} vf ${v.vf}`));
    assert.deepEqual(holders, [`${pfs[1]} vf ${now.vfIndex}`]);
    // Nothing lost: the peer still holds its VF, and no allocation failed.
    assert.equal(all.find((a) => a.id === peer.id)?.state, 'attached');
    assert.deepEqual(all.filter((a) => a.state === 'failed').map((a) => a.id), []);
  });
});
