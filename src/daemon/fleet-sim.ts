/**
 * `sriovd fleet-sim`: N simulated hosts as agents in one process, for scale
 * and fault tests. Wiring only; the fleet is agent/fleet.ts, its layout
 * sim/fleet-layout.ts.
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { parseServers } from '../agent/servers.js';
import { invalid } from '../host/errors.js';
import { parseInteger } from '../host/validate.js';
import { fleetLayout, MAX_FLEET_HOSTS } from '../sim/fleet-layout.js';
import { simProfileNames } from '../sim/profiles.js';
import { createLogger, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log.js';

interface FleetSimOptions {
  hosts: string;
  profile: string;
  server: string;
  token?: string;
  tokenFile?: string;
  pfs: string;
  vfsPerPf: string;
  prefix: string;
  physnet: string;
  heartbeatInterval: string;
  resyncInterval: string;
  staggerMs: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

async function runFleetSim(o: FleetSimOptions): Promise<void> {
  const log = createLogger(o.logLevel, o.logFormat);
  const hosts = fleetLayout({
    hosts: parseInteger(o.hosts, '--hosts', 1, MAX_FLEET_HOSTS),
    profile: o.profile,
    pfs: parseInteger(o.pfs, '--pfs', 1, 64),
    vfsPerPf: parseInteger(o.vfsPerPf, '--vfs-per-pf', 0, 256),
    prefix: o.prefix,
  });
  const servers = parseServers(o.server);
  const adminToken = o.token ?? process.env.SRIOV_TOKEN ?? (o.tokenFile ? readFileSync(o.tokenFile, 'utf8').trim() : undefined);
  if (!adminToken) throw invalid('sriovd fleet-sim needs an admin token (--token, --token-file or SRIOV_TOKEN): it makes the agent tokens and node policies');
  // Loaded for this command only: the other commands declare it but never run it.
  const { Fleet } = await import('../agent/fleet.js');
  const fleet = new Fleet({
    hosts,
    servers,
    adminToken,
    physnet: o.physnet,
    heartbeatMs: parseInteger(o.heartbeatInterval, '--heartbeat-interval', 1, 300) * 1000,
    resyncMs: parseInteger(o.resyncInterval, '--resync-interval', 1, 3600) * 1000,
    staggerMs: parseInteger(o.staggerMs, '--stagger-ms', 0, 60_000),
    // One line per agent problem; the fleet's progress is logged below.
    log: (level, message) => (level === 'info' ? log.debug(message) : log[level](message)),
  });
  log.info(`fleet-sim: ${hosts.length} hosts (${o.profile}) reporting to ${servers.join(', ')}`);
  const ticker = setInterval(() => {
    const p = fleet.progress();
    log.info(`fleet-sim: ${p.started}/${p.hosts} started, ${p.reporting} reporting, ${p.vfs} VFs`);
  }, 10_000);
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  async function stop() {
    clearInterval(ticker);
    await fleet.stop().then(() => process.exit(0), () => process.exit(1));
  }
  await fleet.start();
}

export function addFleetSimCommand(program: Command): void {
  program
    .command('fleet-sim')
    .description('run N simulated hosts as agents in one process, reporting to remote controllers (scale and fault tests)')
    .requiredOption('--hosts <N>', `how many hosts (1-${MAX_FLEET_HOSTS})`)
    .option('--profile <mix|PROFILE>', `NIC profile: mix (every profile that holds --vfs-per-pf, on 1 and 2 NUMA nodes) or one of ${simProfileNames().join(', ')}`, 'mix')
    .requiredOption('--server <URL,...>', 'controller URLs; the hosts are spread over them')
    .option('--token <TOKEN>', 'an admin token (makes the agent tokens and node policies); or SRIOV_TOKEN')
    .option('--token-file <FILE>', 'read the admin token from a file')
    .option('--pfs <N>', 'PFs per host', '4')
    .option('--vfs-per-pf <N>', "VFs per PF, through each host's node policy (0: put no policy)", '64')
    .option('--prefix <NAME>', 'host names are <prefix>-<n>', 'fleet')
    .option('--physnet <NAME>', "the node policies' physnet", 'fleet')
    .option('--heartbeat-interval <S>', 'seconds between each agent’s reports', '10')
    .option('--resync-interval <S>', 'seconds between each agent’s full reconciles', '60')
    .option('--stagger-ms <MS>', 'pause between two hosts’ starts', '10')
    .addOption(new Option('--log-level <LEVEL>', 'info: the fleet’s progress; debug: also every agent’s').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--log-format <FORMAT>', 'text for people, json (one object per line) for machines').choices(LOG_FORMATS).default('text'))
    .action((o: FleetSimOptions) => runFleetSim(o));
}
