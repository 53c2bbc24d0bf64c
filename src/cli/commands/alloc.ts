import { setTimeout as sleep } from 'node:timers/promises';
import { Option, type Command } from 'commander';
import type { AllocationInput } from '../../controller/allocations.js';
import { parseName } from '../../controller/networks.js';
import type { Allocation, AllocationState, WorkloadKind } from '../../domain/types.js';
import { SriovError, invalid } from '../../host/errors.js';
import { parseHostName, parseInteger, parseMac } from '../../host/validate.js';
import type { NumaPolicy, PlacementPolicy } from '../../scheduler/index.js';
import type { CliContext } from '../context.js';
import { asList, pageSize, table, type Cell } from '../output.js';
import { pathOf, type ApiClient, type Query } from '../remote/client.js';

/** The agent usually answers within a few hundred ms; poll often enough not to add to that. */
const POLL_MS = 100;

export interface WaitOptions {
  wait: boolean;
  timeout: string;
}

interface CreateOptions extends WaitOptions {
  network: string;
  workload: string;
  kind: WorkloadKind;
  numa?: string;
  numaPolicy?: NumaPolicy;
  group?: string;
  acrossHosts?: boolean;
  policy?: PlacementPolicy;
  mac?: string;
}

export const waitOptions = (cmd: Command, until: string) =>
  cmd.option('--no-wait', `return at once instead of waiting until the allocation is ${until}`).option('--timeout <S>', 'seconds to wait', '30');

export function registerAllocCommands(program: Command, cli: CliContext): void {
  const alloc = program.command('alloc').description('allocations: a workload claims a VF on a network (remote)');

  waitOptions(alloc.command('create'), 'configured')
    .description('allocate a VF; waits until the host agent has configured it (--host NAME pins the host)')
    .requiredOption('--network <N>', 'network to attach to')
    .requiredOption('--workload <W>', 'workload name (pod, VM)')
    .addOption(new Option('--kind <K>', 'workload kind').choices(['container', 'vm']).default('container'))
    .option('--numa <N>', 'NUMA node the VF should be local to')
    .addOption(new Option('--numa-policy <P>', 'whether --numa must hold').choices(['required', 'preferred']))
    .option('--group <G>', 'redundancy group: the workload\'s allocations in it go to different PFs')
    .option('--across-hosts', 'the group may span hosts')
    .addOption(new Option('--policy <P>', 'placement policy').choices(['pack', 'spread']))
    .option('--mac <M>', 'MAC address instead of one from the pool')
    .action(async (opts: CreateOptions) => {
      const body = allocationInput(opts, cli.opts.host);
      const timeoutS = parseTimeout(opts);
      const created = await (await cli.api()).post<Allocation>('/v1/allocations', body);
      await settle(cli, created, ['pending'], timeoutS);
    });

  alloc
    .command('list')
    .description('list allocations but released ones, in id order, page by page (filters run on the controller; a tenant token sees only its own)')
    .option('--network <N>', 'only this network\'s')
    .option('--physnet <P>', 'only those on this physnet\'s networks')
    .option('--tenant <T>', 'only this tenant\'s')
    .addOption(new Option('--state <S>', 'only those in this state').choices(ALLOCATION_STATES))
    .option('--all', 'released allocations too (detached, or failed ones cleared)')
    .option('--page-size <N>', 'allocations per request, 1-1000 (default: the controller\'s, 500)')
    .action(async (opts: ListOptions) => {
      const query = listQuery(opts, cli.opts.host);
      // Without --state the controller sends every state; released ones are left out here unless --all.
      const keep = opts.all || opts.state ? () => true : (a: Allocation) => a.state !== 'released';
      await cli.list('/v1/allocations', query, ALLOCATION_COLUMNS, allocationRow, keep);
    });

  alloc
    .command('show <id>')
    .description('one allocation')
    .action(async (id: string) => cli.emit(await (await cli.api()).get<Allocation>(pathOf('/v1/allocations', id)), allocationTable));

  waitOptions(alloc.command('delete <id>'), 'released')
    .description('release an allocation; waits until the host agent has scrubbed the VF (a failed one is cleared at once)')
    .action(async (id: string, opts: WaitOptions) => {
      const timeoutS = parseTimeout(opts);
      const releasing = await (await cli.api()).delete<Allocation>(pathOf('/v1/allocations', id));
      await settle(cli, releasing, ['releasing'], timeoutS);
    });
}

