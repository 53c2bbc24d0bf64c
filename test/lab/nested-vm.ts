/**
 * A tiny VM inside the lab guest, for the live-migration suite: QEMU (TCG)
 * runs the lab's own kernel with a busybox initramfs that loads virtio_net
 * (with net_failover and failover) and igbvf from the lab's module tree.
 *
 * The lab guest sees this machine's root file system (test/lab/lab.sh), so
 * its qemu-system-x86_64 is the one `lab.sh setup` installed on the host,
 * with the host's libraries and firmware; the kernel, modules and busybox are
 * the lab's cache (LAB_CACHE).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LAB_CACHE, moduleClosure, moduleTree } from './lab-modules.js';

const NESTED_MODULES = ['virtio_pci', 'virtio_net', 'igbvf'];

/** The nested guest's initramfs (gzip'd newc cpio, made with the lab's busybox); returns its path. */
export async function buildInitramfs(dir: string): Promise<string> {
  const root = join(dir, 'initramfs');
  for (const d of ['bin', 'mod', 'proc', 'sys', 'dev']) await mkdir(join(root, d), { recursive: true });
  await copyFile(join(LAB_CACHE, 'bb', 'bin', 'busybox'), join(root, 'bin', 'busybox'));
  await chmod(join(root, 'bin', 'busybox'), 0o755);
  const mods = moduleClosure(NESTED_MODULES);
  for (const ko of mods) await copyFile(join(moduleTree(), ko), join(root, 'mod', ko.split('/').pop()!));
  const names = mods.map((ko) => ko.split('/').pop()!);
  // The console is the test's only view: it says when the guest is up, and the kernel's own lines show igbvf's probe.
  const init = [
    '#!/bin/busybox sh',
    '/bin/busybox --install -s /bin',
    'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev',
    // An initramfs without /dev/console starts init with no output: the serial port, once /dev exists.
    'exec </dev/ttyS0 >/dev/ttyS0 2>&1',
    `for m in ${names.join(' ')}; do insmod /mod/$m || echo "nested: insmod $m failed"; done`,
    'echo "nested: ready"',
    // A serial console is slow under nested emulation: the kernel stays quiet, and init echoes only its lines of interest.
    'while :; do dmesg -c | grep -E "igbvf|failover|virtio_net"; sleep 2; done',
    '',
  ].join('\n');
  await writeFile(join(root, 'init'), init, { mode: 0o755 });
  const bb = join(LAB_CACHE, 'bb', 'bin', 'busybox');
  const list = spawnSync(bb, ['find', '.'], { cwd: root, encoding: 'utf8' });
  if (list.status !== 0) throw new Error(`find: ${list.stderr}`);
  const cpio = spawnSync(bb, ['cpio', '-o', '-H', 'newc'], { cwd: root, input: list.stdout, maxBuffer: 256 << 20 });
  if (cpio.status !== 0) throw new Error(`cpio: ${cpio.stderr}`);
  const out = join(dir, 'initrd.cpio');
  await writeFile(out, cpio.stdout);
  return out;
}

export interface VmSpec {
  dir: string;
  name: string;
  initrd: string;
  /** The pair's device ids (deviceIds). */
  ids: { primary: string; standby: string };
  /** The standby's MAC: the VF allocation's. */
  mac: string;
  /** `-device vfio-pci` for this VF at start, as the failover primary. */
  vfPci?: string;
  /** `-incoming URI`: a destination that waits for the migration. */
  incoming?: string;
  /** A second QMP socket, for vfleet's agent (`<qmp-dir>/<vm>.qmp`): the test keeps the first. */
  agentQmp?: string;
}

/** The device ids of an allocation's pair, as src/vm/qemu.ts names them and a migration keeps them. */
export function deviceIds(allocationId: string): { primary: string; standby: string } {
  const short = allocationId.toLowerCase().slice(0, 8);
  return { primary: `hostdev-${short}`, standby: `net-${short}` };
}

/** The hot-pluggable root port of the failover primary. */
export const PRIMARY_BUS = 'rp1';

/** A running nested QEMU: its QMP socket and its console file. */
export class NestedVm {
  readonly qmpPath: string;
  readonly consolePath: string;
  private stderr = '';
  private readonly exited: Promise<void>;

