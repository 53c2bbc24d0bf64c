/**
 * The simulated host's devlink: eswitch mode, VF representor ports and rate
 * objects, with the refusals of the kernel's devlink core
 * (net/devlink/leftover.c in 6.1) and of the drivers (mlx5 esw/qos.c, ice,
 * netdevsim dev.c). Rate leaves exist for VF ports in switchdev mode on
 * drivers that rate through devlink; nodes only in switchdev mode.
 *
 * Each call checks in the kernel's order, and like the kernel a rate set is
 * not atomic: `tx_share` is applied before `tx_max`, and both before the
 * parent, so a refusal of a later part keeps the earlier ones.
 */
import { capabilitiesOf } from '../host/capabilities.js';
import type { EswitchMode, RateLimits } from '../host/model.js';
import type { Devlink, DevlinkPortFacts, DevlinkRateFacts, KernelError, RateChange } from '../host/ports.js';
import { devlinkHandle, parseDeviceAddress } from '../host/validate.js';
import { kernelError } from './kernel-error.js';
import type { SimPf, SimRateNode, SimState, SimVf } from './state.js';

export interface SimAccess {
  read<T>(fn: (state: SimState) => T): Promise<T>;
  update<T>(fn: (state: SimState) => T): Promise<T>;
}

/** A VF port's index: netdevsim's numbering (`NSIM_DEV_VF_PORT_INDEX_BASE` 128 + VF). */
export const VF_PORT_BASE = 128;
const UPLINK_PORT = 0;
/** netdevsim's `NSIM_LINK_SPEED_MAX`: its rates are refused above 5000 Mbit/s. */
const NSIM_LINK_SPEED_MAX = 5000;

/** The representor netdev of VF `n` (`<pf>r<n>`, cut to IFNAMSIZ). */
export function representorName(pf: SimPf, n: number): string {
  const suffix = `r${n}`;
  return `${pf.name.slice(0, 15 - suffix.length)}${suffix}`;
}

/** The netdevs under the PF's device: the uplink first, then (switchdev) its VFs' representors. */
export function pfNetdevs(pf: SimPf): string[] {
  return isSwitchdev(pf) ? [pf.name, ...pf.vfs.map((vf) => representorName(pf, vf.index))] : [pf.name];
}

function pfOf(state: SimState, device: string, operation: string): SimPf {
  const address = parseDeviceAddress(device);
  const pf = state.pfs.find((p) => p.pciAddress === address);
  if (!pf) throw kernelError('ENODEV', operation);
  return pf;
}

const isSwitchdev = (pf: SimPf) => pf.eswitchMode === 'switchdev';
const ratesByDevlink = (pf: SimPf) => capabilitiesOf(pf.driver).switchdevRates === 'devlink';
const hasRateObjects = (pf: SimPf) => isSwitchdev(pf) && ratesByDevlink(pf);

/** Whether the PF's driver refuses `ip link set <PF> vf N min_tx_rate/max_tx_rate` (switchdev on a devlink-rate driver). */
export const refusesIpLinkRates = (pf: SimPf): boolean => hasRateObjects(pf);

function ports(pf: SimPf): DevlinkPortFacts[] {
  const handle = devlinkHandle(pf.pciAddress);
  const uplink: DevlinkPortFacts = { port: `${handle}/${UPLINK_PORT}`, flavour: 'physical', netdev: pf.name, pfnum: 0, vfnum: null };
  if (!isSwitchdev(pf)) return [uplink];
  return [uplink, ...pf.vfs.map((vf) => ({ port: `${handle}/${VF_PORT_BASE + vf.index}`, flavour: 'pcivf', netdev: representorName(pf, vf.index), pfnum: 0, vfnum: vf.index }))];
}

function rates(pf: SimPf): DevlinkRateFacts[] {
  if (!hasRateObjects(pf)) return [];
  const handle = devlinkHandle(pf.pciAddress);
  const leaves = pf.vfs.map((vf) => ({ object: `${handle}/${VF_PORT_BASE + vf.index}`, type: 'leaf' as const, ...leafOf(vf) }));
  const nodes = (pf.rateNodes ?? []).map((n) => ({ object: `${handle}/${n.name}`, type: 'node' as const, txShareMbps: n.txShareMbps, txMaxMbps: n.txMaxMbps, parent: n.parent }));
  return [...leaves, ...nodes];
}

const leafOf = (vf: SimVf) => vf.rateLeaf ?? { txShareMbps: 0, txMaxMbps: 0, parent: null };