interface ListOptions {
  network?: string;
  physnet?: string;
  tenant?: string;
  state?: AllocationState;
  all?: boolean;
  pageSize?: string;
}

const ALLOCATION_STATES: AllocationState[] = ['pending', 'configured', 'attached', 'releasing', 'released', 'failed'];

/** Checked here for quick feedback; the controller checks again. */
function listQuery(o: ListOptions, host: string | undefined): Query {
  return {
    network: o.network === undefined ? undefined : parseName(o.network, 'network'),
    physnet: o.physnet === undefined ? undefined : parseName(o.physnet, 'physnet'),
    tenant: o.tenant === undefined ? undefined : parseName(o.tenant, 'tenant'),
    state: o.state,
    host: host === undefined ? undefined : parseHostName(host),
    limit: pageSize(o.pageSize),
  };
}

/** Checked here for quick feedback; the controller checks again. */
function allocationInput(o: CreateOptions, host: string | undefined): AllocationInput {
  if (o.numaPolicy && o.numa === undefined) throw invalid('--numa-policy needs --numa');
  if (o.acrossHosts && o.group === undefined) throw invalid('--across-hosts needs --group');
  return {
    network: parseName(o.network, 'network'),
    workload: { kind: o.kind, name: o.workload },
    numaNode: o.numa === undefined ? undefined : parseInteger(o.numa, 'NUMA node', 0, 63),
    numaPolicy: o.numaPolicy,
    group: o.group,
    groupAcrossHosts: o.acrossHosts,
    policy: o.policy,
    host: host === undefined ? undefined : parseHostName(host),
    mac: o.mac === undefined ? undefined : parseMac(o.mac),
  };
}

/** Seconds to wait, or null for --no-wait. */
export function parseTimeout(o: WaitOptions): number | null {
  return o.wait ? parseInteger(o.timeout, '--timeout', 1, 86_400) : null;
}

/**
 * Waits until the allocation has left the `transient` states (not at all
 * with --no-wait), prints it with `render`, and exits 1 if it ended failed
 * or is still transient at the timeout.
 */
export async function settle<T>(
  cli: CliContext,
  first: Allocation,
  transient: AllocationState[],
  timeoutS: number | null,
  view: (a: Allocation) => Promise<T> | T = (a) => a as T,
  render: (v: T) => string = (v) => allocationTable(v as Allocation),
): Promise<Allocation> {
  const last = timeoutS === null ? first : await poll(await cli.api(), first, transient, Date.now() + timeoutS * 1000);
  if (timeoutS !== null && transient.includes(last.state)) {
    cli.emit(last, allocationTable);
    throw new SriovError('TIMEOUT', `allocation ${last.id} is still ${last.state} after ${timeoutS} s; is the agent on ${last.host} running?`, { object: last.id });
  }
  if (last.state === 'failed') {
    cli.emit(last, allocationTable);
    throw new SriovError('HOST_ERROR', `allocation ${last.id} failed on ${last.host}: ${last.reason ?? 'no reason given'}`, { object: last.id });
  }
  cli.emit(await view(last), render);
  return last;
}

async function poll(api: ApiClient, a: Allocation, transient: AllocationState[], deadline: number): Promise<Allocation> {
  let current = a;
  while (transient.includes(current.state) && Date.now() < deadline) {
    await sleep(POLL_MS);
    current = await api.get<Allocation>(pathOf('/v1/allocations', a.id));
  }
  return current;
}

const ALLOCATION_COLUMNS = ['ID', 'NETWORK', 'WORKLOAD', 'HOST', 'PF', 'VF', 'PCI', 'MAC', 'VLAN', 'STATE', 'REASON'];

export function allocationTable(allocations: Allocation | Allocation[]): string {
  return table(ALLOCATION_COLUMNS, asList(allocations).map(allocationRow));
}

function allocationRow(a: Allocation): Cell[] {
  return [
    a.id,
    a.network,
    `${a.workload.kind}/${a.workload.name}`,
    a.host,
    a.pf,
    a.vfIndex,
    a.pciAddress,
    a.mac,
    a.vlan,
    a.state,
    a.reason,
  ];
}
