/**
 * The adapters an agent runs hypervisor tasks with, from its options:
 * `--hypervisor libvirt|qemu` (default both), `--qmp-dir`, `--libvirt-uri`.
 */
import { isAbsolute } from 'node:path';
import { invalid } from '../host/errors.js';
import type { Hypervisor } from './hypervisor.js';
import { LibvirtHypervisor } from './libvirt-hypervisor.js';
import { QmpHypervisor } from './qmp-hypervisor.js';
import { parseLibvirtUri } from './validate.js';

export const HYPERVISOR_KINDS = ['libvirt', 'qemu'] as const;
export const DEFAULT_QMP_DIR = '/run/vfleet/qmp';
export const DEFAULT_LIBVIRT_URI = 'qemu:///system';

export interface HypervisorChoice {
  /** Only this kind; undefined: both. */
  hypervisor?: (typeof HYPERVISOR_KINDS)[number];
  qmpDir: string;
  libvirtUri: string;
}

export function chooseHypervisors(o: HypervisorChoice): Partial<Record<(typeof HYPERVISOR_KINDS)[number], Hypervisor>> {
  if (!isAbsolute(o.qmpDir)) throw invalid(`--qmp-dir must be an absolute path, got ${JSON.stringify(o.qmpDir)}`, o.qmpDir);
  const libvirtUri = parseLibvirtUri(o.libvirtUri, '--libvirt-uri');
  const all = { libvirt: () => new LibvirtHypervisor({ connect: libvirtUri }), qemu: () => new QmpHypervisor({ qmpDir: o.qmpDir }) };
  if (o.hypervisor) return { [o.hypervisor]: all[o.hypervisor]() };
  return { libvirt: all.libvirt(), qemu: all.qemu() };
}
