/**
 * The simulated host's state, kept in one JSON file so that separate
 * processes (sriovctl, sriovd, tests) see the same host. Writes are atomic
 * (temp file + rename) so a reader never sees half a file, and every
 * read-modify-write runs under a cross-process lock file.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, type BigIntStats } from 'node:fs';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SriovError, invalid } from '../host/errors.js';
import type { EswitchMode, RateLimits, RateNode, VfConfig, VfStats } from '../host/model.js';
import type { IfSysctl, NetnsRoute } from '../host/ports.js';
import { isHostName, isIfName, shown } from '../host/validate.js';
import { isSimProfileName, simProfile, simProfileNames, type SimProfileName } from './profiles.js';

export const SIM_STATE_VERSION = 1;

export interface SimVf extends VfConfig {
  index: number;
  pciAddress: string;
  driver: string | null;
  driverOverride: string | null;
  /** `<pf>v<index>` while bound to the netdev VF driver, else null. */
  netdev: string | null;
  netdevMtu: number;
  netdevUp: boolean;
  iommuGroup: number;
  /** i40e: the VF is still in its post-creation reset; the next op on it gets EAGAIN. */
  pendingReset: boolean;
  /** Counters accumulated up to `statsSince`. */
  stats: VfStats;
  /** Epoch ms since which the VF has been passing traffic; null while idle. */
  statsSince: number | null;
  /** Set while the netdev is in another network namespace (`netdev` is then null): see sim/netns.ts. */
  netns?: SimNetnsLink;
  /** The MAC set on the netdev itself (it survives namespace moves); absent: derived from the admin MAC. */
  netdevMac?: string;
  /** Its devlink rate leaf in switchdev mode (sim/devlink.ts); absent: no rates, no parent. */
  rateLeaf?: RateLimits & { parent: string | null };
}

/** A devlink rate node of the PF (switchdev mode only). */
export type SimRateNode = RateNode;

/** A VF netdev inside a network namespace; its MTU and up flag stay in `netdevMtu`/`netdevUp`. */
export interface SimNetnsLink {
  /** The namespace's path (normalized); the namespace lives as long as a file or directory is there. */
  path: string;
  ifname: string;
  addresses: string[];
  routes: NetnsRoute[];
  /** Its per-interface sysctls in the namespace that were written (`arp_notify`...); absent: the default, 0. */
  sysctls?: Partial<Record<IfSysctl, 0 | 1>>;
}

export interface SimPf {
  name: string;
  pciAddress: string;
  profile: SimProfileName;
  driver: string;
  mac: string;
  mtu: number;
  /** Administrative state (`ip link set up`); what the netdev reports is `pfOperState` (a pulled cable reads down). */
  operState: 'up' | 'down';
  /** true while the cable is pulled (sim/cable.ts): no carrier, so the link reads down and has no speed. */
  noCarrier?: boolean;
  speedMbps: number;
  numaNode: number;
  localCpus: string;
  iommuGroup: number;
  /** VF n gets iommu group `vfIommuGroupBase + n`. */
  vfIommuGroupBase: number;
  numVfs: number;
  autoprobe: boolean;
  eswitchMode: EswitchMode | null;
  vfs: SimVf[];
  /** devlink rate nodes (sim/devlink.ts). */
  rateNodes?: SimRateNode[];
}

export interface SimState {
  version: typeof SIM_STATE_VERSION;
  hostname: string;
  /**
   * The simulated kernel's boot id (a UUID), one per state file: agents on
   * one file share a "kernel". A file written without one gets one when it
   * is first asked for (`simBootId`).
   */
  bootId?: string;
  pfs: SimPf[];
  /**
   * How a new VF netdev is named: `predictable` (absent) as udev/systemd renames it, `<pf>v<index>`;
   * `kernel` as a host without that rule (the lab guest): the first free `eth<N>` (sim/netns.ts).
   */
  vfNetdevNames?: 'predictable' | 'kernel';
}

