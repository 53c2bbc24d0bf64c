// Lab suite (needs root and the SR-IOV lab): traffic counters on real igb while pinging.
// igb has no ndo_get_vf_stats, so its IFLA_VF_STATS read zero: a VF's counters come from its
// netdev while that is in the host namespace, and are reported unreadable once it is in a container's.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { TrafficSampler } from '../../src/agent/traffic-sampler.js';
import { SriovHost } from '../../src/host/configurator.js';
import { createLinuxPorts } from '../../src/host/linux/index.js';
import type { PfInfo } from '../../src/host/model.js';
import { labPfs } from './lab-host.js';

const NS = 'lab-traffic';
const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const HOST_ADDR = '198.18.7.1';
const NS_ADDR = '198.18.7.2';

describe('traffic counters on igb, while pinging', () => {
  const host = new SriovHost(createLinuxPorts({}));
  let pf: PfInfo;
  let hostVf: string;

  before(async () => {
    const [name] = await labPfs(host);
    await host.setAutoprobe(name!, true);
    await host.setNumVfs(name!, 2);
    pf = await host.pf(name!);
    const [a, b] = pf.vfs;
    assert.ok(a?.netdev && b?.netdev, 'igbvf gives both VFs a netdev');
    hostVf = a.netdev;
    spawnSync('ip', ['netns', 'del', NS]);
    ip('netns', 'add', NS);
    ip('link', 'set', 'dev', b.netdev, 'netns', NS);
    ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_ADDR}/24`, 'dev', b.netdev);
    ip('netns', 'exec', NS, 'ip', 'link', 'set', 'dev', b.netdev, 'up');
    ip('addr', 'add', `${HOST_ADDR}/24`, 'dev', hostVf);
    ip('link', 'set', 'dev', hostVf, 'up');
    // The inventory after the move: VF 1 has no netdev in the host namespace now.
    pf = await host.pf(name!);
  });

  after(async () => {
    spawnSync('ip', ['netns', 'del', NS]);
    if (pf) await host.setNumVfs(pf.name, 0);
  });

  it('reads the PF’s own counters, the host-namespace VF from its netdev, and says why the other cannot be read', async () => {
    let now = Date.now();
    const sampler = new TrafficSampler(host, () => [pf], { intervalMs: 1000, clock: () => now });
    const before = await host.counters(pf);
    await sampler.sample();
    const r = spawnSync('ip', ['netns', 'exec', NS, 'ping', '-c', '20', '-i', '0.2', '-W', '2', '-q', HOST_ADDR], { encoding: 'utf8' });
    assert.equal(r.status, 0, `ping ${HOST_ADDR} from ${NS}: ${r.stdout}${r.stderr}`);
    now += 5000;
    await sampler.sample();
    const afterRead = await host.counters(pf);

    assert.ok(before.pf && afterRead.pf, 'the PF’s stats64');
    assert.equal(afterRead.simulated, false);
    const [vf0, vf1] = afterRead.vfs;
    assert.equal(vf0!.source, 'netdev', 'igb leaves IFLA_VF_STATS empty: VF 0 is read from its netdev');
    assert.ok(vf0!.counters!.rxPackets - before.vfs[0]!.counters!.rxPackets >= 20, 'the 20 echo requests arrived on VF 0');
    assert.ok(vf0!.counters!.txPackets - before.vfs[0]!.counters!.txPackets >= 20, 'and 20 replies left');
    assert.equal(vf1!.counters, null);
    assert.match(vf1!.missing!, /igb does not report per-VF counters \(IFLA_VF_STATS\) and the VF has no netdev in the host namespace/);

    const sent = sampler.take()!;
    const row = sent.samples[0]!.pfs?.find((p) => p.pf === pf.name)?.vfs?.find((v) => v[0] === 0);
    assert.ok(row && row[3]! >= 20, `VF 0's rx packets delta: ${JSON.stringify(sent)}`);
    const notes = sent.notes?.find((n) => n.pf === pf.name);
    assert.deepEqual(notes?.missing?.map((m) => m.vfs), [[1]]);
    assert.deepEqual(notes?.netdev, [0]);
  });
});
