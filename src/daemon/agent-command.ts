/**
 * `sriovd agent`: only an agent, reporting to remote controllers over HTTP.
 * Loaded by main.ts only for this command: nothing of the controller, the API
 * or the stores is loaded here, and the device plugin only with a pool file.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Agent } from '../agent/agent.js';
import { HttpLink } from '../agent/link.js';
import { parseServers } from '../agent/servers.js';
import { chooseBackend } from '../backends/choose.js';
import { invalid } from '../host/errors.js';
import { hostWithPfs } from '../host/restricted.js';
import { chooseHypervisors, type HypervisorChoice } from '../hypervisor/choose.js';
import { checkKubeletDir, checkPoolsOnHost, readPoolFile } from '../k8s/pools.js';
import { agentOptions, onSignal, startPools } from './agent-wiring.js';
import { keepAgentHeapSmall } from './heap.js';
import { createLogger, type LogFormat, type LogLevel } from './log.js';

export interface AgentCliOptions extends HypervisorChoice {
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

export async function runAgent(o: AgentCliOptions, version: string): Promise<void> {
  keepAgentHeapSmall();
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
  log.info(`sriovd agent ${version}: reporting to ${servers.join(', ')}; host backend ${backend.description}`);
  const stopPlugin = pools && inventory ? await startPools({ pools, host, link, hostName: inventory.hostname, kubeletDir: o.kubeletDir, log }) : null;
  onSignal(async () => {
    await stopPlugin?.();
    await agent.stop();
  });
}
