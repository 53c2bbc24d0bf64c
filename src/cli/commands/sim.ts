import type { Command } from 'commander';
import { invalid } from '../../host/errors.js';
import { parseHostName, parseInteger, shown } from '../../host/validate.js';
import { simProfile, simProfileNames } from '../../sim/profiles.js';
import { setSimCable } from '../../sim/cable.js';
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
  const sim = program.command('sim').description('simulated SR-IOV hosts, for machines without the hardware');
  sim
    .command('cable <FILE> <PF> <STATE>')
    .description('plug (up) or pull (down) the cable of a simulated PF: its link and its VFs\' follow, as on a real NIC')
    .action(async (file: string, pf: string, state: string) => {
      if (state !== 'up' && state !== 'down') throw invalid(`cable state must be up or down, got ${shown(state)}`, state);
      await setSimCable(file, pf, state);
      process.stdout.write(`${pf}: cable ${state === 'up' ? 'plugged' : 'pulled'}\n`);
    });
  sim
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
