/**
 * A VF netdev handed to a container: into its namespace on attach, back to
 * the host on detach. Both are idempotent: they look where the netdev is
 * first, so a retry after a crash finishes the job.
 *
 * A release never depends on getting a name back. The netdev leaves the
 * namespace under a unique transit name (the port's detach), so the move
 * itself cannot collide; in the host it then takes the first free of its
 * original name, its PF's name plus `v<index>` (systemd's name for a VF),
 * and a name made from its PCI address. On a host without udev renaming,
 * VFs created one after another while the previous one sits in a container
 * all come up as the same `ethN`, so only one of them can have it back.
 */
import type { DesiredAllocation } from '../controller/desired-state.js';
import type { SriovHost } from '../host/configurator.js';
import { SriovError } from '../host/errors.js';
import type { PfInfo } from '../host/model.js';
import { isTransitName, KernelError, type NetnsLink } from '../host/ports.js';
import { isIfName } from '../host/validate.js';

export type ContainerAttachment = Extract<DesiredAllocation['attachment'], { kind: 'container' }>;

export function containerAttachment(a: DesiredAllocation): ContainerAttachment | null {
  return a.attachment?.kind === 'container' ? a.attachment : null;
}

/** Where a VF netdev is: in the namespace, in the host, or nowhere; `nsExists` null when not looked at. */
export interface Whereabouts {
  inNs: NetnsLink | undefined;
  inHost: string | undefined;
  nsExists: boolean | null;
}

/**
 * Where the VF netdev is now. The host's sysfs is looked at first: a netdev
 * it lists under the VF is in the host namespace, so no process is spawned
 * to look into the container's. Only otherwise is the namespace listed
 * (which also tells whether it still exists: a missing path is no error here).
 */
export async function locate(host: SriovHost, a: DesiredAllocation, at: ContainerAttachment): Promise<Whereabouts> {
  const inHost = (await host.ports.sysfs.readVf(a.pciAddress)).netdevs[0];
  if (inHost) return { inNs: undefined, inHost, nsExists: null };
  const links = await linksIfExists(host, at.netns);
  return { inNs: links?.find((l) => l.pciAddress === a.pciAddress), inHost: undefined, nsExists: links !== null };
}

/** The namespace's links, or null when it is gone (ENOENT, or a path that is no namespace: EINVAL). */
async function linksIfExists(host: SriovHost, netns: string): Promise<NetnsLink[] | null> {
  try {
    return await host.ports.netns.links(netns);
  } catch (err) {
    if (err instanceof KernelError && (err.errno === 'ENOENT' || err.errno === 'EINVAL')) return null;
    throw err;
  }
}

/** Whether the container's namespace still exists, asking only when `where` did not find out. */
export async function namespaceAlive(host: SriovHost, at: ContainerAttachment, where: Whereabouts): Promise<boolean> {
  return where.nsExists ?? host.ports.netns.exists(at.netns);
}

/** Whether the VF's netdev is (still) inside the container's namespace. */
export async function inNamespace(host: SriovHost, a: DesiredAllocation, at: ContainerAttachment): Promise<boolean> {
  return (await locate(host, a, at)).inNs !== undefined;
}

/**
 * Moves the VF netdev into the namespace and configures it. Returns the
 * netdev's host name when it moved now, null when it was already there.
 * `where` spares the look when the caller just made it.
 */
export async function ensureAttached(host: SriovHost, pf: PfInfo, a: DesiredAllocation, at: ContainerAttachment, where?: Whereabouts): Promise<string | null> {
  const { inNs, inHost } = where ?? (await locate(host, a, at));
  if (inNs) return null;
  if (!inHost) throw new SriovError('NOT_FOUND', `${pf.name} vf ${a.vfIndex} has no netdev to move (driver ${pf.vfs[a.vfIndex]?.driver ?? 'none'})`, { object: a.pciAddress });
  await kernel(`move ${inHost} into ${at.netns} as ${at.ifname}`, () =>
    host.ports.netns.attach(inHost, at.netns, { ifname: at.ifname, mac: a.config.mac, mtu: a.mtu, addresses: at.ips, routes: a.routes }),
  );
  return inHost;
}

/**
 * Brings the VF netdev back to the host namespace and names it (nameInHost).
 * Throws only while the netdev may still be inside the namespace; a name it
 * cannot have is no failure. Returns its name in the host, if it has a netdev.
 */
export async function ensureDetached(host: SriovHost, pf: PfInfo, a: DesiredAllocation, at: ContainerAttachment): Promise<string | null> {
  const { inNs } = await locate(host, a, at);
  if (inNs) {
    const target = (await firstFree(host, hostNameChoices(pf, a, at))) ?? vfPciName(a.pciAddress);
    try {
      await host.ports.netns.detach(at.netns, inNs.ifname, target);
    } catch (err) {
      // The move out may have worked and only the rename after it failed (EEXIST: the name was taken meanwhile).
      if (!(err instanceof KernelError) || (await inNamespace(host, a, at))) throw kernelError(`move ${inNs.ifname} out of ${at.netns}`, err);
    }
  }
  return nameInHost(host, pf, a, at);
}

/**
 * Gives the VF's host netdev a predictable name when it has none of its own:
 * a transit name, or one that is not its original name (the namespace
 * vanished and the kernel returned it as devN or its in-container name).
 * Without a recorded original name any name but a transit one is kept.
 * Returns the name it ends with; when every choice is taken it keeps the
 * (unique) one it has.
 */
export async function nameInHost(host: SriovHost, pf: PfInfo, a: DesiredAllocation, at: ContainerAttachment): Promise<string | null> {
  const current = (await host.ports.sysfs.readVf(a.pciAddress)).netdevs[0];
  if (!current) return null;
  const choices = hostNameChoices(pf, a, at);
  if (choices.includes(current) || (!at.hostIfName && !isTransitName(current))) return current;
  for (const name of choices) {
    if (await host.ports.sysfs.readNetdev(name)) continue;
    try {
      await host.ports.netns.rename(current, name);
      return name;
    } catch (err) {
      // Taken since the look (EEXIST) or refused: the next choice.
      if (!(err instanceof KernelError)) throw err;
    }
  }
  return current;
}

/** In order of preference: the original name, `<pf>v<index>`, the PCI-address name; only valid interface names. */
export function hostNameChoices(pf: PfInfo, a: DesiredAllocation, at: ContainerAttachment): string[] {
  const names = [at.hostIfName, `${pf.name}v${a.vfIndex}`, vfPciName(a.pciAddress)];
  return [...new Set(names.filter(isIfName))];
}

/** `vf` + domain, bus, slot and function in hex: `0000:3b:02.3` → `vf00003b023`, 11 characters, unique per VF. */
export function vfPciName(pciAddress: string): string {
  return `vf${pciAddress.replace(/[:.]/g, '')}`;
}

async function firstFree(host: SriovHost, names: string[]): Promise<string | undefined> {
  for (const name of names) if (!(await host.ports.sysfs.readNetdev(name))) return name;
  return undefined;
}

export async function kernel(what: string, call: () => Promise<void>): Promise<void> {
  try {
    await call();
  } catch (err) {
    throw kernelError(what, err);
  }
}

export function kernelError(what: string, err: unknown): unknown {
  if (!(err instanceof KernelError)) return err;
  const code = err.errno === 'EEXIST' ? 'CONFLICT' : 'HOST_ERROR';
  return new SriovError(code, `${what}: ${err.message}`, { errno: err.errno, cause: err });
}
