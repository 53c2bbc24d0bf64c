/**
 * The kubelet device-plugin layer: serves a DevicePluginSource to the
 * kubelet over the device-plugin API v1beta1 (gRPC on unix sockets in the
 * kubelet's device-plugin directory).
 */
import type { Log } from '../../agent/reconciler.js';
import type { DevicePluginSource } from '../source.js';
import { DevicePlugin } from './plugin.js';

export interface DevicePluginOptions {
  source: DevicePluginSource;
  /** The kubelet's device-plugin directory, /var/lib/kubelet/device-plugins by default. */
  kubeletDir: string;
  log: Log;
}

export interface RunningDevicePlugin {
  stop(): Promise<void>;
}

/**
 * Starts the source (`source.start()`), then serves one socket per resource
 * and registers each with the kubelet (once tried before this resolves; a
 * kubelet not there yet is waited for). `stop()` closes the streams and the
 * servers, removes the sockets, then stops the source. Throws (SriovError
 * INVALID_ARGUMENT) on a resource name the kubelet would refuse, with nothing
 * served.
 */
export async function startDevicePlugin(o: DevicePluginOptions): Promise<RunningDevicePlugin> {
  await o.source.start();
  const plugin = new DevicePlugin(o.source, o.kubeletDir, o.log);
  try {
    await plugin.start();
  } catch (err) {
    await plugin.stop();
    await o.source.stop();
    throw err;
  }
  return {
    async stop() {
      await plugin.stop();
      await o.source.stop();
    },
  };
}
