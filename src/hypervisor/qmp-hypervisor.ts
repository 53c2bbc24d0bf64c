/**
 * The QMP adapter: a VM that QEMU runs without libvirt, reached on its
 * monitor socket `<qmpDir>/<vm>.qmp` (QEMU started with `-qmp
 * unix:<path>,server=on,wait=off`). Commands and statuses are QEMU's
 * (qapi/migration.json, qapi/qdev.json).
 */
import { lstat } from 'node:fs/promises';
import { SriovError, type ErrorCode } from '../host/errors.js';
import { sleep } from '../host/wait.js';
import { Mutex } from '../util/mutex.js';
import type { Hypervisor, MigrateRequest, MigrateResult, PlugRequest, UnplugRequest } from './hypervisor.js';
import { Departures } from './departures.js';
import { QmpClient, QmpClosed, QmpError, type QmpEvent } from './qmp-client.js';
import { parseMigrateRequest, parseMigrateUri, parsePlugRequest, parseUnplugRequest, qmpSocketPath } from './validate.js';

export interface QmpHypervisorOptions {
  /** Where the VMs' monitor sockets are (`--qmp-dir`). */
  qmpDir: string;
  /** How often query-migrate is asked while a migration runs. */
  pollMs?: number;
  /** A migration still running after this long is cancelled (the VM stays on the source). */
  migrateTimeoutMs?: number;
  /** How long the guest has to release a device after device_del. */
  unplugTimeoutMs?: number;
  /** Per QMP command, and for the greeting. */
  commandTimeoutMs?: number;
  /**
   * The device_add arguments for a plug, besides id, bus and failover_pair_id.
   * Default `vfio-pci,host=<pciAddress>`; the system suite plugs an emulated NIC
   * instead, as a machine without a VF has nothing to hand to vfio-pci.
   */
  deviceFor?: (req: PlugRequest) => Record<string, unknown>;
}

/** query-migrate's MigrationInfo, the fields read here. */
interface MigrationInfo {
  status?: string;
  'error-desc'?: string;
  'total-time'?: number;
  downtime?: number;
}

/** Statuses of a migration already under way: a re-run waits for it instead of starting another. */
const RUNNING = new Set(['setup', 'wait-unplug', 'active', 'pre-switchover', 'device', 'cancelling', 'postcopy-active']);

const vfioPci = (req: PlugRequest) => ({ driver: 'vfio-pci', host: req.pciAddress });

export class QmpHypervisor implements Hypervisor {
  readonly kind = 'qemu' as const;
  private readonly pollMs: number;
  private readonly migrateTimeoutMs: number;
  private readonly unplugTimeoutMs: number;
  private readonly commandTimeoutMs: number;
  private readonly deviceFor: (req: PlugRequest) => Record<string, unknown>;
  /** QEMU serves one monitor client at a time: one operation per VM at a time. */
  private readonly locks = new Map<string, Mutex>();
  private readonly departures: Departures;

  constructor(private readonly opts: QmpHypervisorOptions) {
    this.pollMs = opts.pollMs ?? 100;
    this.migrateTimeoutMs = opts.migrateTimeoutMs ?? 600_000;
    this.unplugTimeoutMs = opts.unplugTimeoutMs ?? 60_000;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 10_000;
    this.deviceFor = opts.deviceFor ?? vfioPci;
    this.departures = new Departures(opts.qmpDir);
  }

  async migrate(request: MigrateRequest, progress: (status: string) => void = () => {}): Promise<MigrateResult> {
    const req = parseMigrateRequest(request, parseMigrateUri);
    const statuses = new Statuses(progress);
    try {
      return await this.session(req.vm, (qmp) => this.migrateFrom(qmp, req, statuses));
    } catch (e) {
      // No QEMU here: if it quit after this VM left (below), a re-run after an agent restart finds the record.
      const noQemu = e instanceof QmpClosed || (e instanceof SriovError && e.code === 'NOT_FOUND');
      const left = noQemu ? await this.departures.find(req.vm, req.destination) : null;
      if (!left) throw e;
      for (const s of left.statuses) statuses.see(s);
      return left;
    }
  }

