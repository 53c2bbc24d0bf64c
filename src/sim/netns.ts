/**
 * Network namespaces on the simulated host. A namespace is any file or
 * directory at its path (tests make one with mkdtemp or touch and "delete" it
 * with rm); the state records, per VF netdev, which namespace holds it and how
 * it is configured there. As on Linux, a netdev inside a namespace is gone
 * from the host (no `net/` entry under its VF), returns to the host when the
 * namespace vanishes, and dies with its driver.
 */
import { statSync } from 'node:fs';
import { BlockList, isIPv4 } from 'node:net';
import { refuseOwnNetns } from '../host/own-netns.js';
import { IF_SYSCTLS, KernelError, transitName, type ContainerLinkSpec, type IfSysctl, type NetnsLink, type NetnsPort } from '../host/ports.js';
import { parseContainerLinkSpec, parseIfName, parseNetnsPath, parseSysctlKey, parseSysctlValue } from '../host/validate.js';
import { pfOperState } from './cable.js';
import { simProfile } from './profiles.js';
import type { SimPf, SimState, SimVf } from './state.js';
import { vfNetdevMac } from './vf-driver.js';

/** How the port reaches the state: a snapshot to read, or a change under the state lock. */
export interface SimStateAccess {
  read<T>(fn: (state: SimState) => T): Promise<T>;
  update<T>(fn: (state: SimState) => T): Promise<T>;
}

interface Moved {
  pf: SimPf;
  vf: SimVf & { netns: NonNullable<SimVf['netns']> };
}

/** A fresh namespace's only link, as `ip -j addr show` reports it. */
const LOOPBACK: NetnsLink = { ifname: 'lo', pciAddress: null, mac: '00:00:00:00:00:00', mtu: 65536, up: false, addresses: [] };

const fail = (errno: string, op: string, detail: string) => new KernelError(errno, op, `${op}: ${detail}`);

export function nsExists(path: string): boolean {
  const st = statSync(path, { throwIfNoEntry: false });
  return st !== undefined && (st.isFile() || st.isDirectory());
}

// ---- where the netdevs are -------------------------------------------------------

/** Frozen snapshots are scanned once: reads check these VFs only. */
const movedBySnapshot = new WeakMap<SimState, Moved[]>();

function movedVfs(state: SimState): Moved[] {
  const cached = movedBySnapshot.get(state);
  if (cached) return cached;
  const moved = state.pfs.flatMap((pf) => pf.vfs.filter((vf) => vf.netns).map((vf) => ({ pf, vf }) as Moved));
  if (Object.isFrozen(state)) movedBySnapshot.set(state, moved);
  return moved;
}

/** Whether a namespace holding a VF netdev (that of `vfAddress` only, if given) has vanished. */
export function hasOrphans(state: SimState, vfAddress?: string): boolean {
  return movedVfs(state).some(({ vf }) => (vfAddress === undefined || vf.pciAddress === vfAddress) && !nsExists(vf.netns.path));
}

function hostNames(state: SimState): Set<string> {
  return new Set(state.pfs.flatMap((pf) => [pf.name, ...pf.vfs.flatMap((vf) => (vf.netdev ? [vf.netdev] : []))]));
}

/** The kernel's fallback when a returning netdev's name is taken: the first free `devN`. */
function fallbackName(taken: Set<string>): string {
  let n = 0;
  while (taken.has(`dev${n}`)) n++;
  return `dev${n}`;
}

/**
 * The name of a netdev a VF driver has just registered. Under the default
 * udev rule it keeps the driver's `<pf>v<index>`; without it (`kernel`) it
 * gets the first free `eth<N>` in the host namespace, as `eth%d` does, so a
 * name freed by a move into a container goes to the next netdev created.
 */
export function nameNewNetdev(state: SimState, vf: SimVf): void {
  if (state.vfNetdevNames !== 'kernel' || !vf.netdev) return;
  const taken = hostNames(state);
  taken.delete(vf.netdev);
  let n = 0;
  while (taken.has(`eth${n}`)) n++;
  vf.netdev = `eth${n}`;
}

/** Back in the host namespace: down, addresses and routes gone, MTU and MAC kept. */
function toHost(vf: SimVf, name: string): void {
  delete vf.netns;
  vf.netdev = name;
  vf.netdevUp = false;
}

