/**
 * Tenant bandwidth groups on this host's PFs: the devlink rate tree is
 * desired state, kept like a VF's VLAN.
 *
 * - A group (`vfleet-<tenant>`, its tx_share/tx_max) is created on a PF when
 *   one of the tenant's allocations there wants it, before any leaf is
 *   parented to it; each such VF's leaf is parented to it.
 * - Drift (a leaf un-parented or moved by hand, a node's rates changed, a
 *   node deleted) is repaired and reported as `drift.repaired`.
 * - A release clears the VF's leaf (no parent, no rates) before the VF is
 *   reported free, and the last leaf leaving deletes the node.
 * - `vfleet-*` nodes no desired group names are emptied, then deleted
 *   (the kernel refuses, EBUSY, to delete a node with children).
 * - Nodes vfleet did not name are never touched, nor the leaves under them,
 *   unless the VF is one an allocation wants in its group.
 *
 * Every pass works from the tree as read, so a pass that died half way
 * (a node created, no leaf parented yet) is finished by the next one.
 * PFs without rate nodes (legacy mode, most hosts) cost no devlink call.
 */
import type { AgentEvent, DesiredAllocation, DesiredRateGroup, DesiredState } from '../controller/desired-state.js';
import { SriovError } from '../host/errors.js';
import type { PfInfo } from '../host/model.js';
import type { Devlink } from '../host/ports.js';
import {
  childrenOf,
  clearLeaf,
  deleteRateNode,
  ensureRateNode,
  hasRateNodes,
  isVfleetNode,
  parentLeaf,
  readRates,
  readRateTree,
  unparentLeaf,
  unparentOther,
  vfleetNodesIn,
  type RateTree,
} from '../host/rate-tree.js';
import { parseRateNodeName } from '../host/validate.js';

export interface RateOutcome {
  events: AgentEvent[];
  errors: string[];
  /** Whether anything was written (the inventory is then read again). */
  changed: boolean;
}

export class RateGroups {
  /** Per `<pf>/<node>`: the rates this agent last gave the node; a difference found later is drift, not a new desired rate. */
  private readonly applied = new Map<string, string>();
  /** Per VF address: the node this agent last parented its leaf to. */
  private readonly placed = new Map<string, string>();
  /** Per PF: its desired groups at the last pass, so an incremental pass looks at the PFs whose groups changed. */
  private readonly seen = new Map<string, string>();

  constructor(private readonly devlink: Devlink) {}

  /**
   * The PFs an incremental pass must look at: those whose desired groups
   * changed, and those of `changed` allocations that want a group.
   */
  scope(desired: DesiredState, changed: DesiredAllocation[]): Set<string> {
    const pfs = new Set(changed.filter((a) => a.rateGroup !== null).map((a) => a.pfPciAddress));
    const now = groupsByPf(desired);
    for (const pf of new Set([...now.keys(), ...this.seen.keys()])) if ((now.get(pf) ?? '') !== (this.seen.get(pf) ?? '')) pfs.add(pf);
    return pfs;
  }

  /**
   * Makes the rate trees of `pfs` match `desired`. `only`: just these PFs
   * (an incremental pass). `inventoryFresh`: `pf.rateNodes`, where the
   * inventory has it, is current and may spare a PF with no group its read.
   */
  async converge(pfs: PfInfo[], desired: DesiredState, opts: { only?: Set<string>; inventoryFresh?: boolean } = {}): Promise<RateOutcome> {
    const out: RateOutcome = { events: [], errors: [], changed: false };
    const byPf = groupsByPf(desired);
    for (const pf of pfs) {
      if (opts.only && !opts.only.has(pf.pciAddress)) continue;
      try {
        await this.convergePf(pf, desired, out, opts.inventoryFresh ?? false);
        this.seen.set(pf.pciAddress, byPf.get(pf.pciAddress) ?? '');
      } catch (err) {
        out.errors.push(`rate groups on ${pf.name}: ${describe(err)}`);
      }
    }
    return out;
  }

  /**
   * A released VF's leaf: no parent, tx_share 0, tx_max 0; and its group's
   * node deleted when it was the last leaf there and no other allocation
   * wants it. Called with the scrub, before the VF is reported free.
   * Whether it changed anything.
   */
  async release(pf: PfInfo, a: DesiredAllocation, desired: DesiredState): Promise<boolean> {
    this.placed.delete(a.pciAddress);
    if (!hasRateNodes(pf)) return false;
    const rates = await readRates(this.devlink, pf.pciAddress);
    // Nothing parented anywhere and no group of ours: the scrub already cleared the leaf's rates.
    if (a.rateGroup === null && rates.every((o) => o.parent === null) && vfleetNodesIn(rates).length === 0) return false;
    const tree = await readRateTree(this.devlink, pf.pciAddress, rates);
    const group = tree.leaves.get(a.vfIndex)?.parent ?? null;
    let changed = await clearLeaf(this.devlink, tree, a.vfIndex);
    if (group && isVfleetNode(group) && this.unwanted(tree, group, desired, pf, a.id)) {
      changed = (await deleteRateNode(this.devlink, tree, group)) || changed;
      this.applied.delete(`${pf.pciAddress}/${group}`);
    }
    return changed;
  }

