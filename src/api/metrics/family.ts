/**
 * What every family module of /metrics gets, and the one way they add a
 * metric: a family whose samples are computed when Prometheus scrapes, from
 * this controller's memory. Computed straight into prom-client's sample
 * lists, with no Gauge kept between scrapes: nothing is stale, and a host
 * or PF that went away simply stops being listed.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { ControlPlane } from '../../controller/control-plane.js';

export interface MetricsContext {
  registry: Registry;
  control: ControlPlane;
  app: FastifyInstance;
  /** The daemon's version and the host it runs on (`vfleet_build_info`). */
  about: { version: string; node: string };
}

/** A family of /metrics: registers its metrics in `m.registry` (and any hook it needs on `m.app`). */
export type MetricFamilies = (m: MetricsContext) => void;

export type Labels = Record<string, string | number>;

export interface Sample {
  labels?: Labels;
  value: number;
  /** For a histogram's lines: `<name>_bucket`, `_sum`, `_count`. */
  metricName?: string;
}

export type SampleType = 'gauge' | 'counter' | 'histogram';

/** Registers metric `name`, its samples given by `collect` at each scrape. */
export function scraped(registry: Registry, name: string, help: string, type: SampleType, collect: () => Sample[] | Promise<Sample[]>): void {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, aggregator: 'sum', values: await collect() }),
    reset: () => {},
  };
  // prom-client takes any object with name, help, type and get(); its typings know only its own classes.
  registry.registerMetric(metric as never);
}

/** A histogram's lines for one label set, from cumulative bucket counts at `bounds` (the +Inf bucket is `count`). */
export function histogramSamples(name: string, labels: Labels, bounds: readonly number[], cumulative: readonly number[], count: number, sum: number): Sample[] {
  const out: Sample[] = bounds.map((le, i) => ({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative[i] ?? 0 }));
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: count });
  out.push({ metricName: `${name}_sum`, labels, value: sum });
  out.push({ metricName: `${name}_count`, labels, value: count });
  return out;
}
