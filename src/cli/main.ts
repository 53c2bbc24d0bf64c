/**
 * `sriovctl`: parses the command line and maps errors to exit statuses:
 * 0 success, 2 invalid input or refused (nothing changed), 1 the operation failed.
 *
 * Local mode (no server) configures this host directly; remote mode
 * (`--server`, `SRIOV_SERVER` or `server:` in the config file) talks to the
 * controller, which owns tenants, networks and allocations.
 */
import { Command, CommanderError, Option } from 'commander';
import { SriovError } from '../host/errors.js';
import { registerAllocCommands } from './commands/alloc.js';
import { registerAttachCommands } from './commands/attach.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerDrainCommands } from './commands/drain.js';
import { registerEventCommands } from './commands/events.js';
import { registerHostCommands } from './commands/host.js';
import { registerK8sCommands } from './commands/k8s.js';
import { registerMigrateCommands } from './commands/migrate.js';
import { registerNetworkCommands } from './commands/network.js';
import { registerPfCommands, registerVfCommands } from './commands/pf-vf.js';
import { registerPhysnetCommands } from './commands/physnet.js';
import { registerSimCommands } from './commands/sim.js';
import { registerTenantCommands } from './commands/tenant.js';
import { registerTokenCommands } from './commands/token.js';
import { CliContext } from './context.js';
import { errorLine } from './output.js';

export function buildProgram(): Command {
  // Global options are accepted before or after the command, so every command takes them.
  const program = new Command('sriovctl')
    .description('vfleet: discover, configure and assign SR-IOV virtual functions')
    .option('--host <HOST>', 'local mode: linux (default) or sim:FILE; remote mode: a host name')
    .option('--sysfs-root <DIR>', 'sysfs mount point (tests point it at a fixture tree)', '/sys')
    .addOption(new Option('-o, --output <FORMAT>', 'output format').choices(['table', 'json', 'yaml']).default('table'))
    .option('--server <URL>', 'controller URL: remote mode (env SRIOV_SERVER, or server: in the config file)')
    .option('--token-file <FILE>', 'file holding the API token (else env SRIOV_TOKEN, or token: in the config file)')
    // Set before any subcommand is added, so every subcommand inherits them.
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .configureHelp({ showGlobalOptions: true });
  const cli = new CliContext(program);
  program.hook('preAction', (_, action) => {
    cli.command = commandPath(action);
  });
  for (const register of [
    registerHostCommands,
    registerPfCommands,
    registerDrainCommands,
    registerVfCommands,
    registerTenantCommands,
    registerNetworkCommands,
    registerPhysnetCommands,
    registerAllocCommands,
    registerAttachCommands,
    registerAuditCommands,
    registerEventCommands,
    registerTokenCommands,
    registerK8sCommands,
    registerMigrateCommands,
  ]) {
    register(program, cli);
  }
  registerSimCommands(program);
  return program;
}

/** `alloc create`, for messages. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    return reportError(err);
  }
}

function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version are not errors; everything else commander rejects is bad input.
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof SriovError) {
    process.stderr.write(`sriovctl: ${errorLine(err.toString())}\n`);
    return err.exitCode;
  }
  // Not a refusal we foresaw: still one line, never a stack trace (SRIOV_DEBUG=1 prints it).
  if (process.env.SRIOV_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.stderr.write(`sriovctl: ${errorLine(`internal error: ${err instanceof Error ? err.message : String(err)}`)}\n`);
  return 1;
}
