import type { Command } from 'commander';
import { parseInteger } from '../../host/validate.js';
import { initSimHost } from '../../sim/state.js';

export function registerSimCommands(program: Command): void {
  program
    .command('sim')
    .description('simulated SR-IOV hosts, for machines without the hardware')
    .command('init <FILE>')
    .description('create a simulated host; use it with --host sim:FILE')
    .requiredOption('--profile <igb|i40e|ice|mlx5>', 'NIC model')
    .option('--pfs <N>', 'number of PFs (ports)', '2')
    .option('--numa-nodes <N>', 'NUMA nodes to spread PFs over', '1')
    .option('--hostname <NAME>', 'host name the simulated host reports')
    .action(async (file: string, opts: { profile: string; pfs: string; numaNodes: string; hostname?: string }) => {
      await initSimHost(file, {
        profile: opts.profile,
        pfs: parseInteger(opts.pfs, '--pfs', 1, 64),
        numaNodes: parseInteger(opts.numaNodes, '--numa-nodes', 1, 8),
        hostname: opts.hostname,
      });
      process.stdout.write(`simulated host written to ${file}\n`);
    });
}
