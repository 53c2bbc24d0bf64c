/** `vfleet_build_info 1`, labelled with what is running where: joins other series to a version in queries. */
import { scraped, type MetricsContext } from './family.js';

export function buildInfo({ registry, control, about }: MetricsContext): void {
  const labels = { version: about.version, node: about.node, store: control.ctx.store.kind, nodejs: process.version };
  scraped(registry, 'vfleet_build_info', 'The running vfleet: version, the host it runs on (node), its store and Node.js version; always 1', 'gauge', () => [{ labels, value: 1 }]);
}
