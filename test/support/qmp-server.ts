/**
 * A QMP server that behaves like QEMU 10 for what vfleet asks of it
 * (docs/interop/qmp-spec.rst, qapi/migration.json, qapi/qdev.json; messages
 * as QEMU prints them): the greeting, capabilities negotiation, one client
 * at a time, device_add/device_del with DEVICE_DELETED once the guest lets
 * go, a virtio-net `failover=on` standby whose primary (`failover_pair_id`)
 * is hidden until the guest negotiates VIRTIO_NET_F_STANDBY, and migrate
 * with query-migrate's statuses, `wait-unplug` while the guest unplugs the
 * failover primary, and MIGRATION events.
 *
 * VMs in one `QmpNetwork` can migrate to each other: a destination started
 * with `incoming: 'unix:/path'` receives the VM migrated to that URI.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { rm } from 'node:fs/promises';

interface Device {
  id: string;
  driver: string;
  props: Record<string, unknown>;
  /** The root port it sits behind (q35), or null. */
  bus: string | null;
  unplugRequested: boolean;
}

export interface FakeVmOptions {
  /** The monitor socket. */
  socket: string;
  /** `-incoming URI`: waits for a migration instead of running. */
  incoming?: string;
  /** Cold-plugged devices (`-device`), besides root ports. */
  devices?: Array<{ driver: string; id: string; bus?: string; [prop: string]: unknown }>;
  /** `-device pcie-root-port,id=...` ids. */
  rootPorts?: string[];
  /** Host PCI addresses bound to vfio-pci that vfio-pci may open. */
  vfioDevices?: string[];
  /** The guest negotiated VIRTIO_NET_F_STANDBY (its net_failover driver loaded): primaries are visible. Default true. */
  guestFailover?: boolean;
  /** The guest acknowledges PCIe unplug requests (after ackMs). Default true. */
  guestUnplugs?: boolean;
  ackMs?: number;
  /** Time per migration stage. */
  stepMs?: number;
}

type MigrationStatus = 'none' | 'setup' | 'wait-unplug' | 'active' | 'device' | 'completed' | 'failed' | 'cancelling' | 'cancelled';

class QmpFailure extends Error {
  constructor(
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(desc);
  }
}
const generic = (desc: string) => new QmpFailure('GenericError', desc);

/** The VMs that can reach each other, by incoming URI. */
export class QmpNetwork {
  readonly incoming = new Map<string, FakeQemu>();
  readonly vms: FakeQemu[] = [];

  async start(opts: FakeVmOptions): Promise<FakeQemu> {
    const vm = new FakeQemu(this, opts);
    await vm.listen();
    this.vms.push(vm);
    return vm;
  }

  async close(): Promise<void> {
    await Promise.all(this.vms.map((vm) => vm.close()));
  }
}

