/**
 * A host seen through some of its PFs only (`sriovd --pfs ens1f0,ens1f1`):
 * the others are the machine's own (its uplink), or another agent's on the
 * same kernel (the lab runs two "hosts" in one guest this way). The
 * inventory lists only the given PFs, and a write to any other PF or to one
 * of its VFs is refused, naming the option, before it reaches the kernel.
 *
 * Network namespace operations are not restricted: they act on netdevs by
 * name inside a container, and a re-home between two agents' PFs must take
 * the other agent's VF down there (agent/rehome.ts).
 */
import { SriovHost, type Progress } from './configurator.js';
import { resolvePf } from './discovery.js';
import { SriovError, invalid } from './errors.js';
import type { HostPorts } from './ports.js';
import { isIfName, shown } from './validate.js';

/** The PF netdev names of a `--pfs` value: comma-separated, each a valid interface name, none twice. */
export function parsePfList(value: string): string[] {
  const names = value.split(',').map((n) => n.trim());
  const bad = names.find((n) => !isIfName(n));
  if (bad !== undefined) throw invalid(`--pfs: ${shown(bad)} is not an interface name; give PF netdev names separated by commas, e.g. --pfs ens1f0,ens1f1`, bad);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw invalid(`--pfs names ${twice} twice`, twice);
  return names;
}

/** The PFs an agent may use: their names as given, and their PCI addresses (what the ports see). */
export interface PfSet {
  names: string[];
  pciAddresses: Set<string>;
}

/** Resolves `names` on the host; every one must be an SR-IOV PF there, or nothing starts. */
export async function resolvePfSet(ports: HostPorts, names: string[]): Promise<PfSet> {
  const pciAddresses = new Set<string>();
  for (const name of names) {
    try {
      pciAddresses.add(await resolvePf(ports, name));
    } catch (err) {
      if (!(err instanceof SriovError)) throw err;
      throw invalid(`--pfs: ${err.message}; list only this host's SR-IOV PFs (sriovctl host inventory shows them)`, name);
    }
  }
  return { names, pciAddresses };
}

/** `ports` with only `set`'s PFs listed, and writes to others refused (FORBIDDEN, naming --pfs). */
export function restrictPorts(ports: HostPorts, set: PfSet): HostPorts {
  const refuse = (what: string, object: string) =>
    new SriovError('FORBIDDEN', `${what}: ${object} is not one of this agent's PFs (--pfs ${set.names.join(',')}); run the agent that owns it, or add it to --pfs`, {
      object,
      nothingChanged: true,
    });
  const checkPf = (pci: string, what: string) => {
    if (!set.pciAddresses.has(pci)) throw refuse(what, pci);
  };
  /** A PF netdev outside the set is refused; VF netdevs and unknown names go on (the kernel answers for those). */
  const checkNetdev = async (name: string, what: string) => {
    const pci = await ports.sysfs.pciAddressOfNetdev(name);
    if (pci && !set.pciAddresses.has(pci) && (await ports.sysfs.listSriovPfs()).includes(pci)) throw refuse(what, name);
  };
  /** A VF must belong to one of the set's PFs. */
  const checkVf = async (vfPci: string, what: string) => {
    for (const pf of set.pciAddresses) if ((await ports.sysfs.readPf(pf)).vfs.some((v) => v.pciAddress === vfPci)) return;
    throw refuse(what, vfPci);
  };
  const { sysfs, links, drivers } = ports;
  return {
    ...ports,
    sysfs: {
      listSriovPfs: async () => (await sysfs.listSriovPfs()).filter((pci) => set.pciAddresses.has(pci)),
      readPf: sysfs.readPf.bind(sysfs),
      readVf: sysfs.readVf.bind(sysfs),
      readNetdev: sysfs.readNetdev.bind(sysfs),
      pciAddressOfNetdev: sysfs.pciAddressOfNetdev.bind(sysfs),
      writeNumVfs: async (pci, n) => (checkPf(pci, `sriov_numvfs=${n}`), sysfs.writeNumVfs(pci, n)),
      writeAutoprobe: async (pci, on) => (checkPf(pci, 'sriov_drivers_autoprobe'), sysfs.writeAutoprobe(pci, on)),
    },
    links: {
      showPf: links.showPf.bind(links),
      applyVfOps: async (pf, ops, opts) => {
        await checkNetdev(pf, 'VF settings');
        return links.applyVfOps(pf, ops, opts);
      },
      setMtu: async (netdev, mtu) => {
        await checkNetdev(netdev, `MTU ${mtu}`);
        return links.setMtu(netdev, mtu);
      },
      setUp: async (netdev) => {
        await checkNetdev(netdev, 'link up');
        return links.setUp(netdev);
      },
    },
    drivers: {
      bind: async (pci, driver) => {
        await checkVf(pci, `bind ${driver ?? 'default'}`);
        return drivers.bind(pci, driver);
      },
      unbind: async (pci) => {
        await checkVf(pci, 'unbind');
        return drivers.unbind(pci);
      },
    },
  };
}

/**
 * A SriovHost over `set`'s PFs only. A PF asked for by name or address that
 * the set does not hold is refused naming `--pfs` (not "not an SR-IOV PF":
 * it is one, just not this agent's).
 */
export class RestrictedHost extends SriovHost {
  constructor(
    private readonly all: HostPorts,
    readonly pfSet: PfSet,
    progress?: Progress,
  ) {
    super(restrictPorts(all, pfSet), progress);
  }

  override async pf(nameOrPci: string, opts?: Parameters<SriovHost['pf']>[1]) {
    const pci = await resolvePf(this.all, nameOrPci);
    if (!this.pfSet.pciAddresses.has(pci)) {
      throw new SriovError('FORBIDDEN', `${nameOrPci} is not one of this agent's PFs (--pfs ${this.pfSet.names.join(',')})`, { object: nameOrPci, nothingChanged: true });
    }
    return super.pf(nameOrPci, opts);
  }
}

/** The host an agent drives: all of it, or with `--pfs`, only the PFs listed (checked now: a wrong name starts nothing). */
export async function hostWithPfs(ports: HostPorts, pfs: string | undefined): Promise<SriovHost> {
  if (pfs === undefined) return new SriovHost(ports);
  return new RestrictedHost(ports, await resolvePfSet(ports, parsePfList(pfs)));
}
