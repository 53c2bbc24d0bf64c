/**
 * The hosts of a simulated fleet: names, NIC profiles and NUMA layouts, and
 * the node policy that gives each its VFs. Pure, so the same N always gives
 * the same fleet (a restarted fleet-sim finds its hosts as it left them).
 */
import { invalid } from '../host/errors.js';
import { isHostName } from '../host/validate.js';
import { isSimProfileName, simProfile, simProfileNames, type SimProfileName } from './profiles.js';

export interface FleetHostSpec {
  /** The name the host registers under: `<prefix>-<n>`, n from 1, zero-padded. */
  name: string;
  profile: SimProfileName;
  pfs: number;
  numaNodes: 1 | 2;
  /** VFs the node policy asks for on every PF. */
  vfsPerPf: number;
}

export interface FleetLayoutOptions {
  hosts: number;
  /** `mix`, or one profile name. */
  profile: string;
  pfs: number;
  vfsPerPf: number;
  prefix: string;
}

/** A fleet larger than this is beyond what one process can act out (and a typo). */
export const MAX_FLEET_HOSTS = 10_000;

/**
 * `mix`: every profile whose PFs can hold `vfsPerPf` VFs, each on one and on
 * two NUMA nodes, in turn. Profiles that cannot (igb's 7 VFs) are left out
 * rather than given fewer VFs, so that N hosts always hold N × pfs × vfsPerPf.
 */
function mixOf(vfsPerPf: number): Array<{ profile: SimProfileName; numaNodes: 1 | 2 }> {
  const fit = simProfileNames().filter((p) => simProfile(p).totalVfs >= vfsPerPf);
  if (fit.length === 0) throw invalid(`--vfs-per-pf ${vfsPerPf}: no sim profile has that many VFs per PF (at most ${Math.max(...simProfileNames().map((p) => simProfile(p).totalVfs))})`);
  return [1, 2].flatMap((numaNodes) => fit.map((profile) => ({ profile, numaNodes: numaNodes as 1 | 2 })));
}

function checkWhole(value: number, what: string, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) throw invalid(`${what} must be a whole number between ${min} and ${max}, got ${value}`);
}

/** Every host of the fleet, or INVALID_ARGUMENT naming the option that cannot be. */
export function fleetLayout(o: FleetLayoutOptions): FleetHostSpec[] {
  checkWhole(o.hosts, '--hosts', 1, MAX_FLEET_HOSTS);
  checkWhole(o.pfs, '--pfs', 1, 64);
  checkWhole(o.vfsPerPf, '--vfs-per-pf', 0, 256);
  const width = String(o.hosts).length;
  if (!isHostName(`${o.prefix}-${'0'.repeat(width)}`)) throw invalid(`--prefix "${o.prefix}" does not make lower-case DNS host names (like fleet)`, o.prefix);
  let choices: Array<{ profile: SimProfileName; numaNodes: 1 | 2 }>;
  if (o.profile === 'mix') choices = mixOf(o.vfsPerPf);
  else if (!isSimProfileName(o.profile)) throw invalid(`--profile "${o.profile}" is not mix or a sim profile (${simProfileNames().join(', ')})`, o.profile);
  else if (simProfile(o.profile).totalVfs < o.vfsPerPf) throw invalid(`--vfs-per-pf ${o.vfsPerPf} is above ${o.profile}'s ${simProfile(o.profile).totalVfs} VFs per PF`);
  else choices = [{ profile: o.profile, numaNodes: Math.min(2, o.pfs) as 1 | 2 }];
  return Array.from({ length: o.hosts }, (_, i) => {
    const { profile, numaNodes } = choices[i % choices.length]!;
    return { name: `${o.prefix}-${String(i + 1).padStart(width, '0')}`, profile, pfs: o.pfs, numaNodes: Math.min(numaNodes, o.pfs) as 1 | 2, vfsPerPf: o.vfsPerPf };
  });
}

/** The node policy of a fleet host: every PF of its driver gets `vfsPerPf` VFs on `physnet`. */
export function fleetPolicy(host: FleetHostSpec, physnet: string): string {
  const driver = simProfile(host.profile).pfDriver;
  return `policies:\n  - name: fleet\n    selector: { drivers: [${driver}] }\n    numVfs: ${host.vfsPerPf}\n    physnet: ${physnet}\n`;
}