/** What the kernel does as a namespace dies: its physical netdevs return to the host, keeping their name when free. */
export function reclaimOrphans(state: SimState): void {
  for (const { vf } of movedVfs(state)) {
    if (nsExists(vf.netns.path)) continue;
    const taken = hostNames(state);
    toHost(vf, taken.has(vf.netns.ifname) ? fallbackName(taken) : vf.netns.ifname);
  }
}

/** The netdev dies with its driver (unbind, rebind, sriov_numvfs=0), wherever it is. */
export function forgetNetdev(vf: SimVf): void {
  delete vf.netns;
  delete vf.netdevMac;
}

// ---- the operations ------------------------------------------------------------

function linksOf(state: SimState, path: string): Array<{ link: NetnsLink; vf?: SimVf }> {
  if (!nsExists(path)) throw fail('ENOENT', 'ip addr show', `nsenter: cannot open ${path}: No such file or directory`);
  const vfs = movedVfs(state).filter(({ vf }) => vf.netns.path === path);
  const link = ({ pf, vf }: Moved): NetnsLink => ({
    ifname: vf.netns.ifname,
    pciAddress: vf.pciAddress,
    mac: vf.netdevMac ?? vfNetdevMac(pf, vf),
    mtu: vf.netdevMtu,
    up: vf.netdevUp,
    addresses: [...vf.netns.addresses],
  });
  return [{ link: { ...LOOPBACK } }, ...vfs.map((m) => ({ link: link(m), vf: m.vf }))];
}

/** A VF netdev in the host namespace; PFs carry the host's own networking and are not moved. */
function hostVf(state: SimState, name: string, op: string): { pf: SimPf; vf: SimVf } {
  for (const pf of state.pfs) {
    if (pf.name === name) throw fail('EINVAL', op, 'the simulator moves and renames VF netdevs only');
    const vf = pf.vfs.find((v) => v.netdev === name);
    if (vf) return { pf, vf };
  }
  throw fail('ENODEV', op, `Cannot find device "${name}"`);
}

/** What the kernel refuses inside the namespace, after the move (Linux then moves the netdev back). */
function checkInside(pf: SimPf, spec: ContainerLinkSpec, op: string): void {
  if (spec.mtu !== null && spec.mtu > simProfile(pf.profile).maxMtu) throw fail('EINVAL', op, 'Error: mtu greater than device maximum.');
  const onLink = new BlockList();
  for (const cidr of spec.addresses) {
    const [ip = '', len] = cidr.split('/');
    onLink.addSubnet(ip, Number(len), isIPv4(ip) ? 'ipv4' : 'ipv6');
  }
  const unreachable = spec.routes.find((r) => r.gw && !onLink.check(r.gw, isIPv4(r.gw) ? 'ipv4' : 'ipv6'));
  if (unreachable) throw fail('EINVAL', op, `route ${unreachable.dst} via ${unreachable.gw}: Error: Nexthop has invalid gateway.`);
}

function attach(state: SimState, netdev: string, path: string, spec: ContainerLinkSpec): void {
  const op = `attach ${netdev} to ${path} as ${spec.ifname}`;
  if (linksOf(state, path).some(({ link }) => link.ifname === spec.ifname)) {
    throw fail('EEXIST', op, `${spec.ifname} already exists in the namespace; nothing changed`);
  }
  const { pf, vf } = hostVf(state, netdev, op);
  checkInside(pf, spec, op);
  vf.netdev = null;
  vf.netns = { path, ifname: spec.ifname, addresses: [...spec.addresses], routes: spec.routes.map((r) => ({ ...r })) };
  vf.netdevMac = spec.mac;
  if (spec.mtu !== null) vf.netdevMtu = spec.mtu;
  vf.netdevUp = true;
}

/** Moves it out; a taken `hostName` leaves it under a transit name, returned as the error to report once saved. */
function detach(state: SimState, path: string, ifname: string, hostName: string): KernelError | null {
  const op = `detach ${ifname} from ${path}`;
  const found = linksOf(state, path).find(({ link }) => link.ifname === ifname);
  if (!found) throw fail('ENODEV', op, `no ${ifname} in the namespace`);
  if (!found.vf) throw fail('EINVAL', op, `${ifname} cannot leave its namespace`);
  const taken = hostNames(state).has(hostName);
  const name = taken ? transitName() : hostName;
  toHost(found.vf, name);
  return taken ? fail('EEXIST', op, `renaming it ${hostName} in the host namespace failed (File exists); it is in the host namespace as ${name}`) : null;
}