export interface SimInitOptions {
  profile: string;
  pfs?: number;
  numaNodes?: number;
  hostname?: string;
  /** Replace an existing file; without it, init refuses to destroy a simulated host. */
  overwrite?: boolean;
}

// ---- topology: names, addresses, NUMA placement ----------------------------

/** Root-port buses of a two-socket server; further cards go to new PCI domains. */
const CARD_BUSES = [0x3b, 0x5e, 0x86, 0xaf, 0xd8];
const PORTS_PER_CARD = 2;
const CPUS_PER_NODE = 16;
/** VF routing IDs start this far past the card's function 0 (like First VF Offset). */
const VF_RID_OFFSET = 0x10;

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

function bdf(domain: number, rid: number): string {
  return `${hex(domain, 4)}:${hex(rid >> 8, 2)}:${hex((rid >> 3) & 0x1f, 2)}.${rid & 7}`;
}

function parseBdf(address: string): { domain: number; rid: number } {
  const [d = '0', b = '0', sf = '0.0'] = address.split(':');
  const [s = '0', f = '0'] = sf.split('.');
  return { domain: parseInt(d, 16), rid: (parseInt(b, 16) << 8) | (parseInt(s, 16) << 3) | parseInt(f, 16) };
}

/**
 * VF `index` of the PF at `pfAddress`. Each port gets its own block of
 * `totalVfs` routing IDs, and cards sit far enough apart (buses 0x23 apart,
 * at most 0x210 IDs per card) that no two devices ever share an address.
 */
export function vfPciAddress(pfAddress: string, totalVfs: number, index: number): string {
  const { domain, rid } = parseBdf(pfAddress);
  const port = rid & 7;
  const cardRid = rid & ~0xff;
  return bdf(domain, cardRid + VF_RID_OFFSET + port * totalVfs + index);
}

function cpuList(node: number): string {
  return `${node * CPUS_PER_NODE}-${node * CPUS_PER_NODE + CPUS_PER_NODE - 1}`;
}

/**
 * The NIC-specific half of a PF's MAC: 24 bits hashed from host, card and
 * port. The controller takes PF MAC + PCI address as a PF's identity, so
 * simulated hosts must not share MACs (one hash byte did, 1 time in 256).
 */
function pfMacSuffix(hostname: string, card: number, port: number): string {
  const h = createHash('sha256').update(`${hostname}/${card}/${port}`).digest();
  return [h[0]!, h[1]!, h[2]!].map((b) => hex(b, 2)).join(':');
}

/**
 * Ports per card. A dual-socket server has a card on each socket's root
 * ports, and both ports of a card sit on that card's node. So PFs come two to
 * a card, unless that leaves a NUMA node without a PF: then single-port cards,
 * one per node (`--pfs 2 --numa-nodes 2` is one port on each socket).
 */
export function portsPerCard(pfs: number, numaNodes: number): number {
  return Math.min(pfs, numaNodes) > Math.ceil(pfs / PORTS_PER_CARD) ? 1 : PORTS_PER_CARD;
}

function buildPf(i: number, opts: Required<SimInitOptions>): SimPf {
  const profile = simProfile(opts.profile);
  const ports = portsPerCard(opts.pfs, opts.numaNodes);
  const card = Math.floor(i / ports);
  const port = i % ports;
  const domain = Math.floor(card / CARD_BUSES.length);
  const bus = CARD_BUSES[card % CARD_BUSES.length] ?? 0;
  // Cards alternate between sockets; both ports of a card hang off its root port, hence its node.
  const numaNode = card % opts.numaNodes;
  return {
    name: `ens${card + 1}f${port}`,
    pciAddress: bdf(domain, (bus << 8) | port),
    profile: profile.name,
    driver: profile.pfDriver,
    mac: `${profile.oui}:${pfMacSuffix(opts.hostname, card, port)}`,
    mtu: 1500,
    operState: 'up',
    speedMbps: profile.speedMbps,
    numaNode,
    localCpus: cpuList(numaNode),
    iommuGroup: 20 + i,
    vfIommuGroupBase: 1000 + i * profile.totalVfs,
    numVfs: 0,
    autoprobe: true,
    eswitchMode: profile.hasEswitch ? 'legacy' : null,
    vfs: [],
  };
}

