/**
 * `sriovctl audit isolation`: analyses the VF configuration the hosts
 * actually report — not what the store says they should have — and tells
 * which tenants share an L2 segment, and every configuration that breaks
 * isolation (field notes §7.3–7.5). An unallocated VF is judged against its
 * node policy's baseline: what a policy declares is not a finding.
 */
import { requireStaff, type Actor } from '../domain/actor.js';
import { HOLDING_STATES, type Allocation, type HostRecord, type Network } from '../domain/types.js';
import { enforceableSettings } from '../host/capabilities.js';
import type { VfConfig, VfInfo } from '../host/model.js';
import { ZERO_MAC } from '../host/validate.js';
import { baselineOf, leftoverSettings } from '../policy/baseline.js';
import { parsePolicyFile, type NodePolicy } from '../policy/schema.js';
import type { Context } from './context.js';
import { keptVfSettings, vfConfigFor } from './desired-state.js';

export type ViolationKind = 'shared-vlan' | 'duplicate-mac' | 'trust-without-spoofchk' | 'unallocated-config' | 'drift';

export interface Violation {
  kind: ViolationKind;
  message: string;
  vfs: string[];
  tenants?: string[];
}

export interface Segment {
  physnet: string;
  vlan: number;
  tenants: string[];
  vfs: number;
}

export interface IsolationReport {
  generatedAt: string;
  segments: Segment[];
  /** tenant → the other tenants it shares an L2 segment with. */
  reachability: Record<string, string[]>;
  violations: Violation[];
}

const UNALLOCATED = '(unallocated)';
const DRIFT_FIELDS: Array<keyof VfConfig> = ['mac', 'vlan', 'qos', 'vlanProto', 'minTxRateMbps', 'maxTxRateMbps', 'spoofChk', 'trust'];

interface SeenVf {
  name: string;
  physnet: string;
  /** The PF's driver: what of an allocation's settings its VF takes. */
  driver: string | null;
  vf: VfInfo;
  allocation: Allocation | undefined;
  /** Unallocated and departing from the node policy's baseline. */
  configured: boolean;
  /** What the node policy declares for this VF when unallocated. */
  baseline: VfConfig;
}

export async function auditIsolation(ctx: Context, actor: Actor): Promise<IsolationReport> {
  requireStaff(actor, 'audit isolation');
  const [hosts, allocations, networks, policies] = await Promise.all([
    ctx.store.tx.listHosts(),
    ctx.store.tx.listAllocations({ holding: true }),
    ctx.store.tx.listNetworks(),
    ctx.store.tx.listPolicies(),
  ]);
  const held = new Map(allocations.filter((a) => HOLDING_STATES.includes(a.state)).map((a) => [`${a.host}|${a.pfPciAddress}|${a.vfIndex}`, a]));
  // Stored policies were checked when they were put.
  const policiesOf = new Map(policies.map((p) => [p.host, parsePolicyFile(p.document)]));
  const vfs = hosts.flatMap((h) => vfsOf(h, held, ctx.macs.prefix, policiesOf.get(h.name) ?? []));
  const segments = segmentsOf(vfs);
  const byNetwork = new Map(networks.map((n) => [n.name, n]));
  return {
    generatedAt: ctx.now(),
    segments,
    reachability: reachabilityOf(segments),
    violations: [...sharedVlans(segments, vfs), ...duplicateMacs(vfs), ...vfs.flatMap((v) => perVf(v, byNetwork))],
  };
}

function vfsOf(host: HostRecord, held: Map<string, Allocation>, macPrefix: string, policies: NodePolicy[]): SeenVf[] {
  return host.inventory.pfs.flatMap((pf) =>
    pf.vfs.map((vf) => {
      const baseline = baselineOf(pf, vf.index, policies);
      return {
        name: `${host.name}/${pf.name} vf ${vf.index}`,
        physnet: host.physnets[pf.pciAddress] ?? '(none)',
        driver: pf.driver,
        vf,
        allocation: inEffect(held.get(`${host.name}|${pf.pciAddress}|${vf.index}`)),
        configured: leftoverSettings(vf, baseline, macPrefix) !== null,
        baseline,
      };
    }),
  );
}

/**
 * A pending allocation's VF is not configured yet: what it shows is still the
 * previous state, so it is judged as unallocated until its agent reports.
 */
