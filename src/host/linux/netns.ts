/**
 * Network namespaces on a Linux host (field notes §5): a VF netdev handed to a
 * container is moved with `ip link set dev X netns PATH` and configured from
 * inside with `nsenter --net=PATH ip -batch -`. Every value reaching a batch
 * line has been validated, so none can add words to it.
 */
import { errnoFromMessage } from '../errors.js';
import { IF_SYSCTLS, KernelError, transitName, type ContainerLinkSpec, type IfSysctl, type NetnsLink, type NetnsPort } from '../ports.js';
import { refuseOwnNetns } from '../own-netns.js';
import { isPciAddress, parseContainerLinkSpec, parseIfName, parseNetnsPath, parsePciAddress, parseSysctlKey, parseSysctlValue } from '../validate.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { run, type RunResult } from './exec.js';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The errno in stderr of ip or nsenter ("RTNETLINK answers: File exists", "nsenter: cannot open P: No such file..."). */
export function netnsErrno(stderr: string): string {
  const errno = errnoFromMessage(stderr);
  if (errno) return errno;
  if (/does not exist/.test(stderr)) return 'ENODEV';
  if (/No such file or directory/.test(stderr)) return 'ENOENT';
  // Extended-ack answers ("Error: mtu greater than device maximum.") name no errno; the kernel sends EINVAL for nearly all.
  return /^Error: /m.test(stderr) ? 'EINVAL' : 'EIO';
}


/**
 * Our own network namespace, as a path that still names it from inside
 * another one: `/proc/self` there would be the `ip` process, already moved.
 */
const hostNetns = () => `/proc/${process.pid}/ns/net`;

/** "198.18.0.10/24" from one `addr_info` entry; IPv6 link-local (fe80::/10) is the kernel's, not ours. */
function cidrOf(a: unknown): string | null {
  if (!isObject(a) || typeof a.local !== 'string' || typeof a.prefixlen !== 'number') return null;
  if (a.family === 'inet6' && /^fe[89ab]/i.test(a.local)) return null;
  return `${a.local}/${a.prefixlen}`;
}

function pciOf(link: Json): string | null {
  const dev = link.parentdev;
  return link.parentbus === 'pci' && typeof dev === 'string' && isPciAddress(dev) ? parsePciAddress(dev) : null;
}

function netnsLink(link: Json): NetnsLink {
  const flags = Array.isArray(link.flags) ? link.flags : [];
  const addrs = Array.isArray(link.addr_info) ? link.addr_info : [];
  return {
    ifname: String(link.ifname),
    pciAddress: pciOf(link),
    mac: typeof link.address === 'string' ? link.address.toLowerCase() : null,
    mtu: typeof link.mtu === 'number' ? link.mtu : null,
    up: flags.includes('UP'),
    addresses: addrs.map(cidrOf).filter((c): c is string => c !== null),
  };
}

/** The parsed output of `ip -j -d addr show`. */
export function parseNetnsLinksJson(json: unknown): NetnsLink[] {
  if (!Array.isArray(json)) throw new KernelError('EPROTO', 'ip addr show', 'ip addr show: no list of links in the JSON output');
  return json.filter(isObject).map(netnsLink);
}

/**
 * The lines `ip -j -d -batch` runs inside the namespace to make netdev
 * `transit` look like `spec`, and a last one that shows it (the read-back,
 * in the same process: set lines print nothing under -j).
 */
function configureLines(transit: string, spec: ContainerLinkSpec): string[] {
  const dev = spec.ifname;
  return [
    `link set dev ${transit} name ${dev}`,
    ...(spec.mtu === null ? [] : [`link set dev ${dev} mtu ${spec.mtu}`]),
    `link set dev ${dev} address ${spec.mac}`,
    ...spec.addresses.map((cidr) => `addr add ${cidr} dev ${dev}`),
    `link set dev ${dev} up`,
    ...spec.routes.map((r) => `route add ${r.dst}${r.gw ? ` via ${r.gw}` : ''} dev ${dev}`),
    `addr show dev ${dev}`,
  ];
}

