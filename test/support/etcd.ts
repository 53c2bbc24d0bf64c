/**
 * Real etcd for tests and benchmarks (Debian's `etcd-server`, 3.4): one
 * member or a cluster of three, on loopback ports the kernel picks, with
 * data in a temp dir. Members can be killed and started again (a fault
 * test), and the whole cluster stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ETCD = process.env.ETCD_BIN ?? 'etcd';

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  proc: ChildProcess | null;
  log: string;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** `http://127.0.0.1:P1,http://127.0.0.1:P2,...`: the clients' endpoints. */
  endpoints: string[];
  /** The `--store` URL: `etcd://127.0.0.1:P1,127.0.0.1:P2,...`. */
  storeUrl: string;
  /** SIGKILLs one member (a crash); its data stays for `start`. */
  kill(i: number): Promise<void>;
  /** Starts a killed member again, with its data. */
  start(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** A free loopback port (bound and released: the kernel will not hand it out again at once). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * Where members keep their data: tmpfs when it has room, because etcd
 * fsyncs its WAL on every commit and a slow CI disk turns that into
 * `etcdserver: request timed out` (seen in CI). Each member preallocates a
 * 64 MB WAL segment, so a small /dev/shm (Docker's 64 MB) is not enough.
 */
async function dataRoot(): Promise<string> {
  const shm = '/dev/shm';
  const free = await statfs(shm).then((s) => s.bavail * s.bsize).catch(() => 0);
  return free >= 1024 ** 3 ? shm : tmpdir();
}

/** Every member still running, killed if the test process exits without stopping them (a failed or timed-out test). */
const running = new Set<ChildProcess>();
process.on('exit', () => running.forEach((p) => p.kill('SIGKILL')));

/** Starts `size` members (1 or 3) and resolves once every one answers /health. */
export async function startEtcd(size = 1): Promise<EtcdCluster> {
  const root = await mkdtemp(join(await dataRoot(), 'vfleet-etcd-'));
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    const [client, peer] = [await freePort(), await freePort()];
    members.push({ name: `m${i}`, clientUrl: `http://127.0.0.1:${client}`, peerUrl: `http://127.0.0.1:${peer}`, dataDir: join(root, `m${i}`), proc: null, log: '' });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const launch = (m: EtcdMember) => {
    const args = [
      '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', 'vfleet-test',
      // etcd's defaults (100 ms / 1000 ms): shorter ones made members of a three-member cluster
      // on a loaded 2-core machine depose each other's leader, and every leader change renews all leases.
      '--heartbeat-interval', '100', '--election-timeout', '1000',
      '--log-level', 'warn', '--logger', 'zap',
    ];
    m.log = '';
    const proc = spawn(ETCD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => {
      m.log = (m.log + d.toString()).slice(-20_000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    m.proc = proc;
    running.add(proc);
    proc.once('exit', () => running.delete(proc));
  };
  const healthy = async (m: EtcdMember, ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (m.proc?.exitCode !== null && m.proc?.exitCode !== undefined) throw new Error(`etcd ${m.name} exited ${m.proc.exitCode}:\n${m.log}`);
      const ok = await fetch(`${m.clientUrl}/health`)
        .then(async (r) => r.ok && ((await r.json()) as { health?: string }).health === 'true')
        .catch(() => false);
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`etcd ${m.name} not healthy within ${ms} ms:\n${m.log}`);
  };
  const kill = async (i: number) => {
    const p = members[i]!.proc;
    members[i]!.proc = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  };
  members.forEach(launch);
  try {
    await Promise.all(members.map((m) => healthy(m)));
  } catch (err) {
    await Promise.all(members.map((_, i) => kill(i)));
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return {
    members,
    endpoints: members.map((m) => m.clientUrl),
    storeUrl: `etcd://${members.map((m) => m.clientUrl.replace('http://', '')).join(',')}`,
    kill,
    async start(i) {
      // A restarted member rejoins the cluster it was part of: `new` is ignored once its data dir exists.
      launch(members[i]!);
      await healthy(members[i]!);
    },
    async stop() {
      await Promise.all(members.map((_, i) => kill(i)));
      await rm(root, { recursive: true, force: true });
    },
  };
}
