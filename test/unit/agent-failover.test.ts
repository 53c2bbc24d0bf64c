// Agents with several controller URLs (`sriovd agent --server URL1,URL2`):
// a call no controller answered (refused, reset, timed out) or answered
// 502/503/504 moves on to the next URL and stays there; any other answer, a
// 4xx above all, is the answer. After a failover the other controller, which
// does not know the inventory, asks for it (409 inventoryNeeded) and gets it.
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { HttpLink } from '../../src/agent/link.js';
import { parseServers } from '../../src/agent/servers.js';
import { buildServer } from '../../src/api/server.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { AgentReport } from '../../src/controller/hosts.js';
import { SriovError } from '../../src/host/errors.js';
import { inventoryOf, startApi, type ApiHarness } from '../helpers/api-harness.js';

const DESIRED = { host: 'host-a', revision: '1', macPrefix: '02:5f:00', orphanGraceMs: 60_000, resync: 0, policies: [], allocations: [], tasks: [] };

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** An HTTP server on loopback counting its requests. */
async function httpServer(handler: Handler): Promise<{ url: string; requests: () => number; server: Server }> {
  let count = 0;
  const server = createHttpServer((req, res) => {
    count++;
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => count, server };
}

const answer = (status: number, body: unknown): Handler => (_req, res) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

/** A port nothing listens on: connections are refused. */
async function refusedUrl(): Promise<string> {
  const s = await httpServer(answer(200, {}));
  await new Promise((r) => s.server.close(r));
  return s.url;
}

describe('HttpLink over several controllers', () => {
  const servers: Array<Server | TcpServer> = [];
  let good: Awaited<ReturnType<typeof httpServer>>;
  let resetUrl: string;
  let hung: Awaited<ReturnType<typeof httpServer>>;

  before(async () => {
    good = await httpServer(answer(200, DESIRED));
    hung = await httpServer(() => {}); // takes the request, never answers
    const reset = createTcpServer((socket) => socket.resetAndDestroy());
    await new Promise<void>((r) => reset.listen(0, '127.0.0.1', r));
    resetUrl = `http://127.0.0.1:${(reset.address() as AddressInfo).port}`;
    servers.push(good.server, hung.server, reset);
  });

  after(async () => {
    for (const s of servers) {
      if ('closeAllConnections' in s) s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  it('moves past a refused, a reset and a hung controller to one that answers, and stays there', async () => {
    const logged: string[] = [];
    const link = new HttpLink([await refusedUrl(), resetUrl, hung.url, good.url], 'token', { timeoutMs: 300, log: (m) => logged.push(m) });
    assert.deepEqual(await link.desired('host-a', undefined, 0), DESIRED);
    assert.equal(link.server, good.url);
    assert.equal(logged.length, 3, logged.join('\n'));
    assert.match(logged[0]!, /did not answer \(ECONNREFUSED\); now using http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(logged[2]!, /did not answer \(no answer in 300 ms\)/);
    await link.desired('host-a', '1', 0);
    assert.deepEqual([good.requests(), hung.requests(), logged.length], [2, 1, 3], 'the second call went straight to the one that answered');
  });

  it('takes a 4xx as the answer: no failover', async () => {
    const forbidding = await httpServer(answer(403, { error: { code: 'FORBIDDEN', message: 'not yours', object: 'host-a' } }));
    servers.push(forbidding.server);
    const before = good.requests();
    const link = new HttpLink([forbidding.url, good.url], 'token');
    await assert.rejects(link.desired('host-a', undefined, 0), (e: unknown) => e instanceof SriovError && e.code === 'FORBIDDEN' && e.details.object === 'host-a');
    assert.deepEqual([good.requests(), link.server], [before, forbidding.url]);
  });

  it('moves past a 503; every controller 503 is UNAVAILABLE, with the store’s data', async () => {
    const body = { error: { code: 'UNAVAILABLE', message: 'etcd has no quorum', data: { retryAfterS: 3 } } };
    const busy = await httpServer(answer(503, body));
    const busy2 = await httpServer(answer(503, body));
    servers.push(busy.server, busy2.server);
    const link = new HttpLink([busy.url, good.url], 'token');
    assert.deepEqual(await link.desired('host-a', undefined, 0), DESIRED);
    const down = new HttpLink([busy.url, busy2.url], 'token');
    await assert.rejects(down.desired('host-a', undefined, 0), (e: unknown) => e instanceof SriovError && e.code === 'UNAVAILABLE' && e.details.data?.retryAfterS === 3);
  });

  it('says TRY_AGAIN naming every controller and why, when none answers', async () => {
    const [a, b] = [await refusedUrl(), resetUrl];
    const link = new HttpLink([a, b], 'token', { timeoutMs: 300 });
    await assert.rejects(link.claimDevices({ host: 'host-a', resource: 'vfleet.io/red', network: 'red', pciAddresses: ['0000:10:00.1'] }), (e: unknown) => {
      assert.ok(e instanceof SriovError && e.code === 'TRY_AGAIN', String(e));
      assert.ok(e.message.startsWith(`the controllers at ${a}, ${b} cannot be reached (${a}: ECONNREFUSED; ${b}: `), e.message);
      assert.match(e.message, /; retrying is safe \(the same claim again is found, not made twice\)$/);
      return true;
    });
  });
});

describe('two controllers over one store, one agent link', () => {
  let h: ApiHarness;
  let second: ControlPlane;
  let app2: FastifyInstance;
  let base2: string;
  let token: string;
  const seen: Array<{ controller: number; whole: boolean }> = [];
  const inventory = inventoryOf('host-a');

  /** Records what each controller's report path receives. */
  function watchReports(control: ControlPlane, controller: number): void {
    const receive = control.hosts.receive.bind(control.hosts);
    control.hosts.receive = (actor, r: AgentReport) => {
      seen.push({ controller, whole: r.inventory !== undefined });
      return receive(actor, r);
    };
  }
  const taken = () => seen.splice(0).map((s) => `${s.controller}:${s.whole ? 'whole' : 'hash'}`);

  before(async () => {
    h = await startApi();
    token = await h.token('agent:host-a');
    // The same store, a controller of its own memory: what a second sriovd on etcd is, without the watch.
    second = await ControlPlane.open(h.store);
    app2 = await buildServer({ control: second, controllerHost: 'ctl-2', version: 'test' });
    base2 = await app2.listen({ host: '127.0.0.1', port: 0 });
    watchReports(h.control, 1);
    watchReports(second, 2);
  });

  after(async () => {
    await app2.close();
    await h.close();
  });

  it('sends the hash alone while one controller answers, and whole when asked: by it, or by the next after a failover', async () => {
    const link = new HttpLink([h.base, base2], token);
    await link.report(inventory, []);
    await link.report(inventory, []);
    assert.deepEqual(taken(), ['1:whole', '1:hash']);

    // Controller 1 forgets the inventory (a record written elsewhere came through the watch): it asks, the agent sends it whole.
    h.control.hosts.hostChanged('host-a', null);
    await link.report(inventory, [{ id: 'none', state: 'released' }]);
    assert.deepEqual(taken(), ['1:hash', '1:whole']);

    await h.app.close();
    await link.report(inventory, []);
    await link.report(inventory, []);
    assert.deepEqual(taken(), ['2:hash', '2:whole', '2:hash']);
    assert.equal(link.server, base2);
    assert.equal((await h.store.tx.getHost('host-a'))!.state, 'ready');
  });
});

describe('--server URL1,URL2', () => {
  it('takes comma-separated http(s) URLs, trimmed, without trailing slashes', () => {
    assert.deepEqual(parseServers('http://198.18.0.1:7474/, https://ctl2.example:7474'), ['http://198.18.0.1:7474', 'https://ctl2.example:7474']);
    assert.deepEqual(parseServers('http://198.18.0.1:7474'), ['http://198.18.0.1:7474']);
  });

  it('refuses a bad one, naming it and its position', () => {
    const cases: Array<[string, RegExp]> = [
      ['http://198.18.0.1:7474,', /^controller URL 2 of --server is empty; give URLs separated by commas/],
      ['http://198.18.0.1:7474,ctl2:7474', /^controller URL 2 of --server \(ctl2:7474\) has scheme ctl2; use http or https$/],
      ['not a url', /^controller URL 1 of --server \(not a url\) is not a URL/],
      ['ftp://198.18.0.1', /has scheme ftp; use http or https/],
      ['http://u:p@198.18.0.1', /^controller URL 1 of --server \(198\.18\.0\.1\) carries credentials; give the token with --token-file instead$/],
      ['http://198.18.0.1/?x=1', /has a query or fragment/],
      ['http://198.18.0.1:7474,http://198.18.0.1:7474/', /^controller URL http:\/\/198\.18\.0\.1:7474 is given twice$/],
    ];
    for (const [text, message] of cases) assert.throws(() => parseServers(text), { code: 'INVALID_ARGUMENT', message }, text);
  });
});
