/**
 * The console's overview at fleet scale, in Debian's Chromium against a
 * SQLite controller on loopback: from navigation to the fleet's counts on
 * screen, at 1,000 hosts (4 PFs × 64 VFs each, 2,000 allocations) and, as
 * the baseline in the same process, at 1 host. Also the API answers behind
 * it: `GET /v1/overview` against reading every page of `GET /v1/hosts`
 * (what an overview summed in the browser would need).
 *
 *   npm run build && node dist/bench/console-overview.js [hosts]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { buildServer } from '../src/api/server.js';
import { ControlPlane } from '../src/controller/control-plane.js';
import type { Actor } from '../src/domain/actor.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { PHYSNETS, makeFleet, makeNetworks } from './allocate.js';
import { median } from './stats.js';

const ADMIN: Actor = { id: 'bench', role: 'admin' };
const RUNS = 5;

interface Result {
  hosts: number;
  renderMs: number;
  overviewMs: number;
  overviewBytes: number;
  allPagesMs: number;
  allPagesBytes: number;
}

async function timed(fn: () => Promise<number>): Promise<{ ms: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    bytes = await fn();
    times.push(performance.now() - t0);
  }
  return { ms: median(times), bytes };
}

async function fleetOf(browser: Browser, hosts: number, allocations: number): Promise<Result> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bench-overview-'));
  const store = await openSqliteStore(dir);
  try {
    const networks = makeNetworks([0, 100]);
    await store.transaction(async (tx) => {
      for (const p of PHYSNETS) await tx.putPhysnet(p);
      for (const t of new Set(networks.map((n) => n.tenant))) await tx.putTenant({ id: `id-${t}`, name: t, createdAt: new Date().toISOString() });
      for (const n of networks) await tx.putNetwork(n);
      for (const h of makeFleet(hosts)) await tx.putHost(h);
    });
    const control = await ControlPlane.open(store);
    for (let i = 0; i < allocations; i++) {
      await control.allocations.create(ADMIN, { network: i % 2 ? 'acme-g0' : 'globex-g100', workload: { kind: 'vm', name: `vm-${i}` } });
    }
    const token = (await readFile(await control.tokens.bootstrapAdmin(dir), 'utf8')).trim();
    const app = await buildServer({ control, controllerHost: 'bench', version: 'bench' });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const get = async (path: string) => {
      const res = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
      if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
      return { text: await res.text(), next: res.headers.get('link')?.match(/<([^>]+)>/)?.[1] ?? null };
    };
    try {
      const overview = await timed(async () => (await get('/v1/overview')).text.length);
      const allPages = await timed(async () => {
        let bytes = 0;
        for (let next: string | null = '/v1/hosts?limit=1000'; next; ) {
          const page: { text: string; next: string | null } = await get(next);
          bytes += page.text.length;
          next = page.next;
        }
        return bytes;
      });
      const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
      const page = await context.newPage();
      await page.goto(`${base}/ui/`);
      await page.evaluate((t) => sessionStorage.setItem('vfleet.token', t), token);
      const render = await timed(async () => {
        await page.goto(`${base}/ui/`);
        await page.getByText(`of ${hosts}`, { exact: true }).first().waitFor();
        return 0;
      });
      await context.close();
      return { hosts, renderMs: render.ms, overviewMs: overview.ms, overviewBytes: overview.bytes, allPagesMs: allPages.ms, allPagesBytes: allPages.bytes };
    } finally {
      await app.close();
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;

export async function benchConsoleOverview(hosts = 1000): Promise<void> {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const base = await fleetOf(browser, 1, 2);
    const big = await fleetOf(browser, hosts, 2 * hosts);
    console.log(`console overview: SQLite controller on loopback, Chromium at 1366x768, median of ${RUNS}`);
    for (const r of [base, big]) {
      console.log(
        `  ${r.hosts} hosts: overview on screen ${r.renderMs.toFixed(0)} ms; GET /v1/overview ${r.overviewMs.toFixed(1)} ms, ${kb(r.overviewBytes)}; ` +
          `every page of GET /v1/hosts ${r.allPagesMs.toFixed(1)} ms, ${kb(r.allPagesBytes)}`,
      );
    }
    console.log(`  ratio ${hosts} hosts / 1 host: on screen ${(big.renderMs / base.renderMs).toFixed(2)}x, GET /v1/overview ${(big.overviewMs / base.overviewMs).toFixed(2)}x`);
    console.log(`  at ${hosts} hosts, GET /v1/overview against every summary page: ${(big.overviewMs / big.allPagesMs).toFixed(3)}x the time, ${(big.overviewBytes / big.allPagesBytes).toFixed(4)}x the bytes`);
  } finally {
    await browser.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await benchConsoleOverview(Number(process.argv[2] ?? 1000));
