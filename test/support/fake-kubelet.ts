/**
 * A fake kubelet for the device-plugin API v1beta1, written from the
 * published api.proto and behaving as the kubelet's device manager does:
 *
 * - it serves `Registration` on `<dir>/kubelet.sock`;
 * - on Register it checks the version and the resource name, dials the
 *   plugin's socket back (`<dir>/<endpoint>`), asks GetDevicePluginOptions
 *   (a failure fails the Register), then opens ListAndWatch and keeps the
 *   latest device list per resource; a plugin registering again for the same
 *   resource replaces the old connection;
 * - a restart deletes kubelet.sock, (like the real kubelet) optionally wipes
 *   the plugins' sockets from the directory, and creates a new kubelet.sock.
 *
 * Tests (and benchmarks, lab suites) drive the plugin through it: wait for a
 * registration or a device list, call GetPreferredAllocation / Allocate /
 * PreStartContainer as the kubelet would.
 */
import { EventEmitter } from 'node:events';
import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { API_VERSION, devicePluginApi, KUBELET_SOCKET, unixAddress } from '../../src/k8s/device-plugin/proto.js';
import type {
  AllocateRequest,
  AllocateResponse,
  Device,
  DevicePluginOptions,
  Empty,
  ListAndWatchResponse,
  PreferredAllocationRequest,
  PreferredAllocationResponse,
  RegisterRequest,
} from '../../src/k8s/device-plugin/proto.js';

export type { AllocateRequest, AllocateResponse, Device, PreferredAllocationRequest, PreferredAllocationResponse, RegisterRequest };

const OPTIONS_TIMEOUT_MS = 5_000;
/** As kubelet: PreStartContainer gets 30 s (KubeletPreStartContainerRPCTimeoutInSecs). */
const PRE_START_TIMEOUT_MS = 30_000;
const CALL_TIMEOUT_MS = 10_000;

type Unary = (request: unknown, options: grpc.CallOptions, done: (err: grpc.ServiceError | null, value?: unknown) => void) => void;
interface PluginClient extends grpc.Client {
  GetDevicePluginOptions: Unary;
  GetPreferredAllocation: Unary;
  Allocate: Unary;
  PreStartContainer: Unary;
  ListAndWatch(request: Empty): grpc.ClientReadableStream<ListAndWatchResponse>;
}

/** One registered plugin endpoint, as the kubelet's device manager keeps it. */
export interface PluginEndpoint {
  resourceName: string;
  endpoint: string;
  /** What GetDevicePluginOptions answered when the plugin registered. */
  options: DevicePluginOptions;
  /** The last ListAndWatch list; null before the first. */
  devices: Device[] | null;
  /** Lists received on this connection, the first included. */
  updates: number;
  /** False once the ListAndWatch stream ended (the kubelet then counts on a re-registration). */
  streaming: boolean;
}

interface Connection extends PluginEndpoint {
  client: PluginClient;
  stream: grpc.ClientReadableStream<ListAndWatchResponse> | null;
}

export interface RestartOptions {
  /** Remove every other socket in the directory, as the real kubelet does when it starts. Default true. */
  wipePluginSockets?: boolean;
}

export class FakeKubelet {
  /** Every Register request received, across restarts, in order, with the answer given. */
  readonly registrations: RegistrationRecord[] = [];
  /** When set, Register answers this error (as a kubelet refusing a plugin does). */
  refuseRegistration: string | null = null;
  readonly socketPath: string;
  private server: grpc.Server | null = null;
  private readonly connections = new Map<string, Connection>();
  private readonly events = new EventEmitter();

  private constructor(readonly dir: string) {
    this.socketPath = join(dir, KUBELET_SOCKET);
    this.events.setMaxListeners(100);
  }

  /** Serves Registration on `<dir>/kubelet.sock`. */
  static async start(dir: string, options: { refuseRegistration?: string } = {}): Promise<FakeKubelet> {
    const kubelet = new FakeKubelet(dir);
    kubelet.refuseRegistration = options.refuseRegistration ?? null;
    await kubelet.listen();
    return kubelet;
  }

  get running(): boolean {
    return this.server !== null;
  }

  /** The resource's endpoint as now known, or undefined when it never registered (since the last restart). */
  endpoint(resourceName: string): PluginEndpoint | undefined {
    const c = this.connections.get(resourceName);
    if (!c) return undefined;
    const { client: _client, stream: _stream, ...endpoint } = c;
    return endpoint;
  }

