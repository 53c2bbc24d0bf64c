/**
 * A controller behind a real HTTP server on a loopback port, over a real
 * SQLite store in a temporary directory, for API tests driven with fetch.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/api/server.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { HostInventory } from '../../src/host/model.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { makeHost } from './inventory.js';
import type { UploadGate } from '../../src/api/upload-gate.js';
import type { EventStreamOptions } from '../../src/api/routes/event-stream.js';

export interface ErrorBody {
  error: { code: string; message: string; claim?: string };
}

export interface Reply<T = ErrorBody> {
  status: number;
  body: T;
  text: string;
  /** The content-type header. */
  type: string | null;
}

export interface ApiHarness {
  dir: string;
  store: Store;
  control: ControlPlane;
  app: FastifyInstance;
  base: string;
  /** The bootstrap admin token. */
  admin: string;
  /** One request; `token` null sends none; `body` a string is sent as it is. */
  call<T = ErrorBody>(token: string | null, method: string, path: string, body?: unknown): Promise<Reply<T>>;
  /** A new token for `role`, created by the admin. */
  token(role: string): Promise<string>;
  close(): Promise<void>;
}

export async function startApi(opts: { metricsToken?: string; version?: string; uploads?: UploadGate; eventStream?: EventStreamOptions } = {}): Promise<ApiHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-api-'));
  const store = await openSqliteStore(dir);
  const control = await ControlPlane.open(store);
  const admin = (await readFile(await control.tokens.bootstrapAdmin(dir), 'utf8')).trim();
  const app = await buildServer({ control, controllerHost: 'ctl-1', version: opts.version ?? 'test', metricsToken: opts.metricsToken, uploads: opts.uploads, eventStream: opts.eventStream });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const call = async <T>(token: string | null, method: string, path: string, body?: unknown): Promise<Reply<T>> => {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const res = await fetch(base + path, { method, headers, body: payload });
    const text = await res.text();
    const type = res.headers.get('content-type');
    const json = type?.startsWith('application/json') && text ? (JSON.parse(text) as T) : (null as T);
    return { status: res.status, body: json, text, type };
  };
  const h: ApiHarness = {
    dir,
    store,
    control,
    app,
    base,
    admin,
    call,
    token: async (role) => (await newToken(h, role)).token,
    async close() {
      await app.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** A new token for `role`, created by the admin, with its id (to revoke it). */
export async function newToken(h: ApiHarness, role: string): Promise<{ id: string; token: string }> {
  return (await expectStatus(h.call<{ id: string; token: string }>(h.admin, 'POST', '/v1/tokens', { role }), 201)).body;
}

/** Two PFs of four VFs (ens1f0 0000:10:00.0, ens2f0 0000:11:00.0) with PF MACs unique to `macByte`. */
export function inventoryOf(name: string, macByte = 1): HostInventory {
  const inventory = makeHost({ name, pfs: 2, vfs: 4, driver: 'ice', linkSpeedMbps: 100_000 }).inventory;
  inventory.pfs.forEach((pf, i) => (pf.mac = `b8:ce:f6:00:${macByte.toString(16).padStart(2, '0')}:0${i}`));
  return inventory;
}

/** A node policy giving each named PF `vfs` VFs on a physnet. */
export const policyOf = (rules: Array<[name: string, pf: string, physnet: string]>, vfs = 4) =>
  'policies:\n' + rules.map(([name, pf, physnet]) => `  - name: ${name}\n    selector: { pfNames: [${pf}] }\n    numVfs: ${vfs}\n    physnet: ${physnet}\n`).join('');

export const POLICY_FABRIC = policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]);

/** Asserts the status (and the error code), returning the reply. */
export async function expectStatus<T>(reply: Promise<Reply<T>>, status: number, code?: string): Promise<Reply<T>> {
  const r = await reply;
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  if (code) assert.equal((r.body as ErrorBody).error.code, code, r.text);
  return r;
}

