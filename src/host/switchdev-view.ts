/**
 * What a PF in switchdev mode adds to the inventory: each VF's representor
 * (the `pcivf` devlink port whose `vfnum` is the VF's index, and its netdev),
 * and where the driver rates VFs through devlink, the rate tree: each VF's
 * leaf (`tx_share`/`tx_max` are its min/max rates, and its parent node) and
 * every rate node of the PF.
 */
import type { DriverCapabilities } from './capabilities.js';
import type { PfInfo, RateNode, VfInfo, VfRepresentor } from './model.js';
import type { Devlink, DevlinkPortFacts, DevlinkRateFacts } from './ports.js';

export interface SwitchdevView {
  representors: Map<number, VfRepresentor>;
  /** Leaves by their port handle; null where VFs are rated through ip link. */
  leaves: Map<string, DevlinkRateFacts> | null;
  /** null where the PF has no rate nodes. */
  nodes: RateNode[] | null;
}

/** A device's VF ports (flavour `pcivf`: a VF's representor and its rate leaf) by VF index. */
export function vfPortsOf(ports: DevlinkPortFacts[]): Map<number, DevlinkPortFacts> {
  return new Map(ports.filter((p) => p.flavour === 'pcivf' && p.vfnum !== null).map((p) => [p.vfnum!, p]));
}

/** `devlink -j port show <dev>`, and `devlink -j port function rate show` where the driver rates through devlink. */
export async function readSwitchdevView(devlink: Devlink, device: string, caps: DriverCapabilities): Promise<SwitchdevView> {
  const byDevlink = caps.switchdevRates === 'devlink';
  const [ports, rates] = await Promise.all([devlink.ports(device), byDevlink ? devlink.rates(device) : null]);
  const representors = new Map<number, VfRepresentor>();
  for (const [vf, p] of vfPortsOf(ports)) representors.set(vf, { netdev: p.netdev, devlinkPort: p.port });
  if (!rates) return { representors, leaves: null, nodes: null };
  const leaves = new Map(rates.filter((r) => r.type === 'leaf').map((r) => [r.object, r]));
  const nodes = caps.rateNodes ? rates.filter((r) => r.type === 'node').map(rateNodeOf) : null;
  return { representors, leaves, nodes };
}

function rateNodeOf(r: DevlinkRateFacts): RateNode {
  return { name: nodeNameOfObject(r.object), txShareMbps: r.txShareMbps, txMaxMbps: r.txMaxMbps, parent: r.parent };
}

/**
 * A rate node's name from its object, `<handle>/<name>` (`pci/0000:3b:00.0/vfleet-acme`,
 * as `devlink port function rate show` lists it): what follows the handle's last `/`.
 */
export function nodeNameOfObject(object: string): string {
  return object.slice(object.lastIndexOf('/') + 1);
}

/** The PF with its VFs' representors and leaves, and its rate nodes. */
export function applySwitchdevView(pf: PfInfo, view: SwitchdevView): PfInfo {
  const vfs = pf.vfs.map((vf) => withSwitchdev(vf, view));
  return view.nodes ? { ...pf, vfs, rateNodes: view.nodes } : { ...pf, vfs };
}

function withSwitchdev(vf: VfInfo, view: SwitchdevView): VfInfo {
  const representor = view.representors.get(vf.index) ?? null;
  if (!view.leaves) return { ...vf, representor };
  const leaf = representor ? view.leaves.get(representor.devlinkPort) : undefined;
  if (!leaf) return { ...vf, representor, rateParent: null };
  return { ...vf, representor, minTxRateMbps: leaf.txShareMbps, maxTxRateMbps: leaf.txMaxMbps, rateParent: leaf.parent };
}
