// Traffic counters in the host layer: Linux (`ip -s -j` output recorded in test/fixtures/ip/, sysfs fallback) and the simulated host.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LinuxCounters, parsePfCounters } from '../../src/host/linux/counters.js';
import { SriovError } from '../../src/host/errors.js';
import { SimHost } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';

const fixturePath = (name: string) => new URL(`../../../test/fixtures/ip/${name}`, import.meta.url).pathname;
const fixture = async (name: string): Promise<unknown> => JSON.parse(await readFile(fixturePath(name), 'utf8'));

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-counters-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** An `ip` that prints `fixture` and records its arguments. */
async function fakeIp(fixtureName: string): Promise<{ path: string; args: () => Promise<string> }> {
  const path = join(dir, `ip-${fixtureName}`);
  const log = join(dir, `args-${fixtureName}`);
  await writeFile(path, `#!/bin/sh\necho "$@" > '${log}'\ncat '${fixturePath(fixtureName)}'\n`);
  await chmod(path, 0o755);
  return { path, args: () => readFile(log, 'utf8') };
}

async function netdevStats(root: string, name: string, values: Record<string, number>): Promise<void> {
  const d = join(root, 'class', 'net', name, 'statistics');
  await mkdir(d, { recursive: true });
  for (const [k, v] of Object.entries(values)) await writeFile(join(d, k), `${v}\n`);
}

