import type { Command } from 'commander';
import { parseName, type PhysnetChange } from '../../controller/networks.js';
import type { Physnet } from '../../domain/types.js';
import { formatVlanRanges, parseVlanRanges } from '../../domain/vlan-ranges.js';
import { invalid } from '../../host/errors.js';
import { parseOnOff } from '../../host/validate.js';
import type { CliContext } from '../context.js';
import { asList, onOff, table } from '../output.js';
import { pathOf } from '../remote/client.js';

export function registerPhysnetCommands(program: Command, cli: CliContext): void {
  const physnet = program.command('physnet').description('physical networks, as node policies name them (remote)');

  physnet
    .command('list')
    .description('list physical networks')
    .action(async () => cli.emit(await (await cli.api()).all<Physnet>('/v1/physnets'), physnetTable));

  physnet
    .command('set <name>')
    .description('change the settings of a physical network (admin); settings not given keep their value')
    .option('--accounting-only <on|off>', 'only account bandwidth guarantees, for PFs that cannot enforce min_tx_rate')
    .option('--groups-accounting-only <on|off>', "only account tenants' bandwidth groups on PFs without devlink rate nodes, instead of refusing them there")
    .option('--tenant-vlans <RANGES>', "VLANs tenants' networks get, e.g. 1000-1999,2100-2199; none clears them")
    .action(async (name: string, opts: { accountingOnly?: string; groupsAccountingOnly?: string; tenantVlans?: string }) => {
      const body: PhysnetChange = {};
      if (opts.accountingOnly !== undefined) body.accountingOnly = parseOnOff(opts.accountingOnly, '--accounting-only');
      if (opts.groupsAccountingOnly !== undefined) body.groupsAccountingOnly = parseOnOff(opts.groupsAccountingOnly, '--groups-accounting-only');
      if (opts.tenantVlans !== undefined) body.tenantVlans = parseVlanRanges(opts.tenantVlans);
      if (Object.keys(body).length === 0) throw invalid('physnet set needs --accounting-only, --groups-accounting-only or --tenant-vlans');
      cli.emit(await (await cli.api()).put<Physnet>(pathOf('/v1/physnets', parseName(name, 'physnet')), body), physnetTable);
    });
}

function physnetTable(physnets: Physnet | Physnet[]): string {
  const rows = asList(physnets).map((p) => [p.name, onOff(p.accountingOnly), onOff(p.groupsAccountingOnly ?? false), formatVlanRanges(p.tenantVlans ?? [])]);
  return table(['NAME', 'ACCOUNTING-ONLY', 'GROUPS-ACCOUNTING-ONLY', 'TENANT VLANS'], rows);
}
