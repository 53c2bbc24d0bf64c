/**
 * A PF's devlink rate tree, as the agent keeps it: the nodes (vfleet's are
 * `vfleet-<tenant>`, a tenant's bandwidth group) and each VF's rate leaf with
 * its parent. A VF's leaf is the rate object of its `pcivf` devlink port, so
 * the tree is read from two calls: `devlink -j port show` (VF → port) and
 * `devlink -j port function rate show` (objects, rates, parents).
 *
 * Each write here is one devlink command and updates the tree it was given,
 * so a caller can go on deciding from it without reading it again.
 */
import { capabilitiesOf } from './capabilities.js';
import { SriovError, codeForErrno } from './errors.js';
import type { PfInfo, RateLimits, RateNode } from './model.js';
import { KernelError, type Devlink, type DevlinkRateFacts } from './ports.js';
import { nodeNameOfObject, vfPortsOf } from './switchdev-view.js';
import { devlinkHandle, parseRateNodeName } from './validate.js';

/** The names vfleet gives its nodes; other nodes are never touched. */
export const VFLEET_NODE_PREFIX = 'vfleet-';

export const isVfleetNode = (name: string): boolean => name.startsWith(VFLEET_NODE_PREFIX);

/** A VF's rate leaf: its object (the port handle) and its limits and parent. */
export interface RateLeaf extends RateLimits {
  object: string;
  parent: string | null;
}

export interface RateTree {
  /** The PF's address as the inventory has it. */
  device: string;
  nodes: Map<string, RateNode>;
  /** By VF index: the leaves of VF ports. */
  leaves: Map<number, RateLeaf>;
  /** Leaves of other ports (the PF's own, SFs), by object: counted as children, never changed but to empty a node of ours. */
  otherLeaves: Map<string, RateLeaf>;
}

/**
 * Whether the PF has devlink rate nodes now: switchdev mode on a driver
 * that rates through devlink. Decided from the inventory, so other PFs
 * (legacy mode, most hosts) cost no devlink call.
 */
export function hasRateNodes(pf: PfInfo): boolean {
  const caps = capabilitiesOf(pf.driver);
  return pf.eswitchMode === 'switchdev' && caps.rateNodes && caps.switchdevRates === 'devlink';
}

/** `devlink -j port function rate show`: the PF's rate objects. */
export async function readRates(devlink: Devlink, device: string): Promise<DevlinkRateFacts[]> {
  return kernel(`devlink port function rate show ${device}`, () => devlink.rates(device));
}

/** The whole tree: `rates` when already read, else read; `devlink -j port show` maps leaves to VFs. */
export async function readRateTree(devlink: Devlink, device: string, rates?: DevlinkRateFacts[]): Promise<RateTree> {
  const objects = rates ?? (await readRates(devlink, device));
  const ports = await kernel(`devlink port show ${device}`, () => devlink.ports(device));
  const vfOfPort = new Map([...vfPortsOf(ports)].map(([vf, p]) => [p.port, vf]));
  const tree: RateTree = { device, nodes: new Map(), leaves: new Map(), otherLeaves: new Map() };
  for (const o of objects) {
    const limits = { txShareMbps: o.txShareMbps, txMaxMbps: o.txMaxMbps, parent: o.parent };
    if (o.type === 'node') {
      const name = nodeNameOfObject(o.object);
      tree.nodes.set(name, { name, ...limits });
      continue;
    }
    const vf = vfOfPort.get(o.object);
    if (vf === undefined) tree.otherLeaves.set(o.object, { object: o.object, ...limits });
    else tree.leaves.set(vf, { object: o.object, ...limits });
  }
  return tree;
}

/** The names of nodes vfleet made (`vfleet-*`) in a rate listing. */
export function vfleetNodesIn(rates: DevlinkRateFacts[]): string[] {
  return rates.filter((o) => o.type === 'node').map((o) => nodeNameOfObject(o.object)).filter(isVfleetNode);
}

/**
 * The node `name` with `limits`: `devlink port function rate add <dev>/<name>
 * tx_share Nmbit tx_max Nmbit` when it is missing, `... rate set <dev>/<name>
 * tx_share ... tx_max ...` when its rates differ. Returns what it did.
 */
export async function ensureRateNode(devlink: Devlink, tree: RateTree, name: string, limits: RateLimits): Promise<'created' | 'set' | null> {
  checkVfleetName(name);
  const node = tree.nodes.get(name);
  const want = { txShareMbps: limits.txShareMbps, txMaxMbps: limits.txMaxMbps };
  if (!node) {
    await kernel(`devlink port function rate add ${tree.device}/${name}`, () => devlink.addRateNode(tree.device, name, want));
    tree.nodes.set(name, { name, ...want, parent: null });
    return 'created';
  }
  if (node.txShareMbps === want.txShareMbps && node.txMaxMbps === want.txMaxMbps) return null;
  await kernel(`devlink port function rate set ${nodeObject(tree, name)}`, () => devlink.setRate(nodeObject(tree, name), want));
  tree.nodes.set(name, { ...node, ...want });
  return 'set';
}

