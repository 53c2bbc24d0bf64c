/**
 * CHECK: is the container's VF still what its allocation says? Asked of the
 * daemon's record, of the runtime's prevResult, and of this host itself: the
 * PF's view of the VF and the interface inside the namespace. The host layer
 * is loaded here only, so ADD and DEL never pay for it.
 *
 * Only what vfleet owns is compared. A later plugin in the chain may change
 * the interface's MAC (`tuning` with `mac`); prevResult, the chain's final
 * result, then names that MAC, and the netdev must have it. The VF's
 * PF-side settings and our addresses stay vfleet's.
 */
import { vfConfigFor } from '../controller/desired-state.js';
import { isAttachment } from '../domain/cni-attachment.js';
import { HOLDING_STATES, type Network } from '../domain/types.js';
import { enforceableSettings } from '../host/capabilities.js';
import { SriovError } from '../host/errors.js';
import type { PfInfo, VfConfig } from '../host/model.js';
import type { NetnsPort } from '../host/ports.js';
import type { ContainerEnv, PluginConfig } from './config.js';
import { CniCode, CniError } from './errors.js';
import type { CniInterface, CniIp, CniResult } from './result.js';
import type { ContainerAllocation, Sriovd } from './sriovd.js';

// What the agent sets for the network, as the isolation audit compares it; the MAC is
// checked apart, since a chained plugin may legitimately change it.
const VF_FIELDS: Array<keyof VfConfig> = ['vlan', 'qos', 'vlanProto', 'minTxRateMbps', 'maxTxRateMbps', 'spoofChk', 'trust'];

export async function check(d: Sriovd, config: PluginConfig, c: ContainerEnv): Promise<void> {
  if (config.cniVersion.startsWith('0.3.')) {
    throw new CniError(CniCode.INCOMPATIBLE_VERSION, `CHECK needs cniVersion 0.4.0 or later, the configuration says ${config.cniVersion}`);
  }
  const key = { host: config.host, containerId: c.containerId, ifname: c.ifname, cniNetwork: config.name, network: config.network };
  const held = (await d.interfaceAllocations(c.containerId, c.ifname, config.host)).filter((x) => HOLDING_STATES.includes(x.state) && x.state !== 'releasing');
  const a = held.find((x) => isAttachment(x, key));
  if (!a) throw new CniError(CniCode.UNKNOWN_CONTAINER, `container ${c.containerId} has no vfleet attachment ${c.ifname} of CNI network ${config.name} on ${config.host}`);
  if (a.state !== 'attached') throw new CniError(CniCode.DRIFT, `allocation ${a.id} is ${a.state}, not attached`);
  const network = await d.network(a.network);
  const prev = prevResultView(config.prevResult, a);
  const netdevMac = prev.mac ?? a.mac;
  const problems = [...recordMismatches(a, config, c), ...prev.problems, ...(await hostMismatches(config.hostBackend, a, network, netdevMac))];
  if (problems.length === 1) throw new CniError(CniCode.DRIFT, problems[0]!);
  if (problems.length > 1) throw new CniError(CniCode.DRIFT, `${problems[0]} (and ${problems.length - 1} more)`, problems.join('; '));
}

function recordMismatches(a: ContainerAllocation, config: PluginConfig, c: ContainerEnv): string[] {
  const out: string[] = [];
  if (a.network !== config.network) out.push(`allocation ${a.id} is on network ${a.network}, the configuration says ${config.network}`);
  if (a.attachment.netns !== c.netns) out.push(`allocation ${a.id} is attached to namespace ${a.attachment.netns}, not ${c.netns}`);
  return out;
}

/**
 * The runtime's record of the chain's ADD must still list our interface and
 * our addresses; the MAC it names for the interface (a later plugin may have
 * set it) is what the netdev should have.
 */
