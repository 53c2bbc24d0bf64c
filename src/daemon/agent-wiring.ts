/**
 * What `sriovd` and `sriovd agent` share to run an agent: its options, its
 * log, the kubelet device plugin beside it, and stopping on a signal. The
 * device plugin (gRPC) is loaded only when a pool file asks for it.
 */
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Log } from '../agent/reconciler.js';
import type { DeviceLink } from '../controller/device-view.js';
import type { SriovHost } from '../host/configurator.js';
import { parseInteger } from '../host/validate.js';
import { chooseHypervisors, type HypervisorChoice } from '../hypervisor/choose.js';
import type { PoolConfig } from '../k8s/pools.js';

export function agentLog(log: Logger): Log {
  return (level, message) => log[level](message);
}

export function agentOptions(o: { heartbeatInterval: string; resyncInterval: string; trafficInterval?: string } & HypervisorChoice, log: Logger) {
  return {
    heartbeatMs: parseInteger(o.heartbeatInterval, '--heartbeat-interval', 1, 300) * 1000,
    trafficIntervalMs: parseInteger(o.trafficInterval ?? '5', '--traffic-interval', 0, 300) * 1000,
    resyncMs: parseInteger(o.resyncInterval, '--resync-interval', 1, 3600) * 1000,
    log: agentLog(log),
    hypervisors: chooseHypervisors(o),
  };
}

export interface DevicePluginWiring {
  pools: PoolConfig;
  host: SriovHost;
  link: DeviceLink;
  hostName: string;
  kubeletDir: string;
  log: Logger;
}

/** The pools' source and the kubelet plugin that serves it (the plugin starts and stops the source); returns what stops both. */
export async function startPools(w: DevicePluginWiring): Promise<() => Promise<void>> {
  const log = agentLog(w.log);
  const [{ ControllerDeviceSource }, { startDevicePlugin }] = await Promise.all([import('../k8s/controller-source.js'), import('../k8s/device-plugin/index.js')]);
  const source = new ControllerDeviceSource({ pools: w.pools, host: w.host, link: w.link, hostName: w.hostName, log });
  const plugin = await startDevicePlugin({ source, kubeletDir: resolve(w.kubeletDir), log });
  const names = w.pools.pools.map((p) => p.resourceName).join(', ');
  w.log.info(`device plugin: ${names} (from ${w.pools.source}) for the kubelet in ${w.kubeletDir}`);
  return () => plugin.stop();
}

export function onSignal(stop: () => Promise<unknown>): void {
  const handler = () => void stop().then(() => process.exit(0), () => process.exit(1));
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
