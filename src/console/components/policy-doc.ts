/**
 * Editing a node policy document for one PF's VF count and MTU. The `yaml`
 * library keeps the operator's comments and layout; it is loaded only when
 * a PF is changed, so other pages do not ship it.
 */
import type { PfInfo } from './types.js';

interface Selector {
  pfNames?: string[];
  pciAddresses?: string[];
  vendor?: string;
  device?: string;
  drivers?: string[];
}

/** src/policy/plan.ts's `matches`, for the console: which policy a PF falls under. */
export function selects(sel: Selector, pf: PfInfo): boolean {
  return (
    (!sel.pfNames || sel.pfNames.includes(pf.name)) &&
    (!sel.pciAddresses || sel.pciAddresses.includes(pf.pciAddress)) &&
    (!sel.vendor || sel.vendor === pf.vendorId) &&
    (!sel.device || sel.device === pf.deviceId) &&
    (!sel.drivers || (pf.driver !== null && sel.drivers.includes(pf.driver)))
  );
}

/** `document` with the policy selecting `pf` set to these values; a new policy for the PF alone when none selects it. */
export async function withPfSettings(document: string | null, pf: PfInfo, change: { numVfs: number; mtu?: number }): Promise<string> {
  const YAML = await import('yaml');
  const doc = YAML.parseDocument(document ?? 'policies: []\n');
  const policies = (doc.toJS() as { policies?: Array<{ selector?: Selector }> } | null)?.policies ?? [];
  if (!doc.has('policies')) doc.set('policies', doc.createNode([]));
  const i = policies.findIndex((p) => selects(p.selector ?? {}, pf));
  if (i >= 0) {
    doc.setIn(['policies', i, 'numVfs'], change.numVfs);
    if (change.mtu !== undefined) doc.setIn(['policies', i, 'mtu'], change.mtu);
  } else {
    const name = `pf-${pf.name}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63).replace(/-+$/, '');
    doc.addIn(['policies'], doc.createNode({ name, selector: { pciAddresses: [pf.pciAddress] }, numVfs: change.numVfs, ...(change.mtu !== undefined ? { mtu: change.mtu } : {}) }));
  }
  return doc.toString();
}
