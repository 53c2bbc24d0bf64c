/**
 * What one API call costs the CLIENT's process, in CPU: fetch against the
 * node:http keep-alive client that the scale bench uses (scale-procs.ts
 * `call`), side by side in one run, against a server in another process
 * (so its CPU is not counted) answering like the controller's POST
 * /v1/allocations (a ~1 KB JSON body each way). On the scale bench's 2 cores
 * the clients share the machine with the controllers, the etcd members and the
 * fleet simulator: what the clients spend, those do not get.
 *
 *   node dist/bench/http-client.js [calls] [in-flight]
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { call } from './scale-procs.js';

const SERVER = `
const body = JSON.stringify({ id: 'x'.repeat(36), state: 'pending', mac: '02:5f:00:00:00:01', attachment: { kind: 'container', netns: '/var/run/netns/'.padEnd(200, 'n'), ifname: 'net1' }, pad: 'p'.repeat(700) });
const server = require('node:http').createServer((req, res) => {
  let n = 0;
  req.on('data', (c) => (n += c.length));
  req.on('end', () => { res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }); res.end(body); });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
`;

const REQUEST = { network: 'scale', workload: { kind: 'container', name: 'w1' }, attach: { kind: 'container', netns: '/tmp/ns/w1', ifname: 'net1' } };

async function viaFetch(base: string): Promise<number> {
  const res = await fetch(`${base}/v1/allocations`, {
    method: 'POST',
    headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
    body: JSON.stringify(REQUEST),
    signal: AbortSignal.timeout(300_000),
  });
  JSON.parse(await res.text());
  return res.status;
}

async function viaHttp(base: string): Promise<number> {
  return (await call(base, 't', 'POST', '/v1/allocations', REQUEST)).status;
}

async function run(label: string, fn: (base: string) => Promise<number>, base: string, calls: number, inFlight: number): Promise<number> {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < calls) if ((await fn(base)) !== 201) throw new Error(`${label}: not 201`);
    }),
  );
  const { user, system } = process.cpuUsage(cpu0);
  const perCall = (user + system) / 1000 / calls;
  console.log(`  ${label.padEnd(22)} ${perCall.toFixed(3)} ms CPU per call in the client, ${Math.round((calls / (performance.now() - t0)) * 1000)} calls/s`);
  return perCall;
}

async function main(): Promise<void> {
  const calls = Number(process.argv[2] ?? 20_000);
  const inFlight = Number(process.argv[3] ?? 32);
  const server = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<string>((resolve) => server.stdout!.once('data', (d: Buffer) => resolve(/port (\d+)/.exec(String(d))![1]!)));
    const base = `http://127.0.0.1:${port}`;
    console.log(`http client: ${calls} POSTs per run, ${inFlight} in flight, against a server in another process`);
    // Warm both, then alternate so that a change in the machine's load falls on both.
    await run('fetch (warm-up)', viaFetch, base, calls / 10, inFlight);
    await run('node:http (warm-up)', viaHttp, base, calls / 10, inFlight);
    const f = [await run('fetch', viaFetch, base, calls, inFlight)];
    const h = [await run('node:http keep-alive', viaHttp, base, calls, inFlight)];
    f.push(await run('fetch', viaFetch, base, calls, inFlight));
    h.push(await run('node:http keep-alive', viaHttp, base, calls, inFlight));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(`node:http against fetch: ${(mean(h) / mean(f)).toFixed(2)}x the client CPU per call`);
  } finally {
    server.kill();
  }
}

await main();