describe('linux counters: ip -s -j link show', () => {
  it('reads the PF’s stats64 and, from a driver without ndo_get_vf_stats (igb), no VF counters: its zeros mean nothing', async () => {
    const parsed = parsePfCounters(await fixture('igb-3vfs-counters.json'), 'igb');
    assert.deepEqual(parsed.pf, { rxBytes: 1843215, txBytes: 930211, rxPackets: 12011, txPackets: 7305, rxDropped: 3, txDropped: 0 });
    assert.equal(parsed.vfStatsFilled, false);
    assert.equal(parsed.vfStats.size, 0);
  });

  it('reads IFLA_VF_STATS per VF from a driver that fills them (mlx5_core), idle VFs as real zeros', async () => {
    const parsed = parsePfCounters(await fixture('mlx5-3vfs-counters.json'), 'mlx5_core');
    assert.equal(parsed.vfStatsFilled, true);
    assert.deepEqual(parsed.vfStats.get(0), { rxBytes: 1200000, txBytes: 800000, rxPackets: 900, txPackets: 700, rxDropped: 1, txDropped: 0 });
    assert.deepEqual(parsed.vfStats.get(1), { rxBytes: 0, txBytes: 0, rxPackets: 0, txPackets: 0, rxDropped: 0, txDropped: 0 });
    // A driver not on the list that counts something does fill them.
    assert.equal(parsePfCounters(await fixture('mlx5-3vfs-counters.json'), 'bnxt_en').vfStatsFilled, true);
  });

  it('takes a counter iproute2 did not print as unknown, not zero', () => {
    const parsed = parsePfCounters([{ stats64: { rx: { bytes: 1, packets: 1, dropped: 0 }, tx: { bytes: 1, packets: 1 } } }], 'igb');
    assert.equal(parsed.pf, null);
    assert.throws(() => parsePfCounters([], 'igb'), /no link/);
  });

  it('runs ip with an argument vector, falls back to the VF netdev’s statistics, and says why a VF cannot be read', async () => {
    const ip = await fakeIp('igb-3vfs-counters.json');
    const root = join(dir, 'sys');
    await netdevStats(root, 'eth0v0', { rx_bytes: 5000, tx_bytes: 4000, rx_packets: 50, tx_packets: 40, rx_dropped: 1, tx_dropped: 0 });
    const counters = new LinuxCounters(root, ip.path);
    const read = await counters.read('eth0', 'igb', [
      { index: 0, netdev: 'eth0v0' },
      { index: 1, netdev: null },
      { index: 2, netdev: 'gone0' },
    ]);
    assert.equal((await ip.args()).trim(), '-s -j -d link show dev eth0');
    assert.equal(read.simulated, false);
    assert.equal(read.pf?.rxBytes, 1843215);
    assert.deepEqual(read.vfs[0], { index: 0, counters: { rxBytes: 5000, txBytes: 4000, rxPackets: 50, txPackets: 40, rxDropped: 1, txDropped: 0 }, source: 'netdev' });
    assert.equal(read.vfs[1]!.counters, null);
    assert.match(read.vfs[1]!.missing!, /igb does not report per-VF counters \(IFLA_VF_STATS\) and the VF has no netdev in the host namespace/);
    assert.equal(read.vfs[2]!.counters, null);
    assert.match(read.vfs[2]!.missing!, /\/sys\/class\/net\/gone0\/statistics: ENOENT/);
  });

  it('uses IFLA_VF_STATS when the driver fills them, even with a netdev present', async () => {
    const ip = await fakeIp('mlx5-3vfs-counters.json');
    const read = await new LinuxCounters(join(dir, 'sys'), ip.path).read('ens1f0np0', 'mlx5_core', [{ index: 2, netdev: 'eth0v0' }]);
    assert.deepEqual(read.vfs, [{ index: 2, counters: { rxBytes: 55000000, txBytes: 33000000, rxPackets: 41000, txPackets: 25000, rxDropped: 7, txDropped: 2 }, source: 'vf-stats' }]);
  });

  it('refuses a PF name that is not an interface name before anything runs, and never builds a path from a bad VF netdev', async () => {
    const ip = await fakeIp('igb-3vfs-counters.json');
    const counters = new LinuxCounters(join(dir, 'sys'), ip.path);
    await assert.rejects(counters.read('../../etc', 'igb', []), (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT');
    const read = await counters.read('eth0', 'igb', [{ index: 0, netdev: '../../../etc' }]);
    assert.equal(read.vfs[0]!.counters, null);
    assert.match(read.vfs[0]!.missing!, /no netdev in the host namespace/);
  });
});

describe('sim counters', () => {
  it('follow the VFs’ use and rates: a workload’s VF moves (near a fraction of its max_tx_rate), a free one does not; monotonic; labelled simulated', async () => {
    const file = join(dir, 'sim.json');
    await initSimHost(file, { profile: 'mlx5', pfs: 1 });
    let now = 1_000_000;
    const sim = new SimHost(file, () => now);
    const ports = sim.ports;
    const [pfAddress] = await ports.sysfs.listSriovPfs();
    await ports.sysfs.writeNumVfs(pfAddress!, 3);
    await ports.links.applyVfOps('ens1f0', [{ vf: 1, field: 'rate', minTxRateMbps: 0, maxTxRateMbps: 1000 }]);
    const ns = join(dir, 'ns-a');
    await writeFile(ns, '');
    const spec = (ifname: string) => ({ ifname, mac: '02:00:00:00:00:0a', mtu: null, addresses: [], routes: [] });
    await ports.netns.attach('ens1f0v0', ns, spec('net0'));
    await ports.netns.attach('ens1f0v1', ns, { ...spec('net1'), mac: '02:00:00:00:00:0b' });
    const vfs = [0, 1, 2].map((index) => ({ index, netdev: null }));
    const first = await ports.counters.read('ens1f0', 'mlx5_core', vfs);
    assert.equal(first.simulated, true);
    assert.ok(first.vfs.every((v) => v.source === 'simulated'));
    now += 60_000;
    const second = await ports.counters.read('ens1f0', 'mlx5_core', vfs);
    const d = (i: number, k: 'txBytes' | 'rxBytes' | 'rxPackets' | 'rxDropped') => second.vfs[i]!.counters![k] - first.vfs[i]!.counters![k];
    assert.ok(d(0, 'txBytes') > 0 && d(0, 'rxPackets') > 0, 'a workload’s VF without a max rate moves');
    const txMbps = (d(1, 'txBytes') * 8) / 60 / 1e6;
    assert.ok(txMbps > 400 && txMbps < 800, `a VF capped at 1000 Mbps runs near a fraction of it: ${txMbps}`);
    assert.ok(d(1, 'rxDropped') > 0, 'some packets are dropped');
    assert.equal(d(2, 'txBytes'), 0, 'a free VF passes nothing');
    for (const k of ['rxBytes', 'txBytes', 'rxPackets', 'txPackets', 'rxDropped', 'txDropped'] as const) {
      assert.equal(second.pf![k], second.vfs.reduce((s, v) => s + v.counters![k], 0), `the PF's ${k} is its VFs' sum`);
    }
    // The link disabled: the VF stops, its counters stay where they were.
    await ports.links.applyVfOps('ens1f0', [{ vf: 0, field: 'linkState', state: 'disable' }]);
    now += 1;
    const atStop = (await ports.counters.read('ens1f0', 'mlx5_core', vfs)).vfs[0]!.counters!;
    now += 30_000;
    assert.deepEqual((await ports.counters.read('ens1f0', 'mlx5_core', vfs)).vfs[0]!.counters, atStop);
    await assert.rejects(ports.counters.read('ens1f0v2', null, []), /not a PF/);
  });
});
