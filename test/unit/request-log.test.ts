// The daemon's request log: one readable line per request; reads and agent
// polls only at debug; JSON records kept for machines.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { requestLevel } from '../../src/api/request-log.js';
import { buildServer } from '../../src/api/server.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import { createLogger } from '../../src/daemon/log.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';

describe('request log', () => {
  const records: Array<{ level: number; msg: string }> = [];
  let dir: string;
  let close: () => Promise<void>;
  let call: (method: string, path: string, body?: unknown) => Promise<number>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-log-'));
    const store = await openSqliteStore(dir);
    const control = await ControlPlane.open(store);
    const token = (await readFile(await control.tokens.bootstrapAdmin(dir), 'utf8')).trim();
    const logger = pino({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line) as { level: number; msg: string }) });
    const app = await buildServer({ control, controllerHost: 'ctl-1', version: 'test', logger });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    call = async (method, path, body) => {
      const headers = { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
      const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      await res.arrayBuffer();
      return res.status;
    };
    close = async () => {
      await app.close();
      await store.close();
    };
  });

  after(async () => {
    await close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes one info line for a change, with status, time and role, and nothing at info for reads', async () => {
    records.length = 0;
    assert.equal(await call('GET', '/v1/tenants'), 200);
    assert.equal(await call('POST', '/v1/tenants', { name: 'blue' }), 201);
    const lines = records.map((r) => r.msg);
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /^POST \/v1\/tenants 201 \d+\.\d ms admin$/);
    // Machines get the same facts as fields.
    const fields = (records[0] as unknown as { request: Record<string, unknown> }).request;
    assert.deepEqual({ ...fields, responseTimeMs: typeof fields.responseTimeMs }, { method: 'POST', url: '/v1/tenants', statusCode: 201, responseTimeMs: 'number', actor: 'admin' });
  });

  it('logs refusals at info, with the status', async () => {
    records.length = 0;
    assert.equal(await call('POST', '/v1/tenants', { name: 'Blue' }), 400);
    assert.equal(await call('GET', '/v1/networks/none'), 404);
    assert.deepEqual(records.map((r) => r.msg.replace(/ [\d.]+ ms /, ' _ ms ')), ['POST /v1/tenants 400 _ ms admin', 'GET /v1/networks/none 404 _ ms admin']);
  });

  it('puts reads and agent polls at debug, failures at error', () => {
    assert.equal(requestLevel('GET', '/v1/allocations', 200), 'debug');
    assert.equal(requestLevel('POST', '/v1/agent/report', 200), 'debug');
    assert.equal(requestLevel('DELETE', '/v1/allocations/x', 202), 'info');
    assert.equal(requestLevel('GET', '/v1/hosts', 403), 'info');
    assert.equal(requestLevel('POST', '/v1/allocations', 500), 'error');
  });

  it('writes text as one line per record, extra fields as key=value, an error with its stack, nothing below the level', () => {
    const lines: string[] = [];
    const log = createLogger('info', 'text', (line) => lines.push(line));
    const request = { method: 'POST', url: '/v1/tenants', statusCode: 201, responseTimeMs: 1, actor: 'admin' };
    log.child({ reqId: 'r' }).info({ request }, 'POST /v1/tenants 201 1.0 ms admin');
    log.warn({ host: 'a', pfs: [1, 2] }, 'slow');
    log.debug('not at info');
    log.info('%s of %d VFs', 'ens1f0', 64);
    log.child({ host: 'h-1' }).error(new Error('boom'), 'report failed');
    const time = /^\d\d:\d\d:\d\d\.\d{3} /;
    assert.ok(lines.every((l) => time.test(l) && l.endsWith('\n')), lines.join(''));
    const text = lines.map((l) => l.replace(time, ''));
    assert.deepEqual(text.slice(0, 3), ['INFO  POST /v1/tenants 201 1.0 ms admin\n', 'WARN  slow host=a pfs=[1,2]\n', 'INFO  ens1f0 of 64 VFs\n']);
    assert.match(text[3]!, /^ERROR report failed host=h-1\nError: boom\n {4}at /);
    assert.equal(text.length, 4);
  });
});
