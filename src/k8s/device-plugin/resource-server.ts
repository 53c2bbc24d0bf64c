/**
 * One resource's DevicePlugin gRPC server on its own unix socket in the
 * kubelet's directory: what the kubelet dials back after Register.
 */
import { lstat, stat, unlink } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { SriovError } from '../../host/errors.js';
import type { DevicePluginSource, ResourceView } from '../source.js';
import { devicePluginApi, unixAddress } from './proto.js';
import type {
  AllocateRequest,
  AllocateResponse,
  Empty,
  ListAndWatchResponse,
  PreferredAllocationRequest,
  PreferredAllocationResponse,
  PreStartContainerRequest,
} from './proto.js';
import { toStatus } from './status.js';
import { devicesKey, listResponse, pluginOptions, toContainerResponse } from './wire.js';

type Stream = grpc.ServerWritableStream<Empty, ListAndWatchResponse>;

export class ResourceServer {
  private server: grpc.Server | null = null;
  private readonly streams = new Set<Stream>();
  /** The inode of the socket we bound: another file at the path (or none) means it was removed. */
  private inode: bigint | null = null;
  private sentKey: string;

  constructor(
    private view: ResourceView,
    readonly path: string,
    private readonly source: DevicePluginSource,
  ) {
    this.sentKey = devicesKey(view);
  }

  get resourceName(): string {
    return this.view.resourceName;
  }

  get current(): ResourceView {
    return this.view;
  }

  get listening(): boolean {
    return this.server !== null;
  }

  /** Binds the socket (a stale socket file left by a previous run is removed first). */
  async listen(): Promise<void> {
    await removeStaleSocket(this.path);
    const server = new grpc.Server();
    server.addService(devicePluginApi().devicePlugin, this.handlers());
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(unixAddress(this.path), grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    ).catch((err: Error) => {
      server.forceShutdown();
      throw new SriovError('HOST_ERROR', `cannot listen on ${this.path}: ${err.message}`, { object: this.resourceName, cause: err });
    });
    this.server = server;
    this.inode = (await stat(this.path, { bigint: true })).ino;
  }

  /** Whether our socket is still the file at its path (the kubelet wipes its directory when it restarts). */
  async socketIntact(): Promise<boolean> {
    const st = await stat(this.path, { bigint: true }).catch(() => null);
    return st !== null && st.isSocket() && st.ino === this.inode;
  }

  /** New devices or health: pushed at once to every open ListAndWatch. */
  update(view: ResourceView): void {
    this.view = view;
    const key = devicesKey(view);
    if (key === this.sentKey) return;
    this.sentKey = key;
    const message = listResponse(view);
    for (const stream of this.streams) stream.write(message);
  }

  /**
   * Ends the streams and the server; removes the socket unless it is no
   * longer ours. `lastWord` (e.g. no devices) is sent on the streams first.
   */
  async close(lastWord?: ListAndWatchResponse): Promise<void> {
    for (const stream of this.streams) {
      if (lastWord) stream.write(lastWord);
      stream.end();
    }
    this.streams.clear();
    const server = this.server;
    this.server = null;
    if (server) await shutdown(server);
    if (await this.socketIntact()) await unlink(this.path).catch(() => {});
    this.inode = null;
  }

  private handlers(): grpc.UntypedServiceImplementation {
    return {
      GetDevicePluginOptions: (_call: grpc.ServerUnaryCall<Empty, unknown>, done: grpc.sendUnaryData<unknown>) =>
        done(null, pluginOptions(this.view)),
      ListAndWatch: (call: Stream) => this.listAndWatch(call),
      GetPreferredAllocation: (call: grpc.ServerUnaryCall<PreferredAllocationRequest, unknown>, done: grpc.sendUnaryData<unknown>) =>
        answer(done, this.resourceName, async () => this.preferred(call.request)),
      Allocate: (call: grpc.ServerUnaryCall<AllocateRequest, unknown>, done: grpc.sendUnaryData<unknown>) =>
        answer(done, this.resourceName, () => this.allocate(call.request)),
      PreStartContainer: (call: grpc.ServerUnaryCall<PreStartContainerRequest, unknown>, done: grpc.sendUnaryData<unknown>) =>
        answer(done, this.resourceName, async () => {
          await this.source.preStart(this.resourceName, call.request.devices_ids);
          return {};
        }),
    };
  }

