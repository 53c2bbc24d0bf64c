import type { Command } from 'commander';
import { parseHostName, parseInteger } from '../../host/validate.js';
import { simProfile, simProfileNames } from '../../sim/profiles.js';
import { initSimHost } from '../../sim/state.js';

interface SimInitFlags {
  profile: string;
  pfs: string;
  numaNodes: string;
  hostname: string;
  force?: boolean;
}

/** `ice (Intel Ethernet Controller E810-C), ...`: from the profile table, so help never drifts from it. */
function profileList(): string {
  return simProfileNames()
    .map((name) => `${name} (${simProfile(name).model})`)
    .join(', ');
}

export function registerSimCommands(program: Command): void {
  program
    .command('sim')
    .description('simulated SR-IOV hosts, for machines without the hardware')
    .command('init <FILE>')
    .description('create a simulated host; use it with --host sim:FILE')
    .requiredOption(`--profile <${simProfileNames().join('|')}>`, `NIC model: ${profileList()}`)
    .option('--pfs <N>', 'number of PFs (ports), 1-64', '2')
    .option('--numa-nodes <N>', 'NUMA nodes, 1-8: cards alternate between nodes, one port per card when there are fewer than two cards a node', '1')
    .option('--hostname <NAME>', 'host name the simulated host reports (a lower-case DNS name)', 'simhost')
    .option('--force', 'replace FILE if it exists (its VFs and settings are lost)')
    .action(async (file: string, opts: SimInitFlags) => {
      await initSimHost(file, {
        profile: opts.profile,
        pfs: parseInteger(opts.pfs, '--pfs', 1, 64),
        numaNodes: parseInteger(opts.numaNodes, '--numa-nodes', 1, 8),
        hostname: parseHostName(opts.hostname),
        overwrite: opts.force === true,
      });
      process.stdout.write(`simulated host written to ${file}\n`);
    });
}