  resources(): string[] {
    return [...this.connections.keys()].sort();
  }

  registrationsOf(resourceName: string): RegistrationRecord[] {
    return this.registrations.filter((r) => r.resource_name === resourceName);
  }

  /** Resolves with the resource's device list once `predicate` holds for it (checked now and on every update). */
  waitForDevices(resourceName: string, predicate: (devices: Device[]) => boolean, timeoutMs = 5_000): Promise<Device[]> {
    return this.waitFor(`a device list of ${resourceName} that matches`, timeoutMs, () => {
      const devices = this.connections.get(resourceName)?.devices;
      return devices && predicate(devices) ? devices : undefined;
    });
  }

  /** Resolves once the resource has registered `count` times in all (accepted registrations). */
  waitForRegistrations(resourceName: string, count: number, timeoutMs = 5_000): Promise<RegistrationRecord> {
    return this.waitFor(`registration #${count} of ${resourceName}`, timeoutMs, () => {
      const accepted = this.registrationsOf(resourceName).filter((r) => r.accepted);
      return accepted.length >= count ? accepted[count - 1] : undefined;
    });
  }

  /** Resolves once the resource has asked to register `count` times, accepted or not. */
  waitForAttempts(resourceName: string, count: number, timeoutMs = 5_000): Promise<RegistrationRecord[]> {
    return this.waitFor(`${count} registration attempts of ${resourceName}`, timeoutMs, () => {
      const attempts = this.registrationsOf(resourceName);
      return attempts.length >= count ? attempts : undefined;
    });
  }

  /** Resolves once the resource's ListAndWatch stream has ended (the plugin stopped serving it). */
  waitForStreamEnd(resourceName: string, timeoutMs = 5_000): Promise<PluginEndpoint> {
    return this.waitFor(`the end of ${resourceName}'s ListAndWatch`, timeoutMs, () => {
      const c = this.connections.get(resourceName);
      return c && !c.streaming ? this.endpoint(resourceName) : undefined;
    });
  }

  getPreferredAllocation(resourceName: string, request: PreferredAllocationRequest): Promise<PreferredAllocationResponse> {
    return this.call(resourceName, 'GetPreferredAllocation', request, CALL_TIMEOUT_MS) as Promise<PreferredAllocationResponse>;
  }

  allocate(resourceName: string, request: AllocateRequest): Promise<AllocateResponse> {
    return this.call(resourceName, 'Allocate', request, CALL_TIMEOUT_MS) as Promise<AllocateResponse>;
  }

  /** As the kubelet: only when the plugin asked for it in its options. */
  async preStartContainer(resourceName: string, deviceIds: string[]): Promise<void> {
    const c = this.connection(resourceName);
    if (!c.options.pre_start_required) throw new Error(`${resourceName} did not ask for PreStartContainer`);
    await this.call(resourceName, 'PreStartContainer', { devices_ids: deviceIds }, PRE_START_TIMEOUT_MS);
  }

  /** Stops serving, deletes kubelet.sock and drops every plugin connection (a kubelet going down). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      server.forceShutdown();
    }
    await unlink(this.socketPath).catch(() => {});
    for (const c of this.connections.values()) this.disconnect(c);
    this.connections.clear();
    this.changed();
  }

  /** A kubelet restart: stop, wipe the plugins' sockets (by default), a new kubelet.sock. */
  async restart(options: RestartOptions = {}): Promise<void> {
    await this.stop();
    if (options.wipePluginSockets ?? true) await this.wipePluginSockets();
    await this.listen();
  }

  /** Removes every socket in the directory but kubelet.sock, as the kubelet's device manager does at start. */
  async wipePluginSockets(): Promise<void> {
    for (const name of await readdir(this.dir)) {
      if (name === KUBELET_SOCKET) continue;
      const path = join(this.dir, name);
      if ((await lstat(path).catch(() => null))?.isSocket()) await unlink(path).catch(() => {});
    }
  }

