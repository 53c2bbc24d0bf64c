/**
 * The kubelet device-plugin API v1beta1, loaded at run time from the
 * vendored, unmodified `api.proto` (proto/README.md says where it came from).
 * Field names keep the .proto's case (`resource_name`, `devices_ids`, `ID`),
 * so the wire shapes below read like the published API.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

// grpc-js writes its own errors to stderr (a failed listen as "E No address added..."); every one of them
// also reaches our callbacks, which log it once, in one line, with what to do.
grpc.setLogVerbosity(grpc.logVerbosity.NONE);

export const API_VERSION = 'v1beta1';
/** The kubelet's registration socket, in its device-plugin directory. */
export const KUBELET_SOCKET = 'kubelet.sock';
export const HEALTHY = 'Healthy';
export const UNHEALTHY = 'Unhealthy';

/** `api.proto`'s path inside proto/ (its import path in the kubelet's tree). */
const API_PROTO = 'k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1/api.proto';

/**
 * proto/ at the repository (package) root. This file runs as
 * dist/src/k8s/device-plugin/proto.js, four levels below it, also when
 * started as `node bin/sriovd.js`.
 */
export function protoRoot(): string {
  return fileURLToPath(new URL('../../../../proto/', import.meta.url));
}

/** api.proto's `message Empty {}`. */
export type Empty = Record<string, never>;

export interface DevicePluginOptions {
  pre_start_required: boolean;
  get_preferred_allocation_available: boolean;
}

export interface RegisterRequest {
  version: string;
  endpoint: string;
  resource_name: string;
  options: DevicePluginOptions | null;
}

export interface Device {
  ID: string;
  health: string;
  topology: { nodes: Array<{ ID: number }> } | null;
}

export interface ListAndWatchResponse {
  devices: Device[];
}

export interface PreferredAllocationRequest {
  container_requests: Array<{
    available_deviceIDs: string[];
    must_include_deviceIDs: string[];
    allocation_size: number;
  }>;
}

export interface PreferredAllocationResponse {
  container_responses: Array<{ deviceIDs: string[] }>;
}

export interface AllocateRequest {
  container_requests: Array<{ devices_ids: string[] }>;
}

export interface ContainerAllocateResponse {
  envs: Record<string, string>;
  mounts: Array<{ container_path: string; host_path: string; read_only: boolean }>;
  devices: Array<{ container_path: string; host_path: string; permissions: string }>;
  annotations: Record<string, string>;
  cdi_devices: Array<{ name: string }>;
}

export interface AllocateResponse {
  container_responses: ContainerAllocateResponse[];
}

export interface PreStartContainerRequest {
  devices_ids: string[];
}

export interface Api {
  /** `service DevicePlugin`, served by the plugin, called by the kubelet. */
  devicePlugin: grpc.ServiceDefinition;
  /** `service Registration`, served by the kubelet, called by the plugin. */
  registration: grpc.ServiceDefinition;
  DevicePluginClient: grpc.ServiceClientConstructor;
  RegistrationClient: grpc.ServiceClientConstructor;
}

let loaded: Api | undefined;

/** Parses api.proto once per process. */
export function devicePluginApi(): Api {
  if (loaded) return loaded;
  const definition = protoLoader.loadSync(API_PROTO, {
    includeDirs: [protoRoot()],
    keepCase: true,
    longs: Number, // NUMANode.ID is an int64; a NUMA node number fits a double
    enums: String,
    defaults: true,
    arrays: true,
    objects: false,
  });
  const devicePlugin = definition['v1beta1.DevicePlugin'] as grpc.ServiceDefinition;
  const registration = definition['v1beta1.Registration'] as grpc.ServiceDefinition;
  loaded = {
    devicePlugin,
    registration,
    DevicePluginClient: grpc.makeClientConstructor(devicePlugin, 'v1beta1.DevicePlugin'),
    RegistrationClient: grpc.makeClientConstructor(registration, 'v1beta1.Registration'),
  };
  return loaded;
}

/** grpc-js's address for a unix socket at an absolute path. */
export function unixAddress(path: string): string {
  return `unix:${path}`;
}