export class FakeQemu {
  devices = new Map<string, Device>();
  /** The failover primary's options per standby while the primary is hidden. */
  readonly hiddenPrimaries = new Map<string, Device>();
  runState: 'running' | 'paused' | 'inmigrate' | 'postmigrate' = 'running';
  /** QEMU exited (`quit`): its socket is gone and it holds no device. */
  exited = false;
  migration: { status: MigrationStatus; start: number; errorDesc?: string; downtime?: number; totalTime?: number; setupTime?: number } = { status: 'none', start: 0 };
  /** Every command received, in order, for tests to look at. */
  readonly commands: Array<{ execute: string; arguments?: Record<string, unknown> }> = [];
  /** Fails the next migration with this error-desc, as a broken connection would. */
  failNextMigration: string | null = null;
  guestFailover: boolean;
  guestUnplugs: boolean;
  private readonly server: Server;
  private client: Socket | null = null;
  private readonly waiting: Socket[] = [];
  private migrationEvents = false;
  private unpluggedForMigration: Device[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly network: QmpNetwork,
    readonly opts: FakeVmOptions,
  ) {
    this.guestFailover = opts.guestFailover ?? true;
    this.guestUnplugs = opts.guestUnplugs ?? true;
    for (const id of opts.rootPorts ?? []) this.devices.set(id, { id, driver: 'pcie-root-port', props: {}, bus: null, unplugRequested: false });
    for (const d of opts.devices ?? []) {
      const { driver, id, bus, ...props } = d;
      this.devices.set(id, { id, driver, props, bus: bus ?? null, unplugRequested: false });
    }
    for (const d of [...this.devices.values()]) {
      if (this.isHiddenPrimary(d)) {
        this.devices.delete(d.id);
        this.hiddenPrimaries.set(String(d.props.failover_pair_id), d);
      }
    }
    if (opts.incoming) {
      this.runState = 'inmigrate';
      // query-migrate reports the incoming side too: `setup` while it waits.
      this.migration = { status: 'setup', start: Date.now() };
      network.incoming.set(opts.incoming, this);
    }
    this.server = createServer((socket) => this.accept(socket));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.socket, () => resolve());
    });
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const s of [this.client, ...this.waiting]) s?.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.opts.socket, { force: true });
  }

  /** The device ids QEMU shows under /machine/peripheral (root ports excluded); none once it exited. */
  deviceIds(): string[] {
    if (this.exited) return [];
    return [...this.devices.values()].filter((d) => d.driver !== 'pcie-root-port').map((d) => d.id);
  }

  private get ackMs(): number {
    return this.opts.ackMs ?? 5;
  }

  private get stepMs(): number {
    return this.opts.stepMs ?? 10;
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  // -- the monitor: one client at a time, like QEMU's socket chardev --

  private accept(socket: Socket): void {
    if (this.client) {
      this.waiting.push(socket);
      return;
    }
    this.client = socket;
    socket.once('close', () => {
      this.client = null;
      const next = this.waiting.shift();
      if (next) this.accept(next);
    });
    socket.on('error', () => {});
    const version = { qemu: { micro: 2, minor: 0, major: 10 }, package: 'vfleet fake' };
    this.send({ QMP: { version, capabilities: ['oob'] } });
    let negotiated = false;
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line) continue;
        let msg: { execute?: string; arguments?: Record<string, unknown>; id?: unknown };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          this.send({ error: { class: 'GenericError', desc: 'JSON parse error, invalid literal' } });
          continue;
        }
        const reply = (body: Record<string, unknown>) => this.send(msg.id === undefined ? body : { ...body, id: msg.id });
        if (typeof msg.execute !== 'string') {
          reply({ error: { class: 'GenericError', desc: "QMP input lacks member 'execute'" } });
          continue;
        }
        if (!negotiated && msg.execute !== 'qmp_capabilities') {
          reply({ error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" } });
          continue;
        }
        if (msg.execute === 'qmp_capabilities') {
          if (negotiated) reply({ error: { class: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored' } });
          else reply({ return: {} });
          negotiated = true;
          continue;
        }
        this.commands.push({ execute: msg.execute, ...(msg.arguments ? { arguments: msg.arguments } : {}) });
        try {
          reply({ return: this.run(msg.execute, msg.arguments ?? {}) });
        } catch (e) {
          if (!(e instanceof QmpFailure)) throw e;
          reply({ error: { class: e.errorClass, desc: e.desc } });
        }
      }
    });
  }

  private send(msg: Record<string, unknown>): void {
    this.client?.write(`${JSON.stringify(msg)}\r\n`);
  }

  private emit(event: string, data: Record<string, unknown>): void {
    const now = Date.now();
    this.send({ event, data, timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 } });
  }

  private run(command: string, args: Record<string, unknown>): unknown {
    switch (command) {
      case 'query-status':
        return { status: this.runState, running: this.runState === 'running' };
      case 'qom-list':
        return this.qomList(String(args.path));
      case 'qom-get':
        return this.qomGet(String(args.path), String(args.property));
      case 'device_add':
        return this.deviceAdd(args);
      case 'device_del':
        return this.deviceDel(String(args.id));
      case 'migrate-set-capabilities':
        for (const c of (args.capabilities as Array<{ capability: string; state: boolean }>) ?? []) {
          if (c.capability === 'events') this.migrationEvents = c.state;
        }
        return {};
      case 'migrate':
        return this.migrate(String(args.uri));
      case 'migrate_cancel':
        if (['setup', 'wait-unplug', 'active'].includes(this.migration.status)) this.setMigration('cancelled');
        return {};
      case 'query-migrate':
        return this.queryMigrate();
      case 'quit':
        // QEMU says SHUTDOWN, answers, exits, and removes its monitor socket.
        this.emit('SHUTDOWN', { guest: false, reason: 'host-qmp-quit' });
        this.exited = true;
        setImmediate(() => void this.close());
        return {};
      default:
        throw new QmpFailure('CommandNotFound', `The command ${command} has not been found`);
    }
  }

  // -- devices (qdev-monitor.c, hw/pci/pcie.c, hw/net/virtio-net.c) --

  private qomList(path: string): unknown {
    // A root port's bus: its child named after its id, with a `child[N]` link per device on it.
    const bus = /^\/machine\/peripheral\/([^/]+)\/([^/]+)$/.exec(path);
    if (bus && bus[1] === bus[2] && this.devices.get(bus[1]!)?.driver === 'pcie-root-port') {
      const on = [...this.devices.values()].filter((d) => d.bus === bus[1]);
      return [{ name: 'type', type: 'string' }, { name: 'realized', type: 'bool' }, ...on.map((d, i) => ({ name: `child[${i}]`, type: `link<${d.driver}>` })), { name: 'hotplug-handler', type: 'link<hotplug-handler>' }];
    }
    if (path !== '/machine/peripheral') throw new QmpFailure('DeviceNotFound', `Device '${path}' not found`);
    return [{ name: 'type', type: 'string' }, ...[...this.devices.values()].map((d) => ({ name: d.id, type: `child<${d.driver}>` }))];
  }

  private qomGet(path: string, property: string): unknown {
    const id = path.replace(/^\/machine\/peripheral\//, '');
    const d = this.devices.get(id);
    if (!d) throw new QmpFailure('DeviceNotFound', `Device '${path}' not found`);
    if (!(property in d.props)) throw generic(`Property '${d.driver}.${property}' not found`);
    return d.props[property];
  }

  private isHiddenPrimary(d: Device): boolean {
    const standby = d.props.failover_pair_id;
    if (typeof standby !== 'string') return false;
    const s = this.devices.get(standby);
    return !!s && s.props.failover === 'on' && !this.guestFailover;
  }

  private deviceAdd(args: Record<string, unknown>): unknown {
    const { driver, id, bus, ...props } = args;
    if (typeof driver !== 'string') throw generic("Parameter 'driver' is missing");
    if (typeof id !== 'string') throw generic("Parameter 'id' is missing");
    const device: Device = { id, driver, props, bus: typeof bus === 'string' ? bus : null, unplugRequested: false };
    const standby = typeof props.failover_pair_id === 'string' ? props.failover_pair_id : null;
    const hidden = standby !== null ? this.hiddenPrimaries.get(standby) : undefined;
    if (hidden && hidden.id !== id) throw generic(`Cannot attach more than one primary device to '${standby}': '${hidden.id}' and '${id}'`);
    if (this.isHiddenPrimary(device)) {
      // virtio-net keeps the options and creates the device when the guest negotiates the feature.
      this.hiddenPrimaries.set(standby!, device);
      return {};
    }
    if (this.devices.has(id)) throw generic(`Duplicate device ID '${id}'`);
    if (device.bus === null && this.rootPorts().length > 0) throw generic("Bus 'pcie.0' does not support hotplugging");
    if (device.bus !== null) {
      const port = this.devices.get(device.bus);
      if (!port || port.driver !== 'pcie-root-port') throw generic(`Bus '${device.bus}' not found`);
      const taken = [...this.devices.values()].find((d) => d.bus === device.bus);
      if (taken) throw generic(`PCI: slot 0 function 0 already occupied by ${taken.driver}, new func ${driver} cannot be exposed to guest.`);
    }
    if (driver === 'vfio-pci') {
      const host = String(props.host);
      if (!(this.opts.vfioDevices ?? []).includes(host)) throw generic(`vfio /sys/bus/pci/devices/${host}: no such host device: No such file or directory`);
    }
    this.devices.set(id, device);
    return {};
  }

  private rootPorts(): Device[] {
    return [...this.devices.values()].filter((d) => d.driver === 'pcie-root-port');
  }

  private deviceDel(id: string): unknown {
    const d = this.devices.get(id);
    if (!d) throw new QmpFailure('DeviceNotFound', `Device '${id}' not found`);
    if (d.unplugRequested) throw generic(`Device ${id} is already in the process of unplug`);
    d.unplugRequested = true;
    if (this.guestUnplugs) this.later(this.ackMs, () => this.removeDevice(id));
    return {};
  }

  private removeDevice(id: string): void {
    const d = this.devices.get(id);
    if (!d || !this.devices.delete(id)) return;
    if (this.migration.status === 'wait-unplug') this.unpluggedForMigration.push(d);
    this.emit('DEVICE_DELETED', { device: id, path: `/machine/peripheral/${id}` });
  }

  // -- migration (migration/migration.c, hw/net/virtio-net.c's failover) --

  private migrate(uri: string): unknown {
    if (['setup', 'wait-unplug', 'active', 'device', 'cancelling'].includes(this.migration.status)) throw generic("There's a migration process in progress");
    if (this.runState === 'inmigrate') throw generic('Guest is waiting for an incoming migration');
    if (!/^(tcp|unix|exec|fd|file|rdma):/.test(uri)) throw generic(`unknown migration protocol: ${uri}`);
    this.migration = { status: 'none', start: Date.now() };
    this.setMigration('setup');
    this.later(this.stepMs, () => this.afterSetup(uri));
    return {};
  }

  private failoverPrimaries(): Device[] {
    return [...this.devices.values()].filter((d) => {
      const s = typeof d.props.failover_pair_id === 'string' ? this.devices.get(d.props.failover_pair_id) : undefined;
      return s?.props.failover === 'on';
    });
  }

  private afterSetup(uri: string): void {
    if (this.migration.status !== 'setup') return;
    this.migration.setupTime = Date.now() - this.migration.start;
    const primaries = this.failoverPrimaries();
    if (primaries.length === 0) return this.transfer(uri);
    // QEMU asks the guest to unplug each failover primary and waits.
    this.setMigration('wait-unplug');
    for (const p of primaries) {
      if (!p.unplugRequested) {
        p.unplugRequested = true;
        if (this.guestUnplugs) this.later(this.ackMs, () => this.removeDevice(p.id));
      }
    }
    const check = () => {
      if (this.migration.status !== 'wait-unplug') return;
      if (this.failoverPrimaries().length === 0) this.transfer(uri);
      else this.later(this.stepMs, check);
    };
    this.later(this.stepMs, check);
  }

  private transfer(uri: string): void {
    this.setMigration('active');
    this.later(this.stepMs, () => {
      if (this.migration.status !== 'active') return;
      const target = this.network.incoming.get(uri);
      const fail = this.failNextMigration ?? (target && target.runState === 'inmigrate' ? null : `Failed to connect to '${uri.replace(/^\w+:/, '')}': No such file or directory`);
      this.failNextMigration = null;
      if (fail) {
        this.migration.errorDesc = fail;
        this.setMigration('failed');
        return;
      }
      this.setMigration('device');
      this.migration.downtime = this.stepMs;
      target!.receive(this);
      this.migration.totalTime = Date.now() - this.migration.start;
      this.runState = 'postmigrate';
      this.setMigration('completed');
    });
  }

  /** The destination side: the VM's devices arrive (the unplugged primary is no longer among them). */
  private receive(source: FakeQemu): void {
    for (const d of source.devices.values()) {
      if (!this.devices.has(d.id)) this.devices.set(d.id, { ...d, unplugRequested: false });
    }
    this.runState = 'running';
    this.network.incoming.delete(this.opts.incoming!);
    this.migration = { status: 'completed', start: this.migration.start, totalTime: Date.now() - this.migration.start };
  }

  private setMigration(status: MigrationStatus): void {
    this.migration.status = status;
    // virtio-net plugs the failover primary back when a migration fails or is cancelled (failover_replug_primary).
    if (status === 'failed' || status === 'cancelled') {
      for (const d of this.unpluggedForMigration.splice(0)) this.devices.set(d.id, { ...d, unplugRequested: false });
    }
    if (status === 'setup') this.unpluggedForMigration = [];
    if (this.migrationEvents) this.emit('MIGRATION', { status });
  }

  private queryMigrate(): unknown {
    const m = this.migration;
    if (m.status === 'none') return {};
    const base: Record<string, unknown> = { status: m.status, 'total-time': m.totalTime ?? Date.now() - m.start };
    if (m.setupTime !== undefined) base['setup-time'] = m.setupTime;
    if (m.status === 'completed') base.downtime = m.downtime;
    else if (m.status === 'active') base['expected-downtime'] = 300;
    if (m.errorDesc) base['error-desc'] = m.errorDesc;
    return base;
  }
}
