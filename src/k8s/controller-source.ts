/**
 * The DevicePluginSource the gRPC layer serves, backed by the controller:
 * the pool file, this host's inventory (polled locally about once a second)
 * and the controller's DeviceView (long-polled). Every change to either is
 * recomputed into a snapshot; subscribers hear of it only when its revision
 * changes. Allocate records the kubelet's choice with the controller as
 * claims before any VF is handed to a container.
 */
import type { Log } from '../agent/reconciler.js';
import type { DeviceClaimRequest, DeviceLink, DeviceView } from '../controller/device-view.js';
import { HOLDING_STATES } from '../domain/types.js';
import type { SriovHost } from '../host/configurator.js';
import { SriovError, invalid, type ErrorCode } from '../host/errors.js';
import { LocalInventoryPoll } from './host-poll.js';
import { bandwidthDeviceId, deviceSnapshot, poolStates, type LocalInventory, type PoolState, type PoolVf } from './pool-devices.js';
import type { PoolConfig } from './pools.js';
import { preferredUnits, preferredVfs } from './preferred.js';
import type { ContainerAllocation, DevicePluginSource, DeviceSnapshot, PreferredRequest } from './source.js';

export interface ControllerSourceOptions {
  pools: PoolConfig;
  /** This host, for its inventory (the ports only are read). */
  host: SriovHost;
  link: DeviceLink;
  /** The name this host reports under (the controller's host). */
  hostName: string;
  log: Log;
  /** Local inventory poll period; 1 s keeps ListAndWatch updates within 2 s. */
  pollMs?: number;
  /** How long one long-poll of the controller's view waits. */
  waitMs?: number;
  /** start() waits this long for the controller's first view. */
  startWaitMs?: number;
  /** Allocate gives up on the controller after this (the kubelet then retries). */
  claimTimeoutMs?: number;
}

/** Codes that mean the controller did not answer, rather than refused. */
const UNREACHED: ReadonlySet<ErrorCode> = new Set(['TIMEOUT', 'TRY_AGAIN']);
const VFIO_CONTAINER = '/dev/vfio/vfio';

interface Resource {
  state: PoolState;
  bandwidth: boolean;
}

