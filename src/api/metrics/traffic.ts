/**
 * Traffic counters on /metrics, from the totals the controller's traffic
 * window keeps since it started (controller/traffic-window.ts):
 * - `vfleet_vf_{rx,tx}_{bytes,packets,dropped}_total{host,pf,vf,tenant,network}`
 *   for the VFs held by an allocation or that moved; a free VF's tenant and
 *   network are "". No allocation ids: the series stay bounded by the VFs.
 * - `vfleet_pf_{rx,tx}_{bytes,packets,dropped}_total{host,pf}`.
 * - `vfleet_traffic_simulated{host}`: 1 when the host's counters are generated.
 *
 * A VF carries the tenant and network of the allocation holding it at scrape
 * time. When those change, the VF's old series ends and its new one starts
 * from zero (the traffic before the change was not the new tenant's); what
 * moved between the change and the scrape counts for the new labels.
 */
import { Counter, Gauge } from 'prom-client';
import type { ControlPlane } from '../../controller/control-plane.js';
import { vfKey } from '../../controller/traffic-window.js';
import type { Allocation } from '../../domain/types.js';
import type { MetricsContext } from './family.js';

const FIELDS = ['rx_bytes', 'tx_bytes', 'rx_packets', 'tx_packets', 'rx_dropped', 'tx_dropped'] as const;
const WORDS = { rx_bytes: 'bytes received', tx_bytes: 'bytes sent', rx_packets: 'packets received', tx_packets: 'packets sent', rx_dropped: 'received packets dropped', tx_dropped: 'sent packets dropped' };
const VF_LABELS = ['host', 'pf', 'vf', 'tenant', 'network'] as const;
const PF_LABELS = ['host', 'pf'] as const;

interface Base {
  labels: string;
  at: Float64Array;
}

export interface VfCounterRow {
  labels: Record<(typeof VF_LABELS)[number], string>;
  values: number[];
}

export interface TrafficSnapshot {
  vfs: VfCounterRow[];
  pfs: Array<{ labels: Record<(typeof PF_LABELS)[number], string>; values: number[] }>;
  simulated: Array<{ host: string; value: number }>;
}

/** The counters as /metrics shows them now; `bases` carries each VF's label change over scrapes. */
export function trafficSnapshot(control: ControlPlane, holding: Allocation[], bases: Map<string, Base>): TrafficSnapshot {
  const window = control.traffic.window;
  const holders = new Map(holding.map((a) => [`${a.host}|${vfKey(a.pf, a.vfIndex)}`, a]));
  const out: TrafficSnapshot = { vfs: [], pfs: [], simulated: [] };
  const seen = new Set<string>();
  const zeros = new Float64Array(6);
  const vfRow = (host: string, key: string, totals: Float64Array) => {
    const id = `${host}|${key}`;
    seen.add(id);
    const a = holders.get(id);
    const labelText = a ? `${a.tenant}|${a.network}` : '|';
    let base = bases.get(id);
    // First seen: everything so far is its labels'. Labels changed: the new series starts from zero.
    if (!base) bases.set(id, (base = { labels: labelText, at: new Float64Array(6) }));
    else if (base.labels !== labelText) bases.set(id, (base = { labels: labelText, at: Float64Array.from(totals) }));
    const at = base.at;
    const [pf, vf] = [key.slice(0, key.lastIndexOf('#')), key.slice(key.lastIndexOf('#') + 1)];
    out.vfs.push({ labels: { host, pf, vf, tenant: a?.tenant ?? '', network: a?.network ?? '' }, values: [...totals].map((v, i) => v - at[i]!) });
  };
  for (const host of window.hostNames()) {
    const h = window.host(host)!;
    out.simulated.push({ host, value: h.simulated ? 1 : 0 });
    for (const [key, s] of h.series) {
      if (!key.includes('#')) out.pfs.push({ labels: { host, pf: key }, values: [...s.totals] });
      else if (s.totals.some((v) => v > 0) || holders.has(`${host}|${key}`)) vfRow(host, key, s.totals);
    }
  }
  for (const [id, a] of holders) if (!seen.has(id)) vfRow(a.host, vfKey(a.pf, a.vfIndex), zeros);
  for (const id of bases.keys()) if (!seen.has(id)) bases.delete(id);
  return out;
}

/** The traffic collectors, on `registry` (called once from registerMetrics). */
export function trafficMetrics({ registry, control }: MetricsContext): void {
  const bases = new Map<string, Base>();
  // A scrape calls every collector at once, in registration order: the first one takes the snapshot the others read.
  let current: Promise<TrafficSnapshot> | null = null;
  const take = () => (current = control.ctx.store.tx.listAllocations({ holding: true }).then((holding) => trafficSnapshot(control, holding, bases)));
  const snapshot = () => current ?? take();
  const registers = [registry];
  FIELDS.forEach((field, i) => {
    new Counter({
      name: `vfleet_vf_${field}_total`,
      help: `VF ${WORDS[field]} since the controller started, as agents report them (VFs held or that moved)`,
      labelNames: VF_LABELS,
      registers,
      async collect() {
        this.reset();
        for (const row of (await (i === 0 ? take() : snapshot())).vfs) this.inc(row.labels, row.values[i]!);
      },
    });
    new Counter({
      name: `vfleet_pf_${field}_total`,
      help: `PF ${WORDS[field]} since the controller started, as agents report them`,
      labelNames: PF_LABELS,
      registers,
      async collect() {
        this.reset();
        for (const row of (await snapshot()).pfs) this.inc(row.labels, row.values[i]!);
      },
    });
  });
  new Gauge({
    name: 'vfleet_traffic_simulated',
    help: '1 when the host’s traffic counters are generated by a simulated host, not read from a NIC',
    labelNames: ['host'] as const,
    registers,
    async collect() {
      this.reset();
      for (const s of (await snapshot()).simulated) this.set({ host: s.host }, s.value);
    },
  });
}
