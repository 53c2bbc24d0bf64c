// The kubelet device-plugin gRPC layer, driven through a fake kubelet (from
// the published api.proto) on temp unix sockets, serving a source the test
// controls: registration, ListAndWatch, re-registration after kubelet
// restarts, resources coming and going, the RPC passthrough and its errors.
import assert from 'node:assert/strict';
import { link, mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { SriovError } from '../../src/host/errors.js';
import { startDevicePlugin, type RunningDevicePlugin } from '../../src/k8s/device-plugin/index.js';
import { MAX_BANDWIDTH_UNITS } from '../../src/k8s/pool-devices.js';
import type {
  ContainerAllocation,
  DevicePluginSource,
  DeviceSnapshot,
  PluginDevice,
  PreferredRequest,
  ResourceView,
} from '../../src/k8s/source.js';
import { FakeKubelet, type Device } from '../support/fake-kubelet.js';

const RED = 'vfleet.io/red';
const RED_BW = 'vfleet.io/red-bw';
const VF0 = '0000:3b:02.0';
const VF1 = '0000:3b:02.1';
const VF2 = '0000:3b:0a.0';

const vf = (id: string, numaNode: number | null, health: PluginDevice['health'] = 'Healthy'): PluginDevice => ({ id, health, numaNode });

/** A source the test sets: every set() is a new snapshot, pushed to subscribers. */
class TestSource implements DevicePluginSource {
  private resources: ResourceView[];
  private revision = 0;
  private readonly listeners = new Set<(s: DeviceSnapshot) => void>();
  readonly preferredCalls: Array<{ resourceName: string; request: PreferredRequest }> = [];
  readonly allocateCalls: Array<{ resourceName: string; ids: string[] }> = [];
  readonly preStartCalls: Array<{ resourceName: string; ids: string[] }> = [];
  allocateError: unknown = null;
  preStartError: unknown = null;
  started = 0;
  stopped = 0;

  constructor(resources: ResourceView[]) {
    this.resources = resources;
  }

  set(resources: ResourceView[]): void {
    this.resources = resources;
    this.revision++;
    const s = this.snapshot();
    for (const l of this.listeners) l(s);
  }

  snapshot(): DeviceSnapshot {
    return { revision: String(this.revision), resources: this.resources };
  }

  subscribe(listener: (s: DeviceSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The last `size` of `available` not in mustInclude, after mustInclude: recognisably not the kubelet's order. */
  preferred(resourceName: string, request: PreferredRequest): string[] {
    this.preferredCalls.push({ resourceName, request });
    const rest = request.available.filter((id) => !request.mustInclude.includes(id)).reverse();
    return [...request.mustInclude, ...rest].slice(0, request.size);
  }

  async allocate(resourceName: string, ids: string[]): Promise<ContainerAllocation> {
    this.allocateCalls.push({ resourceName, ids });
    if (this.allocateError) throw this.allocateError;
    return {
      envs: { PCIDEVICE_VFLEET_IO_RED: ids.join(',') },
      devices: ids.map((id) => ({ containerPath: `/dev/vfio/${id.slice(-1)}`, hostPath: `/dev/vfio/${id.slice(-1)}`, permissions: 'rw' })),
      mounts: [{ containerPath: '/etc/vfleet', hostPath: '/run/vfleet', readOnly: true }],
      annotations: { 'vfleet.io/devices': ids.join(',') },
    };
  }

  async preStart(resourceName: string, ids: string[]): Promise<void> {
    this.preStartCalls.push({ resourceName, ids });
    if (this.preStartError) throw this.preStartError;
  }

  async start(): Promise<void> {
    this.started++;
  }

  async stop(): Promise<void> {
    this.stopped++;
  }
}

const red = (devices: PluginDevice[], preStartRequired = true): ResourceView => ({ resourceName: RED, devices, preStartRequired });
const redBw = (units: number): ResourceView => ({
  resourceName: RED_BW,
  devices: Array.from({ length: units }, (_, n) => vf(`red-bw-${n}`, null)),
  preStartRequired: false,
});

/** The gRPC status of a failed call. */
async function status(call: Promise<unknown>): Promise<{ code: grpc.status; details: string }> {
  const err = (await call.then(
    () => assert.fail('the call succeeded'),
    (e: unknown) => e,
  )) as grpc.ServiceError;
  return { code: err.code, details: err.details };
}

const sockets = async (dir: string) => (await readdir(dir)).filter((n) => n.endsWith('.sock')).sort();
const exists = (path: string) => stat(path).then(() => true, () => false);
const byId = (devices: Device[], id: string) => devices.find((d) => d.ID === id);

describe('device plugin gRPC layer (fake kubelet)', { timeout: 60_000 }, () => {
  let dir: string;
  let kubelet: FakeKubelet;
  let source: TestSource;
  let plugin: RunningDevicePlugin | null;
  let logs: string[];

  const start = async () => {
    plugin = await startDevicePlugin({ source, kubeletDir: dir, log: (level, message) => logs.push(`${level} ${message}`) });
    return plugin;
  };

  beforeEach(async () => {
    // Short: unix socket paths must stay under 108 bytes.
    dir = await mkdtemp(join(tmpdir(), 'vdp-'));
    kubelet = await FakeKubelet.start(dir);
    source = new TestSource([red([vf(VF0, 0), vf(VF1, 1), vf(VF2, null)])]);
    plugin = null;
    logs = [];
  });

  afterEach(async () => {
    await plugin?.stop();
    await kubelet.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('registers each resource with v1beta1, its socket file name and its options, and the kubelet dials back', async () => {
    await start();
    const registration = await kubelet.waitForRegistrations(RED, 1);
    assert.deepEqual(
      { version: registration.version, endpoint: registration.endpoint, resource_name: registration.resource_name, options: registration.options },
      { version: 'v1beta1', endpoint: 'vfleet-red.sock', resource_name: RED, options: { pre_start_required: true, get_preferred_allocation_available: true } },
    );
    assert.deepEqual(kubelet.endpoint(RED)?.options, { pre_start_required: true, get_preferred_allocation_available: true }, 'GetDevicePluginOptions');
    assert.deepEqual(await sockets(dir), ['kubelet.sock', 'vfleet-red.sock']);
    assert.equal(source.started, 1, 'startDevicePlugin starts the source');
    assert.ok(logs.some((l) => l.startsWith('info ') && l.includes(`registered ${RED}`)), logs.join('\n'));
  });

  it('ListAndWatch sends the list at once, one device per VF with its NUMA node as topology', async () => {
    await start();
    const devices = await kubelet.waitForDevices(RED, (d) => d.length > 0);
    assert.deepEqual(devices, [
      { ID: VF0, health: 'Healthy', topology: { nodes: [{ ID: 0 }] } },
      { ID: VF1, health: 'Healthy', topology: { nodes: [{ ID: 1 }] } },
      { ID: VF2, health: 'Healthy', topology: null },
    ]);
  });

  it('pushes a new list when a VF turns unhealthy, recovers, or VFs are added and removed', async () => {
    await start();
    await kubelet.waitForDevices(RED, (d) => d.length === 3);
    source.set([red([vf(VF0, 0), vf(VF1, 1, 'Unhealthy'), vf(VF2, null)])]);
    await kubelet.waitForDevices(RED, (d) => byId(d, VF1)?.health === 'Unhealthy');
    source.set([red([vf(VF0, 0), vf(VF1, 1), vf(VF2, null)])]);
    await kubelet.waitForDevices(RED, (d) => byId(d, VF1)?.health === 'Healthy');
    source.set([red([vf(VF0, 0)])]);
    const devices = await kubelet.waitForDevices(RED, (d) => d.length === 1);
    assert.deepEqual(devices.map((d) => d.ID), [VF0]);
    const updates = kubelet.endpoint(RED)?.updates;
    source.set([red([vf(VF0, 0)])]); // a new revision with the same devices: nothing to tell
    source.set([red([vf(VF0, 1)])]);
    await kubelet.waitForDevices(RED, (d) => d[0]?.topology?.nodes[0]?.ID === 1);
    assert.equal(kubelet.endpoint(RED)?.updates, (updates ?? 0) + 1, 'only the change in NUMA node was pushed');
  });

  it('starts a server and registers when a resource appears, and stops it (empty list first) when it goes', async () => {
    await start();
    await kubelet.waitForRegistrations(RED, 1);
    source.set([red([vf(VF0, 0)]), redBw(25)]);
    const registration = await kubelet.waitForRegistrations(RED_BW, 1);
    assert.equal(registration.endpoint, 'vfleet-red-bw.sock');
    assert.equal(registration.options?.pre_start_required, false);
    const units = await kubelet.waitForDevices(RED_BW, (d) => d.length === 25);
    assert.deepEqual(units[24], { ID: 'red-bw-24', health: 'Healthy', topology: null });

    source.set([redBw(25)]);
    const gone = await kubelet.waitForStreamEnd(RED);
    assert.deepEqual(gone.devices, [], 'the kubelet saw 0 devices before the stream ended');
    assert.deepEqual(await sockets(dir), ['kubelet.sock', 'vfleet-red-bw.sock']);
    assert.equal(kubelet.endpoint(RED_BW)?.streaming, true, 'the other resource is untouched');
  });

  it('re-registers when kubelet.sock is deleted and re-created (kubelet restart)', async () => {
    await start();
    await kubelet.waitForRegistrations(RED, 1);
    await kubelet.restart({ wipePluginSockets: false });
    await kubelet.waitForRegistrations(RED, 2);
    const devices = await kubelet.waitForDevices(RED, (d) => d.length === 3);
    assert.equal(devices[0]?.ID, VF0, 'the new kubelet got the list');
    assert.ok(logs.some((l) => l.includes(`re-registered ${RED}`) && l.includes('kubelet restarted')), logs.join('\n'));
  });

  it('re-creates its socket and re-registers when the kubelet wipes the directory on restart', async () => {
    await start();
    await kubelet.waitForRegistrations(RED, 1);
    await kubelet.restart(); // wipes vfleet-red.sock, as the real kubelet does
    await kubelet.waitForRegistrations(RED, 2);
    await kubelet.waitForDevices(RED, (d) => d.length === 3);
    assert.ok(await exists(join(dir, 'vfleet-red.sock')));
    const response = await kubelet.allocate(RED, { container_requests: [{ devices_ids: [VF0] }] });
    assert.equal(response.container_responses[0]?.envs.PCIDEVICE_VFLEET_IO_RED, VF0, 'served on the new socket');
  });

  it('re-creates its socket and re-registers when only its socket file is removed', async () => {
    await start();
    await kubelet.waitForRegistrations(RED, 1);
    await unlink(join(dir, 'vfleet-red.sock'));
    await kubelet.waitForRegistrations(RED, 2);
    await kubelet.waitForDevices(RED, (d) => d.length === 3);
    assert.ok(await exists(join(dir, 'vfleet-red.sock')));
    assert.ok(logs.some((l) => l.startsWith('warn ') && l.includes('vfleet-red.sock was removed')), logs.join('\n'));
    assert.ok(logs.some((l) => l.includes(`re-registered ${RED}`) && l.includes('socket was re-created')), logs.join('\n'));
  });

  it('waits for a kubelet that is not there, and retries one that refuses, then registers', async () => {
    await kubelet.stop();
    await start();
    assert.deepEqual(await sockets(dir), ['vfleet-red.sock'], 'serving already, nothing to register with');
    kubelet = await FakeKubelet.start(dir, { refuseRegistration: 'resource busy' });
    const attempts = await kubelet.waitForAttempts(RED, 2);
    assert.deepEqual(attempts.slice(0, 2).map((a) => [a.accepted, a.error]), [[false, 'resource busy'], [false, 'resource busy']], 'tried again');
    assert.ok(logs.some((l) => l.startsWith('warn ') && l.includes(`registering ${RED} with the kubelet failed: resource busy`)), logs.join('\n'));
    kubelet.refuseRegistration = null;
    await kubelet.waitForRegistrations(RED, 1, 15_000);
    await kubelet.waitForDevices(RED, (d) => d.length === 3);
  });

  it('serves once the kubelet\'s directory appears (no watch possible before: the poll finds it)', async () => {
    const later = join(dir, 'k');
    plugin = await startDevicePlugin({ source, kubeletDir: later, log: (level, message) => logs.push(`${level} ${message}`) });
    // Nothing to listen in yet: one line says what it waits for, and nothing fails over and over.
    assert.ok(logs.some((l) => l.startsWith('info ') && l.includes('waiting for the kubelet')), logs.join('\n'));
    assert.ok(!logs.some((l) => l.startsWith('error ')), logs.join('\n'));
    await mkdir(later);
    const second = await FakeKubelet.start(later);
    try {
      await second.waitForRegistrations(RED, 1, 15_000);
      await second.waitForDevices(RED, (d) => d.length === 3);
    } finally {
      await plugin.stop();
      plugin = null;
      await second.stop();
    }
    assert.deepEqual(await sockets(later), []);
  });

  it('replaces a stale socket left by a previous run, but never a file that is not a socket', async () => {
    // A socket file nobody listens on: a hard link outlives the server's close (which unlinks its own name).
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(dir, 'old.sock'), resolve));
    await link(join(dir, 'old.sock'), join(dir, 'vfleet-red.sock'));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await start();
    await kubelet.waitForDevices(RED, (d) => d.length === 3);
    await plugin?.stop();
    plugin = null;

    await writeFile(join(dir, 'vfleet-red.sock'), 'not a socket');
    await start(); // resolves after its first pass, which tried to listen
    assert.equal(kubelet.registrationsOf(RED).length, 1, 'not registered again');
    assert.equal(await readFile(join(dir, 'vfleet-red.sock'), 'utf8'), 'not a socket', 'left alone');
    assert.ok(logs.some((l) => l.startsWith('error ') && l.includes('exists and is not a socket')), logs.join('\n'));
  });

  it('passes GetPreferredAllocation through to the source, per container', async () => {
    await start();
    await kubelet.waitForRegistrations(RED, 1);
    const response = await kubelet.getPreferredAllocation(RED, {
      container_requests: [
        { available_deviceIDs: [VF0, VF1, VF2], must_include_deviceIDs: [VF1], allocation_size: 2 },
        { available_deviceIDs: [VF0, VF2], must_include_deviceIDs: [], allocation_size: 1 },
      ],
    });
    assert.deepEqual(response.container_responses.map((r) => r.deviceIDs), [[VF1, VF2], [VF2]]);
    assert.deepEqual(source.preferredCalls, [
      { resourceName: RED, request: { available: [VF0, VF1, VF2], mustInclude: [VF1], size: 2 } },
      { resourceName: RED, request: { available: [VF0, VF2], mustInclude: [], size: 1 } },
    ]);
  });

  it('passes Allocate through per container and maps the answer to the kubelet\'s fields; PreStartContainer too', async () => {
    await start();
    await kubelet.waitForRegistrations(RED, 1);
    const response = await kubelet.allocate(RED, { container_requests: [{ devices_ids: [VF0, VF1] }, { devices_ids: [VF2] }] });
    assert.deepEqual(source.allocateCalls, [
      { resourceName: RED, ids: [VF0, VF1] },
      { resourceName: RED, ids: [VF2] },
    ]);
    assert.equal(response.container_responses.length, 2);
    assert.deepEqual(response.container_responses[0], {
      envs: { PCIDEVICE_VFLEET_IO_RED: `${VF0},${VF1}` },
      mounts: [{ container_path: '/etc/vfleet', host_path: '/run/vfleet', read_only: true }],
      devices: [
        { container_path: '/dev/vfio/0', host_path: '/dev/vfio/0', permissions: 'rw' },
        { container_path: '/dev/vfio/1', host_path: '/dev/vfio/1', permissions: 'rw' },
      ],
      annotations: { 'vfleet.io/devices': `${VF0},${VF1}` },
      cdi_devices: [],
    });
    await kubelet.preStartContainer(RED, [VF0]);
    assert.deepEqual(source.preStartCalls, [{ resourceName: RED, ids: [VF0] }]);
  });

  it('refuses Allocate of unknown or unhealthy ids with a readable INVALID_ARGUMENT, before the source is asked', async () => {
    source.set([red([vf(VF0, 0), vf(VF1, 1, 'Unhealthy')])]);
    await start();
    await kubelet.waitForRegistrations(RED, 1);
    const refused = await status(kubelet.allocate(RED, { container_requests: [{ devices_ids: [VF0] }, { devices_ids: [VF1, '0000:99:00.7'] }] }));
    assert.equal(refused.code, grpc.status.INVALID_ARGUMENT);
    assert.match(refused.details, /^vfleet\.io\/red: Allocate refused: unknown device ids 0000:99:00\.7; unhealthy device ids 0000:3b:02\.1; .*nothing was claimed$/);
    assert.doesNotMatch(refused.details, /\n|at /, 'one line, no stack');
    assert.deepEqual(source.allocateCalls, [], 'not even the valid container was claimed');
  });

  it('delivers the largest bandwidth list it may serve, with the longest pool name, to a kubelet with the default 4 MB message limit', async () => {
    const pool = 'p'.repeat(60);
    const resourceName = `vfleet.io/${pool}-bw`;
    const units = Array.from({ length: MAX_BANDWIDTH_UNITS }, (_, n) => vf(`${pool}-bw-${n}`, null));
    source.set([{ resourceName, devices: units, preStartRequired: false }]);
    await start();
    const listed = await kubelet.waitForDevices(resourceName, (ds) => ds.length === MAX_BANDWIDTH_UNITS, 20_000);
    assert.equal(listed.length, MAX_BANDWIDTH_UNITS);
  });

  it('answers an Allocate of thousands of unknown or very long ids with a short refusal, and keeps serving', async () => {
    source.set([red([vf(VF0, 0), vf(VF1, 1)])]);
    await start();
    await kubelet.waitForRegistrations(RED, 1);
    const many = Array.from({ length: 5000 }, (_, i) => `0000:99:${String(i % 100).padStart(2, '0')}.${i % 8}-${i}`);
    for (const ids of [many, ['x'.repeat(50_000)], [VF0, VF0, ...many]]) {
      const refused = await status(kubelet.allocate(RED, { container_requests: [{ devices_ids: ids }] }));
      assert.equal(refused.code, grpc.status.INVALID_ARGUMENT, refused.details.slice(0, 200));
      assert.ok(refused.details.length <= 1024, `a readable line, not ${refused.details.length} characters`);
      assert.match(refused.details, /nothing was claimed$/);
    }
    // A source error as long: cut too, and the connection still serves.
    source.allocateError = new SriovError('CONFLICT', `VFs ${many.join(',')} are held`);
    const cut = await status(kubelet.allocate(RED, { container_requests: [{ devices_ids: [VF0] }] }));
    assert.equal(cut.code, grpc.status.FAILED_PRECONDITION);
    assert.ok(cut.details.length <= 1024, `${cut.details.length} characters`);
    source.allocateError = null;
    const response = await kubelet.allocate(RED, { container_requests: [{ devices_ids: [VF0] }] });
    assert.equal(response.container_responses.length, 1);
    assert.deepEqual(source.allocateCalls.map((c) => c.ids), [[VF0], [VF0]]);
  });

  it('maps the source\'s errors to gRPC codes with their one-line message', async () => {
    await start();
    await kubelet.waitForRegistrations(RED, 1);
    const allocateWith = async (err: unknown) => {
      source.allocateError = err;
      return status(kubelet.allocate(RED, { container_requests: [{ devices_ids: [VF0] }] }));
    };
    const cases: Array<[unknown, grpc.status]> = [
      [new SriovError('INVALID_ARGUMENT', 'bad'), grpc.status.INVALID_ARGUMENT],
      [new SriovError('NOT_FOUND', 'network red does not exist'), grpc.status.NOT_FOUND],
      [new SriovError('NO_CAPACITY', 'PF ens1f0 has 0 Mb/s of guarantee left'), grpc.status.RESOURCE_EXHAUSTED],
      [new SriovError('BUSY', 'VF busy'), grpc.status.FAILED_PRECONDITION],
      [new SriovError('CONFLICT', 'VF 0000:3b:02.0 is claimed by pod a/b'), grpc.status.FAILED_PRECONDITION],
      [new SriovError('TRY_AGAIN', 'controller did not answer'), grpc.status.UNAVAILABLE],
      [new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 198.18.0.1:8443'), { code: 'ECONNREFUSED' }) }), grpc.status.UNAVAILABLE],
      [new SriovError('HOST_ERROR', 'sysfs write failed'), grpc.status.INTERNAL],
      [new Error('oops'), grpc.status.INTERNAL],
    ];
    for (const [err, code] of cases) {
      const s = await allocateWith(err);
      assert.equal(s.code, code, `${String(err)} → ${grpc.status[code]}, got ${grpc.status[s.code]}`);
      assert.doesNotMatch(s.details, /\n/);
    }
    assert.equal((await allocateWith(new SriovError('NO_CAPACITY', 'PF ens1f0 has 0 Mb/s of guarantee left\n  more'))).details, `${RED}: PF ens1f0 has 0 Mb/s of guarantee left more`);
    assert.equal((await allocateWith(cases[6]?.[0])).details, `${RED}: controller unreachable: fetch failed`);
    source.preStartError = new SriovError('CONFLICT', 'VF 0000:3b:02.0 has vlan 5, its network says 7');
    const preStart = await status(kubelet.preStartContainer(RED, [VF0]));
    assert.deepEqual(preStart, { code: grpc.status.FAILED_PRECONDITION, details: `${RED}: VF 0000:3b:02.0 has vlan 5, its network says 7` });
  });

  it('stop() ends the streams, removes its sockets and stops the source', async () => {
    source.set([red([vf(VF0, 0)]), redBw(3)]);
    await start();
    await kubelet.waitForDevices(RED_BW, (d) => d.length === 3);
    await plugin?.stop();
    plugin = null;
    await kubelet.waitForStreamEnd(RED);
    await kubelet.waitForStreamEnd(RED_BW);
    assert.deepEqual(await sockets(dir), ['kubelet.sock']);
    assert.equal(source.stopped, 1);
  });

  it('refuses a resource name the kubelet would refuse, serving nothing', async () => {
    for (const bad of ['vfleet.io/../x', 'vfleet.io/a/b', 'red', 'kubernetes.io/red', 'Vfleet.io/red', 'vfleet.io/-red', `vfleet.io/${'a'.repeat(64)}`]) {
      source = new TestSource([red([vf(VF0, 0)]), { resourceName: bad, devices: [], preStartRequired: false }]);
      await assert.rejects(startDevicePlugin({ source, kubeletDir: dir, log: () => {} }), (err: SriovError) => {
        assert.equal(err.code, 'INVALID_ARGUMENT', bad);
        assert.ok(err.message.includes(JSON.stringify(bad)), err.message);
        return true;
      });
      assert.equal(source.stopped, 1, 'the source is stopped again');
    }
    source = new TestSource([red([]), { resourceName: 'example.com/red', devices: [], preStartRequired: false }]);
    await assert.rejects(startDevicePlugin({ source, kubeletDir: dir, log: () => {} }), /vfleet\.io\/red and example\.com\/red would share the socket/);
    assert.deepEqual(await sockets(dir), ['kubelet.sock']);
    assert.deepEqual(kubelet.registrations, []);
  });

  it('registers again when a resource\'s options change', async () => {
    await start();
    await kubelet.waitForRegistrations(RED, 1);
    source.set([red([vf(VF0, 0), vf(VF1, 1), vf(VF2, null)], false)]);
    const again = await kubelet.waitForRegistrations(RED, 2);
    assert.deepEqual(again.options, { pre_start_required: false, get_preferred_allocation_available: true });
    assert.equal(kubelet.endpoint(RED)?.options.pre_start_required, false);
    await assert.rejects(kubelet.preStartContainer(RED, [VF0]), /did not ask for PreStartContainer/);
  });
});
