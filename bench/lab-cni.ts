/**
 * Lab benchmark (inside test/lab/lab.sh, real igb): vfleet-cni ADD and DEL
 * against sriovd, and the same attach done by hand with `ip` commands on
 * the same host in the same run — configure the VF on its PF, move its
 * netdev into the namespace, rename, address, up; and back, scrubbed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SriovHost } from '../src/host/configurator.js';
import { createLinuxPorts } from '../src/host/linux/index.js';
import { labPfs } from '../test/lab/lab-host.js';
import { api, eventually, startDaemon } from '../test/helpers/daemon.js';
import { benchCni, summary } from './cni.js';
import { median } from './stats.js';

const RUNS = 10;
const NS = 'bench-cni';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

/**
 * What an operator types to hand VF `vf` of `pf` (netdev `netdev`) to a
 * namespace, and to take it back. It leaves out what vfleet also does (the
 * VF driver reload that makes the netdev take the admin MAC — igb refuses the
 * VF setting it itself — and the read-back checks), so it flatters by-hand.
 */
function byHand(pf: string, vf: number, netdev: string): { add: number; del: number } {
  const t0 = process.hrtime.bigint();
  ip('link', 'set', 'dev', pf, 'vf', String(vf), 'mac', '02:aa:00:0b:00:01');
  ip('link', 'set', 'dev', pf, 'vf', String(vf), 'vlan', '300');
  ip('link', 'set', 'dev', pf, 'vf', String(vf), 'spoofchk', 'on');
  ip('link', 'set', 'dev', pf, 'vf', String(vf), 'trust', 'off');
  ip('link', 'set', 'dev', netdev, 'netns', NS);
  ip('-n', NS, 'link', 'set', 'dev', netdev, 'name', 'net1');
  ip('-n', NS, 'addr', 'add', '198.18.3.5/24', 'dev', 'net1');
  ip('-n', NS, 'link', 'set', 'dev', 'net1', 'up');
  const t1 = process.hrtime.bigint();
  ip('-n', NS, 'link', 'set', 'dev', 'net1', 'down');
  ip('-n', NS, 'addr', 'flush', 'dev', 'net1');
  ip('-n', NS, 'link', 'set', 'dev', 'net1', 'netns', '1');
  ip('link', 'set', 'dev', 'net1', 'name', netdev);
  ip('link', 'set', 'dev', pf, 'vf', String(vf), 'mac', '00:00:00:00:00:00');
  ip('link', 'set', 'dev', pf, 'vf', String(vf), 'vlan', '0');
  const t2 = process.hrtime.bigint();
  return { add: Number(t1 - t0) / 1e6, del: Number(t2 - t1) / 1e6 };
}

export async function benchLabCni(): Promise<void> {
  const [pf] = (await labPfs()) as [string];
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-'));
  spawnSync('ip', ['netns', 'add', NS]);
  const daemon = await startDaemon(['--data-dir', dir, '--listen', '127.0.0.1:0', '--host', 'linux', '--hostname', 'lab-host', '--heartbeat-interval', '1', '--log-level', 'info']);
  try {
    const token = (await readFile(join(dir, 'admin.token'), 'utf8')).trim();
    const call = (method: string, path: string, body?: unknown) => api(daemon.url, token, method, path, body);
    await call('PUT', '/v1/hosts/lab-host/policy', { document: `policies:\n  - name: lab\n    selector: { pfNames: [${pf}] }\n    numVfs: 2\n    physnet: lab\n` });
    await eventually('2 VFs', 90_000, async () => ((await new SriovHost(createLinuxPorts({})).pf(pf)).vfs.filter((v) => v.netdev).length === 2 ? true : undefined));
    await call('POST', '/v1/tenants', { name: 'bench' });
    await call('POST', '/v1/networks', { name: 'bench', tenant: 'bench', physnet: 'lab', vlan: 300, ipam: { cidr: '198.18.3.0/24' } });
    Object.assign(process.env, { VFLEET_BENCH_SERVER: daemon.url, VFLEET_BENCH_TOKEN: token, VFLEET_BENCH_NETNS: `/var/run/netns/${NS}`, VFLEET_BENCH_HOST: 'lab-host', VFLEET_BENCH_RUNS: String(RUNS) });
    const cni = await benchCni();
    // By hand, on the other VF (the daemon's agent leaves it alone: nothing holds it, and it stays scrubbed).
    const host = new SriovHost(createLinuxPorts({}));
    const spare = (await host.pf(pf)).vfs[1]!;
    const hand = Array.from({ length: RUNS }, () => byHand(pf, spare.index, spare.netdev!));
    console.log(`by hand with ip (${RUNS} runs, 8 + 6 ip commands):`);
    console.log(`  ${summary('attach by hand', hand.map((h) => h.add))}`);
    console.log(`  ${summary('detach by hand', hand.map((h) => h.del))}`);
    if (cni) {
      const ratio = (a: number[], b: number[]) => (median(a) / median(b)).toFixed(2);
      console.log(`  ratio CNI/by hand (median): ADD ${ratio(cni.add, hand.map((h) => h.add))}, DEL ${ratio(cni.del, hand.map((h) => h.del))}`);
    }
  } finally {
    await daemon.kill();
    spawnSync('ip', ['netns', 'del', NS]);
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchLabCni();