/** What of `spec` the link read back inside does not show (empty: it is configured). */
function unlike(link: NetnsLink | undefined, spec: ContainerLinkSpec): string[] {
  if (!link) return ['no link was shown'];
  const wrong: string[] = [];
  if (link.mac !== spec.mac) wrong.push(`MAC ${link.mac}`);
  if (spec.mtu !== null && link.mtu !== spec.mtu) wrong.push(`MTU ${link.mtu}`);
  if (!link.up) wrong.push('down');
  for (const cidr of spec.addresses) if (!link.addresses.includes(cidr)) wrong.push(`no ${cidr}`);
  return wrong;
}

/**
 * The lines that make `link` (already inside) look like `spec`, changing
 * only what differs, and a last one that shows it. `replace` for addresses
 * and routes: a line that finds it done does nothing.
 */
function reconfigureLines(link: NetnsLink, spec: ContainerLinkSpec): string[] {
  const dev = spec.ifname;
  return [
    ...(spec.mtu !== null && link.mtu !== spec.mtu ? [`link set dev ${dev} mtu ${spec.mtu}`] : []),
    ...(link.mac !== spec.mac ? [`link set dev ${dev} address ${spec.mac}`] : []),
    ...spec.addresses.filter((cidr) => !link.addresses.includes(cidr)).map((cidr) => `addr replace ${cidr} dev ${dev}`),
    ...(link.up ? [] : [`link set dev ${dev} up`]),
    ...spec.routes.map((r) => `route replace ${r.dst}${r.gw ? ` via ${r.gw}` : ''} dev ${dev}`),
    `addr show dev ${dev}`,
  ];
}

/** `/proc/sys/net/ipv4/conf/IF/arp_notify`: both parts validated (an interface name has no `/` and starts with no `.`). */
function sysctlPath(ifname: string, key: IfSysctl): string {
  return `/proc/sys/net/${IF_SYSCTLS[key]}/conf/${parseIfName(ifname)}/${key}`;
}


/** How long an announce waits for a VF's carrier, and how often it looks. */
const ANNOUNCE_WAIT_MS = 5_000;
const ANNOUNCE_POLL_MS = 100;

/** Carrier (LOWER_UP) and MAC of the one link `ip -j link show dev IF` printed; null when it printed none. */
export function carrierOf(stdout: string): { carrier: boolean; mac: string } | null {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    return null;
  }
  const link = Array.isArray(json) ? json[0] : null;
  if (!isObject(link) || typeof link.address !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(link.address)) return null;
  const flags = Array.isArray(link.flags) ? link.flags : [];
  return { carrier: flags.includes('LOWER_UP') && flags.includes('UP'), mac: link.address.toLowerCase() };
}

/**
 * Inside: down, addresses flushed, renamed `newName` and moved to our
 * namespace. Each line is `ip ...` minus the `ip`.
 */
function moveOutLines(name: string, newName: string): string[] {
  return [
    `link set dev ${name} down`,
    `addr flush dev ${name}`,
    `link set dev ${name} name ${newName}`,
    `link set dev ${newName} netns ${hostNetns()}`,
  ];
}

/**
 * Whether a validated namespace path can stand as one word of a batch line:
 * `ip -batch` splits on blanks and reads quotes and `#`, so a path with any
 * of those goes through an argument vector instead.
 */
