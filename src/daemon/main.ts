/**
 * `sriovd`: the controller (HTTP API, scheduler, store) and this host's
 * agent in one process; `sriovd agent` runs only an agent that reports to a
 * remote controller. This file only declares the commands: each command's
 * code is imported when it runs, so that an agent never loads (nor keeps in
 * memory) the controller, the API, the stores or the device plugin.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { SriovError } from '../host/errors.js';
import { DEFAULT_LIBVIRT_URI, DEFAULT_QMP_DIR, HYPERVISOR_KINDS } from '../hypervisor/choose.js';
import { DEFAULT_KUBELET_DIR } from '../k8s/pools.js';
import type { AgentCliOptions } from './agent-command.js';
import type { ControllerOptions } from './controller.js';
import { addFleetSimCommand } from './fleet-sim.js';
import { LOG_FORMATS, LOG_LEVELS } from './log.js';
import { storeCommand, withStoreOptions } from './store-command.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The agent's hypervisor options, the same on `sriovd` and `sriovd agent`. */
function withHypervisorOptions(command: Command): Command {
  return command
    .addOption(new Option('--hypervisor <KIND>', "how this host's VMs are run, for migrations' hypervisor tasks (default: both)").choices(HYPERVISOR_KINDS))
    .option('--qmp-dir <DIR>', 'QMP sockets of VMs run by QEMU directly, one <vm>.qmp per VM', DEFAULT_QMP_DIR)
    .option('--libvirt-uri <URI>', "this host's libvirt, for virsh", DEFAULT_LIBVIRT_URI);
}

function buildProgram(): Command {
  const program = withStoreOptions(withHypervisorOptions(new Command('sriovd')))
    .description('vfleet daemon: controller (API, scheduler, store) and host agent')
    .option('--data-dir <DIR>', 'store, tokens and simulated host live here', './data')
    .option('--listen <HOST:PORT>', 'API and console address', '127.0.0.1:7474')
    .option('--host <linux|sim:FILE|auto>', 'host backend (auto: linux if it has SR-IOV PFs, else a simulated NIC)', 'auto')
    .option('--sysfs-root <DIR>', 'sysfs mount point', '/sys')
    .option('--hostname <NAME>', "the name this host registers under (default: the machine's)")
    .option('--mac-prefix <PREFIX>', 'locally administered prefix for generated MACs', '02:5f:00')
    .option('--bandwidth-ratio <R>', 'guarantees on a PF may sum to link speed × R', '1.0')
    .addOption(new Option('--placement <POLICY>', 'default placement').choices(['pack', 'spread']).default('pack'))
    .option('--heartbeat-timeout <S>', 'seconds without a report before a host is unreachable', '30')
    .option('--tls-cert <FILE>', 'serve HTTPS with this certificate (for remote agents)')
    .option('--tls-key <FILE>', 'private key for --tls-cert')
    .option('--no-agent', "do not run an agent for this host")
    .option('--heartbeat-interval <S>', "seconds between this host's agent reports", '10')
    .option('--traffic-interval <S>', "seconds between samples of this host's traffic counters (0: none)", '5')
    .option('--resync-interval <S>', "seconds between this host's full reconciles (drift repair)", '60')
    .option('--orphan-grace <S>', 'seconds before leftovers (vanished namespaces, unallocated configured VFs) are collected', '60')
    .addOption(new Option('--log-level <LEVEL>', 'info: one line per change, refusal and failure; debug: also every read and agent poll').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--log-format <FORMAT>', 'text for people, json (one object per line) for machines').choices(LOG_FORMATS).default('text'))
    .option('--no-demo', 'with --host auto and no SR-IOV hardware: start empty instead of seeding the demo on the simulated NIC')
    .option('--metrics-token-file <FILE>', '/metrics then needs this token (or a staff token); the file must not be open to others. Default: /metrics needs no token')
    .option('--device-plugin <FILE>', "serve this host's VFs to the kubelet as the pool file's resources (vfleet.io/<pool>)")
    .option('--kubelet-dir <DIR>', "the kubelet's device plugin directory (kubelet.sock)", DEFAULT_KUBELET_DIR)
    .option('--pfs <PF,...>', "drive only these PFs (netdev names); the host's other PFs are left alone")
    // Options belong to the command they follow, so `agent --host` is the agent's.
    .enablePositionalOptions()
    .exitOverride()
    .action(async (o: ControllerOptions) => (await import('./controller.js')).runController(o, VERSION));
  withHypervisorOptions(program.command('agent'))
    .description('run only an agent, reporting to a remote controller')
    .requiredOption('--server <URL,...>', 'controller URL; several, comma-separated, for controllers sharing one store (the agent fails over between them)')
    .option('--token <TOKEN>', 'agent token (role agent:<this host>); or SRIOV_TOKEN')
    .option('--token-file <FILE>', 'read the agent token from a file')
    .option('--host <linux|sim:FILE|auto>', 'host backend', 'auto')
    .option('--sysfs-root <DIR>', 'sysfs mount point', '/sys')
    .option('--hostname <NAME>', "the name this host registers under (default: the machine's)")
    .option('--data-dir <DIR>', 'where a simulated host is kept when there is no hardware', './data')
    .option('--heartbeat-interval <S>', 'seconds between reports to the controller', '10')
    .option('--traffic-interval <S>', 'seconds between samples of the traffic counters (0: none)', '5')
    .option('--resync-interval <S>', 'seconds between full reconciles (drift repair)', '60')
    .addOption(new Option('--log-level <LEVEL>', 'info, or debug for every reconcile step').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--log-format <FORMAT>', 'text for people, json (one object per line) for machines').choices(LOG_FORMATS).default('text'))
    .option('--device-plugin <FILE>', "serve this host's VFs to the kubelet as the pool file's resources (vfleet.io/<pool>)")
    .option('--kubelet-dir <DIR>', "the kubelet's device plugin directory (kubelet.sock)", DEFAULT_KUBELET_DIR)
    .option('--pfs <PF,...>', "drive only these PFs (netdev names); the host's other PFs are left alone")
    .action(async (o: AgentCliOptions) => (await import('./agent-command.js')).runAgent(o, VERSION));
  program.addCommand(storeCommand());
  addFleetSimCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    const message = err instanceof SriovError ? err.toString() : err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`sriovd: ${message}\n`);
    process.exit(err instanceof SriovError ? err.exitCode : 1);
  }
}