  private async migrateFrom(qmp: QmpClient, req: MigrateRequest, statuses: Statuses): Promise<MigrateResult> {
    const before = await qmp.execute<MigrationInfo>('query-migrate');
    // query-migrate also reports the incoming side: a VM that arrived here says `completed` too,
    // and one still arriving `setup`. Only the run state tells an outgoing migration's end.
    const { status: runState } = await qmp.execute<{ status: string }>('query-status');
    if (runState === 'inmigrate') {
      throw new SriovError('CONFLICT', `VM ${req.vm} here is waiting for an incoming migration (-incoming); it runs elsewhere, nothing was migrated`, { object: req.vm, nothingChanged: true });
    }
    // Done already (an agent restarted before QEMU quit): report it, do not migrate twice.
    if (before.status === 'completed' && runState === 'postmigrate') return this.leave(qmp, req, statuses.finish(before));
    if (before.status && RUNNING.has(before.status)) statuses.see(before.status);
    else {
      await this.departures.forget(req.vm);
      await this.startMigration(qmp, req.destination);
    }
    return this.leave(qmp, req, await this.follow(qmp, req, statuses));
  }

  /**
   * The VM runs on the destination: the source QEMU, paused in
   * `postmigrate`, still holds the VF's vfio device, and the VF can be
   * neither unbound nor scrubbed until it exits. libvirt ends it; so does
   * this adapter, with the result recorded first (departures.ts).
   */
  private async leave(qmp: QmpClient, req: MigrateRequest, result: MigrateResult): Promise<MigrateResult> {
    await this.departures.record(req.vm, req.destination, result);
    // QEMU may close the socket as it answers: the close is the answer too.
    await qmp.execute('quit').catch((e: unknown) => {
      if (!(e instanceof QmpClosed)) throw e;
    });
    return result;
  }

  private async startMigration(qmp: QmpClient, uri: string): Promise<void> {
    // MIGRATION events report every status, even one too short for a poll to see.
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    await qmp.execute('migrate', { uri }).catch((e: unknown) => {
      throw qmpFailure(e, `migrate to ${uri}`);
    });
  }

  /** Polls query-migrate until a final status; MIGRATION events fill in what polls miss. */
  private async follow(qmp: QmpClient, req: MigrateRequest, statuses: Statuses): Promise<MigrateResult> {
    const deadline = Date.now() + this.migrateTimeoutMs;
    let seenEvents = 0;
    for (;;) {
      const info = await qmp.execute<MigrationInfo>('query-migrate');
      seenEvents = statuses.fromEvents(qmp.events, seenEvents);
      if (info.status) statuses.see(info.status);
      if (info.status === 'completed') return statuses.finish(info);
      if (info.status === 'failed' || info.status === 'cancelled') {
        throw new SriovError('HOST_ERROR', `migration of VM ${req.vm} to ${req.destination} ${info.status}: ${info['error-desc'] ?? 'QEMU gave no reason'}; the VM still runs on this host`, {
          object: req.vm,
          data: { statuses: statuses.list },
        });
      }
      if (Date.now() >= deadline) return this.cancel(qmp, req, statuses);
      await sleep(this.pollMs);
    }
  }

  private async cancel(qmp: QmpClient, req: MigrateRequest, statuses: Statuses): Promise<never> {
    await qmp.execute('migrate_cancel').catch(() => undefined);
    const last = statuses.list.at(-1);
    const hint = last === 'wait-unplug' ? ` (stuck in wait-unplug: the guest did not release ${req.sourceDevice})` : '';
    throw new SriovError('TIMEOUT', `migration of VM ${req.vm} to ${req.destination} did not finish within ${this.migrateTimeoutMs / 1000} s${hint}; cancelled, the VM still runs on this host`, {
      object: req.vm,
      data: { statuses: statuses.list },
    });
  }

