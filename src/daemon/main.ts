/**
 * `sriovd`: the controller (HTTP API, scheduler, store) and this host's
 * agent in one process; `sriovd agent` runs only an agent that reports to a
 * remote controller. This file only wires the parts together.
 */
import { mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import type { Logger } from 'pino';
import { Agent } from '../agent/agent.js';
import { HttpLink, InProcessLink } from '../agent/link.js';
import { parseServers } from '../agent/servers.js';
import type { Log } from '../agent/reconciler.js';
import { readMetricsToken } from '../api/metrics.js';
import { buildServer } from '../api/server.js';
import { ControlPlane } from '../controller/control-plane.js';
import type { DeviceLink } from '../controller/device-view.js';
import { SriovHost } from '../host/configurator.js';
import { chooseHypervisors, DEFAULT_LIBVIRT_URI, DEFAULT_QMP_DIR, HYPERVISOR_KINDS, type HypervisorChoice } from '../hypervisor/choose.js';
import { SriovError, invalid } from '../host/errors.js';
import { hostWithPfs } from '../host/restricted.js';
import { parseInteger } from '../host/validate.js';
import { ControllerDeviceSource } from '../k8s/controller-source.js';
import { startDevicePlugin } from '../k8s/device-plugin/index.js';
import { checkKubeletDir, checkPoolsOnHost, DEFAULT_KUBELET_DIR, readPoolFile, type PoolConfig } from '../k8s/pools.js';
import { openStore } from '../store/open.js';
import { chooseBackend, type BackendChoice } from '../backends/choose.js';
import { DEMO_ACTOR, DEMO_NETWORK, DEMO_TENANT, seedDemo } from '../demo/seed.js';
import { addFleetSimCommand } from './fleet-sim.js';
import { createLogger, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log.js';
import { storeCommand, storeOptionsOf, withStoreOptions, type StoreCliOptions } from './store-command.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

interface ControllerOptions extends HypervisorChoice, StoreCliOptions {
  dataDir: string;
  listen: string;
  host: string;
  sysfsRoot: string;
  macPrefix?: string;
  bandwidthRatio: string;
  placement: 'pack' | 'spread';
  heartbeatTimeout: string;
  orphanGrace: string;
  tlsCert?: string;
  tlsKey?: string;
  agent: boolean;
  hostname?: string;
  heartbeatInterval: string;
  resyncInterval: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** false with --no-demo. */
  demo: boolean;
  metricsTokenFile?: string;
  devicePlugin?: string;
  kubeletDir: string;
  pfs?: string;
}

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d+)$/.exec(value);
  if (!m) throw invalid(`--listen must be HOST:PORT, got "${value}"`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: parseInteger(m[2]!, 'port', 0, 65535) };
}

function agentLog(log: Logger): Log {
  return (level, message) => log[level](message);
}

function agentOptions(o: { heartbeatInterval: string; resyncInterval: string } & HypervisorChoice, log: Logger) {
  return {
    heartbeatMs: parseInteger(o.heartbeatInterval, '--heartbeat-interval', 1, 300) * 1000,
    resyncMs: parseInteger(o.resyncInterval, '--resync-interval', 1, 3600) * 1000,
    log: agentLog(log),
    hypervisors: chooseHypervisors(o),
  };
}

/** The agent's hypervisor options, the same on `sriovd` and `sriovd agent`. */
function withHypervisorOptions(command: Command): Command {
  return command
    .addOption(new Option('--hypervisor <KIND>', "how this host's VMs are run, for migrations' hypervisor tasks (default: both)").choices(HYPERVISOR_KINDS))
    .option('--qmp-dir <DIR>', 'QMP sockets of VMs run by QEMU directly, one <vm>.qmp per VM', DEFAULT_QMP_DIR)
    .option('--libvirt-uri <URI>', "this host's libvirt, for virsh", DEFAULT_LIBVIRT_URI);
}

interface DevicePluginWiring {
  pools: PoolConfig;
  host: SriovHost;
  link: DeviceLink;
  hostName: string;
  kubeletDir: string;
  log: Logger;
}

/** The pools' source and the kubelet plugin that serves it (the plugin starts and stops the source); returns what stops both. */
async function startPools(w: DevicePluginWiring): Promise<() => Promise<void>> {
  const log = agentLog(w.log);
  const source = new ControllerDeviceSource({ pools: w.pools, host: w.host, link: w.link, hostName: w.hostName, log });
  const plugin = await startDevicePlugin({ source, kubeletDir: resolve(w.kubeletDir), log });
  const names = w.pools.pools.map((p) => p.resourceName).join(', ');
  w.log.info(`device plugin: ${names} (from ${w.pools.source}) for the kubelet in ${w.kubeletDir}`);
  return () => plugin.stop();
}

