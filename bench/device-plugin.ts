/**
 * The kubelet device plugin as it runs: `sriovd --device-plugin pools.yaml
 * --kubelet-dir DIR` on a simulated host (2 ice PFs, 4 VFs each, network
 * `red` with a guarantee), and the fake kubelet (test/support) on
 * DIR/kubelet.sock. Its own entry point, as it starts a daemon:
 *
 *   npx tsc -p tsconfig.json && node dist/bench/device-plugin.js [TRIALS]
 *
 * (a) Health push: the time from a PF's cable pulled (or plugged) on the
 *     simulated host to the fake kubelet holding a ListAndWatch list where
 *     that PF's VFs are Unhealthy (Healthy), TRIALS trials alternating down
 *     and up (default 24, at least 20). A random pause of up to one poll
 *     period before each trial spreads the breaks over the plugin's local
 *     poll (1 s), which would otherwise see every break at the same phase.
 *     Baseline, interleaved in this process: the same push path (the gRPC
 *     layer serving ListAndWatch to a fake kubelet) with the source changed
 *     directly, no host or controller. Also set against the 2 s target.
 * (b) Allocate: one VF per call through the plugin's socket, including the
 *     claim the daemon records with its controller; each claim is released
 *     (DELETE /v1/allocations/ID, waited for, untimed) before the VF comes
 *     round again. Baseline: GetDevicePluginOptions (a no-op) on the same
 *     socket and connection, interleaved.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { Allocation, HostRecord } from '../src/domain/types.js';
import { startDevicePlugin, type RunningDevicePlugin } from '../src/k8s/device-plugin/index.js';
import { devicePluginApi, unixAddress } from '../src/k8s/device-plugin/proto.js';
import type { ContainerAllocation, DevicePluginSource, DeviceSnapshot, PluginDevice, PreferredRequest } from '../src/k8s/source.js';
import { setSimCable } from '../src/sim/cable.js';
import { initSimHost } from '../src/sim/state.js';
import { api, eventually, startDaemon, type Daemon } from '../test/helpers/daemon.js';
import { FakeKubelet, type Device } from '../test/support/fake-kubelet.js';
import { percentile } from './stats.js';

const HOST = hostname();
const RED = 'vfleet.io/red';
const BASE = 'vfleet.io/base';
const TARGET_MS = 2_000;
/** The plugin's local host poll (controller-source.ts's default). */
const POLL_MS = 1_000;
const ALLOCATE_TRIALS = 30;
const WARMUP = 5;
const WAIT_MS = 30_000;

const POOLS = 'bandwidthUnitMbps: 1000\npools:\n  - name: red\n    network: red\n';
const POLICY = 'policies:\n  - name: fabric\n    selector: { drivers: [ice] }\n    numVfs: 4\n    physnet: fabric\n';

type Unary = (request: unknown, options: grpc.CallOptions, done: (err: grpc.ServiceError | null, value?: unknown) => void) => void;

/** The baseline's source: devices set by the caller, pushed at once; nothing behind it. */
class ManualSource implements DevicePluginSource {
  private current: DeviceSnapshot;
  private readonly listeners = new Set<(s: DeviceSnapshot) => void>();
  private revision = 0;

  constructor(devices: PluginDevice[]) {
    this.current = this.snapshotOf(devices);
  }

  set(devices: PluginDevice[]): void {
    this.current = this.snapshotOf(devices);
    for (const l of this.listeners) l(this.current);
  }

  private snapshotOf(devices: PluginDevice[]): DeviceSnapshot {
    return { revision: String(++this.revision), resources: [{ resourceName: BASE, devices, preStartRequired: false }] };
  }

  snapshot(): DeviceSnapshot {
    return this.current;
  }

