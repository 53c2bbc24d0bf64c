/** An API server on loopback over a fresh SQLite store, driven with fetch as each role would. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/api/server.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { HostInventory } from '../../src/host/model.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';
import { makeHost } from './inventory.js';

export interface Harness {
  dir: string;
  store: Store;
  control: ControlPlane;
  app: FastifyInstance;
  base: string;
  admin: string;
}

export interface Reply<T = { error: { code: string; message: string } }> {
  status: number;
  body: T;
  text: string;
}

export async function startHarness(opts: { metricsToken?: string } = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-harness-'));
  const store = await openSqliteStore(dir);
  const control = await ControlPlane.open(store);
  const admin = (await readFile(await control.tokens.bootstrapAdmin(dir), 'utf8')).trim();
  const app = await buildServer({ control, controllerHost: 'ctl-1', version: '9.9.9', metricsToken: opts.metricsToken });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { dir, store, control, app, base, admin };
}

export async function stopHarness(h: Harness): Promise<void> {
  await h.app.close();
  await h.store.close();
  await rm(h.dir, { recursive: true, force: true });
}

/** One request; `token` null sends none. The body is parsed when it is JSON. */
export async function call<T = { error: { code: string; message: string } }>(
  h: Harness,
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
): Promise<Reply<T>> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(h.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const json = res.headers.get('content-type')?.startsWith('application/json') && text;
  return { status: res.status, text, body: (json ? JSON.parse(text) : null) as T };
}

export async function expectStatus<T>(reply: Promise<Reply<T>>, status: number, code?: string): Promise<Reply<T>> {
  const r = await reply;
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  if (code) assert.equal((r.body as { error: { code: string } }).error.code, code, r.text);
  return r;
}

export async function newToken(h: Harness, role: string): Promise<{ id: string; token: string }> {
  const r = await expectStatus(call<{ id: string; token: string }>(h, h.admin, 'POST', '/v1/tokens', { role }), 201);
  return r.body;
}

/** Two PFs of four VFs (ens1f0 0000:10:00.0, ens2f0 0000:11:00.0) with PF MACs unique to `name`. */
export function inventoryOf(name: string, macByte = 1): HostInventory {
  const inventory = makeHost({ name, pfs: 2, vfs: 4, driver: 'ice', linkSpeedMbps: 100_000 }).inventory;
  inventory.pfs.forEach((pf, i) => (pf.mac = `b8:ce:f6:00:${macByte.toString(16).padStart(2, '0')}:0${i}`));
  return inventory;
}

export const POLICY_FABRIC = 'policies:\n  - name: fabric\n    selector: { pfNames: [ens1f0, ens2f0] }\n    numVfs: 4\n    physnet: fabric\n';