function setMode(pf: SimPf, mode: EswitchMode, operation: string): void {
  const caps = capabilitiesOf(pf.driver);
  if (pf.eswitchMode === null || caps.eswitchModeChange === null) throw kernelError('EOPNOTSUPP', operation);
  // devlink core, before the driver is asked (devlink_rate_nodes_check): any mode set, the same mode too.
  if ((pf.rateNodes ?? []).length > 0) throw kernelError('EBUSY', operation, 'Rate node(s) exists.');
  // Every driver answers a set to the mode it is in with success, before its own checks.
  if (pf.eswitchMode === mode) return;
  if (caps.eswitchModeChange === 'no-vfs' && pf.numVfs > 0) {
    throw kernelError('EOPNOTSUPP', operation, 'Changing eswitch mode is allowed only if there is no VFs created');
  }
  if (caps.eswitchModeChange === 'vfs-unbound' && pf.vfs.some((vf) => vf.driver !== null)) {
    throw kernelError('EBUSY', operation, 'VFs are bound to a driver; unbind them first');
  }
  pf.eswitchMode = mode;
  // Rate leaves belong to switchdev's VF ports: they go with them (devl_rate_leaf_destroy).
  for (const vf of pf.vfs) delete vf.rateLeaf;
}

/**
 * `echo 0 > sriov_numvfs` in switchdev mode: the VF ports and their leaves go,
 * and the driver destroys the rate nodes (mlx5 `mlx5_eswitch_disable_sriov`,
 * netdevsim `nsim_esw_legacy_enable`); netdevsim also falls back to legacy.
 */
export function onVfsRemoved(pf: SimPf): void {
  if (!isSwitchdev(pf)) return;
  delete pf.rateNodes;
  if (pf.driver === 'netdevsim') pf.eswitchMode = 'legacy';
}

/** `<handle>/<name>` → the PF and the object's last part (a port index or a node name). */
function objectOf(state: SimState, object: string, operation: string): { pf: SimPf; name: string } {
  const at = object.lastIndexOf('/');
  const handle = object.slice(0, Math.max(at, 0));
  const pf = state.pfs.find((p) => devlinkHandle(p.pciAddress) === handle);
  if (!pf || at < 0) throw kernelError('ENODEV', operation);
  return { pf, name: object.slice(at + 1) };
}

/** The driver's rate check (netdevsim `nsim_rate_bytes_to_units`, mlx5 `esw_qos_devlink_rate_to_mbps`). */
function rateRefusal(pf: SimPf, field: 'tx_share' | 'tx_max', value: number, operation: string): KernelError | null {
  if (!Number.isInteger(value) || value < 0) return kernelError('EINVAL', operation, `${field}: TX rate value not in link speed units of 1Mbps.`);
  // The limit is the port's maximum link speed, not its current one: it holds with the link down.
  const max = pf.driver === 'netdevsim' ? NSIM_LINK_SPEED_MAX : pf.speedMbps;
  if (value > max) return kernelError('EINVAL', operation, `${field}: TX rate value exceed link maximum speed ${max}Mbps.`);
  return null;
}

/** A node by name: the devlink core answers ENODEV for an unknown one (`devlink_rate_node_get_by_name`). */
function nodeNamed(pf: SimPf, name: string): SimRateNode | undefined {
  return (pf.rateNodes ?? []).find((n) => n.name === name);
}

/** Whether `node` is `start` or an ancestor of it (`devlink_rate_is_parent_node`). */
function isAncestorOrSelf(pf: SimPf, node: string, start: string | null): boolean {
  for (let at = start; at !== null; at = nodeNamed(pf, at)?.parent ?? null) {
    if (at === node) return true;
  }
  return false;
}

type RateTarget = RateLimits & { parent: string | null };

/** `devlink port function rate set`: returns the refusal (after the parts before it took effect), or null. */
function setRate(state: SimState, object: string, change: RateChange, operation: string): KernelError | null {
  const { pf, name } = objectOf(state, object, operation);
  if (!hasRateObjects(pf)) return kernelError('ENODEV', operation, 'rate object not found');
  const isLeaf = /^\d+$/.test(name);
  const target = isLeaf ? leafTarget(pf, Number(name)) : nodeNamed(pf, name);
  if (!target) return kernelError('ENODEV', operation, 'rate object not found');
  return applyRates(pf, target, change, operation) ?? setParent(pf, isLeaf ? null : name, target, change.parent, operation);
}

/**
 * iproute2's `devlink` (6.1) checks tx_share against tx_max before it asks the
 * kernel, taking the object's current value for the one not given: the kernel
 * itself would accept tx_share above tx_max.
 */
function toolRefusal(target: RateTarget, change: Partial<RateLimits>, operation: string): KernelError | null {
  const share = change.txShareMbps ?? target.txShareMbps;
  const max = change.txMaxMbps ?? target.txMaxMbps;
  if (share === 0 || max === 0 || share <= max) return null;
  return kernelError('EINVAL', operation, 'Invalid. Expected tx_share <= tx_max or tx_share == 0.');
}

