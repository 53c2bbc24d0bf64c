/**
 * Each host's VF representors (switchdev mode) as its last accepted
 * inventory reports them, in memory, so that an allocation can show its
 * VF's representor without a store read. Only VFs that have one are kept:
 * a host in legacy mode costs nothing.
 */
import type { HostRecord } from '../domain/types.js';
import type { VfRepresentor } from '../host/model.js';

export class RepresentorBook {
  /** host → VF PCI address (or netdevsim VF address) → its representor. */
  private readonly byHost = new Map<string, Map<string, VfRepresentor>>();

  load(host: HostRecord): void {
    const reps = new Map<string, VfRepresentor>();
    for (const pf of host.inventory.pfs) {
      for (const vf of pf.vfs) if (vf.representor) reps.set(vf.pciAddress, vf.representor);
    }
    if (reps.size > 0) this.byHost.set(host.name, reps);
    else this.byHost.delete(host.name);
  }

  remove(host: string): void {
    this.byHost.delete(host);
  }

  /** The representor of VF `pciAddress` on `host`; null when it has none (legacy mode, or not reported). */
  of(host: string, pciAddress: string): VfRepresentor | null {
    return this.byHost.get(host)?.get(pciAddress) ?? null;
  }
}
