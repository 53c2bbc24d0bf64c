/**
 * A container's workload re-homed from one VF to another, make-before-break,
 * inside its network namespace (a migration's `switch` for a container, run
 * by the destination's agent):
 *
 * 1. the new VF's netdev moves in, down, under a temporary name;
 * 2. `arp_notify` and `ndisc_notify` go on for it, so the kernel sends a
 *    gratuitous ARP and an unsolicited neighbour advertisement as it comes up;
 * 3. the old VF's netdev goes down (it shares the MAC: never two live copies
 *    on the wire) and is renamed away, to a temporary name;
 * 4. the new one takes the interface name, MAC, MTU, addresses and routes,
 *    and comes up; once it has carrier, its MAC is set again so that the
 *    kernel announces it from the new port (NetnsPort.announce).
 *
 * The old one stays in the namespace, down: the source allocation's normal
 * release finds it by PCI address, moves it out, scrubs and verifies it.
 *
 * Every step looks before it acts, and the VFs are told apart by PCI address,
 * so a run that stopped anywhere (an agent crash, a kernel refusal) is
 * finished by the next. A failure in step 3 or 4 puts the old interface back as it
 * was and leaves the new one down under its temporary name.
 */
import type { DesiredAllocation } from '../controller/desired-state.js';
import type { SriovHost } from '../host/configurator.js';
import { SriovError } from '../host/errors.js';
import { KernelError, type ContainerLinkSpec, type IfSysctl, type NetnsLink } from '../host/ports.js';
import { kernel, kernelError, vfPciName, type ContainerAttachment } from './container.js';

/** A re-home that failed; `restored`: the old interface is back in service (or there was none to restore). */
export class RehomeFailed extends SriovError {
  constructor(
    message: string,
    readonly restored: boolean,
    cause: unknown,
  ) {
    super(cause instanceof SriovError ? cause.code : 'HOST_ERROR', message, { cause, ...(cause instanceof SriovError ? { object: cause.details.object } : {}) });
  }
}

export interface RehomeOptions {
  /** The old VF's PCI address, when this agent knows the source allocation; else it is found by name and MAC. */
  oldPciAddress?: string;
}

export interface RehomeResult {
  /** The new VF netdev's name in the host, when it moved in on this run. */
  movedFrom: string | null;
  /** Whether the new link had carrier for the final announcement (else only the one sent as it came up went out, if any). */
  announced: boolean;
}

/** The name a VF's netdev waits under inside the namespace: `vf` + its PCI address, unique per VF and predictable on a retry. */
export const standbyName = vfPciName;

/**
 * Runs (or finishes) the re-home of `a`'s workload onto `a`'s VF.
 */
export async function rehome(host: SriovHost, a: DesiredAllocation, at: ContainerAttachment, opts: RehomeOptions = {}): Promise<RehomeResult> {
  const netns = host.ports.netns;
  let links = await linksOrGone(host, at);
  let movedFrom: string | null = null;
  // 1. In, down, under the standby name.
  if (!links.some((l) => l.pciAddress === a.pciAddress)) {
    movedFrom = (await host.ports.sysfs.readVf(a.pciAddress)).netdevs[0] ?? null;
    if (!movedFrom) throw new RehomeFailed(`VF ${a.pciAddress} has no netdev to move into ${at.netns}`, true, null);
    const name = movedFrom;
    await unchanged(`move ${name} into ${at.netns} as ${standbyName(a.pciAddress)}`, () => netns.moveIn(name, at.netns, standbyName(a.pciAddress)));
    links = await linksOrGone(host, at);
  }
  const fresh = linkOf(links, a.pciAddress)!;
  // 2. Announce it when it comes up; its first, slow link-up done now, while the old one still carries the workload.
  await announce(host, at.netns, fresh.ifname);
  if (!fresh.up && fresh.ifname !== at.ifname) await netns.warm(at.netns, fresh.ifname).catch(() => false);
  const old = oldLink(links, a, at, opts.oldPciAddress);
  try {
    // 3. The old one down and out of the way: from here on, the new one may come up.
    if (old) await kernel(`take ${old.ifname} down in ${at.netns}`, () => standBy(host, at.netns, old, at.ifname));
    // 4. The new one in its place.
    if (fresh.ifname !== at.ifname) {
      if (fresh.up) await kernel(`take ${fresh.ifname} down`, () => netns.setDown(at.netns, fresh.ifname));
      await kernel(`rename ${fresh.ifname} to ${at.ifname}`, () => netns.renameIn(at.netns, fresh.ifname, at.ifname));
    }
    await kernel(`configure ${at.ifname} in ${at.netns}`, () => netns.configure(at.netns, specOf(a, at)));
  } catch (err) {
    throw await restore(host, a, at, old?.pciAddress ?? null, err);
  }
  // The workload is on the new VF: an announcement that does not get out is no reason to undo that.
  const announced = await netns.announce(at.netns, at.ifname).catch(() => false);
  return { movedFrom, announced };
}

/**
 * A workload's VF that waits under its standby name while its allocation is
 * no migration's source any more (the migration was rolled back after step
 * 3 ran): back under its interface name, configured and up, once nothing
 * else holds that name (the destination's release moves the new VF out).
 * Returns whether it is back.
 */
