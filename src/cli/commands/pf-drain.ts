/**
 * `sriovctl pf drain|undrain <HOST>/<PF>` (remote): the controller places
 * nothing new on a drained PF. What is still on it is printed, since that is
 * what a migration or drain has to move before the PF is free.
 */
import type { Command } from 'commander';
import type { PfDrainState } from '../../controller/pf-drain.js';
import { invalid } from '../../host/errors.js';
import { isIfName, isPciAddress, parseHostName, shown } from '../../host/validate.js';
import type { CliContext } from '../context.js';
import { table } from '../output.js';
import { pathOf } from '../remote/client.js';

export function registerPfDrainCommands(pf: Command, cli: CliContext): void {
  pf.command('drain <HOST/PF>')
    .description('controller: the PF (netdev name or PCI address) takes no new allocation until undrained; prints what is still on it')
    .action((target: string) => setDrained(cli, target, 'drain'));
  pf.command('undrain <HOST/PF>')
    .description('controller: the PF takes new allocations again')
    .action((target: string) => setDrained(cli, target, 'undrain'));
}

async function setDrained(cli: CliContext, target: string, verb: 'drain' | 'undrain'): Promise<void> {
  // Checked before any request: a bad target is exit 2 even with no controller reachable.
  const { host, pf } = parseTarget(target);
  const state = await (await cli.api()).post<PfDrainState>(`${pathOf('/v1/hosts', host)}/pfs/${encodeURIComponent(pf)}/${verb}`, {});
  cli.emit(state, render);
}

/** `node1/ens1f0` or `node1/0000:3b:00.0`: the host is a DNS name, so the first '/' splits. */
function parseTarget(target: string): { host: string; pf: string } {
  const slash = target.indexOf('/');
  const form = 'HOST/PF, like node1/ens1f0 or node1/0000:3b:00.0';
  if (slash < 0) throw invalid(`expected ${form}, got ${shown(target)}`, target);
  const pf = target.slice(slash + 1);
  if (!isIfName(pf) && !isPciAddress(pf)) throw invalid(`the PF in ${shown(target)} must be its netdev name or PCI address (${form})`, target);
  return { host: parseHostName(target.slice(0, slash)), pf };
}

function render(s: PfDrainState): string {
  const what = s.drained ? 'drained: it takes no new allocation' : 'undrained: it takes new allocations';
  const head = `${s.host}/${s.pf} (${s.pfPciAddress}) ${s.changed ? '' : 'already '}${what}\n`;
  if (s.holding.length === 0) return `${head}nothing is allocated on it\n`;
  const count = `${s.holding.length} allocation${s.holding.length === 1 ? '' : 's'} still on it${s.drained ? ' (move or release them to free it)' : ''}:\n`;
  const rows = s.holding.map((a) => [a.id.slice(0, 8), a.vfIndex, a.pciAddress, a.tenant, a.network, `${a.workload.kind}/${a.workload.name}`, a.state]);
  return head + count + table(['ID', 'VF', 'PCI', 'TENANT', 'NETWORK', 'WORKLOAD', 'STATE'], rows);
}
