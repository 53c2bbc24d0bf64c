/**
 * The RSS of a real `sriovd agent` on one 4 x 256-VF simulated host, reporting
 * over HTTP to a running controller: this build's, and a baseline build's
 * (another checkout's bin/sriovd.js) in the same run, for the ratio.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sleep } from '../src/host/wait.js';
import { SimHost } from '../src/sim/sim-host.js';
import { initSimHost } from '../src/sim/state.js';
import { call, ok, rssOf, spawnSriovd, SRIOVD } from './scale-procs.js';

const MB = 2 ** 20;
const TARGET = 80 * MB;

export interface Rss {
  rss: number;
  peak: number;
}

/** A 4 x 256-VF host (VFs made before its agent starts, as after a reboot), its policy and its agent token. */
async function bigHost(dir: string, url: string, token: string, name: string) {
  const file = join(dir, `${name}.json`);
  await initSimHost(file, { profile: 'ice', pfs: 4, numaNodes: 2, hostname: name });
  const ports = new SimHost(file).ports;
  for (const pf of await ports.sysfs.listSriovPfs()) await ports.sysfs.writeNumVfs(pf, 256);
  await ok(url, token, 'PUT', `/v1/hosts/${name}/policy`, { document: `policies:\n  - name: big\n    selector: { drivers: [ice] }\n    numVfs: 256\n    physnet: big\n` });
  const { token: agentToken } = await ok<{ token: string }>(url, token, 'POST', '/v1/tokens', { role: `agent:${name}` });
  return { file, agentToken };
}

async function reported(url: string, token: string, name: string): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    const r = await call<{ inventory?: { pfs: Array<{ vfs: unknown[] }> } }>(url, token, 'GET', `/v1/hosts/${name}`);
    if (r.status === 200 && (r.body.inventory?.pfs.reduce((n, p) => n + p.vfs.length, 0) ?? 0) === 1024) return;
    if (performance.now() - t0 > 180_000) throw new Error(`${name}: 1,024 VFs not reported within 180 s`);
    await sleep(1000);
  }
}

/** The agent's RSS once it has reported its VFs and then heartbeats for 10 s (every 5 s). */
export async function agentRss(dir: string, url: string, token: string, name: string, bin = SRIOVD, env: NodeJS.ProcessEnv = {}): Promise<Rss> {
  const { file, agentToken } = await bigHost(dir, url, token, name);
  const agent = await spawnSriovd(['agent', '--server', url, '--token', agentToken, '--host', `sim:${file}`, '--hostname', name, '--heartbeat-interval', '5'], /reporting to/, env, bin);
  try {
    await reported(url, token, name);
    await sleep(10_000);
    return await rssOf(agent.proc.pid!);
  } finally {
    await agent.stop();
  }
}

const fmt = (r: Rss) => `RSS ${(r.rss / MB).toFixed(1)} MB (peak ${(r.peak / MB).toFixed(1)} MB), target < 80 MB: ${(r.rss / TARGET).toFixed(2)}x`;

/** Prints this build's agent RSS, and the baseline build's beside it when `baseline` (a bin/sriovd.js) is given. */
export async function agentMemory(dir: string, url: string, token: string, baseline?: string): Promise<void> {
  const before = baseline ? await agentRss(dir, url, token, 'scale-agent-base', baseline) : null;
  const now = await agentRss(dir, url, token, 'scale-agent-now');
  console.log(`agent on 4 x 256 VFs: ${fmt(now)}`);
  if (before) console.log(`  baseline build (${baseline}): ${fmt(before)}; this build ${(now.rss / before.rss).toFixed(2)}x the baseline's RSS`);
}
