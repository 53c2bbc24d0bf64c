/**
 * What the kubelet device-plugin layer (`device-plugin/`, gRPC) asks of
 * vfleet. The gRPC layer is written against this interface alone; the
 * controller-backed source (`controller-source.ts`) implements it from the
 * pool file, this host's inventory and the controller's view of the host.
 */
export type DeviceHealth = 'Healthy' | 'Unhealthy';

export interface PluginDevice {
  /** A VF's PCI address (what Multus hands the CNI plugin as deviceID), or `<pool>-bw-<n>` for a bandwidth unit. */
  id: string;
  health: DeviceHealth;
  /** Sent as TopologyInfo; null when the platform reports none (no topology sent). */
  numaNode: number | null;
}

export interface ResourceView {
  /** The full extended-resource name, e.g. vfleet.io/red or vfleet.io/red-bw. */
  resourceName: string;
  /** Sorted by id. An empty list is still a resource (the kubelet then shows 0). */
  devices: PluginDevice[];
  /** GetDevicePluginOptions: whether the kubelet must call PreStartContainer. */
  preStartRequired: boolean;
}

export interface DeviceSnapshot {
  /** Changes whenever any resource or device (health included) changes. */
  revision: string;
  resources: ResourceView[];
}

/** One container's answer to Allocate (ContainerAllocateResponse). */
export interface ContainerAllocation {
  envs: Record<string, string>;
  devices: Array<{ containerPath: string; hostPath: string; permissions: string }>;
  mounts: Array<{ containerPath: string; hostPath: string; readOnly: boolean }>;
  annotations: Record<string, string>;
}

export interface PreferredRequest {
  available: string[];
  mustInclude: string[];
  size: number;
}

export interface DevicePluginSource {
  /** The resources now (after start() resolved, never empty of the configured pools). */
  snapshot(): DeviceSnapshot;
  /** Called with every new snapshot (revision changed); returns the unsubscribe function. */
  subscribe(listener: (s: DeviceSnapshot) => void): () => void;
  /** GetPreferredAllocation for one container: `size` ids from `available`, every `mustInclude` among them. */
  preferred(resourceName: string, request: PreferredRequest): string[];
  /**
   * Allocate for one container. Throws SriovError (code INVALID / NOT_FOUND /
   * NO_CAPACITY / VF_BUSY / CONFLICT / UNAVAILABLE ...) that the gRPC layer
   * turns into a status whose message the kubelet shows to the user.
   */
  allocate(resourceName: string, deviceIds: string[]): Promise<ContainerAllocation>;
  /** PreStartContainer: checks the VFs are configured as their network says; throws SriovError when not. */
  preStart(resourceName: string, deviceIds: string[]): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