  async plug(request: PlugRequest): Promise<void> {
    const req = parsePlugRequest(request);
    await this.session(req.vm, async (qmp) => {
      if (await hasDevice(qmp, req.device)) return; // plugged before (a re-run): done
      if (req.failoverPairId) await checkStandby(qmp, req);
      const bus = await freeRootPort(qmp);
      const args = { ...this.deviceFor(req), id: req.device, ...(bus ? { bus } : {}), ...(req.failoverPairId ? { failover_pair_id: req.failoverPairId } : {}) };
      await qmp.execute('device_add', args).catch((e: unknown) => {
        throw qmpFailure(e, `device_add ${req.device} (${req.pciAddress}) into VM ${req.vm}`);
      });
    });
  }

  async unplug(request: UnplugRequest): Promise<void> {
    const req = parseUnplugRequest(request);
    await this.session(req.vm, async (qmp) => {
      if (!(await hasDevice(qmp, req.device))) return; // gone already: done
      try {
        await qmp.execute('device_del', { id: req.device });
      } catch (e) {
        if (e instanceof QmpError && e.errorClass === 'DeviceNotFound') return;
        // A re-run while the guest still works on the first request: wait for that one.
        if (!(e instanceof QmpError && /already in the process of unplug/.test(e.desc))) throw qmpFailure(e, `device_del ${req.device} from VM ${req.vm}`);
      }
      await this.deleted(qmp, req);
    });
  }

  /** DEVICE_DELETED for the device, or (should the event have gone to an earlier connection) its absence. */
  private async deleted(qmp: QmpClient, req: UnplugRequest): Promise<void> {
    const deadline = Date.now() + this.unplugTimeoutMs;
    const isIt = (e: QmpEvent) => e.event === 'DEVICE_DELETED' && e.data?.device === req.device;
    while (Date.now() < deadline) {
      const step = Math.min(1000, Math.max(1, deadline - Date.now()));
      const got = await qmp.waitEvent(isIt, step, `DEVICE_DELETED for ${req.device}`).catch(() => null);
      if (got || !(await hasDevice(qmp, req.device))) return;
    }
    throw new SriovError('TIMEOUT', `VM ${req.vm} did not release device ${req.device} within ${this.unplugTimeoutMs / 1000} s of device_del: a PCI unplug needs the guest's consent (is it hung, or without PCIe hotplug?)`, { object: req.vm });
  }

  /** One monitor connection for one operation, one operation per VM at a time. */
  private session<T>(vm: string, work: (qmp: QmpClient) => Promise<T>): Promise<T> {
    const path = qmpSocketPath(this.opts.qmpDir, vm);
    let lock = this.locks.get(path);
    if (!lock) this.locks.set(path, (lock = new Mutex()));
    return lock.run(async () => {
      await checkSocket(path);
      const qmp = await QmpClient.connect(path, { timeoutMs: this.commandTimeoutMs });
      try {
        return await work(qmp);
      } finally {
        qmp.close();
      }
    });
  }
}

/**
 * The monitor is a socket QEMU made itself (`lstat`, as `ls -l` shows it):
 * a symbolic link named after one VM could lead to another VM's monitor,
 * and a VF would be plugged into the wrong guest. A missing one is left to
 * connect, which says the VM does not run here.
 */
async function checkSocket(path: string): Promise<void> {
  const st = await lstat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
  if (!st || st.isSocket()) return;
  const what = st.isSymbolicLink() ? 'a symbolic link' : 'not a socket';
  throw new SriovError('PERMISSION_DENIED', `QMP socket ${path} is ${what}; vfleet talks only to a socket QEMU created there (-qmp unix:${path},server=on): remove it and restart the VM with that option`, {
    object: path,
    nothingChanged: true,
  });
}

/** The statuses a migration went through, in order. */
class Statuses {
  readonly list: string[] = [];
  constructor(private readonly progress: (status: string) => void) {}

  /**
   * A migration visits each status at most once, in order; a poll's answer
   * can come after events that were sent later, so a status seen already is
   * old news, not a new visit.
   */
  see(status: string): void {
    if (this.list.includes(status)) return;
    this.list.push(status);
    this.progress(status);
  }

  fromEvents(events: QmpEvent[], from: number): number {
    for (const e of events.slice(from)) {
      if (e.event === 'MIGRATION' && typeof e.data?.status === 'string') this.see(e.data.status);
    }
    return events.length;
  }

