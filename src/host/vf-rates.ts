/**
 * Where a VF's min/max TX rate goes, chosen per PF: `ip link set <PF> vf N
 * min_tx_rate/max_tx_rate` in legacy mode, or the VF's devlink rate leaf
 * (`tx_share`/`tx_max`) in switchdev mode on drivers that rate through
 * devlink (mlx5 and ice answer the `ip link` form with EOPNOTSUPP there).
 * Either way the write is read back: the PF's vfinfo, or the leaves.
 */
import { capabilitiesOf } from './capabilities.js';
import type { PfInfo } from './model.js';
import { KernelError, type Devlink, type VfOp } from './ports.js';
import { vfPortsOf } from './switchdev-view.js';

export type RateRoute = 'ip-link' | 'devlink';
export type RateOp = Extract<VfOp, { field: 'rate' }>;

/** A VF's rates as its leaf has them: tx_share is the guarantee, tx_max the cap (whole Mbit/s, 0: none). */
export interface LeafRates {
  minTxRateMbps: number;
  maxTxRateMbps: number;
}

export function rateRouteOf(pf: Pick<PfInfo, 'driver' | 'eswitchMode'>): RateRoute {
  return pf.eswitchMode === 'switchdev' && capabilitiesOf(pf.driver).switchdevRates === 'devlink' ? 'devlink' : 'ip-link';
}

export const isRateOp = (op: VfOp): op is RateOp => op.field === 'rate';

/** VF index → its rate leaf (the VF's `pcivf` port handle, `devlink -j port show <dev>`). */
export async function leafObjects(devlink: Devlink, pf: PfInfo): Promise<Map<number, string>> {
  const ports = await devlink.ports(pf.pciAddress);
  return new Map([...vfPortsOf(ports)].map(([vf, p]) => [vf, p.port]));
}

/** VF index → its leaf's rates (`devlink -j port function rate show`); a VF without a leaf is absent. */
export async function readLeafRates(devlink: Devlink, pf: PfInfo, objects?: Map<number, string>): Promise<Map<number, LeafRates>> {
  const [byVf, rates] = await Promise.all([objects ?? leafObjects(devlink, pf), devlink.rates(pf.pciAddress)]);
  const leaves = new Map(rates.filter((r) => r.type === 'leaf').map((r) => [r.object, r]));
  const out = new Map<number, LeafRates>();
  for (const [vf, object] of byVf) {
    const leaf = leaves.get(object);
    if (leaf) out.set(vf, { minTxRateMbps: leaf.txShareMbps, maxTxRateMbps: leaf.txMaxMbps });
  }
  return out;
}

/** As an `ip -batch` result: `failedAt` is the op that failed, the ones before it took effect. */
export type LeafWriteResult = { ok: true; after: Map<number, LeafRates> } | { ok: false; failedAt: number; errno: string; message: string };

/**
 * `devlink port function rate set <leaf> tx_share Nmbit tx_max Nmbit` for
 * each op, stopping at the first refusal (as an `ip -batch` run does), then
 * the leaves read back. A VF without a leaf is refused as the kernel would
 * (ENODEV), naming it.
 */
export async function writeLeafRates(devlink: Devlink, pf: PfInfo, ops: RateOp[]): Promise<LeafWriteResult> {
  const objects = await leafObjects(devlink, pf);
  for (const [i, op] of ops.entries()) {
    const object = objects.get(op.vf);
    try {
      if (!object) throw new KernelError('ENODEV', `devlink port function rate set`, `${pf.name} vf ${op.vf} has no devlink rate leaf`);
      await devlink.setRate(object, { txShareMbps: op.minTxRateMbps, txMaxMbps: op.maxTxRateMbps });
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      return { ok: false, failedAt: i, errno: err.errno, message: err.message };
    }
  }
  return { ok: true, after: await readLeafRates(devlink, pf, objects) };
}