function applyRates(pf: SimPf, target: RateTarget, change: Partial<RateLimits>, operation: string): KernelError | null {
  const refused = toolRefusal(target, change, operation);
  if (refused) return refused;
  if (change.txShareMbps !== undefined) {
    const refusal = rateRefusal(pf, 'tx_share', change.txShareMbps, operation);
    if (refusal) return refusal;
    target.txShareMbps = change.txShareMbps;
  }
  if (change.txMaxMbps !== undefined) {
    const refusal = rateRefusal(pf, 'tx_max', change.txMaxMbps, operation);
    if (refusal) return refusal;
    target.txMaxMbps = change.txMaxMbps;
  }
  return null;
}

/** The devlink core's parent rules (`devlink_nl_rate_parent_node_set`); `nodeName` null for a leaf. */
function setParent(pf: SimPf, nodeName: string | null, target: RateTarget, parent: string | null | undefined, operation: string): KernelError | null {
  if (parent === undefined) return null;
  if (parent === null) {
    target.parent = null;
    return null;
  }
  // Moving to another node (or "again" to the same one) takes a noparent first.
  if (target.parent !== null) return kernelError('EBUSY', operation, 'Rate object already has parent.');
  const node = nodeNamed(pf, parent);
  if (!node) return kernelError('ENODEV', operation, `rate node ${parent} not found`);
  if (nodeName === parent) return kernelError('EINVAL', operation, 'Parent to self is not allowed');
  if (nodeName !== null && isAncestorOrSelf(pf, nodeName, node.parent)) return kernelError('EEXIST', operation, 'Node is already a parent of parent node.');
  target.parent = parent;
  return null;
}

function leafTarget(pf: SimPf, port: number): RateTarget | undefined {
  const vf = pf.vfs[port - VF_PORT_BASE];
  if (!vf) return undefined;
  vf.rateLeaf ??= { txShareMbps: 0, txMaxMbps: 0, parent: null };
  return vf.rateLeaf;
}

/** `devlink port function rate add`: the core's checks, the driver's, then the rates; a refusal leaves no node. */
function addNode(pf: SimPf, name: string, limits: RateLimits, operation: string): void {
  if (!capabilitiesOf(pf.driver).rateNodes || !ratesByDevlink(pf)) throw kernelError('EOPNOTSUPP', operation, "Rate nodes aren't supported");
  if (name === '' || /^\d+$/.test(name)) throw kernelError('EINVAL', operation, 'a node name cannot be empty or a port index');
  if (nodeNamed(pf, name)) throw kernelError('EEXIST', operation);
  if (!isSwitchdev(pf)) throw kernelError('EOPNOTSUPP', operation, 'Node creation allowed only in switchdev mode.');
  const node: SimRateNode = { name, txShareMbps: 0, txMaxMbps: 0, parent: null };
  const refusal = applyRates(pf, node, limits, operation);
  if (refusal) throw refusal;
  (pf.rateNodes ??= []).push(node);
}

function deleteNode(pf: SimPf, name: string, operation: string): void {
  if (name === '' || /^\d+$/.test(name)) throw kernelError('EINVAL', operation);
  if (!nodeNamed(pf, name)) throw kernelError('ENODEV', operation, `rate node ${name} not found`);
  const children = pf.vfs.some((vf) => vf.rateLeaf?.parent === name) || (pf.rateNodes ?? []).some((n) => n.parent === name);
  if (children) throw kernelError('EBUSY', operation, 'Node has children. Cannot delete node.');
  pf.rateNodes = (pf.rateNodes ?? []).filter((n) => n.name !== name);
}

export function simDevlink(sim: SimAccess): Devlink {
  return {
    eswitchMode: (device) => sim.read((s) => pfOf(s, device, `devlink dev eswitch show ${device}`).eswitchMode),
    setEswitchMode: (device, mode) =>
      sim.update((s) => {
        const operation = `devlink dev eswitch set ${devlinkHandle(device)} mode ${mode}`;
        setMode(pfOf(s, device, operation), mode, operation);
      }),
    ports: (device) => sim.read((s) => ports(pfOf(s, device, `devlink port show ${device}`))),
    rates: (device) => sim.read((s) => rates(pfOf(s, device, 'devlink port function rate show'))),
    addRateNode: (device, name, limits) =>
      sim.update((s) => {
        const operation = `devlink port function rate add ${devlinkHandle(device)}/${name}`;
        addNode(pfOf(s, device, operation), name, limits, operation);
      }),
    setRate: async (object, change) => {
      const refusal = await sim.update((s) => setRate(s, object, change, `devlink port function rate set ${object}`));
      if (refusal) throw refusal;
    },
    deleteRateNode: (device, name) =>
      sim.update((s) => {
        const operation = `devlink port function rate del ${devlinkHandle(device)}/${name}`;
        deleteNode(pfOf(s, device, operation), name, operation);
      }),
  };
}
