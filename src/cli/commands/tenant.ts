import type { Command } from 'commander';
import { parseName } from '../../controller/networks.js';
import type { Tenant } from '../../domain/types.js';
import type { CliContext } from '../context.js';
import { asList, table } from '../output.js';
import { pathOf } from '../remote/client.js';

export function registerTenantCommands(program: Command, cli: CliContext): void {
  const tenant = program.command('tenant').description('tenants (remote)');

  tenant
    .command('create <name>')
    .description('create a tenant (admin)')
    .action(async (name: string) => {
      const body = { name: parseName(name, 'tenant') };
      cli.emit(await (await cli.api()).post<Tenant>('/v1/tenants', body), tenantTable);
    });

  tenant
    .command('list')
    .description('list tenants (a tenant token sees only its own)')
    .action(async () => cli.emit(await (await cli.api()).all<Tenant>('/v1/tenants'), tenantTable));

  tenant
    .command('delete <name>')
    .description('delete a tenant that has no networks left (admin)')
    .action(async (name: string) => {
      await (await cli.api()).delete(pathOf('/v1/tenants', name));
      cli.deleted(`tenant/${name}`);
    });
}

function tenantTable(tenants: Tenant | Tenant[]): string {
  return table(['NAME', 'CREATED'], asList(tenants).map((t) => [t.name, t.createdAt]));
}