function checkCount(value: number, what: string, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw invalid(`${what} must be a whole number between 1 and ${max}, got ${value}`);
  }
  return value;
}

/** A new host's state, checked as `initSimHost` checks it. */
function newSimState(opts: SimInitOptions): SimState {
  simProfile(opts.profile);
  const full: Required<SimInitOptions> = {
    profile: opts.profile,
    pfs: checkCount(opts.pfs ?? 2, 'pfs', 64),
    numaNodes: checkCount(opts.numaNodes ?? 1, 'numaNodes', 8),
    hostname: opts.hostname ?? 'simhost',
    overwrite: opts.overwrite ?? false,
  };
  return {
    version: SIM_STATE_VERSION,
    hostname: full.hostname,
    bootId: randomUUID(),
    pfs: Array.from({ length: full.pfs }, (_, i) => buildPf(i, full)),
  };
}

/** Create a simulated host with `pfs` PFs of one profile; an existing file only with `overwrite`. */
export async function initSimHost(file: string, opts: SimInitOptions): Promise<void> {
  const state = newSimState(opts);
  const overwrite = opts.overwrite ?? false;
  try {
    await withSimLock(file, async () => {
      await refuseExisting(file, overwrite);
      await writeAtomic(file, serialize(state), true);
    });
  } catch (e) {
    throw fileError(file, e, 'write');
  }
}

async function refuseExisting(file: string, overwrite: boolean): Promise<void> {
  const st = await stat(file).catch((e: unknown) => {
    if (isErrno(e, 'ENOENT')) return null;
    throw e;
  });
  if (st === null) return;
  if (!st.isFile()) throw invalid(`${pathShown(file)} is a directory or device; sim init writes a simulated host to a file`, file);
  if (!overwrite) {
    throw new SriovError('CONFLICT', `${pathShown(file)} already exists; sim init does not overwrite a simulated host (add --force to replace it)`, {
      object: file,
    });
  }
}

// ---- load and save -----------------------------------------------------------

/** Compact: a 64-PF ice host with every VF is ~7 MB this way, half again as much indented (read it with jq). */
function serialize(state: SimState): string {
  return `${JSON.stringify(state)}\n`;
}

/** A 64-PF host with every VF is ~7 MB: anything far larger is not a simulated host. */
export const SIM_STATE_MAX_BYTES = 64 * 1024 * 1024;

const pathShown = (file: string) => shown(file, 200);

/** The file is there but holds something else: refused input, and its bytes are never quoted. */
function notSimFile(file: string, why: string): SriovError {
  return new SriovError('INVALID_ARGUMENT', `${pathShown(file)} is not a simulated host file: ${why} (create one with sim init)`, {
    object: file,
  });
}

const isBootId = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v);

