/**
 * This host's PFs and VFs as the device model needs them, read about once a
 * second: it is what notices a pulled cable or a changed `numVfs` first. A
 * full inventory runs `ip link show` per PF and reads 4 files per VF (1k
 * reads a second on 4×64 VFs), so each poll reads only what changes without
 * the agent: per PF its sysfs facts (`sriov_numvfs`, `virtfnN`) and its
 * netdev's `operstate` and `speed`. The VFs' drivers and IOMMU groups (only
 * a bind changes them) are read again every `vfRefreshMs`, and on every poll
 * for `vfRefreshMs` after a PF's VF list changed or the caller asked (the
 * controller's view changed): new VFs get their driver a moment after they
 * appear, and a policy's rebinding follows its view change. So is
 * the list of PFs (a scan of every PCI device, VFs included; PFs come and go
 * only with hotplug).
 */
import type { HostPorts } from '../host/ports.js';
import type { LocalInventory, LocalPf, LocalVf } from './pool-devices.js';

export class LocalInventoryPoll {
  /** PF PCI address → its VFs as last read, keyed by their addresses. */
  private readonly vfs = new Map<string, { key: string; vfs: LocalVf[]; hotUntil: number }>();
  /** Set by an explicit `poll(true)`: every PF is hot until then. */
  private hotUntil = -Infinity;
  private lastFullRead = -Infinity;
  private pfAddresses: string[] = [];

  constructor(
    private readonly ports: HostPorts,
    private readonly vfRefreshMs = 5_000,
    private readonly clock: () => number = Date.now,
  ) {}

  /** `full`: read every VF's driver and IOMMU group, and the PF list, again. */
  async poll(full = false): Promise<LocalInventory> {
    const now = this.clock();
    const refresh = full || now - this.lastFullRead >= this.vfRefreshMs;
    if (full) this.hotUntil = now + this.vfRefreshMs;
    try {
      return await this.read(refresh, now);
    } catch (err) {
      // A PF gone since the last list (hot-unplug): list again before giving up.
      if (refresh) throw err;
      return this.read(true, now);
    } finally {
      if (refresh) this.lastFullRead = now;
    }
  }

  private async read(refresh: boolean, now: number): Promise<LocalInventory> {
    if (refresh) this.pfAddresses = await this.ports.sysfs.listSriovPfs();
    const addresses = this.pfAddresses;
    const pfs = await Promise.all(addresses.map((a) => this.readPf(a, refresh, now)));
    for (const known of this.vfs.keys()) if (!addresses.includes(known)) this.vfs.delete(known);
    return { pfs };
  }

  private async readPf(pciAddress: string, refresh: boolean, now: number): Promise<LocalPf> {
    const facts = await this.ports.sysfs.readPf(pciAddress);
    // A PF may show several netdevs (switchdev representors); its own port sorts first, as discovery takes it.
    const name = [...facts.netdevs].sort()[0] ?? null;
    const [netdev, vfs] = await Promise.all([name ? this.ports.sysfs.readNetdev(name) : null, this.readVfs(pciAddress, facts.vfs, refresh, now)]);
    return {
      name: name ?? pciAddress,
      pciAddress,
      vendorId: facts.vendorId,
      vfDeviceId: facts.vfDeviceId,
      linkState: netdev?.operState ?? 'unknown',
      linkSpeedMbps: netdev?.speedMbps ?? null,
      numaNode: facts.numaNode,
      vfs,
    };
  }

  private async readVfs(pf: string, list: Array<{ index: number; pciAddress: string }>, refresh: boolean, now: number): Promise<LocalVf[]> {
    const key = list.map((v) => v.pciAddress).join(',');
    const cached = this.vfs.get(pf);
    const changed = cached?.key !== key;
    const hot = now < Math.max(this.hotUntil, cached?.hotUntil ?? -Infinity);
    if (cached && !changed && !refresh && !hot) return cached.vfs;
    const vfs = await Promise.all(
      list.map(async ({ index, pciAddress }) => {
        const dev = await this.ports.sysfs.readVf(pciAddress);
        return { index, pciAddress, driver: dev.driver, iommuGroup: dev.iommuGroup };
      }),
    );
    this.vfs.set(pf, { key, vfs, hotUntil: changed ? now + this.vfRefreshMs : (cached?.hotUntil ?? -Infinity) });
    return vfs;
  }
}