const batchWord = (path: string) => /^[^\s"'\\#]+$/.test(path);

/** An `ip -batch` run that stopped: at which line (null when none ran: nsenter itself failed), and why. */
interface BatchFailure {
  line: string | null;
  index: number | null;
  errno: string;
  message: string;
}

function batchFailure(lines: string[], res: RunResult): BatchFailure {
  const n = /Command failed -:(\d+)/.exec(res.stderr)?.[1];
  const index = n === undefined ? null : Number(n) - 1;
  const message = res.stderr.trim() || `exit ${res.code}`;
  return { line: index === null ? null : (lines[index] ?? null), index, errno: netnsErrno(res.stderr), message };
}

const describeFailure = (f: BatchFailure) => (f.line ? `"${f.line}" failed: ${f.message}` : f.message);

export class LinuxNetns implements NetnsPort {
  constructor(
    private readonly ipPath = 'ip',
    private readonly nsenterPath = 'nsenter',
  ) {}

  /** `nsenter --net=P true`: entering is the test; a missing path is ENOENT, a file that is no namespace EINVAL. */
  async exists(nsPath: string): Promise<boolean> {
    const path = parseNetnsPath(nsPath);
    const res = await run(this.nsenterPath, [`--net=${path}`, 'true']);
    if (res.code === 0) return true;
    const errno = netnsErrno(res.stderr);
    if (errno === 'ENOENT' || errno === 'EINVAL') return false;
    throw new KernelError(errno, 'nsenter', res.stderr.trim());
  }

  /** `nsenter --net=P ip -j -d addr show` */
  async links(nsPath: string): Promise<NetnsLink[]> {
    const path = parseNetnsPath(nsPath);
    const res = await run(this.nsenterPath, [`--net=${path}`, this.ipPath, '-j', '-d', 'addr', 'show']);
    if (res.code !== 0) throw new KernelError(netnsErrno(res.stderr), 'ip addr show', `${path}: ${res.stderr.trim()}`);
    try {
      return parseNetnsLinksJson(JSON.parse(res.stdout));
    } catch (e) {
      if (e instanceof KernelError) throw e;
      throw new KernelError('EPROTO', 'ip addr show', `ip addr show in ${path}: output is not JSON`);
    }
  }

  /**
   * Three processes: a look inside (the namespace exists, the name is free),
   * down + a transit name + the move in one host batch, then one batch
   * inside that configures the netdev and shows it, which is checked
   * against `spec`. A failure after the move sends the netdev back under its
   * own name before it is reported.
   */
  async attach(netdev: string, nsPath: string, spec: ContainerLinkSpec): Promise<void> {
    const dev = parseIfName(netdev);
    const path = parseNetnsPath(nsPath);
    const want = parseContainerLinkSpec(spec);
    const op = `attach ${dev} to ${path} as ${want.ifname}`;
    await refuseOwnNetns(path, op);
    if ((await this.links(path)).some((l) => l.ifname === want.ifname)) {
      throw new KernelError('EEXIST', op, `${op}: ${want.ifname} already exists in the namespace; nothing changed`);
    }
    const transit = transitName();
    await this.leaveHost(dev, transit, path, op);
    const lines = configureLines(transit, want);
    const res = await this.run(path, lines, true);
    const failure = res.code === 0 ? await this.misconfigured(path, lines, res, want) : batchFailure(lines, res);
    if (!failure) return;
    // Until the rename (line 1) has run, the netdev still carries its transit name.
    const current = failure.index !== null && failure.index > 0 ? want.ifname : transit;
    const undo = await this.bringBack(path, current, dev);
    throw new KernelError(failure.errno, op, `${op}: ${describeFailure(failure)}; ${undo}`);
  }

  /**
   * The read-back of a configure batch (its last line's JSON) against
   * `spec`; null when it matches. An ip that framed the output otherwise is
   * asked again with a show of its own.
   */
  private async misconfigured(path: string, lines: string[], res: RunResult, spec: ContainerLinkSpec): Promise<BatchFailure | null> {
    let link: NetnsLink | undefined;
    try {
      link = parseNetnsLinksJson(JSON.parse(res.stdout))[0];
    } catch {
      link = (await this.links(path)).find((l) => l.ifname === spec.ifname);
    }
    const wrong = unlike(link, spec);
    if (wrong.length === 0) return null;
    return { line: lines.at(-1)!, index: lines.length - 1, errno: 'EIO', message: `the read-back shows ${wrong.join(', ')}` };
  }

  /**
   * One process when `hostName` is free: down, flushed, renamed `hostName`
   * and moved out, all inside. When the name is taken (inside, or in the
   * host by the time it arrives) it goes out under a transit name, which
   * cannot collide, and is renamed `hostName` in the host.
   */
  async detach(nsPath: string, ifname: string, hostName: string): Promise<void> {
    const path = parseNetnsPath(nsPath);
    const name = parseIfName(ifname);
    const target = parseIfName(hostName);
    const op = `detach ${name} from ${path}`;
    // Moving lo fails only after it was downed and renamed: refuse it first.
    if (name === 'lo') throw new KernelError('EINVAL', op, `${op}: lo cannot leave its namespace`);
    const direct = await this.batch(path, moveOutLines(name, target));
    if (!direct) return;
    // Line 1 names the netdev first: there is none of that name (or no namespace: nsenter failed, no line ran).
    if (direct.index === null) throw new KernelError(direct.errno, op, `${op}: ${describeFailure(direct)}`);
    if (direct.index === 0) throw new KernelError('ENODEV', op, `${op}: no ${name} in the namespace`);
    // The rename (line 3) failed: it is still `name`; the move (line 4) failed: it is `target` inside.
    const current = direct.index >= 3 ? target : name;
    const transit = transitName();
    const failure = await this.batch(path, moveOutLines(current, transit));
    if (failure) throw new KernelError(failure.errno, op, `${op}: ${describeFailure(failure)}`);
    // ip link set dev TRANSIT name HOSTNAME
    const res = await run(this.ipPath, ['link', 'set', 'dev', transit, 'name', target]);
    if (res.code === 0) return;
    const why = res.stderr.trim();
    throw new KernelError(netnsErrno(res.stderr), op, `${op}: renaming it ${target} in the host namespace failed (${why}); it is in the host namespace as ${transit}`);
  }

  /** `ip link set dev A down` + `ip link set dev A name B`: a running netdev cannot be renamed. */
  async rename(netdev: string, newName: string): Promise<void> {
    const dev = parseIfName(netdev);
    const name = parseIfName(newName);
    const failure = await this.batch(null, [`link set dev ${dev} down`, `link set dev ${dev} name ${name}`]);
    if (failure) throw new KernelError(failure.errno, `rename ${dev}`, `rename ${dev} to ${name}: ${describeFailure(failure)}`);
  }

  /** A host batch down + transit name + move (as attach), then a rename to `ifname` inside; left down and unconfigured. */
  async moveIn(netdev: string, nsPath: string, ifname: string): Promise<void> {
    const dev = parseIfName(netdev);
    const path = parseNetnsPath(nsPath);
    const name = parseIfName(ifname);
    const op = `move ${dev} into ${path} as ${name}`;
    await refuseOwnNetns(path, op);
    if ((await this.links(path)).some((l) => l.ifname === name)) {
      throw new KernelError('EEXIST', op, `${op}: ${name} already exists in the namespace; nothing changed`);
    }
    const transit = transitName();
    await this.leaveHost(dev, transit, path, op);
    const failure = await this.batch(path, [`link set dev ${transit} name ${name}`]);
    if (!failure) return;
    const undo = await this.bringBack(path, transit, dev);
    throw new KernelError(failure.errno, op, `${op}: ${describeFailure(failure)}; ${undo}`);
  }

  /** `nsenter --net=P ip link set dev NAME down` */
  async setDown(nsPath: string, ifname: string): Promise<void> {
    const [path, name] = [parseNetnsPath(nsPath), parseIfName(ifname)];
    const failure = await this.batch(path, [`link set dev ${name} down`]);
    if (failure) throw new KernelError(failure.errno, `set ${name} down`, `set ${name} down in ${path}: ${describeFailure(failure)}`);
  }

  /** `nsenter --net=P ip link set dev NAME name NEW`: the kernel answers EBUSY while it is up, EEXIST when NEW is taken. */
  async renameIn(nsPath: string, ifname: string, newName: string): Promise<void> {
    const [path, name, target] = [parseNetnsPath(nsPath), parseIfName(ifname), parseIfName(newName)];
    const op = `rename ${name} in ${path}`;
    const failure = await this.batch(path, [`link set dev ${name} name ${target}`]);
    if (failure) throw new KernelError(failure.errno, op, `${op} to ${target}: ${describeFailure(failure)}`);
  }

  /** A look inside, then one batch of what differs (`ip -j -d -batch`), checked against `spec` by its read-back. */
  async configure(nsPath: string, spec: ContainerLinkSpec): Promise<void> {
    const path = parseNetnsPath(nsPath);
    const want = parseContainerLinkSpec(spec);
    const op = `configure ${want.ifname} in ${path}`;
    const link = (await this.links(path)).find((l) => l.ifname === want.ifname);
    if (!link) throw new KernelError('ENODEV', op, `${op}: no ${want.ifname} in the namespace`);
    const lines = reconfigureLines(link, want);
    const res = await this.run(path, lines, true);
    const failure = res.code === 0 ? await this.misconfigured(path, lines, res, want) : batchFailure(lines, res);
    if (failure) throw new KernelError(failure.errno, op, `${op}: ${describeFailure(failure)}`);
  }

  /** `nsenter --net=P cat /proc/sys/net/ipv4/conf/IF/KEY`; null when the entry is missing but the interface is there. */
  async readSysctl(nsPath: string, ifname: string, key: IfSysctl): Promise<number | null> {
    const path = parseNetnsPath(nsPath);
    const file = sysctlPath(ifname, parseSysctlKey(key));
    const res = await run(this.nsenterPath, [`--net=${path}`, 'cat', file]);
    if (res.code === 0) {
      const value = Number(res.stdout.trim());
      if (Number.isInteger(value)) return value;
      throw new KernelError('EPROTO', `read ${key}`, `read ${file} in ${path}: not a number`);
    }
    await this.sysctlFailure(path, ifname, `read ${key}`, res);
    return null;
  }

  /**
   * `sysctl -w net.ipv4.conf.IF.KEY=V` inside, as a write of its /proc/sys
   * file through `tee` (no shell; procps' sysctl would read the dots of a
   * VLAN interface's name as separators). /proc/sys/net is the namespace of
   * the process that opens it, so the write lands in the container's.
   */
  async writeSysctl(nsPath: string, ifname: string, key: IfSysctl, value: 0 | 1): Promise<void> {
    const path = parseNetnsPath(nsPath);
    const file = sysctlPath(ifname, parseSysctlKey(key));
    const v = parseSysctlValue(value, key);
    const res = await run(this.nsenterPath, [`--net=${path}`, 'tee', file], { input: `${v}\n` });
    if (res.code === 0) return;
    await this.sysctlFailure(path, ifname, `write ${key}`, res);
    throw new KernelError('ENOENT', `write ${key}`, `write ${file} in ${path}: ${res.stderr.trim()}`);
  }

  /**
   * `nsenter --net=P ip -j link show dev IF` until it shows LOWER_UP (a few
   * seconds at most), then `ip link set dev IF address MAC` with its own MAC.
   */
  async announce(nsPath: string, ifname: string): Promise<boolean> {
    const [path, name] = [parseNetnsPath(nsPath), parseIfName(ifname)];
    const op = `announce ${name} in ${path}`;
    const mac = await this.carrierWithin(path, name, op);
    if (mac === null) return false;
    const failure = await this.batch(path, [`link set dev ${name} address ${mac}`]);
    if (failure) throw new KernelError(failure.errno, op, `${op}: ${describeFailure(failure)}`);
    return true;
  }

  /** See NetnsPort.warm. The addrgenmode lines may fail where IPv6 is off: then there is nothing to keep quiet. */
  async warm(nsPath: string, ifname: string): Promise<boolean> {
    const [path, name] = [parseNetnsPath(nsPath), parseIfName(ifname)];
    const op = `warm ${name} in ${path}`;
    await this.batch(path, [`link set dev ${name} addrgenmode none`]);
    try {
      const failure = await this.batch(path, [`link set dev ${name} up`]);
      if (failure) throw new KernelError(failure.errno, op, `${op}: ${describeFailure(failure)}`);
      return (await this.carrierWithin(path, name, op)) !== null;
    } finally {
      await this.batch(path, [`link set dev ${name} down`]);
      await this.batch(path, [`link set dev ${name} addrgenmode eui64`]);
    }
  }

  /** `nsenter --net=P ip -j link show dev IF` until it shows LOWER_UP, for ANNOUNCE_WAIT_MS at most: its MAC then, else null. */
  private async carrierWithin(path: string, name: string, op: string): Promise<string | null> {
    const deadline = Date.now() + ANNOUNCE_WAIT_MS;
    for (;;) {
      const res = await run(this.nsenterPath, [`--net=${path}`, this.ipPath, '-j', 'link', 'show', 'dev', name]);
      if (res.code !== 0) throw new KernelError(netnsErrno(res.stderr), op, `${op}: ${res.stderr.trim()}`);
      const link = carrierOf(res.stdout);
      if (!link) throw new KernelError('EPROTO', op, `${op}: ip link show printed no link`);
      if (link.carrier) return link.mac;
      if (Date.now() >= deadline) return null;
      await sleep(ANNOUNCE_POLL_MS);
    }
  }

  /** After a failed sysctl access: ENODEV when the interface is not there, another errno as it came; returns on a missing entry. */
  private async sysctlFailure(path: string, ifname: string, op: string, res: RunResult): Promise<void> {
    const errno = netnsErrno(res.stderr);
    if (errno !== 'ENOENT') throw new KernelError(errno, op, `${op} of ${ifname} in ${path}: ${res.stderr.trim()}`);
    // Missing: the namespace (links says ENOENT), the interface, or only this family's entry (IPv6 off).
    if (!(await this.links(path)).some((l) => l.ifname === ifname)) throw new KernelError('ENODEV', op, `${op}: no ${ifname} in ${path}`);
  }

  /**
   * Down and renamed `transit` in the host, then `ip link set dev TRANSIT netns P`
   * (iproute2 opens P as a file since it contains '/'). Undoes the rename when the move fails.
   */
  private async leaveHost(dev: string, transit: string, path: string, op: string): Promise<void> {
    const rename = [`link set dev ${dev} down`, `link set dev ${dev} name ${transit}`];
    const move = `link set dev ${transit} netns ${path}`;
    const failure = await this.batch(null, batchWord(path) ? [...rename, move] : rename);
    // Failed before the move (line 3): the rename did not run, or nothing did.
    if (failure && failure.index !== 2) throw new KernelError(failure.errno, op, `${op}: ${describeFailure(failure)}`);
    let why: { errno: string; message: string } | null = failure;
    if (!batchWord(path)) {
      // ip link set dev TRANSIT netns PATH
      const res = await run(this.ipPath, ['link', 'set', 'dev', transit, 'netns', path]);
      why = res.code === 0 ? null : { errno: netnsErrno(res.stderr), message: res.stderr.trim() };
    }
    if (!why) return;
    // ip link set dev TRANSIT name DEV
    const back = await run(this.ipPath, ['link', 'set', 'dev', transit, 'name', dev]);
    const undo = back.code === 0 ? `${dev} is back, down` : `renaming it back failed too: it is ${transit} in the host`;
    throw new KernelError(why.errno, op, `${op}: ip link set netns failed: ${why.message}; ${undo}`);
  }

  /** Undo of a failed attach; says where the netdev ended up, as the error text's last words. */
  private async bringBack(path: string, current: string, dev: string): Promise<string> {
    const transit = transitName();
    const failure = await this.batch(path, moveOutLines(current, transit));
    if (failure) return `moving it back failed (${describeFailure(failure)}): it is still in ${path}`;
    // ip link set dev TRANSIT name DEV
    const res = await run(this.ipPath, ['link', 'set', 'dev', transit, 'name', dev]);
    return res.code === 0 ? `moved back to the host as ${dev}, down` : `moved back to the host as ${transit} (${res.stderr.trim()})`;
  }

  /** `ip -batch -` in the host (`path` null) or `nsenter --net=P ip -batch -`; stops at the first failing line. */
  private async batch(path: string | null, lines: string[]): Promise<BatchFailure | null> {
    const res = await this.run(path, lines, false);
    return res.code === 0 ? null : batchFailure(lines, res);
  }

  /** The batch run itself; `json`: `ip -j -d -batch -`, for lines that show. */
  private run(path: string | null, lines: string[], json: boolean): Promise<RunResult> {
    const ip = [this.ipPath, ...(json ? ['-j', '-d'] : []), '-batch', '-'];
    const [cmd, ...args] = path === null ? ip : [this.nsenterPath, `--net=${path}`, ...ip];
    return run(cmd!, args, { input: `${lines.join('\n')}\n` });
  }
}