function rename(state: SimState, netdev: string, newName: string): void {
  const op = `rename ${netdev}`;
  const { vf } = hostVf(state, netdev, op);
  if (netdev === newName) return;
  if (hostNames(state).has(newName)) throw fail('EEXIST', op, `${newName}: RTNETLINK answers: File exists`);
  vf.netdevUp = false;
  vf.netdev = newName;
}

/** A link inside the namespace, by name: ENODEV when there is none (`Cannot find device`). */
function insideLink(state: SimState, path: string, ifname: string, op: string): { link: NetnsLink; vf?: SimVf } {
  const found = linksOf(state, path).find(({ link }) => link.ifname === ifname);
  if (!found) throw fail('ENODEV', op, `Cannot find device "${ifname}"`);
  return found;
}

/** A VF netdev inside the namespace; the loopback is the namespace's own and is not changed here. */
function insideVf(state: SimState, path: string, ifname: string, op: string): Moved['vf'] {
  const { vf } = insideLink(state, path, ifname, op);
  if (!vf?.netns) throw fail('EINVAL', op, 'the simulator changes VF netdevs only');
  return vf as Moved['vf'];
}

/** In as `ifname`, down and bare: a move gives a netdev new per-namespace settings (its sysctls start at the defaults). */
function moveIn(state: SimState, netdev: string, path: string, ifname: string): void {
  const op = `move ${netdev} into ${path} as ${ifname}`;
  if (linksOf(state, path).some(({ link }) => link.ifname === ifname)) throw fail('EEXIST', op, `${ifname} already exists in the namespace; nothing changed`);
  const { vf } = hostVf(state, netdev, op);
  vf.netdev = null;
  vf.netns = { path, ifname, addresses: [], routes: [] };
  vf.netdevUp = false;
}

/** Down, as the kernel does it: routes through it go, and so do its IPv6 addresses (keep_addr_on_down is 0); IPv4 ones stay. */
function setDown(state: SimState, path: string, ifname: string): void {
  const vf = insideVf(state, path, ifname, `set ${ifname} down`);
  vf.netdevUp = false;
  vf.netns.routes = [];
  vf.netns.addresses = vf.netns.addresses.filter((cidr) => isIPv4(cidr.split('/')[0] ?? ''));
}

/** Linux before 6.2 renames no netdev that is up (EBUSY, checked first); a name is unique in its namespace. */
function renameIn(state: SimState, path: string, ifname: string, newName: string): void {
  const op = `rename ${ifname} in ${path}`;
  const vf = insideVf(state, path, ifname, op);
  if (vf.netdevUp) throw fail('EBUSY', op, 'RTNETLINK answers: Device or resource busy');
  if (ifname === newName) return;
  if (linksOf(state, path).some(({ link }) => link.ifname === newName)) throw fail('EEXIST', op, `${newName}: RTNETLINK answers: File exists`);
  vf.netns.ifname = newName;
}

/** What differs, in `ip -batch` order: MTU, MAC, addresses added, up, routes replaced by destination. */
function configure(state: SimState, path: string, spec: ContainerLinkSpec): void {
  const op = `configure ${spec.ifname} in ${path}`;
  const vf = insideVf(state, path, spec.ifname, op);
  const pf = state.pfs.find((p) => p.vfs.includes(vf))!;
  checkInside(pf, { ...spec, addresses: [...new Set([...vf.netns.addresses, ...spec.addresses])] }, op);
  if (spec.mtu !== null) vf.netdevMtu = spec.mtu;
  vf.netdevMac = spec.mac;
  vf.netns.addresses = [...new Set([...vf.netns.addresses, ...spec.addresses])];
  vf.netdevUp = true;
  const replaced = new Set(spec.routes.map((r) => r.dst));
  vf.netns.routes = [...vf.netns.routes.filter((r) => !replaced.has(r.dst)), ...spec.routes.map((r) => ({ ...r }))];
}

/** `/proc/sys/net/<family>/conf/IF/KEY` inside; the simulated namespaces all have IPv6. */
function sysctlOf(state: SimState, path: string, ifname: string, key: IfSysctl): 0 | 1 {
  return insideVf(state, path, ifname, `read ${IF_SYSCTLS[key]}.conf.${ifname}.${key}`).netns.sysctls?.[key] ?? 0;
}

