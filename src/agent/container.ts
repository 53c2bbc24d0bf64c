/**
 * A VF netdev handed to a container: into its namespace on attach, back to
 * the host under its original name on detach. Both are idempotent: they look
 * where the netdev is first, so a retry after a crash finishes the job.
 */
import type { DesiredAllocation } from '../controller/desired-state.js';
import type { SriovHost } from '../host/configurator.js';
import { SriovError } from '../host/errors.js';
import type { PfInfo } from '../host/model.js';
import { KernelError } from '../host/ports.js';

type ContainerAttachment = Extract<DesiredAllocation['attachment'], { kind: 'container' }>;

export function containerAttachment(a: DesiredAllocation): ContainerAttachment | null {
  return a.attachment?.kind === 'container' ? a.attachment : null;
}

/**
 * Where the VF netdev is now: in the namespace (by PCI address), else in the
 * host, or nowhere. `nsExists` spares the probe when the caller already made it.
 */
async function locate(host: SriovHost, a: DesiredAllocation, at: ContainerAttachment, nsExists?: boolean) {
  const exists = nsExists ?? (await host.ports.netns.exists(at.netns));
  const inNs = exists ? (await host.ports.netns.links(at.netns)).find((l) => l.pciAddress === a.pciAddress) : undefined;
  const inHost = inNs ? undefined : (await host.ports.sysfs.readVf(a.pciAddress)).netdevs[0];
  return { inNs, inHost };
}

/**
 * Moves the VF netdev into the namespace and configures it. Returns the
 * netdev's host name when it moved now, null when it was already there.
 */
export async function ensureAttached(host: SriovHost, pf: PfInfo, a: DesiredAllocation, at: ContainerAttachment, nsExists: boolean): Promise<string | null> {
  const { inNs, inHost } = await locate(host, a, at, nsExists);
  if (inNs) return null;
  if (!inHost) throw new SriovError('NOT_FOUND', `${pf.name} vf ${a.vfIndex} has no netdev to move (driver ${pf.vfs[a.vfIndex]?.driver ?? 'none'})`, { object: a.pciAddress });
  await kernel(`move ${inHost} into ${at.netns} as ${at.ifname}`, () =>
    host.ports.netns.attach(inHost, at.netns, { ifname: at.ifname, mac: a.config.mac, mtu: a.mtu, addresses: at.ips, routes: a.routes }),
  );
  return inHost;
}

/** Brings the VF netdev back to the host namespace under its original name. */
export async function ensureDetached(host: SriovHost, a: DesiredAllocation, at: ContainerAttachment): Promise<void> {
  const { inNs, inHost } = await locate(host, a, at);
  const name = at.hostIfName;
  if (inNs) {
    // Its original name may be unknown (a crash before it was recorded): keep the one it has.
    await kernel(`move ${inNs.ifname} out of ${at.netns}`, () => host.ports.netns.detach(at.netns, inNs.ifname, name ?? inNs.ifname));
  } else if (inHost && name && inHost !== name) {
    // The namespace vanished and the kernel returned the netdev as devN (or its in-container name).
    await kernel(`rename ${inHost} to ${name}`, () => host.ports.netns.rename(inHost, name));
  }
}

async function kernel(what: string, call: () => Promise<void>): Promise<void> {
  try {
    await call();
  } catch (err) {
    if (!(err instanceof KernelError)) throw err;
    const code = err.errno === 'EEXIST' ? 'CONFLICT' : 'HOST_ERROR';
    throw new SriovError(code, `${what}: ${err.message}`, { errno: err.errno, cause: err });
  }
}
