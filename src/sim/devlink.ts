/**
 * The simulated host's devlink: eswitch mode, VF representor ports and rate
 * objects, with the refusals of the kernel's devlink core and of the drivers
 * (mlx5, ice, netdevsim). Rate leaves exist for VF ports in switchdev mode on
 * drivers that rate through devlink; nodes only in switchdev mode.
 */
import { capabilitiesOf } from '../host/capabilities.js';
import type { EswitchMode, RateLimits } from '../host/model.js';
import type { Devlink, DevlinkPortFacts, DevlinkRateFacts, RateChange } from '../host/ports.js';
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

/** The representor netdev of VF `n` (`<pf>r<n>`, cut to IFNAMSIZ). */
export function representorName(pf: SimPf, n: number): string {
  const suffix = `r${n}`;
  return `${pf.name.slice(0, 15 - suffix.length)}${suffix}`;
}

function pfOf(state: SimState, device: string, operation: string): SimPf {
  const address = parseDeviceAddress(device);
  const pf = state.pfs.find((p) => p.pciAddress === address);
  if (!pf) throw kernelError('ENODEV', operation);
  return pf;
}

const isSwitchdev = (pf: SimPf) => pf.eswitchMode === 'switchdev';
const hasRateObjects = (pf: SimPf) => isSwitchdev(pf) && capabilitiesOf(pf.driver).switchdevRates === 'devlink';

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
  if (pf.eswitchMode === mode) return;
  // devlink core: leaving switchdev while rate nodes exist (devlink_rate_nodes_check).
  if ((pf.rateNodes ?? []).length > 0) throw kernelError('EBUSY', operation, 'Rate node(s) exists.');
  if (caps.eswitchModeChange === 'no-vfs' && pf.numVfs > 0) {
    throw kernelError('EOPNOTSUPP', operation, 'Changing eswitch mode is allowed only if there is no VFs created');
  }
  if (caps.eswitchModeChange === 'vfs-unbound' && pf.vfs.some((vf) => vf.driver !== null)) {
    throw kernelError('EBUSY', operation, 'VFs are bound to a driver; unbind them first');
  }
  pf.eswitchMode = mode;
  // Rate objects belong to switchdev's ports: they go with them.
  for (const vf of pf.vfs) delete vf.rateLeaf;
}

/** `<handle>/<name>` → the PF and the object's last part (a port index or a node name). */
function objectOf(state: SimState, object: string, operation: string): { pf: SimPf; name: string } {
  const at = object.lastIndexOf('/');
  const handle = object.slice(0, at);
  const pf = state.pfs.find((p) => devlinkHandle(p.pciAddress) === handle);
  if (!pf || at < 0) throw kernelError('ENODEV', operation);
  return { pf, name: object.slice(at + 1) };
}

function checkRate(pf: SimPf, limits: Partial<RateLimits>, operation: string): void {
  for (const value of [limits.txShareMbps, limits.txMaxMbps]) {
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < 0) throw kernelError('EINVAL', operation, 'TX rate value not in link speed units of 1Mbps.');
    if (pf.driver === 'netdevsim' && value > 5000) throw kernelError('EINVAL', operation, 'TX rate value exceed link maximum speed 5000Mbps.');
  }
}

function nodeNamed(pf: SimPf, name: string, operation: string): SimRateNode {
  const node = (pf.rateNodes ?? []).find((n) => n.name === name);
  if (!node) throw kernelError('ENOENT', operation, `rate node ${name} not found`);
  return node;
}

/** Whether `ancestor` is `name` or above it through parents. */
function isAncestorOrSelf(pf: SimPf, ancestor: string, name: string): boolean {
  for (let at: string | null = name; at !== null; at = (pf.rateNodes ?? []).find((n) => n.name === at)?.parent ?? null) {
    if (at === ancestor) return true;
  }
  return false;
}

function setRate(state: SimState, object: string, change: RateChange, operation: string): void {
  const { pf, name } = objectOf(state, object, operation);
  if (!hasRateObjects(pf)) throw kernelError('ENODEV', operation, 'rate object not found');
  checkRate(pf, change, operation);
  const isLeaf = /^\d+$/.test(name);
  const target = isLeaf ? leafTarget(pf, Number(name), operation) : nodeNamed(pf, name, operation);
  if (change.parent !== undefined && change.parent !== null) {
    nodeNamed(pf, change.parent, operation);
    if (!isLeaf && isAncestorOrSelf(pf, name, change.parent)) throw kernelError('EEXIST', operation, 'Node is already a parent of parent node.');
  }
  if (change.txShareMbps !== undefined) target.txShareMbps = change.txShareMbps;
  if (change.txMaxMbps !== undefined) target.txMaxMbps = change.txMaxMbps;
  if (change.parent !== undefined) target.parent = change.parent;
}

function leafTarget(pf: SimPf, port: number, operation: string): RateLimits & { parent: string | null } {
  const vf = pf.vfs.find((v) => VF_PORT_BASE + v.index === port);
  if (!vf) throw kernelError('ENODEV', operation, 'rate object not found');
  vf.rateLeaf ??= { txShareMbps: 0, txMaxMbps: 0, parent: null };
  return vf.rateLeaf;
}

function addNode(pf: SimPf, name: string, limits: RateLimits, operation: string): void {
  if (!isSwitchdev(pf) || !capabilitiesOf(pf.driver).rateNodes) throw kernelError('EOPNOTSUPP', operation, 'Node creation allowed only in switchdev mode.');
  if (/^\d+$/.test(name)) throw kernelError('EINVAL', operation, 'a node name cannot be a port index');
  if ((pf.rateNodes ?? []).some((n) => n.name === name)) throw kernelError('EEXIST', operation, 'Rate node already exists.');
  checkRate(pf, limits, operation);
  (pf.rateNodes ??= []).push({ name, txShareMbps: limits.txShareMbps, txMaxMbps: limits.txMaxMbps, parent: null });
}

function deleteNode(pf: SimPf, name: string, operation: string): void {
  nodeNamed(pf, name, operation);
  const children = pf.vfs.some((vf) => vf.rateLeaf?.parent === name) || (pf.rateNodes ?? []).some((n) => n.parent === name);
  if (children) throw kernelError('EBUSY', operation, 'Node has children. Cannot delete node.');
  pf.rateNodes = (pf.rateNodes ?? []).filter((n) => n.name !== name);
}

export function simDevlink(sim: SimAccess): Devlink {
  return {
    eswitchMode: (device) =>
      sim.read((s) => {
        const pf = pfOf(s, device, `devlink dev eswitch show ${device}`);
        return pf.eswitchMode;
      }),
    setEswitchMode: (device, mode) => sim.update((s) => setMode(pfOf(s, device, `devlink dev eswitch set ${device} mode ${mode}`), mode, `devlink dev eswitch set ${device} mode ${mode}`)),
    ports: (device) => sim.read((s) => ports(pfOf(s, device, `devlink port show ${device}`))),
    rates: (device) => sim.read((s) => rates(pfOf(s, device, 'devlink port function rate show'))),
    addRateNode: (device, name, limits) =>
      sim.update((s) => {
        const operation = `devlink port function rate add ${device}/${name}`;
        addNode(pfOf(s, device, operation), name, limits, operation);
      }),
    setRate: (object, change) => sim.update((s) => setRate(s, object, change, `devlink port function rate set ${object}`)),
    deleteRateNode: (device, name) =>
      sim.update((s) => {
        const operation = `devlink port function rate del ${device}/${name}`;
        deleteNode(pfOf(s, device, operation), name, operation);
      }),
  };
}
