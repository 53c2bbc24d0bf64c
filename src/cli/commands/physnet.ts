import type { Command } from 'commander';
import { parseName } from '../../controller/networks.js';
import type { Physnet } from '../../domain/types.js';
import { parseOnOff } from '../../host/validate.js';
import type { CliContext } from '../context.js';
import { asList, onOff, table } from '../output.js';
import { pathOf } from '../remote/client.js';

export function registerPhysnetCommands(program: Command, cli: CliContext): void {
  const physnet = program.command('physnet').description('physical networks, as node policies name them (remote)');

  physnet
    .command('list')
    .description('list physical networks')
    .action(async () => cli.emit(await (await cli.api()).get<Physnet[]>('/v1/physnets'), physnetTable));

  physnet
    .command('set <name>')
    .description('change the flags of a physical network (admin)')
    .requiredOption('--accounting-only <on|off>', 'only account bandwidth guarantees, for PFs that cannot enforce min_tx_rate')
    .action(async (name: string, opts: { accountingOnly: string }) => {
      const body = { accountingOnly: parseOnOff(opts.accountingOnly, '--accounting-only') };
      cli.emit(await (await cli.api()).put<Physnet>(pathOf('/v1/physnets', parseName(name, 'physnet')), body), physnetTable);
    });
}

function physnetTable(physnets: Physnet | Physnet[]): string {
  return table(['NAME', 'ACCOUNTING-ONLY'], asList(physnets).map((p) => [p.name, onOff(p.accountingOnly)]));
}