/** The file's boot id, given one under the lock if it has none yet (a file from before boot ids). */
export async function simBootId(file: string): Promise<string> {
  const id = (await readSimState(file)).bootId;
  if (id) return id;
  return updateSimState(file, (state) => (state.bootId ??= randomUUID()));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Enough of the shape that every reader can trust it; the first thing wrong, by its path. */
function shapeProblem(state: unknown): string | null {
  if (!isObject(state)) return 'not a JSON object';
  if (state.version !== SIM_STATE_VERSION) return `version is ${shown(JSON.stringify(state.version) ?? 'missing')}, expected ${SIM_STATE_VERSION}`;
  if (!isHostName(state.hostname)) return 'hostname is not a lower-case DNS name';
  if (state.bootId !== undefined && !isBootId(state.bootId)) return 'bootId is not a UUID';
  if (!Array.isArray(state.pfs)) return 'pfs is not a list';
  for (const [i, pf] of (state.pfs as unknown[]).entries()) {
    if (!isObject(pf)) return `pfs[${i}] is not an object`;
    for (const key of ['name', 'pciAddress', 'driver'] as const) if (typeof pf[key] !== 'string') return `pfs[${i}].${key} is not a string`;
    // Names reach `ip` argument lists and messages: a hand-edited file must not smuggle in a path or a line break.
    if (!isIfName(pf.name)) return `pfs[${i}].name is not an interface name`;
    if (typeof pf.profile !== 'string' || !isSimProfileName(pf.profile)) return `pfs[${i}].profile is not one of ${simProfileNames().join(', ')}`;
    if (!isCount(pf.numVfs) || !Array.isArray(pf.vfs) || pf.vfs.length !== pf.numVfs) return `pfs[${i}].vfs does not hold numVfs VFs`;
    const bad = (pf.vfs as unknown[]).findIndex((vf, n) => !isObject(vf) || vf.index !== n || typeof vf.pciAddress !== 'string');
    if (bad >= 0) return `pfs[${i}].vfs[${bad}] is not VF ${bad}`;
  }
  return null;
}

function parseState(file: string, text: string): SimState {
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch {
    throw notSimFile(file, 'not JSON');
  }
  const problem = shapeProblem(state);
  if (problem) throw notSimFile(file, problem);
  return state as SimState;
}

function missing(file: string, cause: unknown): SriovError {
  return new SriovError('NOT_FOUND', `no simulated host at ${pathShown(file)} (create one with sim init)`, {
    object: file,
    cause,
  });
}

const isErrno = (e: unknown, code: string) => (e as NodeJS.ErrnoException)?.code === code;

const ERRNO_WHY: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ENAMETOOLONG: 'the path is too long',
  ELOOP: 'too many symbolic links',
  EROFS: 'read-only file system',
};

/** A file-system error on the sim file as one line naming the file; other errors pass through. */
function fileError(file: string, e: unknown, verb: 'read' | 'write'): unknown {
  if (e instanceof SriovError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') {
    return verb === 'read' ? missing(file, e) : new SriovError('INVALID_ARGUMENT', `cannot write ${pathShown(file)}: its directory does not exist`, { object: file });
  }
  const why = code && ERRNO_WHY[code];
  if (!why) return e;
  return new SriovError(code === 'EACCES' || code === 'EPERM' ? 'PERMISSION_DENIED' : 'INVALID_ARGUMENT', `cannot ${verb} ${pathShown(file)}: ${why}`, {
    object: file,
    errno: code,
    nothingChanged: true,
  });
}

/** Only a regular file of a plausible size is read at all: never a device, a directory or a huge file. */
function checkFileStat(file: string, st: { isFile(): boolean; size: number | bigint }): void {
  if (!st.isFile()) throw notSimFile(file, 'it is a directory or device, not a file');
  if (Number(st.size) > SIM_STATE_MAX_BYTES) {
    throw notSimFile(file, `it is ${Math.round(Number(st.size) / 2 ** 20)} MB, above the ${SIM_STATE_MAX_BYTES / 2 ** 20} MB a simulated host takes`);
  }
}

/**
 * A cheap look before taking the lock, so that a file that is plainly no
 * simulated host (a directory, /etc/passwd) gets no lock file made beside it.
 * The full check runs under the lock.
 */
async function looksLikeSimFile(file: string): Promise<void> {
  await readChecked(file, async (fh) => {
    const { buffer, bytesRead } = await fh.read({ buffer: Buffer.alloc(64), position: 0 });
    // Not an object: parse it all, for the exact reason (this is the failure path).
    if (!buffer.subarray(0, bytesRead).toString('latin1').trimStart().startsWith('{')) parseState(file, await fh.readFile('utf8'));
  });
}

function readText(file: string): Promise<string> {
  return readChecked(file, (fh) => fh.readFile('utf8'));
}

/** Opens `file` and checks it could be a simulated host before `use` reads it; every failure names the file. */
async function readChecked<T>(file: string, use: (fh: FileHandle) => Promise<T>): Promise<T> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw fileError(file, e, 'read');
  }
  try {
    checkFileStat(file, await fh.stat());
    return await use(fh);
  } catch (e) {
    throw fileError(file, e, 'read');
  } finally {
    await fh.close();
  }
}

