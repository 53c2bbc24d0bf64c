/** The host ports on a real Linux host: sysfs, iproute2, devlink, pci.ids. */
import { hostname } from 'node:os';
import type { HostPorts } from '../ports.js';
import { SysfsDriverBinding } from './binding.js';
import { LinuxCounters } from './counters.js';
import { readBootId } from './boot-id.js';
import { LinuxDevlink } from './devlink.js';
import { IprouteLinkConfig } from './iproute.js';
import { LinuxNetns } from './netns.js';
import { pciNames } from './pci-ids.js';
import { LinuxSysfs } from './sysfs.js';

export function createLinuxPorts(opts: { sysfsRoot?: string } = {}): HostPorts {
  return {
    sysfs: new LinuxSysfs(opts.sysfsRoot),
    links: new IprouteLinkConfig(),
    drivers: new SysfsDriverBinding(opts.sysfsRoot),
    devlink: new LinuxDevlink(),
    netns: new LinuxNetns(),
    counters: new LinuxCounters(opts.sysfsRoot),
    hostname,
    bootId: () => readBootId(),
    pciNames,
  };
}
