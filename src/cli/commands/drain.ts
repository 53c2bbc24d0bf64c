/**
 * `sriovctl drain <HOST>|<HOST>/<PF>` (remote): moves every allocation off a
 * PF or a host by live migration. The plan is printed (where each allocation
 * goes, or why it cannot); a drain that cannot move everything changes
 * nothing. Running it again shows how far it got and continues it.
 */
import type { Command } from 'commander';
import type { DrainReport } from '../../controller/drain.js';
import type { DrainMove } from '../../controller/migration-request.js';
import type { HypervisorKind } from '../../domain/types.js';
import { invalid } from '../../host/errors.js';
import { isIfName, isPciAddress, parseHostName, shown } from '../../host/validate.js';
import type { CliContext } from '../context.js';
import { table } from '../output.js';
import { ApiError } from '../remote/client.js';

const HYPERVISORS: readonly HypervisorKind[] = ['libvirt', 'qemu', 'hook'];

interface DrainFlags {
  dryRun?: boolean;
  hypervisor?: string;
  migrateUri?: string;
}

export function registerDrainCommands(program: Command, cli: CliContext): void {
  program
    .command('drain <HOST|HOST/PF>')
    .description('controller: move every allocation off a PF or a host by live migration (containers re-homed, VMs migrated)')
    .option('--dry-run', 'print the plan and check it; change nothing')
    .option('--hypervisor <libvirt|qemu|hook>', 'how VMs migrate (needed when a VM is on it)')
    .option('--migrate-uri <URI>', 'qemu: the destination QEMU’s -incoming URI (one VM); libvirt: the destination URI')
    .action((target: string, flags: DrainFlags) => drain(cli, target, flags));
}

async function drain(cli: CliContext, target: string, flags: DrainFlags): Promise<void> {
  // Checked before any request: bad input is exit 2 even with no controller reachable.
  const body = { ...parseTarget(target), ...parseFlags(flags) };
  const api = await cli.api();
  try {
    cli.emit(await api.post<DrainReport>('/v1/drains', body), render);
  } catch (err) {
    // The refusal's one line may be cut short: the plan says each reason in full.
    const plan = err instanceof ApiError ? (err.details.data?.plan as DrainReport | undefined) : undefined;
    if (plan && cli.opts.output === 'table') process.stderr.write(moves(plan.moves));
    throw err;
  }
}

/** `node1` or `node1/ens1f0` or `node1/0000:3b:00.0`: the host is a DNS name, so the first '/' splits. */
function parseTarget(target: string): { host: string; pf?: string } {
  const slash = target.indexOf('/');
  if (slash < 0) return { host: parseHostName(target) };
  const pf = target.slice(slash + 1);
  if (!isIfName(pf) && !isPciAddress(pf)) {
    throw invalid(`the PF in ${shown(target)} must be its netdev name or PCI address (HOST or HOST/PF, like node1/ens1f0)`, target);
  }
  return { host: parseHostName(target.slice(0, slash)), pf };
}

function parseFlags(flags: DrainFlags): { dryRun?: boolean; hypervisor?: HypervisorKind; migrateUri?: string } {
  const out: { dryRun?: boolean; hypervisor?: HypervisorKind; migrateUri?: string } = {};
  if (flags.dryRun) out.dryRun = true;
  if (flags.hypervisor !== undefined) {
    if (!HYPERVISORS.includes(flags.hypervisor as HypervisorKind)) throw invalid(`--hypervisor must be one of ${HYPERVISORS.join(', ')}, got ${shown(flags.hypervisor)}`);
    out.hypervisor = flags.hypervisor as HypervisorKind;
  }
  if (flags.migrateUri !== undefined) out.migrateUri = flags.migrateUri;
  return out;
}

function render(r: DrainReport): string {
  const n = r.moves.length;
  const count = `${n} allocation${n === 1 ? '' : 's'} to move`;
  const head = `drain ${r.id} (PF${r.pfs.length === 1 ? '' : 's'} ${r.pfs.join(', ')}): ${count}${releasing(r)}\n`;
  return head + (n ? moves(r.moves, r) : '') + `${summary(r)}\n`;
}

function releasing(r: DrainReport): string {
  return r.releasing.length ? `; ${r.releasing.length} already releasing` : '';
}

function moves(list: DrainMove[], r?: DrainReport): string {
  const rows = list.map((m) => [
    m.allocation.slice(0, 8),
    `${m.workload.kind}/${m.workload.name}`,
    `${m.from.host}/${m.from.pf}`,
    m.to ? `${m.to.host}/${m.to.pf}` : null,
    m.hypervisor,
    m.migration,
    status(m, r),
  ]);
  const out = table(['ALLOCATION', 'WORKLOAD', 'FROM', 'TO', 'HYPERVISOR', 'MIGRATION', 'STATUS'], rows);
  const why = list.filter((m) => m.refusal !== null).map((m) => `  ${m.allocation.slice(0, 8)}: ${m.refusal}\n`);
  return out + (why.length ? `cannot move:\n${why.join('')}` : '');
}

function status(m: DrainMove, r?: DrainReport): string {
  if (m.refusal !== null) return 'refused';
  const p = m.migration ? r?.progress[m.migration] : undefined;
  if (p) return p.state === 'running' ? `${p.state}/${p.step}` : p.state;
  if (m.migration) return 'migrating';
  return r?.state === 'running' ? 'queued' : 'planned';
}

function summary(r: DrainReport): string {
  switch (r.state) {
    case 'planned':
      return 'dry run: nothing changed; every move fits';
    case 'refused':
      return 'dry run: nothing changed; the drain would be refused (see above)';
    case 'running':
      return `${r.pfs.join(', ')} drained: no new allocation lands there; the migrations run a few at a time (run this again to follow them)`;
    case 'completed':
      return 'completed: every allocation moved';
    case 'failed':
      return 'failed: some moves did not complete (see above); run it again to retry what is left';
  }
}
