/**
 * What vfleet-cni costs a container runtime, which execs it once per pod and
 * network. Cold start (VERSION) is measured against `node -e 0` in the same
 * run, runs interleaved so machine noise hits both alike, for the bundle
 * installed outside any package (as in /opt/cni/bin) and where it is built
 * (dist/, inside this repository's "type": "module" package, so ESM-loaded).
 *
 * With a daemon, ADD and DEL latency too (a full attach and release each):
 *   VFLEET_BENCH_SERVER   sriovd URL, e.g. http://127.0.0.1:7474
 *   VFLEET_BENCH_TOKEN    a token that may allocate on the network
 *   VFLEET_BENCH_NETWORK  the vfleet network (default: bench)
 *   VFLEET_BENCH_NETNS    a namespace to attach into (default: a temp file, which a simulated host takes)
 *   VFLEET_BENCH_HOST     the host name the daemon knows this host by (default: os.hostname())
 *   VFLEET_BENCH_RUNS     ADD+DEL pairs (default 20)
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** Cold start always; ADD/DEL (returned) when the environment names a daemon. */
export async function benchCni(print: (line: string) => void = (line) => console.log(line)): Promise<AddDelTimes | null> {
  buildBundle();
  // Outside the repository: no package.json above it, as in /opt/cni/bin.
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-cni-'));
  try {
    await coldStart(dir, print);
    const { VFLEET_BENCH_SERVER: server, VFLEET_BENCH_TOKEN: token } = process.env;
    if (server && token) return await addDel(dir, server, token, print);
    print('(set VFLEET_BENCH_SERVER and VFLEET_BENCH_TOKEN to time ADD and DEL as well)');
    return null;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchCni();