function inEffect(a: Allocation | undefined): Allocation | undefined {
  return a && a.state !== 'pending' ? a : undefined;
}

function segmentsOf(vfs: SeenVf[]): Segment[] {
  const map = new Map<string, Segment & { set: Set<string> }>();
  for (const v of vfs.filter((x) => x.allocation || x.configured)) {
    const key = `${v.physnet}|${v.vf.vlan}`;
    const seg = map.get(key) ?? { physnet: v.physnet, vlan: v.vf.vlan, tenants: [], vfs: 0, set: new Set<string>() };
    seg.set.add(v.allocation?.tenant ?? UNALLOCATED);
    seg.vfs++;
    map.set(key, seg);
  }
  return [...map.values()].map(({ set, ...s }) => ({ ...s, tenants: [...set].sort() })).sort((a, b) => a.physnet.localeCompare(b.physnet) || a.vlan - b.vlan);
}

function reachabilityOf(segments: Segment[]): Record<string, string[]> {
  const out: Record<string, Set<string>> = {};
  for (const s of segments) for (const t of s.tenants) for (const u of s.tenants) if (t !== u) (out[t] ??= new Set()).add(u);
  return Object.fromEntries(Object.entries(out).map(([t, set]) => [t, [...set].sort()]));
}

function sharedVlans(segments: Segment[], vfs: SeenVf[]): Violation[] {
  return segments
    .filter((s) => s.tenants.length > 1)
    .map((s) => ({
      kind: 'shared-vlan' as const,
      message: `physnet ${s.physnet} VLAN ${s.vlan} is shared by ${s.tenants.join(', ')}`,
      tenants: s.tenants,
      vfs: vfs.filter((v) => v.physnet === s.physnet && v.vf.vlan === s.vlan && (v.allocation || v.configured)).map((v) => v.name),
    }));
}

function duplicateMacs(vfs: SeenVf[]): Violation[] {
  const byMac = new Map<string, SeenVf[]>();
  for (const v of vfs.filter((x) => x.vf.mac !== ZERO_MAC)) byMac.set(v.vf.mac, [...(byMac.get(v.vf.mac) ?? []), v]);
  return [...byMac].filter(([, list]) => list.length > 1 && !migrationPair(list)).map(([mac, list]) => ({ kind: 'duplicate-mac' as const, message: `MAC ${mac} is on ${list.length} VFs`, vfs: list.map((v) => v.name) }));
}

/**
 * The two ends of one migration carry its MAC by design: the destination is
 * configured with it before the switch, unplugged and down until the
 * workload moves, and the source is scrubbed after it.
 */
function migrationPair(list: SeenVf[]): boolean {
  const ids = list.map((v) => v.allocation?.migration?.id);
  return list.length === 2 && ids[0] !== undefined && ids[0] === ids[1];
}

function perVf(v: SeenVf, networks: Map<string, Network>): Violation[] {
  const out: Violation[] = [];
  // A node policy that declares trust on with spoof check off for this VF is the admin's decision, not a finding.
  const declared = !v.allocation && v.baseline.trust === true && v.baseline.spoofChk === false;
  if (v.vf.trust === true && v.vf.spoofChk === false && !declared) {
    out.push({ kind: 'trust-without-spoofchk', message: `${v.name} is trusted with spoof check off: it can send as any MAC`, vfs: [v.name] });
  }
  if (!v.allocation && v.configured) {
    out.push({ kind: 'unallocated-config', message: `${v.name} is configured (MAC ${v.vf.mac}, VLAN ${v.vf.vlan}) but has no allocation`, vfs: [v.name] });
  }
  const network = v.allocation && networks.get(v.allocation.network);
  if (v.allocation && network && v.allocation.state !== 'pending' && v.allocation.state !== 'releasing') {
    const want = enforceableSettings(v.driver, vfConfigFor(network, v.allocation));
    const kept = keptVfSettings(want);
    const drift = DRIFT_FIELDS.filter((f) => f in kept && v.vf[f] !== want[f] && !(v.vf[f] === null && (f === 'spoofChk' || f === 'trust')));
    if (drift.length) {
      const diff = drift.map((f) => `${f} ${v.vf[f]} (want ${want[f]})`).join(', ');
      out.push({ kind: 'drift', message: `${v.name} of allocation ${v.allocation.id} drifted: ${diff}`, vfs: [v.name], tenants: [v.allocation.tenant] });
    }
  }
  return out;
}