  /** Whether node `group` has no children left and no allocation (but `except`) on `pf` wants it. */
  private unwanted(tree: RateTree, group: string, desired: DesiredState, pf: PfInfo, except: string): boolean {
    const kids = childrenOf(tree, group);
    if (kids.vfs.length || kids.others.length || kids.nodes.length) return false;
    return !activeOn(pf, desired).some((a) => a.id !== except && a.rateGroup === group);
  }

  private async convergePf(pf: PfInfo, desired: DesiredState, out: RateOutcome, inventoryFresh: boolean): Promise<void> {
    const groups = desired.rateGroups.filter((g) => g.pfPciAddress === pf.pciAddress);
    const wanting = activeOn(pf, desired).filter((a) => a.rateGroup !== null);
    if (!hasRateNodes(pf)) {
      // The controller lists groups only where they are enforced: this PF left switchdev since (or has not reached it yet).
      if (groups.length || wanting.length) out.errors.push(`rate groups on ${pf.name}: not enforced, the PF has no devlink rate nodes (eswitch mode ${pf.eswitchMode ?? 'none'}, driver ${pf.driver})`);
      return;
    }
    const nothingWanted = groups.length === 0 && wanting.length === 0;
    if (nothingWanted && inventoryFresh && pf.rateNodes && !pf.rateNodes.some((n) => isVfleetNode(n.name))) return;
    const rates = await readRates(this.devlink, pf.pciAddress);
    if (nothingWanted && vfleetNodesIn(rates).length === 0) return;
    const tree = await readRateTree(this.devlink, pf.pciAddress, rates);
    const valid = this.validGroups(pf, groups, out);
    await this.ensureNodes(pf, tree, valid, wanting, out);
    await this.parentLeaves(pf, tree, valid, wanting, out);
    await this.loosenLeaves(pf, tree, desired, out);
    await this.collectNodes(pf, tree, valid, desired, out);
  }

  /** The desired groups vfleet may write: valid `vfleet-*` names; others are reported and left out. */
  private validGroups(pf: PfInfo, groups: DesiredRateGroup[], out: RateOutcome): Map<string, DesiredRateGroup> {
    const valid = new Map<string, DesiredRateGroup>();
    for (const g of groups) {
      try {
        parseRateNodeName(g.node);
        if (!isVfleetNode(g.node)) throw new SriovError('INVALID_ARGUMENT', `${g.node} is not a vfleet group name (vfleet-<tenant>)`, { object: g.node });
        valid.set(g.node, g);
      } catch (err) {
        out.errors.push(`rate group ${g.node} on ${pf.name}: ${describe(err)}`);
      }
    }
    return valid;
  }

  /** Each group some allocation wants here, with its rates: created first, since a leaf can only be parented to a node that exists. */
  private async ensureNodes(pf: PfInfo, tree: RateTree, valid: Map<string, DesiredRateGroup>, wanting: DesiredAllocation[], out: RateOutcome): Promise<void> {
    for (const g of valid.values()) {
      // A listed group nobody here wants yet is not created; an existing one is kept at its rates.
      if (!tree.nodes.has(g.node) && !wanting.some((a) => a.rateGroup === g.node)) continue;
      const key = `${pf.pciAddress}/${g.node}`;
      const rates = `${g.txShareMbps}/${g.txMaxMbps}`;
      const before = tree.nodes.get(g.node);
      try {
        const did = await ensureRateNode(this.devlink, tree, g.node, g);
        if (did) out.changed = true;
        // Drift: the node is not as this agent left it (unknown after a restart: as desired is how it was left).
        const drifted = (did === 'set' && (this.applied.get(key) ?? rates) === rates) || (did === 'created' && this.applied.has(key));
        if (drifted) {
          const was = before ? `tx_share ${before.txShareMbps} tx_max ${before.txMaxMbps} Mbit/s` : 'deleted';
          out.events.push({ action: 'drift.repaired', object: `${pf.name}/${g.node}`, detail: `rate node ${g.node} was ${was}; set to tx_share ${g.txShareMbps} tx_max ${g.txMaxMbps} Mbit/s` });
        }
        this.applied.set(key, rates);
      } catch (err) {
        out.errors.push(`rate group ${g.node} on ${pf.name}: ${describe(err)}`);
      }
    }
  }