  subscribe(listener: (s: DeviceSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  preferred(_resourceName: string, request: PreferredRequest): string[] {
    return request.available.slice(0, request.size);
  }

  async allocate(): Promise<ContainerAllocation> {
    return { envs: {}, devices: [], mounts: [], annotations: {} };
  }

  async preStart(): Promise<void> {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}

interface Stats {
  p50: number;
  p99: number;
}

function stats(samples: number[]): Stats {
  const sorted = Float64Array.from(samples).sort();
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

const ms = (v: number) => (v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(2)} ms`);
const ratio = (a: number, b: number) => `${(a / b).toFixed(1)}x`;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

function unary(client: grpc.Client, method: string, request: unknown): Promise<unknown> {
  return new Promise((resolve, reject) =>
    ((client as unknown as Record<string, Unary>)[method]!).call(client, request, { deadline: Date.now() + WAIT_MS }, (err, value) => (err ? reject(err) : resolve(value))),
  );
}

interface Fleet {
  dir: string;
  simFile: string;
  daemon: Daemon;
  kubelet: FakeKubelet;
  admin: string;
  /** PF 0's name and its VFs' addresses. */
  pf: { name: string; vfs: string[] };
  vfs: string[];
}

async function startFleet(dir: string): Promise<Fleet> {
  const simFile = join(dir, 'host.json');
  await initSimHost(simFile, { profile: 'ice', pfs: 2, numaNodes: 2, hostname: HOST });
  const kubeletDir = join(dir, 'kubelet');
  await mkdir(kubeletDir);
  const kubelet = await FakeKubelet.start(kubeletDir);
  await writeFile(join(dir, 'pools.yaml'), POOLS);
  const daemon = await startDaemon([
    '--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--host', `sim:${simFile}`, '--heartbeat-interval', '1',
    '--device-plugin', join(dir, 'pools.yaml'), '--kubelet-dir', kubeletDir,
  ]);
  const admin = (await readFile(join(dir, 'data', 'admin.token'), 'utf8')).trim();
  const call = (method: string, path: string, body?: unknown) => api(daemon.url, admin, method, path, body);
  const check = async (what: string, r: Promise<{ status: number; body: unknown }>) => {
    const { status, body } = await r;
    if (status >= 300) throw new Error(`${what}: ${status} ${JSON.stringify(body)}`);
  };
  await check('tenant', call('POST', '/v1/tenants', { name: 'acme' }));
  await check('policy', call('PUT', `/v1/hosts/${HOST}/policy`, { document: POLICY }));
  const pfs = await eventually('4 VFs on each PF', WAIT_MS, async () => {
    const inv = (await api<HostRecord>(daemon.url, admin, 'GET', `/v1/hosts/${HOST}`)).body.inventory;
    return inv.pfs.length === 2 && inv.pfs.every((p) => p.vfs.length === 4) ? inv.pfs : undefined;
  });
  await check('network', call('POST', '/v1/networks', { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100, minTxRateMbps: 1000, maxTxRateMbps: 5000 }));
  const vfs = pfs.flatMap((p) => p.vfs.map((v) => v.pciAddress));
  await kubelet.waitForDevices(RED, (d) => d.filter((x) => x.health === 'Healthy').length === vfs.length, WAIT_MS);
  return { dir, simFile, daemon, kubelet, admin, pf: { name: pfs[0]!.name, vfs: pfs[0]!.vfs.map((v) => v.pciAddress) }, vfs };
}

/** (a): cable pulls against direct source changes, interleaved. */
async function benchPush(f: Fleet, trials: number, baseDir: string): Promise<void> {
  const ids = Array.from({ length: 8 }, (_, i) => `0000:3b:02.${i}`);
  const devices = (health: PluginDevice['health']) => ids.map((id, i): PluginDevice => ({ id, health: i < 4 ? health : 'Healthy', numaNode: 0 }));
  const source = new ManualSource(devices('Healthy'));
  const baseKubelet = await FakeKubelet.start(baseDir);
  let plugin: RunningDevicePlugin | null = null;
  try {
    plugin = await startDevicePlugin({ source, kubeletDir: baseDir, log: () => {} });
    await baseKubelet.waitForDevices(BASE, (d) => d.length === 8, WAIT_MS);
    const pfHealth = (d: Device[], health: string) => f.pf.vfs.every((id) => d.find((x) => x.ID === id)?.health === health);
    const baseHealth = (d: Device[], health: string) => d.slice(0, 4).every((x) => x.health === health);
    const push: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < trials; i++) {
      const health = i % 2 === 0 ? 'Unhealthy' : 'Healthy';
      base.push(
        await timed(async () => {
          source.set(devices(health));
          await baseKubelet.waitForDevices(BASE, (d) => baseHealth(d, health), WAIT_MS);
        }),
      );
      await sleep(Math.random() * POLL_MS);
      push.push(
        await timed(async () => {
          await setSimCable(f.simFile, f.pf.name, health === 'Unhealthy' ? 'down' : 'up');
          await f.kubelet.waitForDevices(RED, (d) => pfHealth(d, health), WAIT_MS);
        }),
      );
    }
    const p = stats(push);
    const b = stats(base);
    console.log(`(a) cable pulled/plugged on the simulated host -> ListAndWatch update at the fake kubelet, ${trials} trials (down/up alternating)`);
    console.log(`    sriovd (host poll ${POLL_MS} ms + controller view + gRPC): p50 ${ms(p.p50)}, p99 ${ms(p.p99)}`);
    console.log(`    baseline, source changed directly (gRPC + fake kubelet only): p50 ${ms(b.p50)}, p99 ${ms(b.p99)}`);
    console.log(`    ratio to baseline: p50 ${ratio(p.p50, b.p50)}, p99 ${ratio(p.p99, b.p99)}; to the ${TARGET_MS} ms target: p50 ${(p.p50 / TARGET_MS).toFixed(2)}, p99 ${(p.p99 / TARGET_MS).toFixed(2)} (${p.p99 <= TARGET_MS ? 'within' : 'OVER'})`);
  } finally {
    await plugin?.stop();
    await baseKubelet.stop();
    // An odd count ends with the cable out: plug it back for (b).
    await setSimCable(f.simFile, f.pf.name, 'up');
    await f.kubelet.waitForDevices(RED, (d) => d.every((x) => x.health === 'Healthy'), WAIT_MS);
  }
}

/** (b): Allocate (with the controller's claim) against GetDevicePluginOptions, same socket, same connection. */
async function benchAllocate(f: Fleet): Promise<void> {
  const { DevicePluginClient } = devicePluginApi();
  const client = new DevicePluginClient(unixAddress(join(f.dir, 'kubelet', 'vfleet-red.sock')), grpc.credentials.createInsecure());
  const call = <T>(method: string, path: string) => api<T>(f.daemon.url, f.admin, method, path);
  const release = async () => {
    const held = (await call<Allocation[]>('GET', '/v1/allocations?network=red')).body.filter((a) => a.deviceClaim !== null && a.state !== 'released');
    for (const a of held) await call('DELETE', `/v1/allocations/${a.id}`);
    await eventually('claims released', WAIT_MS, async () =>
      (await call<Allocation[]>('GET', '/v1/allocations?network=red')).body.every((a) => a.state === 'released') ? true : undefined,
    );
  };
  try {
    const allocations: number[] = [];
    const options: number[] = [];
    for (let i = 0; i < WARMUP + ALLOCATE_TRIALS; i++) {
      const vf = f.vfs[i % f.vfs.length]!;
      const o = await timed(() => unary(client, 'GetDevicePluginOptions', {}));
      const a = await timed(() => unary(client, 'Allocate', { container_requests: [{ devices_ids: [vf] }] }));
      if (i >= WARMUP) {
        options.push(o);
        allocations.push(a);
      }
      await release();
    }
    const a = stats(allocations);
    const o = stats(options);
    console.log(`(b) Allocate of 1 VF through the plugin's socket, the controller's claim included, ${ALLOCATE_TRIALS} trials (claims released between)`);
    console.log(`    Allocate: p50 ${ms(a.p50)}, p99 ${ms(a.p99)}`);
    console.log(`    baseline, GetDevicePluginOptions (no-op) on the same connection: p50 ${ms(o.p50)}, p99 ${ms(o.p99)}`);
    console.log(`    ratio to baseline: p50 ${ratio(a.p50, o.p50)}, p99 ${ratio(a.p99, o.p99)}`);
  } finally {
    client.close();
  }
}

export async function benchDevicePlugin(trials = 24): Promise<void> {
  if (!Number.isInteger(trials) || trials < 20) throw new Error(`at least 20 trials, got ${trials}`);
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-dp-'));
  let fleet: Fleet | null = null;
  try {
    fleet = await startFleet(dir);
    console.log(`device plugin: sriovd on a simulated host (2 ice PFs x 4 VFs), fake kubelet; target: updates within ${TARGET_MS} ms`);
    const baseDir = join(dir, 'kubelet-base');
    await mkdir(baseDir);
    await benchPush(fleet, trials, baseDir);
    await benchAllocate(fleet);
  } finally {
    await fleet?.daemon.kill();
    await fleet?.kubelet.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchDevicePlugin(process.argv[2] === undefined ? undefined : Number(process.argv[2]));
