import type { Command } from 'commander';
import type { AuditEvent } from '../../domain/types.js';
import { parseInteger } from '../../host/validate.js';
import type { CliContext } from '../context.js';
import { table } from '../output.js';

export function registerEventCommands(program: Command, cli: CliContext): void {
  program
    .command('events')
    .description('the audit log: who changed what, oldest first (remote)')
    .option('--after <SEQ>', 'only events after this sequence number')
    .option('--limit <N>', 'at most this many events')
    .option('--object <O>', 'only events about this object, e.g. network/blue')
    .action(async (opts: { after?: string; limit?: string; object?: string }) => {
      const query = {
        after: opts.after === undefined ? undefined : parseInteger(opts.after, '--after', 0, Number.MAX_SAFE_INTEGER),
        limit: opts.limit === undefined ? undefined : parseInteger(opts.limit, '--limit', 1, Number.MAX_SAFE_INTEGER),
        object: opts.object,
      };
      cli.emit(await (await cli.api()).get<AuditEvent[]>('/v1/events', query), eventTable);
    });
}

function eventTable(events: AuditEvent[]): string {
  return table(['SEQ', 'AT', 'ACTOR', 'ACTION', 'OBJECT'], events.map((e) => [e.seq, e.at, e.actor, e.action, e.object]));
}
