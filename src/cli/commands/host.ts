import { open } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import type { HostSummary } from '../../controller/host-summaries.js';
import { parseName } from '../../controller/networks.js';
import type { HostRecord } from '../../domain/types.js';
import { SriovError, invalid } from '../../host/errors.js';
import { parseHostName, shown } from '../../host/validate.js';
import { applyPlan } from '../../policy/apply.js';
import { describeSelector, planPolicies, renderPlan, unmatchedPolicies } from '../../policy/plan.js';
import { parsePolicyDocument, type NodePolicy } from '../../policy/schema.js';
import type { CliContext } from '../context.js';
import { terminalProgress } from '../local-host.js';
import { inventoryTable, pageSize, table, type Cell } from '../output.js';
import { pathOf, type ApiClient } from '../remote/client.js';

interface ApplyOptions {
  file: string;
  dryRun?: boolean;
}

export function registerHostCommands(program: Command, cli: CliContext): void {
  const host = program.command('host').description('discover and configure hosts (inventory: this host; list/show: the controller)');

  host
    .command('inventory')
    .description('list SR-IOV PFs and their VFs on this host')
    .option('--stats', 'include per-VF counters')
    .action(async (opts: { stats?: boolean }) => {
      cli.emit(await cli.localHost().inventory({ stats: opts.stats }), inventoryTable);
    });

  host
    .command('apply')
    .description('local: make this host match a node policy file (prints the plan as a diff); remote: store it for --host NAME')
    .requiredOption('-f, --file <FILE>', 'node policy YAML')
    .option('--dry-run', 'print the plan, change nothing (local mode)')
    .action(async (opts: ApplyOptions) => {
      // Validate before anything else, so a bad file is refused without a request.
      const text = await readPolicy(opts.file);
      const policies = parsePolicyDocument(text, `policy file ${opts.file}`);
      const api = await cli.remote();
      if (api) await applyRemote(cli, api, text, opts);
      else await applyLocal(cli, policies, opts);
    });

  host
    .command('list')
    .description('hosts registered with the controller, summarised, page by page (the inventory: host show NAME)')
    .addOption(new Option('--state <S>', 'only hosts in this state').choices(['ready', 'unreachable']))
    .option('--physnet <P>', 'only hosts with a PF on this physnet')
    .option('--page-size <N>', 'hosts per request, 1-1000 (default: the controller\'s, 500)')
    .action(async (opts: { state?: string; physnet?: string; pageSize?: string }) => {
      const query = { state: opts.state, physnet: opts.physnet === undefined ? undefined : parseName(opts.physnet, 'physnet'), limit: pageSize(opts.pageSize) };
      await cli.list('/v1/hosts', query, SUMMARY_COLUMNS, summaryRow);
    });

  host
    .command('reconcile')
    .description("ask a host's agent to reconcile now: drift repair, recovery, leftovers (--host NAME; default the controller's)")
    .action(async () => {
      const api = await cli.api();
      const name = cli.opts.host ?? (await api.get<{ controllerHost: string }>('/v1/info')).controllerHost;
      const r = await api.post<{ host: string }>(`${pathOf('/v1/hosts', parseHostName(name))}/reconcile`, {});
      cli.emit(r, (v) => `host/${v.host}: reconcile requested\n`);
    });

  host
    .command('show <name>')
    .description('one host: state, PFs with their physnets, VFs')
    .action(async (name: string) => {
      cli.emit(await (await cli.api()).get<HostRecord>(pathOf('/v1/hosts', name)), hostTable);
    });
}

