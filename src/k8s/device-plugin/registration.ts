/**
 * Registration.Register with the kubelet, over its kubelet.sock. The kubelet
 * dials the plugin's socket back and asks for its options before answering,
 * so the plugin's server must already be listening.
 */
import { stat } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { API_VERSION, devicePluginApi, unixAddress } from './proto.js';
import type { DevicePluginOptions, RegisterRequest } from './proto.js';

const REGISTER_TIMEOUT_MS = 5_000;

type UnaryCall = (request: unknown, options: grpc.CallOptions, done: (err: grpc.ServiceError | null) => void) => void;

export async function register(
  kubeletSocket: string,
  endpoint: string,
  resourceName: string,
  options: DevicePluginOptions,
): Promise<void> {
  const { RegistrationClient } = devicePluginApi();
  const client = new RegistrationClient(unixAddress(kubeletSocket), grpc.credentials.createInsecure());
  const request: RegisterRequest = { version: API_VERSION, endpoint, resource_name: resourceName, options };
  try {
    await new Promise<void>((resolve, reject) =>
      (client as unknown as { Register: UnaryCall }).Register(request, { deadline: Date.now() + REGISTER_TIMEOUT_MS }, (err: grpc.ServiceError | null) =>
        err ? reject(new Error(err.details || err.message)) : resolve(),
      ),
    );
  } finally {
    client.close();
  }
}

/**
 * Which kubelet.sock is there now, or null when none is: a new file (a
 * restarted kubelet) has a new inode or change time. A socket deleted and
 * re-created at once can reuse the inode, not the nanosecond ctime.
 */
export async function kubeletIdentity(kubeletSocket: string): Promise<string | null> {
  const st = await stat(kubeletSocket, { bigint: true }).catch(() => null);
  return st?.isSocket() ? `${st.dev}:${st.ino}:${st.ctimeNs}` : null;
}