  private async listen(): Promise<void> {
    const server = new grpc.Server();
    server.addService(devicePluginApi().registration, {
      Register: (call: grpc.ServerUnaryCall<RegisterRequest, Empty>, done: grpc.sendUnaryData<Empty>) => {
        this.register(call.request).then(
          () => done(null, {}),
          (err: Error) => done({ code: grpc.status.UNKNOWN, details: err.message }),
        );
      },
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(unixAddress(this.socketPath), grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
    this.server = server;
  }

  /** The device manager's Register: validate, dial back, options, then ListAndWatch in the background. */
  private async register(request: RegisterRequest): Promise<void> {
    const record: RegistrationRecord = { ...request, accepted: false, error: null };
    this.registrations.push(record);
    try {
      await this.admit(request);
      record.accepted = true;
    } catch (err) {
      record.error = (err as Error).message;
      throw err;
    } finally {
      this.changed();
    }
  }

  private async admit(request: RegisterRequest): Promise<void> {
    if (this.refuseRegistration !== null) throw new Error(this.refuseRegistration);
    if (request.version !== API_VERSION) {
      throw new Error(`Requested device plugin version ${request.version} is not supported; supported versions are ${API_VERSION}`);
    }
    if (!isExtendedResourceName(request.resource_name)) throw new Error(`invalid extended resource name: ${request.resource_name}`);
    if (!/^[^/]+$/.test(request.endpoint) || request.endpoint === '..') throw new Error(`invalid endpoint ${request.endpoint}`);

    const { DevicePluginClient } = devicePluginApi();
    const client = new DevicePluginClient(unixAddress(join(this.dir, request.endpoint)), grpc.credentials.createInsecure()) as unknown as PluginClient;
    let options: DevicePluginOptions;
    try {
      options = (await unary(client, 'GetDevicePluginOptions', {}, OPTIONS_TIMEOUT_MS)) as DevicePluginOptions;
    } catch (err) {
      client.close();
      throw new Error(`failed to dial device plugin: ${(err as Error).message}`, { cause: err });
    }
    const old = this.connections.get(request.resource_name);
    if (old) this.disconnect(old);
    const c: Connection = {
      resourceName: request.resource_name,
      endpoint: request.endpoint,
      options,
      devices: null,
      updates: 0,
      streaming: true,
      client,
      stream: null,
    };
    this.connections.set(request.resource_name, c);
    this.watch(c);
  }

  private watch(c: Connection): void {
    const stream = c.client.ListAndWatch({});
    c.stream = stream;
    stream.on('data', (response: ListAndWatchResponse) => {
      c.devices = response.devices;
      c.updates++;
      this.changed();
    });
    const ended = () => {
      if (c.stream !== stream) return;
      c.streaming = false;
      this.changed();
    };
    stream.on('end', ended);
    stream.on('error', ended); // CANCELLED when we drop it, UNAVAILABLE when the plugin went away
  }

  private disconnect(c: Connection): void {
    const stream = c.stream;
    c.stream = null;
    c.streaming = false;
    stream?.cancel();
    c.client.close();
  }

  private connection(resourceName: string): Connection {
    const c = this.connections.get(resourceName);
    if (!c) throw new Error(`${resourceName} is not registered with this kubelet`);
    return c;
  }

  private call(resourceName: string, method: keyof PluginClient, request: unknown, timeoutMs: number): Promise<unknown> {
    return unary(this.connection(resourceName).client, method, request, timeoutMs);
  }

  private changed(): void {
    this.events.emit('change');
  }

  private waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = probe();
        if (value === undefined) return;
        finish();
        resolve(value);
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`fake kubelet: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.events.off('change', check);
      };
      this.events.on('change', check);
      check();
    });
  }
}

export interface RegistrationRecord extends RegisterRequest {
  accepted: boolean;
  /** The error Register answered, when not accepted. */
  error: string | null;
}

/** Rejects with the grpc ServiceError itself: tests read its `code` and `details`. */
function unary(client: PluginClient, method: keyof PluginClient, request: unknown, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) =>
    (client[method] as Unary).call(client, request, { deadline: Date.now() + timeoutMs }, (err, value) => (err ? reject(err) : resolve(value))),
  );
}

/** Kubernetes' IsExtendedResourceName, as the kubelet checks it on Register. */
function isExtendedResourceName(name: string): boolean {
  const parts = name.split('/');
  if (parts.length !== 2 || name.includes('kubernetes.io/') || name.startsWith('requests.')) return false;
  const [domain, local] = parts as [string, string];
  return /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(domain) && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(local) && local.length <= 63;
}
