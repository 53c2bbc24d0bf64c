/**
 * The process and Node.js metrics kept of prom-client's defaults, chosen
 * by name so that a new prom-client adds none unseen. Left out:
 * - `nodejs_active_{handles,requests,resources}_total`: gauges with a
 *   counter's suffix (promtool flags them); the same numbers are the sum
 *   over `type` of `nodejs_active_handles` etc., which are kept;
 * - per-heap-space sizes, virtual memory, the event loop's min, mean,
 *   stddev and p90: many series that no alert of ours reads.
 */
import { collectDefaultMetrics } from 'prom-client';
import type { MetricsContext } from './family.js';

export const KEPT_DEFAULTS: ReadonlySet<string> = new Set([
  'process_cpu_user_seconds_total',
  'process_cpu_system_seconds_total',
  'process_cpu_seconds_total',
  'process_start_time_seconds',
  'process_resident_memory_bytes',
  'process_open_fds',
  'process_max_fds',
  'nodejs_eventloop_lag_seconds',
  'nodejs_eventloop_lag_p50_seconds',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_eventloop_lag_max_seconds',
  'nodejs_active_handles',
  'nodejs_active_requests',
  'nodejs_active_resources',
  'nodejs_heap_size_total_bytes',
  'nodejs_heap_size_used_bytes',
  'nodejs_external_memory_bytes',
  'nodejs_gc_duration_seconds',
  'nodejs_version_info',
]);

export function defaultMetrics({ registry }: MetricsContext): void {
  collectDefaultMetrics({ register: registry });
  const isDefault = (name: string) => name.startsWith('process_') || name.startsWith('nodejs_');
  for (const m of registry.getMetricsAsArray()) if (isDefault(m.name) && !KEPT_DEFAULTS.has(m.name)) registry.removeSingleMetric(m.name);
}
