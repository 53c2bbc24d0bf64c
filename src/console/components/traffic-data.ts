/**
 * Traffic from `GET /v1/traffic` (shape: src/domain/traffic.ts). The
 * telemetry may be absent (an older daemon): that is a 404, shown as "no
 * telemetry", not as an error.
 */
import type { TrafficReport, TrafficScope, TrafficSeries } from '../../domain/traffic.js';
import { api, ApiError, query } from '../api.js';

export type { TrafficReport, TrafficScope, TrafficSeries };

export interface TrafficFilter {
  scope: TrafficScope;
  host?: string;
  pf?: string;
  vf?: number;
  tenant?: string;
}

/** The report, or null when this daemon serves no telemetry. */
export async function loadTraffic(f: TrafficFilter): Promise<TrafficReport | null> {
  try {
    return await api.get<TrafficReport>(query('/v1/traffic', { scope: f.scope, host: f.host, pf: f.pf, vf: f.vf, tenant: f.tenant }));
  } catch (err) {
    // An unknown route is `no route GET /v1/traffic`; any other 404 (no such host) is a real answer.
    if (err instanceof ApiError && err.status === 404 && err.message.startsWith('no route')) return null;
    throw err;
  }
}

/** `host ens1f0 VF 3`, `host ens1f0`, `tenant demo`. */
export function seriesName(s: TrafficSeries): string {
  if (s.scope === 'tenant') return `tenant ${s.tenant ?? '?'}`;
  const pf = `${s.host ?? '?'} ${s.pf ?? '?'}`;
  return s.scope === 'pf' ? pf : `${pf} VF ${s.vf ?? '?'}${s.tenant ? ` (${s.tenant}${s.network ? `/${s.network}` : ''})` : ''}`;
}

export const last = (xs: number[]) => (xs.length ? xs[xs.length - 1]! : 0);

export function bps(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} Gbit/s`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} Mbit/s`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kbit/s`;
  return `${Math.round(n)} bit/s`;
}

export const perSecond = (n: number) => (n >= 1000 ? `${(n / 1000).toFixed(1)}k/s` : `${+n.toFixed(1)}/s`);