  /** The current list at once, then every change until the kubelet goes away. */
  private listAndWatch(call: Stream): void {
    this.streams.add(call);
    const forget = () => this.streams.delete(call);
    call.on('cancelled', forget);
    call.on('close', forget);
    call.on('error', forget);
    call.write(listResponse(this.view));
  }

  private preferred(request: PreferredAllocationRequest): PreferredAllocationResponse {
    return {
      container_responses: request.container_requests.map((r) => ({
        deviceIDs: this.source.preferred(this.resourceName, {
          available: r.available_deviceIDs,
          mustInclude: r.must_include_deviceIDs,
          size: r.allocation_size,
        }),
      })),
    };
  }

  /** Every container's ids are checked before the source claims anything: bad input changes nothing. */
  private async allocate(request: AllocateRequest): Promise<AllocateResponse> {
    checkAllocatable(this.view, request);
    const container_responses = [];
    for (const r of request.container_requests) {
      container_responses.push(toContainerResponse(await this.source.allocate(this.resourceName, r.devices_ids)));
    }
    return { container_responses };
  }
}

/** How many ids a refusal names. */
const SHOWN_IDS = 8;

/** Refuses ids the kubelet should not have sent: not in our current list, unhealthy, or twice. */
export function checkAllocatable(view: ResourceView, request: AllocateRequest): void {
  const health = new Map(view.devices.map((d) => [d.id, d.health]));
  const ids = request.container_requests.flatMap((r) => r.devices_ids);
  const unknown = ids.filter((id) => !health.has(id));
  const unhealthy = ids.filter((id) => health.get(id) === 'Unhealthy');
  // With a set: the kubelet may send thousands.
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const id of ids) (seen.has(id) ? twice : seen).add(id);
  const problems = [
    unknown.length ? `unknown device ids ${someIds(unknown)}` : '',
    unhealthy.length ? `unhealthy device ids ${someIds(unhealthy)}` : '',
    twice.size ? `device ids asked for twice ${someIds([...twice])}` : '',
    request.container_requests.some((r) => r.devices_ids.length === 0) ? 'a container request with no device ids' : '',
  ].filter(Boolean);
  if (problems.length) {
    throw new SriovError(
      'INVALID_ARGUMENT',
      `Allocate refused: ${problems.join('; ')}; ${view.devices.filter((d) => d.health === 'Healthy').length} healthy devices are listed now; nothing was claimed`,
      { object: view.resourceName, nothingChanged: true },
    );
  }
}

/** A few ids, each cut short, then how many more: the refusal stays one readable line whatever the kubelet sent. */
function someIds(ids: string[]): string {
  const shown = ids.slice(0, SHOWN_IDS).map((id) => (id.length > 40 ? `${id.slice(0, 39)}…` : id));
  return ids.length > SHOWN_IDS ? `${shown.join(', ')} and ${ids.length - SHOWN_IDS} more` : shown.join(', ');
}

/** Runs a unary handler, turning a thrown error into the gRPC status the kubelet shows. */
function answer<T>(done: grpc.sendUnaryData<T>, resourceName: string, run: () => Promise<T>): void {
  run().then(
    (value) => done(null, value),
    (err: unknown) => done(toStatus(err, resourceName)),
  );
}

/** Lets the ended streams flush (a graceful shutdown), but not for long: a stuck client is cut off. */
async function shutdown(server: grpc.Server): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    timer = setTimeout(resolve, 1_000);
    server.tryShutdown(() => resolve());
  });
  clearTimeout(timer);
  server.forceShutdown();
}

/** A socket left by a previous run is ours to replace; any other file there is not. */
async function removeStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (!st) return;
  if (!st.isSocket()) {
    throw new SriovError('CONFLICT', `${path} exists and is not a socket: not replacing it; remove it or use another pool name`, { object: path });
  }
  await unlink(path);
}
