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
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';

export interface ErrorBody {
  error: { code: string; message: string };
}

export interface Reply<T = ErrorBody> {
  status: number;
  body: T;
  text: string;
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

export async function startApi(): Promise<ApiHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-api-'));
  const store = await openSqliteStore(dir);
  const control = await ControlPlane.open(store);
  const admin = (await readFile(await control.tokens.bootstrapAdmin(dir), 'utf8')).trim();
  const app = await buildServer({ control, controllerHost: 'ctl-1', version: 'test' });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const call = async <T>(token: string | null, method: string, path: string, body?: unknown): Promise<Reply<T>> => {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const res = await fetch(base + path, { method, headers, body: payload });
    const text = await res.text();
    const json = res.headers.get('content-type')?.startsWith('application/json') && text ? (JSON.parse(text) as T) : (null as T);
    return { status: res.status, body: json, text };
  };
  return {
    dir,
    store,
    control,
    app,
    base,
    admin,
    call,
    async token(role) {
      const r = await call<{ token: string }>(admin, 'POST', '/v1/tokens', { role });
      assert.equal(r.status, 201, r.text);
      return r.body.token;
    },
    async close() {
      await app.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Asserts the status (and the error code), returning the reply. */
export async function expectStatus<T>(reply: Promise<Reply<T>>, status: number, code?: string): Promise<Reply<T>> {
  const r = await reply;
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  if (code) assert.equal((r.body as ErrorBody).error.code, code, r.text);
  return r;
}

/** A node policy giving each named PF `vfs` VFs on a physnet. */
export const policyOf = (rules: Array<[name: string, pf: string, physnet: string]>, vfs = 4) =>
  'policies:\n' + rules.map(([name, pf, physnet]) => `  - name: ${name}\n    selector: { pfNames: [${pf}] }\n    numVfs: ${vfs}\n    physnet: ${physnet}\n`).join('');
