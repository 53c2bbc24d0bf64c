/**
 * A container attachment's identity as CNI sees it (the GC attachment key):
 * the host, the container id (the workload's name), the interface name and
 * the CNI network (the configuration's `name`). The controller's idempotent
 * create and the plugin's DEL, CHECK and GC all decide "is this the one?"
 * here, so they cannot disagree.
 */
import { invalid } from '../host/errors.js';
import type { Allocation, Attachment } from './types.js';

/** The spec's rule for network names; at most 253 characters, as the workload names it travels with. */
const CNI_NETWORK = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;

export function isCniNetworkName(value: unknown): value is string {
  return typeof value === 'string' && CNI_NETWORK.test(value);
}

export function parseCniNetworkName(value: unknown): string {
  if (!isCniNetworkName(value)) {
    throw invalid(`CNI network name (cniNetwork) must be 1-253 of A-Z a-z 0-9 _ . - starting with a letter or digit, got ${JSON.stringify(value)}`);
  }
  return value;
}

type ContainerAttachment = Extract<Attachment, { kind: 'container' }>;
export type ContainerAllocation = Allocation & { attachment: ContainerAttachment };

export interface AttachmentKey {
  host: string;
  containerId: string;
  ifname: string;
  /** The CNI configuration's `name`. */
  cniNetwork: string;
  /**
   * The vfleet network: allocations made before attachments recorded their
   * CNI network match on it instead.
   */
  network?: string;
}

/** `a` is a container allocation on (host, container, ifname), whatever its CNI network. */
export function isContainerInterface(a: Allocation, host: string, containerId: string, ifname: string): a is ContainerAllocation {
  return (
    a.host === host &&
    a.workload.kind === 'container' &&
    a.workload.name === containerId &&
    a.attachment?.kind === 'container' &&
    a.attachment.ifname === ifname
  );
}

/** `a` is the attachment `key` names: its CNI network, or for an older allocation without one, its vfleet network. */
export function isAttachment(a: Allocation, key: AttachmentKey): a is ContainerAllocation {
  if (!isContainerInterface(a, key.host, key.containerId, key.ifname)) return false;
  const recorded = a.attachment.cniNetwork;
  return recorded !== undefined ? recorded === key.cniNetwork : key.network !== undefined && a.network === key.network;
}