  finish(info: MigrationInfo): MigrateResult {
    this.see('completed');
    return { statuses: this.list, downtimeMs: info.downtime ?? null, totalMs: info['total-time'] ?? null };
  }
}

async function hasDevice(qmp: QmpClient, id: string): Promise<boolean> {
  const children = await qmp.execute<Array<{ name: string; type: string }>>('qom-list', { path: '/machine/peripheral' });
  return children.some((c) => c.name === id && c.type.startsWith('child<'));
}

/**
 * The guest's net_failover pairs the two devices by MAC: a VF whose MAC is
 * not its standby's would be a second, unpaired NIC. QEMU itself accepts a
 * failover_pair_id that names no device, and plugs a plain one.
 */
async function checkStandby(qmp: QmpClient, req: PlugRequest): Promise<void> {
  const standby = req.failoverPairId!;
  if (!(await hasDevice(qmp, standby))) {
    throw new SriovError('NOT_FOUND', `VM ${req.vm} has no device ${standby} to pair VF ${req.pciAddress} with (failover_pair_id); nothing was plugged`, { object: req.vm, nothingChanged: true });
  }
  const mac = await qmp.execute<string>('qom-get', { path: `/machine/peripheral/${standby}`, property: 'mac' }).catch(() => null);
  if (mac !== null && mac.toLowerCase() !== req.mac) {
    throw new SriovError('CONFLICT', `VM ${req.vm}'s standby ${standby} has MAC ${mac}, not the VF's ${req.mac}: net_failover pairs by MAC; nothing was plugged`, { object: req.vm, nothingChanged: true });
  }
}

/** Hot-pluggable PCIe ports that take one device each. */
const PORTS = new Set(['child<pcie-root-port>', 'child<ioh3420>']);

/**
 * On q35 the root complex (pcie.0) takes no hot-plug: a device goes behind a
 * pcie-root-port, one per port. The first empty one with an id is used (the
 * one the source VF sat in, on a destination started like the source). With
 * none (i440fx, whose pci.0 takes hot-plug), QEMU picks the bus.
 *
 * Read from QOM, not query-pci: before the firmware has numbered the buses
 * (a VM started with -S) query-pci shows nothing behind a port. A port's bus
 * is its child named after its id, and lists its devices as `child[N]` links.
 */
async function freeRootPort(qmp: QmpClient): Promise<string | null> {
  const children = await qmp.execute<Array<{ name: string; type: string }>>('qom-list', { path: '/machine/peripheral' });
  for (const port of children.filter((c) => PORTS.has(c.type))) {
    const bus = await qmp.execute<Array<{ name: string; type: string }>>('qom-list', { path: `/machine/peripheral/${port.name}/${port.name}` }).catch(() => null);
    if (bus && !bus.some((p) => p.name.startsWith('child[') && p.type.startsWith('link<'))) return port.name;
  }
  return null;
}

/** QEMU's error classes and texts (qapi/error.json, qdev-monitor.c) as codes. */
const QMP_CODES: Array<[RegExp, ErrorCode]> = [
  [/^DeviceNotFound$/, 'NOT_FOUND'],
  [/Duplicate|already|in progress|more than one primary|in use by/i, 'CONFLICT'],
  [/does not support hotplugging|not a hotpluggable|No .* bus found/i, 'UNSUPPORTED'],
  [/no such host device|not found/i, 'NOT_FOUND'],
  [/Permission denied/i, 'PERMISSION_DENIED'],
];

function qmpFailure(e: unknown, action: string): unknown {
  if (!(e instanceof QmpError)) return e;
  const code = QMP_CODES.find(([re]) => re.test(e.errorClass) || re.test(e.desc))?.[1] ?? 'HOST_ERROR';
  const hint = /does not support hotplugging/.test(e.desc) ? ' (give the VM a free pcie-root-port with an id for hot-plug)' : '';
  return new SriovError(code, `${action}: QEMU refused: ${e.desc}${hint}`, { cause: e });
}