  private constructor(
    readonly spec: VmSpec,
    readonly proc: ChildProcess,
  ) {
    this.qmpPath = join(spec.dir, `${spec.name}.qmp`);
    this.consolePath = join(spec.dir, `${spec.name}.console`);
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d));
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
  }

  static start(spec: VmSpec): NestedVm {
    const qmp = join(spec.dir, `${spec.name}.qmp`);
    const console = join(spec.dir, `${spec.name}.console`);
    // Two hot-pluggable root ports: the primary's (rp1) and the standby's (rp2), the same on both ends.
    const args = [
      '-accel', 'tcg', '-M', 'q35', '-m', '192', '-smp', '1', '-nodefaults', '-no-reboot', '-display', 'none',
      '-kernel', join(LAB_CACHE, 'vmlinuz'), '-initrd', spec.initrd,
      // no_timer_check: under TCG on a loaded host the IO-APIC timer check can miss its ticks and panic the boot.
      '-append', 'console=ttyS0 quiet panic=-1 no_timer_check',
      '-serial', `file:${console}`,
      '-qmp', `unix:${qmp},server=on,wait=off`,
      '-device', `pcie-root-port,id=${PRIMARY_BUS},chassis=1,slot=1`,
      '-device', 'pcie-root-port,id=rp2,chassis=2,slot=2',
      '-netdev', 'hubport,id=hn0,hubid=0',
      '-device', `virtio-net-pci,netdev=hn0,id=${spec.ids.standby},mac=${spec.mac},failover=on,bus=rp2`,
    ];
    if (spec.vfPci) args.push('-device', `vfio-pci,host=${spec.vfPci},id=${spec.ids.primary},bus=${PRIMARY_BUS},failover_pair_id=${spec.ids.standby}`);
    if (spec.incoming) args.push('-incoming', spec.incoming);
    if (spec.agentQmp) args.push('-qmp', `unix:${spec.agentQmp},server=on,wait=off`);
    return new NestedVm(spec, spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  }

  console(): string {
    return existsSync(this.consolePath) ? readFileSync(this.consolePath, 'utf8') : '';
  }

  /** The console's last lines and what QEMU printed: for a failure message. */
  tail(lines = 30): string {
    return `${this.spec.name} console:\n${this.console().split('\n').slice(-lines).join('\n')}\nQEMU: ${this.stderr}`;
  }

  /** Waits until the console matches `done` (or QEMU exits); fails with the console's tail. */
  async waitConsole(what: string, ms: number, done: (console: string) => boolean): Promise<void> {
    await until(what, ms, () => done(this.console()) || !this.running()).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.tail()}`);
    });
    if (!this.running()) throw new Error(`QEMU exited while waiting for ${what}\n${this.tail()}`);
  }

  running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  errors(): string {
    return this.stderr;
  }

  /** Waits until QEMU exits by itself, with its exit status; fails with the console's tail. */
  async waitExit(what: string, ms: number): Promise<void> {
    await until(what, ms, () => !this.running()).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.tail()}`);
    });
    assert.equal(this.proc.exitCode, 0, `QEMU ${this.spec.name} exited ${this.proc.exitCode ?? this.proc.signalCode}: ${this.stderr}`);
  }

  async kill(): Promise<void> {
    if (this.running()) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

export async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'vfleet-vm-'));
}

/** A minimal QMP client (greeting, qmp_capabilities, commands in order, events kept): the test's own hands. */
/** The monitor closed: QEMU exited. */
export class QmpGone extends Error {
  constructor() {
    super('QMP socket closed: QEMU exited');
  }
}

export class Qmp {
  readonly events: Array<{ event: string; data?: unknown; at: number }> = [];
  private buf = '';
  private waiting: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  private greeted!: () => void;

  private closed = false;

