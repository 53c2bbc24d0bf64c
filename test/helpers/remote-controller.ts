/**
 * A real controller in this process (SQLite store, ControlPlane, HTTP server
 * on loopback) for sriovctl in remote mode, with one host reported whose
 * 2 PFs × 8 VFs a node policy puts on physnet `fabric`. No agent: tests
 * report allocation states themselves, as the host's agent would.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/api/server.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { remoteCli } from './cli.js';
import { makeHost } from './inventory.js';

export interface RemoteController {
  dir: string;
  store: Store;
  control: ControlPlane;
  app: FastifyInstance;
  /** For sriovctl: the server, and no token or config from the environment. */
  env: NodeJS.ProcessEnv;
  adminTokenFile: string;
  close(): Promise<void>;
}

export async function startRemoteController(prefix: string, host: string): Promise<RemoteController> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const store = await openSqliteStore(dir);
  const control = await ControlPlane.open(store);
  const adminTokenFile = await control.tokens.bootstrapAdmin(dir);
  const app = await buildServer({ control, controllerHost: host, version: 'test' });
  const server = await app.listen({ host: '127.0.0.1', port: 0 });
  await control.hosts.report({ id: 'local', role: 'admin' }, makeHost({ name: host, pfs: 2, vfs: 8, physnet: null }).inventory);
  const env = { HOME: dir, SRIOV_SERVER: server, SRIOV_TOKEN: '', SRIOV_CONFIG: '' };
  const policy = join(dir, 'policy.yaml');
  await writeFile(policy, 'policies:\n  - name: fabric\n    selector:\n      vendor: "8086"\n    numVfs: 8\n    physnet: fabric\n');
  await chmod(policy, 0o600);
  await remoteCli(() => ({ env, adminTokenFile })).ok(['host', 'apply', '-f', policy, '--host', host]);
  const close = async () => {
    await app.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  };
  return { dir, store, control, app, env, adminTokenFile, close };
}
