import type { Command } from 'commander';
import { parseName } from '../../controller/networks.js';
import type { TenantChange, TenantView } from '../../controller/tenant-groups.js';
import type { Tenant } from '../../domain/types.js';
import { invalid } from '../../host/errors.js';
import { parseRateMbps } from '../../host/validate.js';
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
    .command('show <name>')
    .description("one tenant, and per PF whether its bandwidth group is enforced by the NIC, only accounted, or refused")
    .action(async (name: string) => cli.emit(await (await cli.api()).get<TenantView>(pathOf('/v1/tenants', parseName(name, 'tenant'))), tenantView));

  tenant
    .command('set <name>')
    .description("set the tenant's bandwidth group: an aggregate guarantee and cap on each PF where it holds VFs (admin); settings not given keep their value")
    .option('--pf-min-tx-rate <MBPS>', 'aggregate guarantee per PF (devlink tx_share); 0 or none clears it')
    .option('--pf-max-tx-rate <MBPS>', 'aggregate cap per PF (devlink tx_max); 0 or none clears it')
    .action(async (name: string, opts: { pfMinTxRate?: string; pfMaxTxRate?: string }) => {
      const body: TenantChange = {};
      if (opts.pfMinTxRate !== undefined) body.pfMinTxRateMbps = groupRate(opts.pfMinTxRate, '--pf-min-tx-rate');
      if (opts.pfMaxTxRate !== undefined) body.pfMaxTxRateMbps = groupRate(opts.pfMaxTxRate, '--pf-max-tx-rate');
      if (Object.keys(body).length === 0) throw invalid('tenant set needs --pf-min-tx-rate or --pf-max-tx-rate');
      cli.emit(await (await cli.api()).put<Tenant>(pathOf('/v1/tenants', parseName(name, 'tenant')), body), tenantTable);
    });

  tenant
    .command('delete <name>')
    .description('delete a tenant that has no networks left (admin)')
    .action(async (name: string) => {
      await (await cli.api()).delete(pathOf('/v1/tenants', name));
      cli.deleted(`tenant/${name}`);
    });
}

/** Whole Mbit/s; `none` or 0 clears the limit (null). */
function groupRate(value: string, what: string): number | null {
  if (value.trim().toLowerCase() === 'none') return null;
  return parseRateMbps(value, what) || null;
}

const mbps = (v: number | null | undefined) => (v == null ? '-' : String(v));

function tenantTable(tenants: Tenant | Tenant[]): string {
  return table(
    ['NAME', 'PF MIN TX', 'PF MAX TX', 'CREATED'],
    asList(tenants).map((t) => [t.name, mbps(t.pfMinTxRateMbps), mbps(t.pfMaxTxRateMbps), t.createdAt]),
  );
}

function tenantView(t: TenantView): string {
  const head = tenantTable(t);
  if (t.pfMinTxRateMbps == null && t.pfMaxTxRateMbps == null) return `${head}\nno bandwidth group`;
  if (t.groupPfs.length === 0) return `${head}\nbandwidth group: no PF on its networks' physnets yet`;
  const rows = t.groupPfs.map((p) => [`${p.host}/${p.pf}`, p.physnet ?? '-', p.vfs, p.vfMinTxRateMbps, p.enforcement, p.reason ?? '']);
  return `${head}\n\n${table(['PF', 'PHYSNET', 'VFS', 'VF MIN TX', 'GROUP', 'WHY NOT BY THE NIC'], rows)}`;
}
