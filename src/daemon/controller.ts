/**
 * `sriovd`: the controller (HTTP API, scheduler, store) and this host's agent
 * in one process. Loaded by main.ts only for this command, so that
 * `sriovd agent` never loads the controller, the API or the stores.
 */
import { mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { Agent } from '../agent/agent.js';
import { InProcessLink } from '../agent/link.js';
import { readMetricsToken } from '../api/metrics.js';
import { buildServer } from '../api/server.js';
import { ControlPlane } from '../controller/control-plane.js';
import { SriovError, invalid } from '../host/errors.js';
import { hostWithPfs } from '../host/restricted.js';
import { parseInteger } from '../host/validate.js';
import { chooseHypervisors, type HypervisorChoice } from '../hypervisor/choose.js';
import { checkKubeletDir, checkPoolsOnHost, readPoolFile } from '../k8s/pools.js';
import { openStore } from '../store/open.js';
import { chooseBackend, type BackendChoice } from '../backends/choose.js';
import { DEMO_ACTOR, DEMO_NETWORK, DEMO_TENANT, seedDemo } from '../demo/seed.js';
import { agentOptions, onSignal, startPools } from './agent-wiring.js';
import { createLogger, type LogFormat, type LogLevel } from './log.js';
import { storeOptionsOf, type StoreCliOptions } from './store-command.js';

export interface ControllerOptions extends HypervisorChoice, StoreCliOptions {
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

export async function runController(o: ControllerOptions, version: string): Promise<void> {
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
  const app = await buildServer({ control, controllerHost, version, logger: log, https, hostBackend: hostBackendKind(backend, o.host === 'auto'), demo, metricsToken });
  const address = await app.listen(listen);
  const agent = sriov && new Agent(sriov, new InProcessLink(control, agentActor), agentOptions(o, log));
  agent?.start();
  const stopPlugin = pools && sriov ? await startPools({ pools, host: sriov, link: new InProcessLink(control, agentActor), hostName: controllerHost, kubeletDir: o.kubeletDir, log }) : null;
  const leadership = await store.campaign(`${hostname()}/${address}/${process.pid}`);
  const background = control.lead(leadership, { sweepMs: 5_000, onError: (e) => log.error(e), onChange: (leader) => log.info(leader ? 'leader: running the heartbeat sweep and migrations' : 'standby: another controller leads') });
  log.info(`sriovd ${version}: API and console on ${address}; the console is ${address}/ui/; host backend ${hostBackendOf(backend)}; admin token in ${tokenFile}`);
  if (sriov) firstRun(control, { demo, host: controllerHost, dataDir, address, log });
  onSignal(async () => {
    await background.stop();
    await leadership.resign();
    await stopPlugin?.();
    control.shutdown();
    await agent?.stop();
    await app.close();
    // The last few seconds' heartbeats, batched on SQLite (heartbeat-batch.ts).
    await control.hosts.flushHeartbeats().catch((e: unknown) => log.error(e));
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
    r.log.info(outcome === 'seeded' ? `DEMO: ready; open ${r.address}/ui/ and sign in with the admin token` : 'DEMO: the store already holds other objects; left as it is');
  };
  run().catch((err: unknown) => r.log.error(`DEMO: not seeded: ${err instanceof SriovError ? err.toString() : String(err)}`));
}