function writeSysctl(state: SimState, path: string, ifname: string, key: IfSysctl, value: 0 | 1): void {
  const vf = insideVf(state, path, ifname, `write ${IF_SYSCTLS[key]}.conf.${ifname}.${key}`);
  vf.netns.sysctls = { ...vf.netns.sysctls, [key]: value };
}

/** Carrier, as the simulated VF netdev reports it (sim-host.ts): up, and its link forced on or following an up PF. */
function announce(state: SimState, path: string, ifname: string): boolean {
  return insideVf(state, path, ifname, `announce ${ifname}`).netdevUp && linkWouldCome(state, path, ifname);
}

/** Whether the VF would have carrier once up: its link forced on, or following an up PF. */
function linkWouldCome(state: SimState, path: string, ifname: string): boolean {
  const vf = insideVf(state, path, ifname, `warm ${ifname}`);
  const pf = state.pfs.find((p) => p.vfs.includes(vf))!;
  return vf.linkState === 'enable' || (vf.linkState === 'auto' && pfOperState(pf) === 'up');
}

/** The NetnsPort of a simulated host: the same validation and errnos as `host/linux/netns.ts`. */
export function simNetnsPort(access: SimStateAccess): NetnsPort {
  return {
    exists: async (nsPath) => nsExists(parseNetnsPath(nsPath)),
    links: async (nsPath) => {
      const path = parseNetnsPath(nsPath);
      return access.read((s) => linksOf(s, path).map(({ link }) => link));
    },
    attach: async (netdev, nsPath, spec) => {
      const [dev, path, want] = [parseIfName(netdev), parseNetnsPath(nsPath), parseContainerLinkSpec(spec)];
      await refuseOwnNetns(path, `attach ${dev} to ${path} as ${want.ifname}`);
      await access.update((s) => attach(s, dev, path, want));
    },
    detach: async (nsPath, ifname, hostName) => {
      const [path, name, target] = [parseNetnsPath(nsPath), parseIfName(ifname), parseIfName(hostName)];
      const failure = await access.update((s) => detach(s, path, name, target));
      if (failure) throw failure;
    },
    rename: async (netdev, newName) => {
      const [dev, name] = [parseIfName(netdev), parseIfName(newName)];
      await access.update((s) => rename(s, dev, name));
    },
    moveIn: async (netdev, nsPath, ifname) => {
      const [dev, path, name] = [parseIfName(netdev), parseNetnsPath(nsPath), parseIfName(ifname)];
      await refuseOwnNetns(path, `move ${dev} into ${path} as ${name}`);
      await access.update((s) => moveIn(s, dev, path, name));
    },
    setDown: async (nsPath, ifname) => {
      const [path, name] = [parseNetnsPath(nsPath), parseIfName(ifname)];
      await access.update((s) => setDown(s, path, name));
    },
    renameIn: async (nsPath, ifname, newName) => {
      const [path, name, target] = [parseNetnsPath(nsPath), parseIfName(ifname), parseIfName(newName)];
      await access.update((s) => renameIn(s, path, name, target));
    },
    configure: async (nsPath, spec) => {
      const [path, want] = [parseNetnsPath(nsPath), parseContainerLinkSpec(spec)];
      await access.update((s) => configure(s, path, want));
    },
    readSysctl: async (nsPath, ifname, key) => {
      const [path, name, k] = [parseNetnsPath(nsPath), parseIfName(ifname), parseSysctlKey(key)];
      return access.read((s) => sysctlOf(s, path, name, k));
    },
    // The simulated link has carrier at once or not at all: no wait. Setting the MAC it has changes nothing here.
    announce: async (nsPath, ifname) => {
      const [path, name] = [parseNetnsPath(nsPath), parseIfName(ifname)];
      return access.read((s) => announce(s, path, name));
    },
    // The simulated link has carrier at once or not at all: nothing to warm, nothing left up.
    warm: async (nsPath, ifname) => {
      const [path, name] = [parseNetnsPath(nsPath), parseIfName(ifname)];
      return access.read((s) => linkWouldCome(s, path, name));
    },
    writeSysctl: async (nsPath, ifname, key, value) => {
      const [path, name, k] = [parseNetnsPath(nsPath), parseIfName(ifname), parseSysctlKey(key)];
      const v = parseSysctlValue(value, k);
      await access.update((s) => writeSysctl(s, path, name, k, v));
    },
  };
}
