/**
 * Traffic for the API (`GET /v1/traffic`): series of rates built from the
 * in-memory window (traffic-window.ts), per VF, per PF or per tenant.
 *
 * Who sees what: staff see everything. A tenant sees only the VFs its
 * allocations hold, and only since each allocation was made (the VF's
 * earlier traffic was another tenant's), and its own tenant series; PF
 * series are staff's (FORBIDDEN). Per-tenant series sum the tenant's VFs.
 * A VF is labelled with the allocation holding it now.
 */
import { forbidden, isStaff, notFound, tenantOf, type Actor } from '../domain/actor.js';
import { type TrafficMissing, type TrafficReport, type TrafficScope, type TrafficSeries } from '../domain/traffic.js';
import type { TrafficDeltas } from '../domain/traffic-deltas.js';
import type { Allocation } from '../domain/types.js';
import { invalid } from '../host/errors.js';
import type { Context } from './context.js';
import type { TrafficSink } from './hosts.js';
import { TrafficWindow, vfKey, type HostTraffic, type SeriesPoint, type TrafficWindowOptions } from './traffic-window.js';

export interface TrafficQuery {
  scope?: TrafficScope;
  host?: string;
  pf?: string;
  vf?: number;
  tenant?: string;
  network?: string;
}

/** Series in one answer at most; the rest are counted in `truncated`. */
export const MAX_SERIES = 1000;
const DEFAULT_INTERVAL_S = 5;

type Rates = SeriesPoint['rates'];

const round = (v: number) => Math.round(v * 100) / 100;

/** Counters count bytes; links and rate limits are in bits, so throughput is served in bits per second. */
const BITS = 8;

function columns(points: SeriesPoint[]): Omit<TrafficSeries, 'scope' | 'simulated'> {
  const col = (i: number, scale = 1) => points.map((p) => round(p.rates[i]! * scale));
  return { t: points.map((p) => Math.round(p.t)), rxBps: col(0, BITS), txBps: col(1, BITS), rxPps: col(2), txPps: col(3), rxDropsPs: col(4), txDropsPs: col(5) };
}

interface VfRef {
  host: string;
  h: HostTraffic;
  pf: string;
  vf: number;
  holder: Allocation | undefined;
}

export class TrafficService implements TrafficSink {
  readonly window: TrafficWindow;

  constructor(
    private readonly ctx: Context,
    opts: TrafficWindowOptions = {},
  ) {
    this.window = new TrafficWindow(opts);
  }

  ingest(host: string, traffic: TrafficDeltas, receivedAt: number): void {
    this.window.ingest(host, traffic, receivedAt);
  }

  forget(host: string): void {
    this.window.forget(host);
  }

  async report(actor: Actor, q: TrafficQuery): Promise<TrafficReport> {
    const scope = q.scope ?? 'vf';
    const own = tenantOf(actor);
    if (!isStaff(actor) && own === null) throw forbidden(actor, 'read traffic');
    if (scope === 'pf' && own !== null) throw forbidden(actor, 'read PF traffic (staff only); ask for scope=vf or scope=tenant');
    if (q.vf !== undefined && q.pf === undefined) throw invalid('field "vf" needs field "pf" (a VF index is per PF)', 'vf');
    if (scope === 'pf' && (q.tenant !== undefined || q.network !== undefined)) throw invalid('scope=pf takes host and pf only, not tenant or network', 'scope');
    if (own !== null && q.tenant !== undefined && q.tenant !== own) throw notFound('tenant', q.tenant);
    const holders = scope === 'pf' ? new Map<string, Allocation>() : await this.holders(own ?? q.tenant, q);
    const out: TrafficReport = { windowS: this.window.windowS, intervalS: DEFAULT_INTERVAL_S, series: [], bucketS: this.window.bucketMs / 1000 };
    const missing: TrafficMissing[] = [];
    const now = Date.now();
    if (scope === 'pf') this.pfSeries(q, out.series, missing, now);
    else {
      const vfs = this.vfRefs(q, holders, own === null);
      if (scope === 'vf') this.vfSeries(vfs, own !== null, out.series, missing, now);
      else this.tenantSeries(vfs, out.series, now);
    }
    out.intervalS = this.intervalOf(q.host);
    if (missing.length) out.missing = missing;
    if (out.series.length > MAX_SERIES) {
      out.truncated = out.series.length - MAX_SERIES;
      out.series.length = MAX_SERIES;
    }
    return out;
  }

  /** The allocations holding a VF now, by `host|pf|vf`, for `tenant` (undefined: all). */
  private async holders(tenant: string | undefined, q: TrafficQuery): Promise<Map<string, Allocation>> {
    const list = await this.ctx.reads.listAllocations({ holding: true, ...(tenant ? { tenant } : {}), ...(q.host ? { host: q.host } : {}), ...(q.network ? { network: q.network } : {}) });
    return new Map(list.map((a) => [`${a.host}|${vfKey(a.pf, a.vfIndex)}`, a]));
  }

