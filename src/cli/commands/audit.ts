import type { Command } from 'commander';
import type { IsolationReport } from '../../controller/isolation-audit.js';
import type { CliContext } from '../context.js';
import { table } from '../output.js';

export function registerAuditCommands(program: Command, cli: CliContext): void {
  program
    .command('audit')
    .description('checks across the fleet (remote)')
    .command('isolation')
    .description('which tenants share an L2 segment, and every VF setting that breaks isolation, from what the hosts report')
    .action(async () => cli.emit(await (await cli.api()).get<IsolationReport>('/v1/audit/isolation'), isolationTable));
}

function isolationTable(r: IsolationReport): string {
  const segments = table(
    ['PHYSNET', 'VLAN', 'VFS', 'TENANTS'],
    r.segments.map((s) => [s.physnet, s.vlan, s.vfs, s.tenants.join(',')]),
  );
  const violations = r.violations.length
    ? table(['KIND', 'MESSAGE'], r.violations.map((v) => [v.kind, v.message]))
    : 'no violations\n';
  return `${segments}\n${violations}`;
}
