/**
 * `sriovd` in the lab guest as an operator runs it on a node: controller and
 * agent in one process on the real host (`--host linux`), its embedded store
 * in a throw-away data dir, and `sriovctl` in remote mode against it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sriovctl } from '../helpers/cli.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';

export interface LabDaemon {
  dir: string;
  daemon: Daemon;
  /** `sriovctl --server <daemon> ARGS` as admin; its stdout, failing the test on a non-zero exit. */
  ctl(...args: string[]): Promise<string>;
  close(): Promise<void>;
}

export async function startLabDaemon(): Promise<LabDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-lab-'));
  const daemon = await startDaemon(['--data-dir', dir, '--listen', '127.0.0.1:0', '--host', 'linux', '--hostname', 'lab-host', '--heartbeat-interval', '1', '--log-level', 'info']);
  const env = { SRIOV_TOKEN: (await readFile(join(dir, 'admin.token'), 'utf8')).trim() };
  return {
    dir,
    daemon,
    async ctl(...args: string[]) {
      const r = await sriovctl(['--server', daemon.url, ...args], env);
      assert.equal(r.code, 0, `sriovctl ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    },
    async close() {
      await daemon.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