/** VF `vf`'s leaf under `node`: `devlink port function rate set <port> parent <node>`. Whether it changed. */
export async function parentLeaf(devlink: Devlink, tree: RateTree, vf: number, node: string): Promise<boolean> {
  parseRateNodeName(node);
  const leaf = leafOf(tree, vf);
  if (leaf.parent === node) return false;
  // The devlink core refuses a new parent while the leaf has one (EBUSY "Rate object already has parent"): noparent first.
  if (leaf.parent !== null) await unparentLeaf(devlink, tree, vf);
  await kernel(`devlink port function rate set ${leaf.object} parent ${node}`, () => devlink.setRate(leaf.object, { parent: node }));
  leaf.parent = node;
  return true;
}

/** VF `vf`'s leaf back at the root, keeping its rates: `devlink port function rate set <port> noparent`. Whether it changed. */
export async function unparentLeaf(devlink: Devlink, tree: RateTree, vf: number): Promise<boolean> {
  const leaf = tree.leaves.get(vf);
  if (!leaf || leaf.parent === null) return false;
  await kernel(`devlink port function rate set ${leaf.object} noparent`, () => devlink.setRate(leaf.object, { parent: null }));
  leaf.parent = null;
  return true;
}

/**
 * VF `vf`'s leaf as a released VF's: no parent, no guarantee, no cap
 * (`devlink port function rate set <port> noparent tx_share 0 tx_max 0`, one
 * command). Whether it changed.
 */
export async function clearLeaf(devlink: Devlink, tree: RateTree, vf: number): Promise<boolean> {
  const leaf = tree.leaves.get(vf);
  if (!leaf || (leaf.parent === null && leaf.txShareMbps === 0 && leaf.txMaxMbps === 0)) return false;
  const change = { parent: null, txShareMbps: 0, txMaxMbps: 0 };
  await kernel(`devlink port function rate set ${leaf.object} noparent tx_share 0 tx_max 0`, () => devlink.setRate(leaf.object, change));
  Object.assign(leaf, change);
  return true;
}

/** A leaf of another port (not a VF's) back at the root: only to empty a node of vfleet's before deleting it. */
export async function unparentOther(devlink: Devlink, tree: RateTree, object: string): Promise<void> {
  const leaf = tree.otherLeaves.get(object);
  if (!leaf || leaf.parent === null) return;
  await kernel(`devlink port function rate set ${object} noparent`, () => devlink.setRate(object, { parent: null }));
  leaf.parent = null;
}

/** What is parented to `node`: VF leaves (by index), other leaves (by object) and nodes (by name). */
export function childrenOf(tree: RateTree, node: string): { vfs: number[]; others: string[]; nodes: string[] } {
  return {
    vfs: [...tree.leaves].filter(([, l]) => l.parent === node).map(([vf]) => vf),
    others: [...tree.otherLeaves].filter(([, l]) => l.parent === node).map(([o]) => o),
    nodes: [...tree.nodes.values()].filter((n) => n.parent === node).map((n) => n.name),
  };
}

/**
 * `devlink port function rate del <dev>/<name>` of a vfleet node. Its
 * children must be gone first: the kernel refuses (EBUSY) a node that has any.
 */
export async function deleteRateNode(devlink: Devlink, tree: RateTree, name: string): Promise<boolean> {
  checkVfleetName(name);
  if (!tree.nodes.has(name)) return false;
  await kernel(`devlink port function rate del ${tree.device}/${name}`, () => devlink.deleteRateNode(tree.device, name));
  tree.nodes.delete(name);
  return true;
}

/** vfleet writes only nodes it names: `vfleet-<tenant>`, a valid devlink node name. */
function checkVfleetName(name: string): void {
  parseRateNodeName(name);
  if (!isVfleetNode(name)) throw new SriovError('INVALID_ARGUMENT', `rate node ${name} is not vfleet's (its nodes are named ${VFLEET_NODE_PREFIX}<tenant>); vfleet leaves other nodes alone`, { object: name, nothingChanged: true });
}

function leafOf(tree: RateTree, vf: number): RateLeaf {
  const leaf = tree.leaves.get(vf);
  if (!leaf) throw new SriovError('NOT_FOUND', `${tree.device} vf ${vf} has no devlink rate leaf (is the PF in switchdev mode?)`, { object: `${tree.device} vf ${vf}`, nothingChanged: true });
  return leaf;
}

/** A node's rate object: `<handle>/<name>` (`pci/0000:3b:00.0/vfleet-acme`). */
function nodeObject(tree: RateTree, name: string): string {
  return `${devlinkHandle(tree.device)}/${name}`;
}

async function kernel<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof KernelError)) throw err;
    throw new SriovError(codeForErrno(err.errno), `${what}: ${err.message}`, { errno: err.errno, cause: err });
  }
}