/** A fresh, mutable copy of the current state. No lock needed: writers replace the file atomically. */
export async function loadSimState(file: string): Promise<SimState> {
  return parseState(file, await readText(file));
}

// Parsing a large host (64 PFs x 256 VFs is ~7 MB) takes tens of milliseconds,
// and an inventory reads every VF: keep the last parse per file, keyed by the
// identity of the file it came from. The file is never written in place (only
// replaced by rename), so an inode with its size and times names one content.
const snapshots = new Map<string, { key: string; state: SimState }>();

const identity = (st: BigIntStats) => `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

function remember(file: string, key: string, text: string): SimState {
  const state = deepFreeze(parseState(file, text));
  snapshots.set(file, { key, state });
  return state;
}

/**
 * Reads of a file's content in flight, by file and identity: an inventory
 * asks for every VF at once, and each of those callers reading and parsing
 * its own copy (~0.5 MB of text for 4 x 256 VFs, and its parse) held an
 * agent's memory at several times its steady size while they lasted.
 */
const reading = new Map<string, { key: string; state: Promise<SimState> }>();

function readOnce(file: string, key: string, read: () => Promise<string>): Promise<SimState> {
  const inFlight = reading.get(file);
  if (inFlight?.key === key) return inFlight.state;
  const state = read().then((text) => remember(file, key, text));
  reading.set(file, { key, state });
  const done = () => {
    if (reading.get(file)?.state === state) reading.delete(file);
  };
  state.then(done, done);
  return state;
}

/**
 * The current state as a shared, frozen snapshot, for read-only callers.
 * Stat and read go through one open handle, so the key always matches the
 * content even if a writer replaces the file meanwhile.
 */
export async function readSimState(file: string): Promise<SimState> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw fileError(file, e, 'read');
  }
  try {
    const st = await fh.stat({ bigint: true });
    checkFileStat(file, st);
    const key = identity(st);
    const hit = snapshots.get(file);
    return hit?.key === key ? hit.state : await readOnce(file, key, () => fh.readFile('utf8'));
  } catch (e) {
    throw fileError(file, e, 'read');
  } finally {
    await fh.close();
  }
}

/** `readSimState` for the one synchronous port, `hostname()`. */
export function readSimStateSync(file: string): SimState {
  let fd;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw fileError(file, e, 'read');
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    checkFileStat(file, st);
    const key = identity(st);
    const hit = snapshots.get(file);
    return hit?.key === key ? hit.state : remember(file, key, readFileSync(fd, 'utf8'));
  } catch (e) {
    throw fileError(file, e, 'read');
  } finally {
    closeSync(fd);
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Read-modify-write under the lock. `mutate` changes `state` in place and
 * returns a result; the file is rewritten only if something changed, and not
 * at all if `mutate` throws.
 */
export async function updateSimState<T>(file: string, mutate: (state: SimState) => T): Promise<T> {
  await looksLikeSimFile(file);
  return withSimLock(file, async () => {
    const before = await readText(file);
    const state = parseState(file, before);
    const result = mutate(state);
    const after = serialize(state);
    if (after !== before) await writeAtomic(file, after, false);
    return result;
  }).catch((e: unknown) => {
    throw fileError(file, e, 'write');
  });
}

/**
 * Temp file + rename: a reader sees the old or the new state, never half of
 * one. `durable` adds the fsyncs that make the write survive a crash of the
 * machine: for a new host's file. A change to the state is a change to
 * what stands for a kernel's, which a crash loses anyway; its fsyncs were
 * most of what a simulated attach cost (two or three writes of ~3 ms).
 */
async function writeAtomic(file: string, text: string, durable: boolean): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(text);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  if (durable) await syncDir(dirname(file));
}

/** fsync the directory so the rename itself survives a crash. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  } finally {
    await fh.close();
  }
}

// ---- cross-process lock ------------------------------------------------------

/** A holder never keeps the lock this long; past it the holder must have died. */
const LOCK_STALE_MS = 5_000;
const LOCK_TIMEOUT_MS = 20_000;

/** Per-file FIFO of this process's critical sections: no polling among our own callers. */
const queues = new Map<string, Promise<unknown>>();

export function withSimLock<T>(file: string, fn: () => Promise<T> | T): Promise<T> {
  const run = async () => {
    const lockPath = `${file}.lock`;
    await acquire(lockPath);
    try {
      return await fn();
    } finally {
      await unlink(lockPath).catch(() => undefined);
    }
  };
  const next = (queues.get(file) ?? Promise.resolve()).then(run, run);
  const settled = next.then(
    () => undefined,
    () => undefined,
  );
  queues.set(file, settled);
  // Forget the queue once it drains, so long-lived processes do not keep one per file forever.
  void settled.then(() => {
    if (queues.get(file) === settled) queues.delete(file);
  });
  return next;
}

async function acquire(lockPath: string): Promise<void> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(lockPath, 'wx');
      await fh.writeFile(`${process.pid}\n`).finally(() => fh.close());
      return;
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e;
    }
    await breakIfStale(lockPath);
    if (Date.now() > deadline) {
      throw new SriovError('TIMEOUT', `sim state lock ${lockPath} held for too long`, { object: lockPath });
    }
    // Exponential backoff with jitter so waiters do not retry in lockstep.
    await sleep(Math.min(2 ** attempt, 10) + Math.random() * 2);
  }
}

/**
 * Remove a lock left by a dead process. Two waiters can judge the same lock
 * stale at once and the slower one may then remove the faster one's fresh
 * lock; holders keep the lock for milliseconds, so this only matters after a
 * crash, and is the price of staying small.
 */
async function breakIfStale(lockPath: string): Promise<void> {
  try {
    if (Date.now() - (await stat(lockPath)).mtimeMs > LOCK_STALE_MS) await unlink(lockPath);
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw e;
  }
}

// ---- where a host's state lives ------------------------------------------------

/** What a SimHost reads and changes its state through: the state file, or memory. */
export interface SimStateSource {
  /** The current state as a frozen snapshot (indexed once, shared by readers). */
  read(): Promise<SimState>;
  readSync(): SimState;
  /** Read-modify-write, all or nothing: `mutate` changes a fresh copy; nothing changes if it throws. */
  update<T>(mutate: (state: SimState) => T): Promise<T>;
  bootId(): Promise<string>;
}

/** The state file, shared with other processes (the default). */
export function fileSimState(file: string): SimStateSource {
  return {
    read: () => readSimState(file),
    readSync: () => readSimStateSync(file),
    update: (mutate) => updateSimState(file, mutate),
    bootId: () => simBootId(file),
  };
}

/**
 * A host whose state lives only in this process: the fleet simulator's
 * thousand hosts would otherwise spend most of their time opening, parsing
 * and rewriting their files (a 4 x 64-VF host took seconds of CPU to
 * provision that way). Built like `initSimHost`'s file, gone with the process.
 */
export class MemorySimState implements SimStateSource {
  private state: SimState;

  constructor(opts: SimInitOptions) {
    this.state = deepFreeze(newSimState(opts));
  }

  async read(): Promise<SimState> {
    return this.state;
  }

  readSync(): SimState {
    return this.state;
  }

  async update<T>(mutate: (state: SimState) => T): Promise<T> {
    const copy = plainCopy(this.state);
    const result = mutate(copy);
    this.state = deepFreeze(copy);
    return result;
  }

  async bootId(): Promise<string> {
    return this.state.bootId!;
  }
}

/**
 * A deep copy of JSON data (what a state file holds): 54-69 us for a
 * 4 x 64-VF host where structuredClone took 513-521 us, and a VF's attach
 * updates the state several times. It was the fleet simulator's largest cost.
 */
function plainCopy<T>(value: T): T {
  if (Array.isArray(value)) return value.map(plainCopy) as T;
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = plainCopy((value as Record<string, unknown>)[key]);
  return out as T;
}