  private constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => this.onData(d));
    // QEMU exits (vfleet's adapter quits the source once the VM left): what waits for an answer gets none.
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w.reject(new QmpGone());
    });
    sock.on('error', () => {});
  }

  static async connect(path: string, timeoutMs = 30_000): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection(path, () => resolve(s));
          s.once('error', reject);
        });
        const qmp = new Qmp(sock);
        await new Promise<void>((resolve) => (qmp.greeted = resolve));
        await qmp.execute('qmp_capabilities');
        return qmp;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(new QmpGone());
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ resolve: resolve as (v: unknown) => void, reject });
      this.sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private onData(d: Buffer): void {
    this.buf += d;
    for (let i = this.buf.indexOf('\n'); i >= 0; i = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, i).trim();
      this.buf = this.buf.slice(i + 1);
      if (line) this.onMessage(JSON.parse(line) as Record<string, unknown>);
    }
  }

  private onMessage(m: Record<string, unknown>): void {
    if ('QMP' in m) return this.greeted?.();
    if ('event' in m) {
      this.events.push({ event: m.event as string, data: m.data, at: Date.now() });
      return;
    }
    const w = this.waiting.shift();
    if (!w) return;
    if ('error' in m) w.reject(new Error(`QMP: ${JSON.stringify(m.error)}`));
    else w.resolve(m.return);
  }
}

export interface MigrateInfo {
  status?: string;
  downtime?: number;
  'total-time'?: number;
}

/**
 * `query-migrate` every 20 ms until the migration ends: the statuses seen,
 * in order, and QEMU's last answer. It watches a migration whoever started
 * it (the test's `migrate`, or vfleet's agent on its own QMP socket); before
 * one starts QEMU answers without a status.
 */
export async function watchMigration(src: Qmp, timeoutMs = 600_000): Promise<{ statuses: string[]; info: MigrateInfo; trace: string[] }> {
  const statuses: string[] = [];
  // Every answer and event as the watch got it, with its time: what to read when the statuses look wrong.
  const trace: string[] = [];
  const t0 = Date.now();
  const note = (what: string) => trace.push(`+${Date.now() - t0} ms ${what}`);
  const firstEvent = src.events.length;
  let seenEvents = firstEvent;
  // A VM that arrived by migration answers that migration's `completed` until its own starts: not this one's end.
  let stale = (await src.execute<MigrateInfo>('query-migrate')).status;
  note(`first poll: ${stale ?? 'no status'}`);
  const see = (status: string | undefined) => {
    if (!status || status === stale) return;
    stale = undefined;
    if (!statuses.includes(status)) statuses.push(status);
  };
  // MIGRATION events (with the `events` capability on) reach every monitor, and tell the end when QEMU quits right after it.
  const fromEvents = () => {
    for (const e of src.events.slice(seenEvents)) {
      note(`event ${e.event} ${JSON.stringify(e.data ?? {})} (received +${e.at - t0} ms)`);
      if (e.event === 'MIGRATION') see((e.data as { status?: string }).status);
    }
    seenEvents = src.events.length;
  };
  const deadline = Date.now() + timeoutMs;
  let info: MigrateInfo = {};
  let lastPolled: string | undefined;
  for (;;) {
    try {
      info = await src.execute<MigrateInfo>('query-migrate');
    } catch (err) {
      note(`poll failed: ${(err as Error).message}`);
      fromEvents();
      if (err instanceof QmpGone && statuses.includes('completed')) return { statuses, info: { ...info, status: 'completed' }, trace };
      throw err;
    }
    if (info.status !== lastPolled) note(`poll: ${(lastPolled = info.status) ?? 'no status'}`);
    fromEvents();
    see(info.status);
    const end = statuses.find((s) => s === 'completed' || s === 'failed' || s === 'cancelled');
    if (end) return { statuses, info: info.status === end ? info : { status: end }, trace };
    if (Date.now() > deadline) throw new Error(`migration still ${info.status ?? 'not started'} after ${timeoutMs} ms (${statuses.join(' → ')}); ${trace.join('; ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `migrate` to `uri` over the source's QMP, by hand, and its watch. */
export async function migrateByHand(src: Qmp, uri: string, timeoutMs = 600_000): Promise<{ statuses: string[]; info: MigrateInfo; trace: string[] }> {
  await src.execute('migrate', { uri });
  return watchMigration(src, timeoutMs);
}

/** Polls `probe` every 500 ms until it is true. */
export async function until(what: string, ms: number, probe: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out (${ms} ms) waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