/** What the log says drives this host (with the simulated host's file). */
function hostBackendOf(backend: BackendChoice | null): string {
  if (!backend) return 'none (--no-agent)';
  return isSimulated(backend) ? `simulated, ${backend.description}` : backend.description;
}

const isSimulated = (backend: BackendChoice | null) => backend?.description.startsWith('sim:') ?? false;

/** What `GET /v1/info` tells any token: the kind of backend, never a path on the host. */
function hostBackendKind(backend: BackendChoice | null, auto: boolean): string {
  if (!backend) return 'none (--no-agent)';
  if (!isSimulated(backend)) return backend.description;
  return auto ? 'simulated (no SR-IOV hardware found)' : 'simulated';
}

async function runController(o: ControllerOptions): Promise<void> {
  // A refused pool file starts nothing: no data dir, no API, nothing registered with the kubelet.
  const pools = o.devicePlugin === undefined ? null : await readPoolFile(o.devicePlugin);
  if (pools) await checkKubeletDir(o.kubeletDir);
  if (pools && !o.agent) throw invalid('--device-plugin serves this host\'s VFs, which needs its agent: drop --no-agent');
  const log = createLogger(o.logLevel, o.logFormat);
  // Checked before anything is created: a refused flag leaves no data dir behind.
  if (o.agent) chooseHypervisors(o);
  const storeOptions = storeOptionsOf(o, (err) => log.warn(`store: ${err.message}`));
  const metricsToken = o.metricsTokenFile === undefined ? undefined : await readMetricsToken(o.metricsTokenFile);
  const dataDir = resolve(o.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const listen = parseListen(o.listen);
  const store = await openStore(storeOptions);
  const control = await ControlPlane.open(store, {
    macPrefix: o.macPrefix,
    bandwidthRatio: Number(o.bandwidthRatio),
    placementPolicy: o.placement,
    heartbeatTimeoutMs: parseInteger(o.heartbeatTimeout, '--heartbeat-timeout', 1, 3600) * 1000,
    orphanGraceMs: parseInteger(o.orphanGrace, '--orphan-grace', 0, 86400) * 1000,
    resume: false,
    onSyncError: (err) => log.error(`store watch: a change not applied here: ${String(err)}`),
  });
  const tokenFile = await control.tokens.bootstrapAdmin(dataDir);
  const backend = o.agent ? await chooseBackend({ host: o.host, sysfsRoot: o.sysfsRoot, dataDir, hostname: o.hostname }) : null;
  const sriov = backend && (await hostWithPfs(backend.ports, o.pfs));
  const inventory = sriov ? await sriov.inventory() : null;
  if (pools && inventory) checkPoolsOnHost(pools, inventory);
  const controllerHost = inventory ? inventory.hostname : hostname();
  const agentActor = { id: 'local', role: `agent:${controllerHost}` } as const;
    const https = o.tlsCert && o.tlsKey ? { cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey) } : undefined;
  // The demo is for a first look on a machine without SR-IOV: only when `auto` fell back to the simulated NIC.
  const demo = o.demo && o.host === 'auto' && isSimulated(backend);
  const app = await buildServer({ control, controllerHost, version: VERSION, logger: log, https, hostBackend: hostBackendKind(backend, o.host === 'auto'), demo, metricsToken });
  const address = await app.listen(listen);
  const agent = sriov && new Agent(sriov, new InProcessLink(control, agentActor), agentOptions(o, log));
  agent?.start();
  const stopPlugin = pools && sriov ? await startPools({ pools, host: sriov, link: new InProcessLink(control, agentActor), hostName: controllerHost, kubeletDir: o.kubeletDir, log }) : null;
  const leadership = await store.campaign(`${hostname()}/${address}/${process.pid}`);
  const background = control.lead(leadership, { sweepMs: 5_000, onError: (e) => log.error(e), onChange: (leader) => log.info(leader ? 'leader: running the heartbeat sweep and migrations' : 'standby: another controller leads') });
  log.info(`sriovd ${VERSION}: API and console on ${address}; host backend ${hostBackendOf(backend)}; admin token in ${tokenFile}`);
  if (sriov) firstRun(control, { demo, host: controllerHost, dataDir, address, log });
  onSignal(async () => {
    await background.stop();
    await leadership.resign();
    await stopPlugin?.();
    control.shutdown();
    await agent?.stop();
    await app.close();
    await store.close();
  });
}