  private intervalOf(host: string | undefined): number {
    const hosts = host ? [this.window.host(host)] : [...this.window.hostNames()].map((n) => this.window.host(n));
    return hosts.reduce((m, h) => Math.max(m, h?.intervalS ?? 0), 0) || DEFAULT_INTERVAL_S;
  }

  /** The VFs the query matches: held ones, and (staff, without tenant/network filters) any with a series. */
  private vfRefs(q: TrafficQuery, holders: Map<string, Allocation>, staff: boolean): VfRef[] {
    const refs = new Map<string, VfRef>();
    const matches = (pf: string, vf: number) => (q.pf === undefined || q.pf === pf) && (q.vf === undefined || q.vf === vf);
    for (const [key, a] of holders) {
      const h = this.window.host(a.host);
      if (h && matches(a.pf, a.vfIndex)) refs.set(key, { host: a.host, h, pf: a.pf, vf: a.vfIndex, holder: a });
    }
    if (!staff || q.tenant !== undefined || q.network !== undefined) return [...refs.values()];
    for (const host of q.host ? [q.host] : this.window.hostNames()) {
      const h = this.window.host(host);
      if (!h) continue;
      for (const key of vfKeysOf(h)) {
        const [pf, vf] = splitKey(key);
        if (matches(pf, vf) && !refs.has(`${host}|${key}`)) refs.set(`${host}|${key}`, { host, h, pf, vf, holder: undefined });
      }
    }
    return [...refs.values()].sort((a, b) => a.host.localeCompare(b.host) || a.pf.localeCompare(b.pf) || a.vf - b.vf);
  }

  private vfSeries(vfs: VfRef[], sinceAllocation: boolean, series: TrafficSeries[], missing: TrafficMissing[], now: number): void {
    for (const r of vfs) {
      const from = sinceAllocation && r.holder ? Date.parse(r.holder.createdAt) : undefined;
      const points = this.window.points(r.h, vfKey(r.pf, r.vf), { from, now });
      const reason = this.window.missing(r.h, r.pf, r.vf);
      if (reason) missing.push({ host: r.host, pf: r.pf, vf: r.vf, reason });
      if (points.length === 0) continue;
      series.push({
        scope: 'vf',
        host: r.host,
        pf: r.pf,
        vf: r.vf,
        ...(r.holder ? { tenant: r.holder.tenant, network: r.holder.network } : {}),
        simulated: r.h.simulated,
        source: this.window.source(r.h, r.pf, r.vf),
        ...columns(points),
      });
    }
  }

  private pfSeries(q: TrafficQuery, series: TrafficSeries[], missing: TrafficMissing[], now: number): void {
    for (const host of q.host ? [q.host] : [...this.window.hostNames()].sort()) {
      const h = this.window.host(host);
      if (!h) continue;
      const pfs = new Set([...h.series.keys(), ...h.notes.keys()].filter((k) => !k.includes('#')));
      for (const pf of [...pfs].sort()) {
        if (q.pf !== undefined && q.pf !== pf) continue;
        const reason = this.window.missing(h, pf);
        if (reason) missing.push({ host, pf, reason });
        const points = this.window.points(h, pf, { now });
        if (points.length) series.push({ scope: 'pf', host, pf, simulated: h.simulated, ...columns(points) });
      }
    }
  }

  /** Per tenant: the sum of its VFs' rates, bucket by bucket, each VF counted from its allocation's creation. */
  private tenantSeries(vfs: VfRef[], series: TrafficSeries[], now: number): void {
    const byTenant = new Map<string, { simulated: boolean; buckets: Map<number, SeriesPoint> }>();
    for (const r of vfs) {
      if (!r.holder) continue;
      let acc = byTenant.get(r.holder.tenant);
      if (!acc) byTenant.set(r.holder.tenant, (acc = { simulated: false, buckets: new Map() }));
      acc.simulated ||= r.h.simulated;
      for (const p of this.window.points(r.h, vfKey(r.pf, r.vf), { from: Date.parse(r.holder.createdAt), now })) {
        const b = acc.buckets.get(p.bucket);
        if (!b) acc.buckets.set(p.bucket, { ...p, rates: [...p.rates] as Rates });
        else {
          b.t = Math.max(b.t, p.t);
          for (let i = 0; i < 6; i++) b.rates[i]! += p.rates[i]!;
        }
      }
    }
    for (const [tenant, acc] of [...byTenant].sort(([a], [b]) => a.localeCompare(b))) {
      const points = [...acc.buckets.values()].sort((a, b) => a.bucket - b.bucket);
      series.push({ scope: 'tenant', tenant, simulated: acc.simulated, ...columns(points) });
    }
  }
}

function* vfKeysOf(h: HostTraffic): Generator<string> {
  for (const key of h.series.keys()) if (key.includes('#')) yield key;
  for (const [pf, n] of h.notes) for (const vf of n.missing.keys()) if (!h.series.has(vfKey(pf, vf))) yield vfKey(pf, vf);
}

function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf('#');
  return [key.slice(0, i), Number(key.slice(i + 1))];
}

