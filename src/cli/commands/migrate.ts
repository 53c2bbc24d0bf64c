/**
 * `sriovctl migrate <allocation> --to <host>[/<pf>]` and `sriovctl
 * migrations list|show|abort` (remote): start a live migration, follow it,
 * stop it. The controller checks everything; the target's form is checked
 * here first, so a typo is exit 2 with no request sent.
 */
import { Option, type Command } from 'commander';
import type { MigrationRequest } from '../../controller/migration-request.js';
import type { HypervisorKind, Migration } from '../../domain/types.js';
import { invalid, SriovError } from '../../host/errors.js';
import { isIfName, parseHostName, shown } from '../../host/validate.js';
import type { CliContext } from '../context.js';
import { table } from '../output.js';
import { pathOf } from '../remote/client.js';

/** The controller holds a long poll at most this long; longer waits poll again. */
const POLL_S = 60;

interface MigrateOptions {
  to: string;
  dryRun?: boolean;
  hypervisor?: HypervisorKind;
  migrateUri?: string;
  wait?: boolean;
  timeout: string;
}

export function registerMigrateCommands(program: Command, cli: CliContext): void {
  program
    .command('migrate <allocation>')
    .description('controller: move an allocation’s workload to another PF or host (a VM live, a container make-before-break)')
    .requiredOption('--to <HOST[/PF]>', 'destination host, and optionally its PF (default: the scheduler’s choice)')
    .option('--dry-run', 'plan and check only; nothing is reserved')
    .addOption(new Option('--hypervisor <H>', 'who moves a VM (required for a VM)').choices(['libvirt', 'qemu', 'hook']))
    .option('--migrate-uri <URI>', 'qemu: the destination QEMU’s -incoming (tcp:<IPv4>:<port>, unix:<path>); libvirt: qemu+ssh://<host>/system')
    .option('--wait', 'wait until the migration ended (completed, failed or aborted)')
    .option('--timeout <S>', 'seconds to wait with --wait', '600')
    .action((allocation: string, opts: MigrateOptions) => migrate(cli, allocation, opts));

  const migrations = program.command('migrations').description('live migrations: list, show, abort (remote)');
  migrations
    .command('list')
    .description('migrations, oldest first (--host H: those with an end on H; a tenant token sees its own)')
    .addOption(new Option('--state <S>', 'only those in this state').choices(['running', 'rolling-back', 'completed', 'failed', 'aborted']))
    .action(async (opts: { state?: Migration['state'] }) => {
      const list = await (await cli.api()).all<Migration>('/v1/migrations', { state: opts.state, host: cli.opts.host });
      cli.emit(list, listTable);
    });
  migrations
    .command('show <id>')
    .description('one migration, with its history')
    .action(async (id: string) => cli.emit(await (await cli.api()).get<Migration>(pathOf('/v1/migrations', id)), details));
  migrations
    .command('abort <id>')
    .description('roll a migration back (before its switch; after it, it finishes instead)')
    .action(async (id: string) => cli.emit(await (await cli.api()).post<Migration>(`${pathOf('/v1/migrations', id)}/abort`, {}), details));
}

async function migrate(cli: CliContext, allocation: string, opts: MigrateOptions): Promise<void> {
  const to = parseTo(opts.to);
  const timeoutS = parseTimeout(opts.timeout);
  const body: MigrationRequest = { allocation, to, hypervisor: opts.hypervisor, migrateUri: opts.migrateUri, dryRun: opts.dryRun === true };
  const api = await cli.api();
  let m = await api.post<Migration>('/v1/migrations', body);
  const deadline = Date.now() + timeoutS * 1000;
  while (opts.wait && !opts.dryRun && isRunning(m) && Date.now() < deadline) {
    const wait = Math.max(1, Math.min(POLL_S, Math.ceil((deadline - Date.now()) / 1000)));
    m = await api.get<Migration>(pathOf('/v1/migrations', m.id), { wait });
  }
  cli.emit(m, details);
  if (opts.wait && (m.state === 'failed' || m.state === 'aborted')) {
    throw new SriovError('HOST_ERROR', `migration ${m.id} ${m.state}: ${m.reason ?? 'no reason given'}`, { object: m.id });
  }
  if (opts.wait && isRunning(m)) throw new SriovError('TIMEOUT', `migration ${m.id} is still ${m.state} at step ${m.step} after ${timeoutS} s; follow it with sriovctl migrations show ${m.id}`, { object: m.id });
}

const isRunning = (m: Migration) => m.state === 'running' || m.state === 'rolling-back';

/** `host-b` or `host-b/ens2f0`: a host is a DNS name, so the first '/' splits. */
export function parseTo(value: string): { host: string; pf: string | null } {
  const slash = value.indexOf('/');
  if (slash < 0) return { host: parseHostName(value), pf: null };
  const pf = value.slice(slash + 1);
  if (!isIfName(pf)) throw invalid(`the PF in --to ${shown(value)} must be a netdev name, like host-b/ens2f0`, value);
  return { host: parseHostName(value.slice(0, slash)), pf };
}

function parseTimeout(value: string): number {
  if (!/^[0-9]{1,6}$/.test(value) || Number(value) < 1) throw invalid(`--timeout must be whole seconds, 1 or more, got ${shown(value)}`);
  return Number(value);
}

const end = (e: Migration['from'] | null) => (e ? `${e.host}/${e.pf} ${e.pciAddress}` : '-');

function listTable(list: Migration[]): string {
  const rows = list.map((m) => [m.id.slice(0, 8), `${m.workload.kind}/${m.workload.name}`, end(m.from), end(m.to), m.hypervisor ?? '-', m.state, m.step]);
  return table(['ID', 'WORKLOAD', 'FROM', 'TO', 'HYPERVISOR', 'STATE', 'STEP'], rows);
}

function details(m: Migration): string {
  const head = [
    `migration ${m.id}: ${m.workload.kind}/${m.workload.name}, ${m.state} at step ${m.step}`,
    `from ${end(m.from)} (allocation ${m.from.allocation})`,
    `to   ${end(m.to)}${m.to?.allocation ? ` (allocation ${m.to.allocation})` : ''}`,
    `MAC ${m.mac}, network ${m.network}, hypervisor ${m.hypervisor ?? 'none (the agent re-homes it)'}`,
    ...(m.downtimeMs === null ? [] : [`downtime ${m.downtimeMs} ms (as the hypervisor reported it)`]),
    ...(m.reason ? [`reason: ${m.reason}`] : []),
  ];
  const rows = m.history.map((e) => [e.at, e.step, e.outcome, e.detail]);
  // Each head line one line, as table() makes each cell: a reason is agents' words.
  return `${head.map((l) => l.replace(/\p{Cc}+/gu, ' ')).join('\n')}\n${table(['AT', 'STEP', 'OUTCOME', 'DETAIL'], rows)}`;
}
