import type { Command } from 'commander';
import type { AuditEvent } from '../../domain/types.js';
import { parseInteger } from '../../host/validate.js';
import type { CliContext } from '../context.js';
import { streamList, type Cell } from '../output.js';

export function registerEventCommands(program: Command, cli: CliContext): void {
  program
    .command('events')
    .description('the audit log: who changed what, oldest first (remote)')
    .option('--after <SEQ>', 'only events after this sequence number')
    .option('--limit <N>', 'at most this many events (all of them, page by page, without it)')
    .option('--object <O>', 'only events about this object, e.g. network/blue')
    .action(async (opts: { after?: string; limit?: string; object?: string }) => {
      const max = opts.limit === undefined ? Infinity : parseInteger(opts.limit, '--limit', 1, Number.MAX_SAFE_INTEGER);
      const query = {
        after: opts.after === undefined ? undefined : parseInteger(opts.after, '--after', 0, Number.MAX_SAFE_INTEGER),
        limit: Math.min(max, MAX_PAGE),
        object: opts.object,
      };
      const api = await cli.api();
      async function* upToMax(): AsyncGenerator<AuditEvent[]> {
        let left = max;
        for await (const page of api.pages<AuditEvent>('/v1/events', query)) {
          yield page.slice(0, left);
          left -= page.length;
          if (left <= 0) return;
        }
      }
      await streamList(cli.opts.output, upToMax(), EVENT_COLUMNS, eventRow);
    });
}

/** The controller's largest page. */
const MAX_PAGE = 1000;
const EVENT_COLUMNS = ['SEQ', 'AT', 'ACTOR', 'ACTION', 'OBJECT'];
const eventRow = (e: AuditEvent): Cell[] => [e.seq, e.at, e.actor, e.action, e.object];
