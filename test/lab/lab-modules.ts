/**
 * The lab kernel's modules (LAB_CACHE, from test/lab/lab.sh), for what the
 * lab's init does not load. Its /lib/modules is the host's, so modprobe in
 * the guest's root finds nothing: the lab's busybox insmod, with the
 * dependencies from modules.dep.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const LAB_CACHE = process.env.LAB_CACHE ?? '/var/cache/sriov-lab';
const kernelVersion = () => readFileSync(join(LAB_CACHE, 'kernel-version'), 'utf8').trim();
export const moduleTree = () => join(LAB_CACHE, 'root', 'lib', 'modules', kernelVersion());

/** The .ko files that `names` need, dependencies first (from the tree's modules.dep). */
export function moduleClosure(names: string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of readFileSync(join(moduleTree(), 'modules.dep'), 'utf8').split('\n')) {
    const [ko, rest] = line.split(':');
    if (ko && rest !== undefined) deps.set(ko, rest.split(/\s+/).filter(Boolean));
  }
  const byName = (n: string) => [...deps.keys()].find((k) => k.endsWith(`/${n}.ko`)) ?? fail(`no module ${n}.ko in ${moduleTree()}`);
  const order: string[] = [];
  const visit = (ko: string) => {
    if (order.includes(ko)) return;
    for (const d of deps.get(ko) ?? []) visit(d);
    order.push(ko);
  };
  for (const n of names) visit(byName(n));
  return order;
}

function fail(message: string): never {
  throw new Error(message);
}

/**
 * insmod of a module of the lab kernel and what it needs, in the lab guest
 * (`vfio_iommu_type1`: without it QEMU finds "No available IOMMU models";
 * busybox's modprobe in the lab's init ignores softdeps, so nobody loaded it).
 */
export function insmodLab(name: string): void {
  for (const ko of moduleClosure([name])) {
    const mod = ko.split('/').pop()!.replace(/\.ko$/, '').replace(/-/g, '_');
    if (readFileSync('/proc/modules', 'utf8').split('\n').some((l) => l.startsWith(`${mod} `))) continue;
    // The lab's busybox: this machine's root, which the guest sees, may have no kmod.
    const r = spawnSync(join(LAB_CACHE, 'bb', 'bin', 'busybox'), ['insmod', join(moduleTree(), ko)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`insmod ${ko}: ${r.error?.message ?? r.stderr}`);
  }
}

