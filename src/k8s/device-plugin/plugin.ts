/**
 * The running device plugin: one ResourceServer per resource in the source's
 * snapshot, each registered with the kubelet, kept so without a restart:
 * resources come and go with the snapshots, and a kubelet restart (its
 * kubelet.sock re-created, our sockets wiped) is followed by re-creating the
 * sockets and registering again.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Log } from '../../agent/reconciler.js';
import { Backoff } from '../../agent/backoff.js';
import { SriovError } from '../../host/errors.js';
import type { DevicePluginSource, DeviceSnapshot, ResourceView } from '../source.js';
import { watchDir, type DirWatch } from './dir-watch.js';
import { socketNameFor, socketPathFor } from './names.js';
import { KUBELET_SOCKET } from './proto.js';
import { kubeletIdentity, register } from './registration.js';
import { ResourceServer } from './resource-server.js';
import { pluginOptions } from './wire.js';

/** How often the directory is looked at when fs.watch says nothing. */
const POLL_MS = 500;

interface Served {
  server: ResourceServer;
  /** The kubelet.sock (identity) this resource is registered with, and with which options. */
  registeredWith: string | null;
  optionsKey: string;
  everRegistered: boolean;
  /** Why the next registration is a re-registration, for the log. */
  reason: string;
  /** The last listen failure logged: a retry that fails the same way is not logged again. */
  listenError: string;
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');

export class DevicePlugin {
  private readonly served = new Map<string, Served>();
  private readonly backoff = new Backoff(250, 10_000);
  private readonly kubeletSocket: string;
  private readonly refused = new Set<string>();
  private lastKubelet: string | null | undefined;
  private watch: DirWatch | null = null;
  private unsubscribe: (() => void) | null = null;
  private dirty = false;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly source: DevicePluginSource,
    private readonly kubeletDir: string,
    private readonly log: Log,
  ) {
    this.kubeletSocket = join(kubeletDir, KUBELET_SOCKET);
  }

  /** Serves the first snapshot (trying to register once), then follows changes. */
  async start(): Promise<void> {
    const first = this.source.snapshot();
    // A bad name in the configuration refuses the start before any socket exists.
    const owners = new Map<string, string>();
    for (const { resourceName } of first.resources) {
      const path = socketPathFor(this.kubeletDir, resourceName);
      const other = owners.get(path);
      if (other !== undefined && other !== resourceName) {
        throw new SriovError('INVALID_ARGUMENT', `resources ${other} and ${resourceName} would share the socket ${path}: give their pools different names`, {
          object: resourceName,
          nothingChanged: true,
        });
      }
      owners.set(path, resourceName);
    }
    this.unsubscribe = this.source.subscribe((s) => this.onSnapshot(s));
    this.watch = watchDir(this.kubeletDir, POLL_MS, () => this.kick());
    this.kick();
    await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.watch?.close();
    await this.running;
    await Promise.all([...this.served.values()].map((s) => s.server.close()));
    this.served.clear();
  }

  /** Device changes reach the open ListAndWatch streams now; new or gone resources on the next pass. */
  private onSnapshot(snapshot: DeviceSnapshot): void {
    if (this.stopped) return;
    for (const view of snapshot.resources) this.served.get(view.resourceName)?.server.update(view);
    this.kick();
  }

