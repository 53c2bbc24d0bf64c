/**
 * vfleet's device view ↔ the kubelet's wire messages (api.proto's shapes).
 */
import type { ContainerAllocation, PluginDevice, ResourceView } from '../source.js';
import type { ContainerAllocateResponse, Device, DevicePluginOptions, ListAndWatchResponse } from './proto.js';

/** One Device per PluginDevice; TopologyInfo only when the platform reported a NUMA node. */
export function toDevice(d: PluginDevice): Device {
  return { ID: d.id, health: d.health, topology: d.numaNode === null ? null : { nodes: [{ ID: d.numaNode }] } };
}

export function listResponse(view: ResourceView): ListAndWatchResponse {
  return { devices: view.devices.map(toDevice) };
}

/** What the kubelet sees of a resource's devices: a change here is what ListAndWatch pushes. */
export function devicesKey(view: ResourceView): string {
  return JSON.stringify(view.devices.map((d) => [d.id, d.health, d.numaNode]));
}

export function pluginOptions(view: ResourceView): DevicePluginOptions {
  return { pre_start_required: view.preStartRequired, get_preferred_allocation_available: true };
}

export function toContainerResponse(a: ContainerAllocation): ContainerAllocateResponse {
  return {
    envs: { ...a.envs },
    mounts: a.mounts.map((m) => ({ container_path: m.containerPath, host_path: m.hostPath, read_only: m.readOnly })),
    devices: a.devices.map((d) => ({ container_path: d.containerPath, host_path: d.hostPath, permissions: d.permissions })),
    annotations: { ...a.annotations },
    cdi_devices: [],
  };
}