function prevResultView(prev: unknown, a: ContainerAllocation): { mac?: string; problems: string[] } {
  if (prev === undefined) return { problems: [] };
  const p = prev as Partial<CniResult>;
  const { ifname, netns, ips } = a.attachment;
  const index = (p.interfaces ?? []).findIndex((i: CniInterface) => i.name === ifname && (i.sandbox === undefined || i.sandbox === netns));
  if (index < 0) return { problems: [`prevResult has no interface ${ifname} in ${netns}`] };
  const mac = p.interfaces![index]!.mac?.toLowerCase();
  const listed = (p.ips ?? []).filter((ip: CniIp) => ip.interface === index).map((ip) => ip.address);
  const problems = sameSet(listed, ips) ? [] : [`prevResult gives ${ifname} addresses [${listed.join(', ')}], the allocation has [${ips.join(', ')}]`];
  return { ...(mac ? { mac } : {}), problems };
}

/** `netdevMac`: the MAC the interface in the namespace must have (the allocation's, or the chain's). */
async function hostMismatches(backend: string, a: ContainerAllocation, network: Network, netdevMac: string): Promise<string[]> {
  const [{ createPorts }, { SriovHost }] = await Promise.all([import('../backends/ports.js'), import('../host/configurator.js')]);
  const ports = createPorts({ host: backend });
  let pf: PfInfo;
  try {
    pf = await new SriovHost(ports).pf(a.pfPciAddress);
  } catch (e) {
    // The allocation's PF missing here is drift too; any other failure is this host's to explain.
    if (e instanceof SriovError && (e.code === 'NOT_FOUND' || e.code === 'NOT_SRIOV_PF')) return [`PF ${a.pf} (${a.pfPciAddress}) is not on this host: ${e.message}`];
    throw new CniError(CniCode.IO_FAILURE, `cannot read PF ${a.pf} (${a.pfPciAddress}) on this host: ${(e as Error).message}`);
  }
  const vf = pf.vfs[a.vfIndex];
  const name = `${pf.name} vf ${a.vfIndex}`;
  if (!vf || vf.pciAddress !== a.pciAddress) return [`${name} is no longer ${a.pciAddress}`];
  const want = enforceableSettings(pf.driver, vfConfigFor(network, a));
  // A driver that does not report spoof check or trust (null) cannot have drifted on it.
  const drifted = VF_FIELDS.filter((f) => vf[f] !== null && vf[f] !== want[f]);
  const out = drifted.map((f) => `${name} ${f} is ${vf[f]}, the allocation wants ${want[f]}`);
  // Some drivers show the PF the MAC the VF set for itself: the chain's, when a later plugin changed it.
  const vfMacs = new Set([a.mac, netdevMac]);
  if (!vfMacs.has(vf.mac.toLowerCase())) out.push(`${name} mac is ${vf.mac}, the allocation wants ${[...vfMacs].join(' or ')}`);
  return [...out, ...(await namespaceMismatches(ports.netns, a, netdevMac))];
}

async function namespaceMismatches(netns: NetnsPort, a: ContainerAllocation, mac: string): Promise<string[]> {
  const { ifname, netns: path, ips } = a.attachment;
  if (!(await netns.exists(path))) return [`namespace ${path} is gone`];
  const link = (await netns.links(path)).find((l) => l.ifname === ifname);
  if (!link) return [`${path} has no interface ${ifname}`];
  const out: string[] = [];
  if (link.pciAddress !== null && link.pciAddress !== a.pciAddress) out.push(`${ifname} in ${path} is ${link.pciAddress}, not the allocated VF ${a.pciAddress}`);
  if (link.mac?.toLowerCase() !== mac) out.push(`${ifname} in ${path} has MAC ${link.mac}, ${mac === a.mac ? 'the allocation has' : 'prevResult says'} ${mac}`);
  // The kernel adds link-local addresses of its own, so only ours must be there.
  const missing = ips.filter((ip) => !link.addresses.includes(ip));
  if (missing.length) out.push(`${ifname} in ${path} lacks ${missing.join(', ')}`);
  return out;
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
