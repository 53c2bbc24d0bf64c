// placeholder: slice A replaces this (the gRPC device plugin); only the signature fixed by the brief, so that the daemon compiles.
import type { Log } from '../../agent/reconciler.js';
import { SriovError } from '../../host/errors.js';
import type { DevicePluginSource } from '../source.js';

export interface DevicePluginOptions {
  source: DevicePluginSource;
  kubeletDir: string;
  log: Log;
}

export interface RunningDevicePlugin {
  stop(): Promise<void>;
}

export function startDevicePlugin(_o: DevicePluginOptions): Promise<RunningDevicePlugin> {
  return Promise.reject(new SriovError('UNSUPPORTED', 'placeholder: the gRPC device plugin (slice A) is not merged in this build'));
}