  /** Runs sync passes one at a time, again while something asked for one during the last. */
  private kick(): void {
    this.dirty = true;
    if (this.running || this.stopped) return;
    this.running = (async () => {
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        await this.sync().catch((err: unknown) => this.log('error', `device plugin: ${errorText(err)}`));
      }
    })().finally(() => {
      this.running = null;
    });
  }

  private async sync(): Promise<void> {
    await this.followSnapshot(this.source.snapshot());
    const kubelet = await this.kubeletChanged();
    // No directory yet (the kubelet is not installed or not started): nothing to listen in; the watch says when it appears.
    if (kubelet === null && !(await isDirectory(this.kubeletDir))) return;
    for (const s of this.served.values()) {
      if (this.stopped) return;
      if (await this.ensureListening(s)) await this.ensureRegistered(s, kubelet);
    }
  }

  /** Starts a server for each new resource, stops those no longer in the snapshot. */
  private async followSnapshot(snapshot: DeviceSnapshot): Promise<void> {
    const wanted = new Map<string, ResourceView>();
    for (const view of snapshot.resources) if (this.acceptable(view)) wanted.set(view.resourceName, view);
    for (const [name, s] of this.served) {
      if (wanted.has(name)) continue;
      this.served.delete(name);
      // An empty list first: the kubelet shows 0 at once instead of after its grace period.
      await s.server.close({ devices: [] });
      this.log('info', `device plugin: ${name} is no longer configured; stopped serving it`);
    }
    for (const [name, view] of wanted) {
      const s = this.served.get(name);
      if (s) s.server.update(view);
      else {
        const server = new ResourceServer(view, socketPathFor(this.kubeletDir, name), this.source);
        this.served.set(name, { server, registeredWith: null, optionsKey: '', everRegistered: false, reason: '', listenError: '' });
      }
    }
  }

  /** A name the kubelet would refuse, or a second resource on the same socket, is logged once and left out. */
  private acceptable(view: ResourceView): boolean {
    try {
      const path = socketPathFor(this.kubeletDir, view.resourceName);
      const other = [...this.served.values()].find((s) => s.server.path === path && s.server.resourceName !== view.resourceName);
      if (other) throw new Error(`its socket ${path} is ${other.server.resourceName}'s`);
      this.refused.delete(view.resourceName);
      return true;
    } catch (err) {
      if (!this.refused.has(view.resourceName)) this.log('error', `device plugin: not serving ${view.resourceName}: ${errorText(err)}`);
      this.refused.add(view.resourceName);
      return false;
    }
  }

  /** The current kubelet.sock identity; a new kubelet gets our registrations at once, without backoff. */
  private async kubeletChanged(): Promise<string | null> {
    const now = await kubeletIdentity(this.kubeletSocket);
    if (now !== this.lastKubelet) {
      if (now === null) this.log('info', `device plugin: waiting for the kubelet (${this.kubeletSocket} not there)`);
      for (const name of this.served.keys()) this.backoff.succeeded(`register:${name}`);
      this.lastKubelet = now;
    }
    return now;
  }

  /** (Re-)creates the socket when it is missing (the kubelet wiped its directory) or never made. */
  private async ensureListening(s: Served): Promise<boolean> {
    const name = s.server.resourceName;
    if (s.server.listening) {
      if (await s.server.socketIntact()) return true;
      this.log('warn', `device plugin: ${s.server.path} was removed (kubelet restart?); serving ${name} on a new socket`);
      await s.server.close();
      s.registeredWith = null;
      s.reason = 'its socket was re-created';
    }
    const key = `listen:${name}`;
    if (!this.backoff.due(key)) return false;
    try {
      await s.server.listen();
      this.backoff.succeeded(key);
      s.listenError = '';
      return true;
    } catch (err) {
      const waitMs = this.backoff.failed(key);
      const text = errorText(err);
      if (text !== s.listenError) this.log('error', `device plugin: cannot serve ${name}: ${text}; retrying (backing off, now ${waitMs} ms)`);
      s.listenError = text;
      return false;
    }
  }

  private async ensureRegistered(s: Served, kubelet: string | null): Promise<void> {
    const name = s.server.resourceName;
    const options = pluginOptions(s.server.current);
    const optionsKey = JSON.stringify(options);
    if (kubelet === null) return;
    if (s.registeredWith === kubelet && s.optionsKey === optionsKey) return;
    if (s.registeredWith !== null && s.registeredWith !== kubelet) s.reason = 'the kubelet restarted';
    else if (s.registeredWith !== null) s.reason = 'its options changed';
    const key = `register:${name}`;
    if (!this.backoff.due(key)) return;
    const endpoint = socketNameFor(name);
    try {
      await register(this.kubeletSocket, endpoint, name, options);
    } catch (err) {
      const waitMs = this.backoff.failed(key);
      this.log('warn', `device plugin: registering ${name} with the kubelet failed: ${errorText(err)}; retrying in ${waitMs} ms`);
      return;
    }
    this.backoff.succeeded(key);
    this.log(
      'info',
      s.everRegistered
        ? `device plugin: re-registered ${name} with the kubelet (${s.reason || 'registration lost'}), endpoint ${endpoint}`
        : `device plugin: registered ${name} with the kubelet, endpoint ${endpoint}, ${s.server.current.devices.length} devices`,
    );
    s.registeredWith = kubelet;
    s.optionsKey = optionsKey;
    s.everRegistered = true;
    s.reason = '';
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (st) => st.isDirectory(),
    () => false,
  );
}