export async function reinstate(host: SriovHost, a: DesiredAllocation, at: ContainerAttachment, link: NetnsLink): Promise<boolean> {
  const netns = host.ports.netns;
  if ((await netns.links(at.netns)).some((l) => l.ifname === at.ifname)) return false;
  await kernel(`rename ${link.ifname} to ${at.ifname} in ${at.netns}`, () => netns.renameIn(at.netns, link.ifname, at.ifname));
  await kernel(`configure ${at.ifname} in ${at.netns}`, () => netns.configure(at.netns, { ...specOf(a, at), mac: link.mac ?? a.config.mac }));
  return true;
}

/** The new link's spec: what an attach gives it (the same MAC as the old one). */
function specOf(a: DesiredAllocation, at: ContainerAttachment): ContainerLinkSpec {
  return { ifname: at.ifname, mac: a.config.mac, mtu: a.mtu, addresses: at.ips, routes: a.routes };
}

function linkOf(links: NetnsLink[], pciAddress: string): NetnsLink | undefined {
  return links.find((l) => l.pciAddress === pciAddress);
}

/**
 * The old VF's link: by PCI address when known; else the other PCI netdev
 * that has the interface name, or one under its standby name with the same
 * MAC (a run that stopped after step 3).
 */
function oldLink(links: NetnsLink[], a: DesiredAllocation, at: ContainerAttachment, oldPci: string | undefined): NetnsLink | undefined {
  const others = links.filter((l) => l.pciAddress !== null && l.pciAddress !== a.pciAddress);
  if (oldPci) return others.find((l) => l.pciAddress === oldPci);
  return others.find((l) => l.ifname === at.ifname) ?? others.find((l) => l.ifname === standbyName(l.pciAddress!) && l.mac === a.config.mac);
}

/** Down, then renamed to its standby name if it holds `ifname` (a netdev is renamed only while down). */
async function standBy(host: SriovHost, netns: string, link: NetnsLink, ifname: string): Promise<void> {
  if (link.up) await host.ports.netns.setDown(netns, link.ifname);
  if (link.ifname === ifname) await host.ports.netns.renameIn(netns, link.ifname, standbyName(link.pciAddress!));
}

/** Turns on the kernel's own announcements for `ifname`; a namespace without IPv6 has no `ndisc_notify`, and needs none. */
async function announce(host: SriovHost, netns: string, ifname: string): Promise<void> {
  for (const key of ['arp_notify', 'ndisc_notify'] as IfSysctl[]) {
    try {
      await host.ports.netns.writeSysctl(netns, ifname, key, 1);
    } catch (err) {
      if (key === 'ndisc_notify' && err instanceof KernelError && err.errno === 'ENOENT') continue;
      throw new RehomeFailed(`set ${key} on ${ifname} in ${netns}: ${describe(kernelError(`set ${key}`, err))}`, true, err);
    }
  }
}

/**
 * After a failed step 4: the new link down under its standby name, the old
 * one back under the interface name, configured and up. The error says
 * whether that worked.
 */
async function restore(host: SriovHost, a: DesiredAllocation, at: ContainerAttachment, oldPci: string | null, err: unknown): Promise<RehomeFailed> {
  const why = describe(err);
  const netns = host.ports.netns;
  try {
    const links = await netns.links(at.netns);
    const fresh = linkOf(links, a.pciAddress);
    if (fresh) await standBy(host, at.netns, fresh, at.ifname);
    const old = oldPci ? linkOf(links, oldPci) : undefined;
    if (!old) return new RehomeFailed(`re-home of ${at.ifname} in ${at.netns} onto ${a.pciAddress}: ${why}; the new VF is down, and there was no old one to restore`, true, err);
    if (old.ifname !== at.ifname) await netns.renameIn(at.netns, old.ifname, at.ifname);
    await netns.configure(at.netns, { ...specOf(a, at), mac: old.mac ?? a.config.mac });
    return new RehomeFailed(`re-home of ${at.ifname} in ${at.netns} onto ${a.pciAddress}: ${why}; the old VF ${oldPci} is back as ${at.ifname}`, true, err);
  } catch (e) {
    return new RehomeFailed(`re-home of ${at.ifname} in ${at.netns} onto ${a.pciAddress}: ${why}; restoring the old VF failed too (${describe(kernelError('restore', e))})`, false, err);
  }
}

/** The namespace's links; a namespace that is gone ends the re-home (there is no workload left to move). */
async function linksOrGone(host: SriovHost, at: ContainerAttachment): Promise<NetnsLink[]> {
  try {
    return await host.ports.netns.links(at.netns);
  } catch (err) {
    if (err instanceof KernelError && (err.errno === 'ENOENT' || err.errno === 'EINVAL')) {
      throw new RehomeFailed(`the container's namespace ${at.netns} is gone: nothing to re-home`, true, err);
    }
    throw err;
  }
}

/** A step before the old link is touched: a failure there leaves the workload on it, as it was. */
async function unchanged(what: string, call: () => Promise<void>): Promise<void> {
  try {
    await call();
  } catch (err) {
    throw new RehomeFailed(describe(kernelError(what, err)), true, err);
  }
}

function describe(err: unknown): string {
  return err instanceof SriovError ? err.message : err instanceof Error ? err.message : String(err);
}