export class ControllerDeviceSource implements DevicePluginSource {
  private readonly poller: LocalInventoryPoll;
  private readonly listeners = new Set<(s: DeviceSnapshot) => void>();
  private inventory: LocalInventory = { pfs: [] };
  private view: DeviceView | null = null;
  private states: PoolState[] = [];
  private current: DeviceSnapshot;
  private notes = '';
  private stopped = false;
  private started = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly o: ControllerSourceOptions) {
    this.poller = new LocalInventoryPoll(o.host.ports);
    this.states = poolStates(o.pools, this.inventory, null);
    this.current = deviceSnapshot(this.states);
  }

  snapshot(): DeviceSnapshot {
    return this.current;
  }

  subscribe(listener: (s: DeviceSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Reads this host and waits (up to `startWaitMs`) for the controller's
   * first answer; an unreachable controller leaves the pools without devices
   * until it answers. Then watches both.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.inventory = await this.poller.poll(true);
    this.recompute();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((settle) => void this.watchDevices(settle)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.o.startWaitMs ?? 5_000))),
    ]);
    clearTimeout(timer);
    this.schedulePoll();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    this.wake?.();
    this.listeners.clear();
  }

  preferred(resourceName: string, request: PreferredRequest): string[] {
    const r = this.resource(resourceName);
    return r.bandwidth ? preferredUnits(request) : preferredVfs(r.state, request);
  }

  async allocate(resourceName: string, deviceIds: string[]): Promise<ContainerAllocation> {
    const r = this.resource(resourceName);
    if (deviceIds.length === 0) throw invalid(`Allocate for ${resourceName} names no device`, resourceName);
    if (new Set(deviceIds).size !== deviceIds.length) throw invalid(`Allocate for ${resourceName} names a device twice: ${deviceIds.join(', ')}`, resourceName);
    return r.bandwidth ? this.allocateUnits(r.state, deviceIds) : this.allocateVfs(r.state, deviceIds);
  }

  async preStart(resourceName: string, deviceIds: string[]): Promise<void> {
    const r = this.resource(resourceName);
    if (r.bandwidth) return;
    const view = await this.freshView(`PreStartContainer for ${resourceName}`);
    for (const id of deviceIds) {
      const claim = view.allocations.find((a) => a.pciAddress === id && HOLDING_STATES.includes(a.state) && a.deviceClaim?.resource === resourceName);
      if (!claim) {
        throw new SriovError('CONFLICT', `VF ${id} has no ${resourceName} claim at the controller (released since Allocate?); the container is not started`, { object: id });
      }
      if (claim.state !== 'configured' && claim.state !== 'attached') {
        throw new SriovError('CONFLICT', `VF ${id} (allocation ${claim.id}, network ${claim.network}) is ${claim.state}, not configured yet (its host's agent configures it for the network); the kubelet starts the container again later`, {
          object: id,
        });
      }
    }
  }

  // ---- Allocate -------------------------------------------------------------------

  private resource(resourceName: string): Resource {
    for (const state of this.states) {
      if (state.pool.resourceName === resourceName) return { state, bandwidth: false };
      if (state.pool.bandwidthResourceName === resourceName && state.bandwidthUnits !== null) return { state, bandwidth: true };
    }
    throw new SriovError('NOT_FOUND', `${resourceName} is not a resource this host's device plugin serves`, { object: resourceName });
  }

  /** Units are counted by the kubelet: nothing to record, the container learns its share. */
  private allocateUnits(state: PoolState, ids: string[]): ContainerAllocation {
    const known = new Set(Array.from({ length: state.bandwidthUnits ?? 0 }, (_, n) => bandwidthDeviceId(state.pool, n)));
    const unknown = ids.find((id) => !known.has(id));
    if (unknown) throw new SriovError('NOT_FOUND', `${unknown} is not a unit of ${state.pool.bandwidthResourceName} (it has ${known.size} now)`, { object: unknown });
    const env = state.pool.env;
    return { envs: { [env.bwUnits]: String(ids.length), [env.bwUnitMbps]: String(state.bandwidthUnitMbps) }, devices: [], mounts: [], annotations: {} };
  }

  private async allocateVfs(state: PoolState, ids: string[]): Promise<ContainerAllocation> {
    const { pool, network } = state;
    if (!network) throw new SriovError('NOT_FOUND', `network ${pool.network} of ${pool.resourceName} does not exist at the controller`, { object: pool.network });
    const vfs = ids.map((id) => this.allocatable(state, id));
    await this.claim({ host: this.o.hostName, resource: pool.resourceName, network: network.name, pciAddresses: ids });
    const vfio = state.deviceType === 'vfio-pci';
    const info: Record<string, unknown> = {};
    for (const vf of vfs) {
      info[vf.id] = vfio ? { generic: { deviceID: vf.id }, vfio: { mount: VFIO_CONTAINER, 'dev-mount': `/dev/vfio/${vf.iommuGroup}` } } : { generic: { deviceID: vf.id } };
    }
    const groups = vfio ? [...new Set(vfs.map((vf) => `/dev/vfio/${vf.iommuGroup}`))] : [];
    const devices = vfio ? [VFIO_CONTAINER, ...groups].map((path) => ({ containerPath: path, hostPath: path, permissions: 'rw' })) : [];
    return { envs: { [pool.env.devices]: ids.join(','), [pool.env.info]: JSON.stringify(info) }, devices, mounts: [], annotations: {} };
  }

  /** A VF this pool lists, healthy now, and (vfio-pci) in an IOMMU group; else the refusal the kubelet shows. */
  private allocatable(state: PoolState, id: string): PoolVf {
    const vf = state.vfs.find((v) => v.id === id);
    if (!vf) throw new SriovError('NOT_FOUND', `${id} is not a VF of ${state.pool.resourceName} on ${this.o.hostName}`, { object: id });
    if (vf.unhealthy) throw new SriovError('CONFLICT', `VF ${id} (${vf.pf} vf ${vf.vfIndex}) of ${state.pool.resourceName} is unhealthy: ${vf.unhealthy}`, { object: id });
    if (state.deviceType === 'vfio-pci' && vf.iommuGroup === null) {
      throw new SriovError('CONFLICT', `VF ${id} (${vf.pf} vf ${vf.vfIndex}) has no IOMMU group, so vfio-pci cannot give it to a container (is the IOMMU on?)`, { object: id });
    }
    return vf;
  }

  /** The controller records the claims, all or nothing; without its answer no VF is given. */
  private async claim(request: DeviceClaimRequest): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SriovError('TIMEOUT', `no answer in ${this.claimTimeoutMs} ms`)), this.claimTimeoutMs);
    });
    try {
      await Promise.race([this.o.link.claimDevices(request), timeout]);
    } catch (err) {
      if (err instanceof SriovError && !UNREACHED.has(err.code)) throw err;
      throw new SriovError(
        'TRY_AGAIN',
        `the controller could not record ${request.resource} VFs ${request.pciAddresses.join(',')} for network ${request.network} (${reason(err)}); no VF was given, the kubelet retries`,
        { object: request.resource, cause: err, nothingChanged: true },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  private get claimTimeoutMs(): number {
    return this.o.claimTimeoutMs ?? 10_000;
  }

  private async freshView(what: string): Promise<DeviceView> {
    try {
      const view = await this.o.link.devices(this.o.hostName, undefined, 0);
      if (view.revision !== this.view?.revision) {
        this.view = view;
        this.recompute();
      }
      return view;
    } catch (err) {
      if (err instanceof SriovError && !UNREACHED.has(err.code)) throw err;
      throw new SriovError('TRY_AGAIN', `${what}: the controller could not be reached (${reason(err)}); the kubelet retries`, { cause: err });
    }
  }

  // ---- watching ---------------------------------------------------------------------

  private recompute(): void {
    this.states = poolStates(this.o.pools, this.inventory, this.view);
    this.explain();
    const next = deviceSnapshot(this.states);
    if (next.revision === this.current.revision) return;
    this.current = next;
    for (const listener of this.listeners) {
      try {
        listener(next);
      } catch (err) {
        this.o.log('error', `device plugin: a snapshot subscriber failed: ${reason(err)}`);
      }
    }
  }

  /** Says once (per change) why a pool lists no device: no network yet, or a physnet that is not the network's. */
  private explain(): void {
    if (!this.view) return;
    const lines: string[] = [];
    for (const { pool, network } of this.states) {
      if (!network) lines.push(`pool ${pool.name}: network ${pool.network} does not exist (yet); ${pool.resourceName} lists no device until it does`);
      else if (pool.physnet !== undefined && pool.physnet !== network.physnet) {
        lines.push(`pool ${pool.name}: physnet ${pool.physnet} is not network ${network.name}'s (${network.physnet}); ${pool.resourceName} lists no device`);
      }
    }
    const notes = lines.join('\n');
    if (notes === this.notes) return;
    this.notes = notes;
    for (const line of lines) this.o.log('warn', `device plugin: ${line}`);
  }

  /** Long-polls the controller's view until stop(); `settled` hears of the first answer or failure. */
  private async watchDevices(settled: () => void): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const view = await this.o.link.devices(this.o.hostName, this.view?.revision, this.o.waitMs ?? 25_000);
        if (this.stopped) return;
        if (failures > 0) this.o.log('info', `device plugin: the controller answers again`);
        failures = 0;
        if (view.revision !== this.view?.revision) {
          this.view = view;
          // New holders may mean new drivers (vfio-pci binds): read the VFs again too.
          await this.readHost(true);
          this.recompute();
        }
        settled();
      } catch (err) {
        if (failures++ === 0) this.o.log('warn', `device plugin: cannot reach the controller for ${this.o.hostName}'s device view (${reason(err)}); its pools keep their last devices, retrying`);
        settled();
        await this.pause(Math.min(5_000, 250 * 2 ** failures));
      }
    }
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = setTimeout(() => {
      void this.readHost(false).then(() => {
        this.recompute();
        this.schedulePoll();
      });
    }, this.o.pollMs ?? 1_000);
  }

  private pollFailing = false;
  private reading: Promise<void> = Promise.resolve();

  /**
   * Reads this host (one read at a time, so an older reading never replaces
   * a newer one); a failed read keeps the last inventory, said once until it
   * works again.
   */
  private readHost(full: boolean): Promise<void> {
    const read = async () => {
      try {
        this.inventory = await this.poller.poll(full);
        if (this.pollFailing) this.o.log('info', 'device plugin: this host reads again');
        this.pollFailing = false;
      } catch (err) {
        if (!this.pollFailing) this.o.log('warn', `device plugin: cannot read this host's PFs (${reason(err)}); keeping the last reading`);
        this.pollFailing = true;
      }
    };
    this.reading = this.reading.then(read);
    return this.reading;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

function reason(err: unknown): string {
  return err instanceof SriovError ? err.message : err instanceof Error ? err.message : String(err);
}
