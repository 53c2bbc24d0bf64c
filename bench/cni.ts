/**
 * What vfleet-cni costs a container runtime, which execs it once per pod and
 * network. Cold start (VERSION) is measured against `node -e 0` in the same
 * run, runs interleaved so machine noise hits both alike, for the bundle
 * installed outside any package (as in /opt/cni/bin) and where it is built
 * (dist/, inside this repository's "type": "module" package, so ESM-loaded).
 *
 * ADD and DEL latency too (a full attach and release each): through cnitool
 * on a simulated host started here, beside the reference `static` plugin
 * (VFLEET_BENCH_CNITOOL, VFLEET_BENCH_STATIC: where they are; by default
 * /var/cache/vfleet-tools/bin/cnitool and /usr/lib/cni/static), or, when
 * the environment names a daemon, by executing the plugin directly (the lab):
 *   VFLEET_BENCH_SERVER   sriovd URL, e.g. http://127.0.0.1:7474
 *   VFLEET_BENCH_TOKEN    a token that may allocate on the network
 *   VFLEET_BENCH_NETWORK  the vfleet network (default: bench)
 *   VFLEET_BENCH_NETNS    a namespace to attach into (default: a temp file, which a simulated host takes)
 *   VFLEET_BENCH_HOST     the host name the daemon knows this host by (default: os.hostname())
 *   VFLEET_BENCH_RUNS     ADD+DEL pairs (default 20)
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initSimHost } from '../src/sim/state.js';
import { api, eventually, startDaemon, type Daemon } from '../test/helpers/daemon.js';
import { percentile } from './stats.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUNDLE = join(ROOT, 'dist', 'vfleet-cni');
const COLD_RUNS = 30;

interface Timed {
  ms: number;
  status: number | null;
  stdout: string;
}

function exec(cmd: string, args: string[], env: Record<string, string>, stdin: string): Timed {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { input: stdin, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env } });
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, status: r.status, stdout: r.stdout };
}

export function summary(label: string, ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  return `${label.padEnd(34)} p50 ${percentile(sorted, 50).toFixed(1).padStart(6)} ms   p99 ${percentile(sorted, 99).toFixed(1).padStart(6)} ms`;
}

/** Always rebuilt (well under a second): a stale bundle would time old code. */
function buildBundle(): void {
  const build = spawnSync('npm', ['run', '--silent', 'build:cni'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build:cni failed');
}

/** Cold start: node itself, then the plugin as installed and as built, interleaved run by run. */
async function coldStart(dir: string, print: (line: string) => void): Promise<void> {
  const installed = join(dir, 'vfleet-cni');
  await copyFile(BUNDLE, installed);
  const candidates: Array<[string, string, string[]]> = [
    ['node -e 0 (baseline)', process.execPath, ['-e', '0']],
    ['vfleet-cni VERSION (installed)', installed, []],
    ['vfleet-cni VERSION (dist/)', BUNDLE, []],
  ];
  const times = candidates.map((): number[] => []);
  const version = { cniVersion: '1.0.0' };
  for (let i = 0; i < COLD_RUNS; i++) {
    candidates.forEach(([, cmd, args], k) => {
      const r = exec(cmd, args, { CNI_COMMAND: 'VERSION' }, JSON.stringify(version));
      if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}: ${r.stdout}`);
      times[k]!.push(r.ms);
    });
  }
  print(`vfleet-cni cold start, ${COLD_RUNS} runs each:`);
  candidates.forEach(([label], k) => print(`  ${summary(label, times[k]!)}`));
}

/** ADD then DEL of one container, `runs` times, against the daemon the environment names. */
export interface AddDelTimes {
  add: number[];
  del: number[];
}

async function addDel(dir: string, server: string, token: string, print: (line: string) => void): Promise<AddDelTimes> {
  const env = process.env;
  const runs = Number(env.VFLEET_BENCH_RUNS ?? 20);
  const netns = env.VFLEET_BENCH_NETNS ?? join(dir, 'netns');
  if (!env.VFLEET_BENCH_NETNS) await writeFile(netns, '');
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'vfleet-bench',
    type: 'vfleet-cni',
    network: env.VFLEET_BENCH_NETWORK ?? 'bench',
    server,
    token,
    ...(env.VFLEET_BENCH_HOST ? { host: env.VFLEET_BENCH_HOST } : {}),
  });
  const add: number[] = [];
  const del: number[] = [];
  for (let i = 0; i < runs; i++) {
    const cni = { CNI_CONTAINERID: `bench-${process.pid}-${i}`, CNI_NETNS: netns, CNI_IFNAME: 'net1' };
    for (const [command, into] of [['ADD', add], ['DEL', del]] as const) {
      const r = exec(BUNDLE, [], { ...cni, CNI_COMMAND: command }, conf);
      if (r.status !== 0) throw new Error(`${command} failed: ${r.stdout}`);
      into.push(r.ms);
    }
  }
  print(`vfleet-cni against ${server}, ${runs} containers:`);
  print(`  ${summary('ADD (allocate, attach, result)', add)}`);
  print(`  ${summary('DEL (detach, scrub, release)', del)}`);
  return { add, del };
}

const CNITOOL = process.env.VFLEET_BENCH_CNITOOL ?? '/var/cache/vfleet-tools/bin/cnitool';
const STATIC_PLUGIN = process.env.VFLEET_BENCH_STATIC ?? '/usr/lib/cni/static';
const SIM_HOST = 'bench-host';

/** The simulated host and a daemon on it, set up for ADDs: one PF of 8 VFs on physnet `bench`, network `bench`. */
async function simDaemon(dir: string): Promise<{ daemon: Daemon; token: string; simFile: string }> {
  const simFile = join(dir, 'host.json');
  await initSimHost(simFile, { profile: 'ice', pfs: 1, hostname: SIM_HOST });
  const daemon = await startDaemon(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--host', `sim:${simFile}`, '--hostname', SIM_HOST, '--no-demo', '--heartbeat-interval', '5']);
  const token = (await readFile(join(dir, 'data', 'admin.token'), 'utf8')).trim();
  const call = async (method: string, path: string, body: unknown) => {
    const r = await api(daemon.url, token, method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  };
  await call('PUT', `/v1/hosts/${SIM_HOST}/policy`, { document: 'policies:\n  - name: bench\n    selector: { drivers: [ice] }\n    numVfs: 8\n    physnet: bench\n' });
  await eventually('8 VFs', 30_000, async () => {
    const r = await api<{ inventory: { pfs: Array<{ numVfs: number }> } }>(daemon.url, token, 'GET', `/v1/hosts/${SIM_HOST}`);
    return r.body.inventory?.pfs[0]?.numVfs === 8 ? true : undefined;
  });
  await call('POST', '/v1/tenants', { name: 'bench' });
  await call('POST', '/v1/networks', { name: 'bench', tenant: 'bench', physnet: 'bench', vlan: 300, ipam: { cidr: '198.18.3.0/24' } });
  return { daemon, token, simFile };
}

/**
 * ADD and DEL through the reference client (`cnitool add|del NET NETNS`) on
 * the simulated host, interleaved run by run with the reference `static`
 * plugin through the same cnitool (it returns its configured address and
 * touches no namespace: what any plugin costs the client), and `node -e 0`.
 */
async function simCnitool(dir: string, print: (line: string) => void): Promise<AddDelTimes> {
  const runs = Number(process.env.VFLEET_BENCH_RUNS ?? 40);
  const { daemon, token, simFile } = await simDaemon(dir);
  try {
    const bin = join(dir, 'bin');
    const conf = join(dir, 'net.d');
    await mkdir(bin);
    await mkdir(conf);
    await copyFile(BUNDLE, join(bin, 'vfleet-cni'));
    await copyFile(STATIC_PLUGIN, join(bin, 'static'));
    await chmod(join(bin, 'vfleet-cni'), 0o755);
    await writeFile(join(conf, '10-vfleet.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'vfleet-bench', type: 'vfleet-cni', network: 'bench', server: daemon.url, token, host: SIM_HOST, hostBackend: `sim:${simFile}` }));
    await writeFile(join(conf, '20-static.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'static-bench', type: 'static', ipam: { type: 'static', addresses: [{ address: '198.18.4.10/24' }] } }));
    // Only what the client needs: no NODE_OPTIONS or NODE_EXTRA_CA_CERTS (+60 ms per node start) reaches the plugins.
    const env = { NETCONFPATH: conf, CNI_PATH: bin, CNI_IFNAME: 'net1' };
    const times = { add: [] as number[], del: [] as number[], staticAdd: [] as number[], staticDel: [] as number[], node: [] as number[] };
    const cnitool = (command: string, net: string, netns: string, into: number[]) => {
      const r = exec(CNITOOL, [command, net, netns], env, '');
      if (r.status !== 0) throw new Error(`cnitool ${command} ${net} exited ${r.status}: ${r.stdout}`);
      into.push(r.ms);
    };
    for (let i = -3; i < runs; i++) {
      // The first runs warm the page cache and the daemon; they are not counted.
      const t = i < 0 ? { add: [], del: [], staticAdd: [], staticDel: [], node: [] } : times;
      const netns = join(dir, `netns-${i + 3}`);
      await writeFile(netns, '');
      cnitool('add', 'vfleet-bench', netns, t.add);
      cnitool('add', 'static-bench', netns, t.staticAdd);
      t.node.push(exec(process.execPath, ['-e', '0'], {}, '').ms);
      cnitool('del', 'vfleet-bench', netns, t.del);
      cnitool('del', 'static-bench', netns, t.staticDel);
    }
    const ratio = (a: number[], b: number[], p: number) => {
      const q = (v: number[]) => percentile([...v].sort((x, y) => x - y), p);
      return (q(a) / q(b)).toFixed(2);
    };
    print(`cnitool on the simulated host, ${runs} containers, interleaved:`);
    print(`  ${summary('node -e 0 (the floor)', times.node)}`);
    print(`  ${summary('static ADD (reference plugin)', times.staticAdd)}`);
    print(`  ${summary('static DEL', times.staticDel)}`);
    print(`  ${summary('vfleet-cni ADD (allocate, attach)', times.add)}`);
    print(`  ${summary('vfleet-cni DEL (detach, scrub)', times.del)}`);
    print(`  ratio vfleet/static: ADD p50 ${ratio(times.add, times.staticAdd, 50)} p99 ${ratio(times.add, times.staticAdd, 99)}, DEL p50 ${ratio(times.del, times.staticDel, 50)} p99 ${ratio(times.del, times.staticDel, 99)}`);
    print(`  ratio vfleet/node -e 0: ADD p50 ${ratio(times.add, times.node, 50)}, DEL p50 ${ratio(times.del, times.node, 50)}`);
    return { add: times.add, del: times.del };
  } finally {
    await daemon.kill();
  }
}

/**
 * Cold start always; then ADD/DEL (returned) against the daemon the
 * environment names, or else through cnitool against a daemon on a
 * simulated host started here, when cnitool and `static` are installed.
 */
export async function benchCni(print: (line: string) => void = (line) => console.log(line)): Promise<AddDelTimes | null> {
  buildBundle();
  // Outside the repository: no package.json above it, as in /opt/cni/bin.
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-cni-'));
  try {
    await coldStart(dir, print);
    const { VFLEET_BENCH_SERVER: server, VFLEET_BENCH_TOKEN: token } = process.env;
    if (server && token) return await addDel(dir, server, token, print);
    if (existsSync(CNITOOL) && existsSync(STATIC_PLUGIN)) return await simCnitool(dir, print);
    print(`(no ${CNITOOL} or ${STATIC_PLUGIN}: set VFLEET_BENCH_SERVER and VFLEET_BENCH_TOKEN to time ADD and DEL against a daemon)`);
    return null;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchCni();