interface FirstRun {
  demo: boolean;
  host: string;
  dataDir: string;
  address: string;
  log: Logger;
}

/**
 * In the background, as the agent needs to report first: seed the demo, or
 * on a host without a node policy say what to do first (an empty state, not an error).
 */
function firstRun(control: ControlPlane, r: FirstRun): void {
  const run = async () => {
    if (!r.demo) {
      if ((await control.hosts.getPolicy(DEMO_ACTOR, r.host)) !== null) return;
      r.log.info(`host ${r.host} has no node policy yet, so no VFs: apply one first with \`npx sriovctl --server ${r.address} host apply -f node-policy.yaml\` (README: "A node policy")`);
      return;
    }
    r.log.info(`DEMO: ${r.host} is a SIMULATED dual-port E810 (no SR-IOV hardware found); seeding tenant ${DEMO_TENANT}, network ${DEMO_NETWORK.name} and containers on it. --no-demo starts empty.`);
    const outcome = await seedDemo(control, { host: r.host, dataDir: r.dataDir });
    r.log.info(outcome === 'seeded' ? `DEMO: ready; open ${r.address}/ and sign in with the admin token` : 'DEMO: the store already holds other objects; left as it is');
  };
  run().catch((err: unknown) => r.log.error(`DEMO: not seeded: ${err instanceof SriovError ? err.toString() : String(err)}`));
}

interface AgentCliOptions extends HypervisorChoice {
  server: string;
  hostname?: string;
  token?: string;
  tokenFile?: string;
  host: string;
  sysfsRoot: string;
  dataDir: string;
  heartbeatInterval: string;
  resyncInterval: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  devicePlugin?: string;
  kubeletDir: string;
  pfs?: string;
}

async function runAgent(o: AgentCliOptions): Promise<void> {
  const pools = o.devicePlugin === undefined ? null : await readPoolFile(o.devicePlugin);
  if (pools) await checkKubeletDir(o.kubeletDir);
  const log = createLogger(o.logLevel, o.logFormat);
  chooseHypervisors(o); // a bad --qmp-dir or --libvirt-uri is refused before anything starts
  const servers = parseServers(o.server);
  const token = o.token ?? process.env.SRIOV_TOKEN ?? (o.tokenFile ? readFileSync(o.tokenFile, 'utf8').trim() : undefined);
  if (!token) throw invalid('sriovd agent needs --token, --token-file or SRIOV_TOKEN');
  const backend = await chooseBackend({ host: o.host, sysfsRoot: o.sysfsRoot, dataDir: resolve(o.dataDir), hostname: o.hostname });
  const host = await hostWithPfs(backend.ports, o.pfs);
  const inventory = pools ? await host.inventory() : null;
  if (pools && inventory) checkPoolsOnHost(pools, inventory);
  const link = new HttpLink(servers, token, { log: (message) => log.warn(`agent: ${message}`) });
  const agent = new Agent(host, link, agentOptions(o, log));
  agent.start();
  log.info(`sriovd agent ${VERSION}: reporting to ${servers.join(', ')}; host backend ${backend.description}`);
  const stopPlugin = pools && inventory ? await startPools({ pools, host, link, hostName: inventory.hostname, kubeletDir: o.kubeletDir, log }) : null;
  onSignal(async () => {
    await stopPlugin?.();
    await agent.stop();
  });
}

function onSignal(stop: () => Promise<unknown>): void {
  const handler = () => void stop().then(() => process.exit(0), () => process.exit(1));
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
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
    .action((o: ControllerOptions) => runController(o));
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
    .option('--resync-interval <S>', 'seconds between full reconciles (drift repair)', '60')
    .addOption(new Option('--log-level <LEVEL>', 'info, or debug for every reconcile step').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--log-format <FORMAT>', 'text for people, json (one object per line) for machines').choices(LOG_FORMATS).default('text'))
    .option('--device-plugin <FILE>', "serve this host's VFs to the kubelet as the pool file's resources (vfleet.io/<pool>)")
    .option('--kubelet-dir <DIR>', "the kubelet's device plugin directory (kubelet.sock)", DEFAULT_KUBELET_DIR)
    .option('--pfs <PF,...>', "drive only these PFs (netdev names); the host's other PFs are left alone")
    .action((o: AgentCliOptions) => runAgent(o));
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