async function applyLocal(cli: CliContext, policies: NodePolicy[], opts: ApplyOptions): Promise<void> {
  const sriov = cli.localHost(terminalProgress());
  const inventory = await sriov.inventory();
  // A policy that selects nothing is a mistake in its selector, not a host that already matches.
  const unmatched = unmatchedPolicies(inventory, policies);
  if (unmatched.length) {
    const which = unmatched.map((p) => `policy ${p.name} matched no PF (selector: ${describeSelector(p.selector)})`);
    throw new SriovError('NOT_FOUND', `${which.join('; ')}; host ${inventory.hostname} has ${inventory.pfs.map((pf) => pf.name).join(', ') || 'no SR-IOV PFs'}`);
  }
  const plans = planPolicies(inventory, policies);
  const diff = renderPlan(plans);
  const structured = cli.opts.output !== 'table';
  if (!structured) process.stdout.write(diff.length ? diff.join('\n') + '\n' : 'no changes\n');
  if (diff.length && !opts.dryRun) await applyPlan(sriov, plans);
  if (structured) cli.emit({ changes: diff, applied: diff.length > 0 && !opts.dryRun }, () => '');
  else if (diff.length && !opts.dryRun) process.stdout.write(`applied ${diff.filter(isChangeLine).length} changes\n`);
}

/** renderPlan's `  ~ ...` lines; the others name the PF they belong to. */
const isChangeLine = (line: string) => line.startsWith('  ');

/** Remote: the controller stores the policy and the host's agent converges to it. */
async function applyRemote(cli: CliContext, api: ApiClient, document: string, opts: ApplyOptions): Promise<void> {
  if (opts.dryRun) throw invalid('--dry-run plans against this host; in remote mode the host agent plans and applies the policy');
  const name = cli.opts.host ?? (await api.get<{ controllerHost: string }>('/v1/info')).controllerHost;
  const stored = await api.put<{ host: string; policies: number }>(`${pathOf('/v1/hosts', parseHostName(name))}/policy`, { document });
  cli.emit(stored, (r) => `node policy for host/${r.host} stored (${r.policies} ${r.policies === 1 ? 'policy' : 'policies'}); the host's agent applies it\n`);
}

/** A node policy is a few KB; a file past this is not one. */
const POLICY_MAX_BYTES = 1024 * 1024;

async function readPolicy(file: string): Promise<string> {
  const name = shown(file, 200);
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw invalid(`cannot read policy file ${name}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, file);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw invalid(`policy file ${name} is a directory or device, not a file`, file);
    if (st.size > POLICY_MAX_BYTES) throw invalid(`policy file ${name} is ${st.size} bytes, above the ${POLICY_MAX_BYTES} a node policy takes`, file);
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

const vfCount = (h: HostRecord) => h.inventory.pfs.reduce((n, pf) => n + pf.numVfs, 0);

function hostsTable(hosts: HostRecord[]): string {
  return table(
    ['NAME', 'STATE', 'PFS', 'VFS', 'HEARTBEAT'],
    hosts.map((h) => [h.name, h.state, h.inventory.pfs.length, vfCount(h), h.lastHeartbeat]),
  );
}

const SUMMARY_COLUMNS = ['NAME', 'STATE', 'PFS', 'VFS', 'ALLOCATED', 'FREE', 'GUARANTEED MBPS', 'HEARTBEAT', 'DRAINED'];

/** VFS: reported; FREE: offered to new allocations; GUARANTEED: committed/capacity; HEARTBEAT: its age. */
function summaryRow(s: HostSummary): Cell[] {
  return [
    s.name,
    s.state,
    s.pfs.length,
    s.vfs.total,
    s.vfs.allocated,
    s.vfs.free - s.vfs.unschedulable,
    `${s.committedMbps}/${s.capacityMbps}`,
    s.heartbeatAgeMs === null ? null : `${Math.round(s.heartbeatAgeMs / 1000)}s ago`,
    s.drainedPfs.length ? s.drainedPfs.length : null,
  ];
}

/** What the scheduler sees of each PF (a drained one takes no new allocation), then the inventory the agent reported. */
function hostTable(h: HostRecord): string {
  // `?? []`: a controller older than drains sends no drainedPfs.
  const drained = new Set(h.drainedPfs ?? []);
  const pfs = h.inventory.pfs.map((pf) => [pf.name, pf.pciAddress, h.physnets[pf.pciAddress], h.deviceTypes[pf.pciAddress], drained.has(pf.pciAddress) ? 'yes' : 'no']);
  return hostsTable([h]) + '\n' + table(['PF', 'PCI', 'PHYSNET', 'DEVICE TYPE', 'DRAINED'], pfs) + '\n' + inventoryTable(h.inventory);
}