  /** Each wanting allocation's leaf under its group. */
  private async parentLeaves(pf: PfInfo, tree: RateTree, valid: Map<string, DesiredRateGroup>, wanting: DesiredAllocation[], out: RateOutcome): Promise<void> {
    for (const a of wanting) {
      const group = a.rateGroup!;
      if (!valid.has(group) || !tree.nodes.has(group)) {
        out.errors.push(`allocation ${a.id}: its rate group ${group} is not among ${pf.name}'s desired groups; its leaf is left as it is`);
        continue;
      }
      const was = tree.leaves.get(a.vfIndex)?.parent ?? null;
      try {
        if (!(await parentLeaf(this.devlink, tree, a.vfIndex, group))) continue;
      } catch (err) {
        out.errors.push(`allocation ${a.id}: ${describe(err)}`);
        continue;
      }
      out.changed = true;
      // A leaf this agent placed (or one of an allocation already in service) found elsewhere: moved by hand.
      if (a.state !== 'pending' && (this.placed.get(a.pciAddress) ?? group) === group) {
        out.events.push({ action: 'drift.repaired', object: `allocation/${a.id}`, detail: `${pf.name} vf ${a.vfIndex}: rate leaf ${was === null ? 'had no parent' : `was under ${was}`}; parent ${group}` });
      }
      this.placed.set(a.pciAddress, group);
    }
  }

  /**
   * Leaves under a vfleet node they do not belong to: an allocation's with
   * no group goes back to the root keeping its own rates; a VF nobody holds
   * (a release that never finished) is cleared. A releasing allocation's is
   * left to its release.
   */
  private async loosenLeaves(pf: PfInfo, tree: RateTree, desired: DesiredState, out: RateOutcome): Promise<void> {
    const held = new Map(desired.allocations.filter((a) => a.pfPciAddress === pf.pciAddress).map((a) => [a.vfIndex, a]));
    for (const [vf, leaf] of tree.leaves) {
      if (leaf.parent === null || !isVfleetNode(leaf.parent)) continue;
      const a = held.get(vf);
      if (a && (a.state === 'releasing' || a.rateGroup === leaf.parent)) continue;
      try {
        const from = leaf.parent;
        if (a) await unparentLeaf(this.devlink, tree, vf);
        else await clearLeaf(this.devlink, tree, vf);
        out.changed = true;
        if (!a) out.events.push({ action: 'orphan.scrubbed', object: `${pf.name}/vf${vf}`, detail: `rate leaf taken out of ${from}, tx_share and tx_max cleared (no allocation holds the VF)` });
      } catch (err) {
        out.errors.push(`rate leaf of ${pf.name} vf ${vf}: ${describe(err)}`);
      }
    }
  }

  /** `vfleet-*` nodes no desired group names: emptied, then deleted. */
  private async collectNodes(pf: PfInfo, tree: RateTree, valid: Map<string, DesiredRateGroup>, desired: DesiredState, out: RateOutcome): Promise<void> {
    for (const name of [...tree.nodes.keys()].filter((n) => isVfleetNode(n) && !valid.has(n))) {
      try {
        const kids = childrenOf(tree, name);
        const foreign = kids.nodes.filter((n) => !isVfleetNode(n));
        if (foreign.length) throw new SriovError('BUSY', `node ${foreign.join(', ')} (not vfleet's) is under it; move it elsewhere and vfleet deletes ${name}`, { object: name });
        // A held VF keeps its own rates (its release clears them); a VF nobody holds is cleared.
        const held = new Set(desired.allocations.filter((a) => a.pfPciAddress === pf.pciAddress).map((a) => a.vfIndex));
        for (const vf of kids.vfs) await (held.has(vf) ? unparentLeaf(this.devlink, tree, vf) : clearLeaf(this.devlink, tree, vf));
        for (const object of kids.others) await unparentOther(this.devlink, tree, object);
        for (const child of kids.nodes) await this.deleteNode(pf, tree, child, out);
        await this.deleteNode(pf, tree, name, out);
      } catch (err) {
        out.errors.push(`rate node ${name} on ${pf.name}: ${describe(err)}`);
      }
    }
  }

  private async deleteNode(pf: PfInfo, tree: RateTree, name: string, out: RateOutcome): Promise<void> {
    if (!(await deleteRateNode(this.devlink, tree, name))) return;
    out.changed = true;
    this.applied.delete(`${pf.pciAddress}/${name}`);
    out.events.push({ action: 'orphan.scrubbed', object: `${pf.name}/${name}`, detail: `rate node ${name}: no tenant group names it; deleted` });
  }
}

/** The allocations that hold a VF of `pf` in service (not being released), their VF as the inventory has it. */
function activeOn(pf: PfInfo, desired: DesiredState): DesiredAllocation[] {
  return desired.allocations.filter((a) => a.pfPciAddress === pf.pciAddress && a.state !== 'releasing' && pf.vfs[a.vfIndex]?.pciAddress === a.pciAddress);
}

/** Per PF: its desired groups, as a comparable string. */
function groupsByPf(desired: DesiredState): Map<string, string> {
  const by = new Map<string, DesiredRateGroup[]>();
  for (const g of desired.rateGroups) by.set(g.pfPciAddress, [...(by.get(g.pfPciAddress) ?? []), g]);
  return new Map([...by].map(([pf, gs]) => [pf, JSON.stringify(gs.map((g) => [g.node, g.txShareMbps, g.txMaxMbps]).sort())]));
}

function describe(err: unknown): string {
  return err instanceof SriovError ? err.toString() : err instanceof Error ? err.message : String(err);
}
