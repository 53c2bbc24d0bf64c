import type { Command } from 'commander';
import { parseRole } from '../../controller/tokens.js';
import type { TokenRecord } from '../../domain/types.js';
import type { CliContext } from '../context.js';
import { table } from '../output.js';
import { pathOf } from '../remote/client.js';

type TokenInfo = Omit<TokenRecord, 'hash'>;

export function registerTokenCommands(program: Command, cli: CliContext): void {
  const token = program.command('token').description('API tokens (remote, admin)');

  token
    .command('create')
    .description('create a token; the secret is printed once and never again')
    .requiredOption('--role <ROLE>', 'admin, operator, tenant:NAME (an existing tenant), node:HOST (CNI/device plugin) or agent:HOST')
    .action(async (opts: { role: string }) => {
      const created = await (await cli.api()).post<{ id: string; role: string; token: string }>('/v1/tokens', { role: parseRole(opts.role) });
      cli.emit(created, (t) => table(['ID', 'ROLE', 'TOKEN'], [[t.id, t.role, t.token]]));
      process.stderr.write('store the token now: the controller keeps only its hash\n');
    });

  token
    .command('list')
    .description('list tokens (ids and roles, never the secrets)')
    .action(async () => {
      const tokens = await (await cli.api()).all<TokenInfo>('/v1/tokens');
      cli.emit(tokens, (list) => table(['ID', 'ROLE', 'CREATED'], list.map((t) => [t.id, t.role, t.createdAt])));
    });

  token
    .command('delete <id>')
    .description('revoke a token')
    .action(async (id: string) => {
      await (await cli.api()).delete(pathOf('/v1/tokens', id));
      cli.deleted(`token/${id}`);
    });
}
