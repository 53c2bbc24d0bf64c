/**
 * Two vfleet "hosts" in one lab guest, as the migration suites run them: a
 * controller without an agent of its own, and one `sriovd agent` per PF
 * (`--pfs`), host-a on PF 0 and host-b on PF 1. Both agents share the
 * guest's kernel, so they report the same bootId: a container may move
 * between them.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sriovctl } from '../helpers/cli.js';
import { eventually, startDaemon, type Daemon } from '../helpers/daemon.js';
import { rawVfs } from './lab-host.js';

export interface TwoHosts {
  dir: string;
  controller: Daemon;
  agents: Record<'host-a' | 'host-b', Daemon>;
  /** `sriovctl --server <controller> ARGS` as admin; asserts it exits 0 and returns its stdout. */
  ctl(...args: string[]): Promise<string>;
  /** Each agent's `--qmp-dir`: the QMP sockets of the VMs on that "host" (`<dir>/<vm>.qmp`). */
  qmpDirs: Record<'host-a' | 'host-b', string>;
  stop(): Promise<void>;
}

const TIMINGS = ['--heartbeat-interval', '1', '--resync-interval', '3'];

/** Starts the controller and the two agents; `numVfs` VFs on each PF, physnet `lab`. */
export async function startTwoHosts(pfs: [string, string], numVfs: number, agentArgs: string[] = []): Promise<TwoHosts> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-lab-'));
  const controller = await startDaemon(['--data-dir', join(dir, 'controller'), '--listen', '127.0.0.1:0', '--no-agent', '--log-level', 'info']);
  const env = { SRIOV_TOKEN: (await readFile(join(dir, 'controller', 'admin.token'), 'utf8')).trim() };
  const ctl = async (...args: string[]) => {
    const r = await sriovctl(['--server', controller.url, ...args], env);
    assert.equal(r.code, 0, `sriovctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const hosts = ['host-a', 'host-b'] as const;
  const agents = {} as TwoHosts['agents'];
  const qmpDirs = {} as TwoHosts['qmpDirs'];
  for (const [i, host] of hosts.entries()) {
    const token = (JSON.parse(await ctl('token', 'create', '--role', `agent:${host}`, '-o', 'json')) as { token: string }).token;
    qmpDirs[host] = join(dir, host, 'qmp');
    await mkdir(qmpDirs[host], { recursive: true });
    agents[host] = await startDaemon([
      'agent', '--server', controller.url, '--token', token, '--host', 'linux', '--hostname', host,
      '--pfs', pfs[i]!, '--data-dir', join(dir, host), '--hypervisor', 'qemu', '--qmp-dir', qmpDirs[host], ...TIMINGS, '--log-level', 'info', ...agentArgs,
    ]);
    const policy = join(dir, `${host}.yaml`);
    await writeFile(policy, `policies:\n  - name: lab\n    selector: { pfNames: [${pfs[i]}] }\n    numVfs: ${numVfs}\n    physnet: lab\n`);
    await ctl('--host', host, 'host', 'apply', '-f', policy);
  }
  await eventually(`${numVfs} VFs on each PF`, 120_000, async () => (pfs.every((pf) => rawVfs(pf).length === numVfs) ? true : undefined));
  const stop = async () => {
    for (const a of Object.values(agents)) await a.kill();
    await controller.kill();
    await rm(dir, { recursive: true, force: true });
  };
  return { dir, controller, agents, ctl, qmpDirs, stop };
}
