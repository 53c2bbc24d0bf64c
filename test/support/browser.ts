/**
 * The console in a real browser: Debian's Chromium driven by playwright-core
 * (Playwright's own browser download cannot run here), against a real
 * `sriovd` with its labelled simulated demo fleet, as `npm start` runs it.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page, type Response } from 'playwright-core';
import { startDaemon, type Daemon } from '../helpers/daemon.js';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots for CI's artifacts. */
export const SHOTS = join(process.cwd(), 'test-artifacts', 'console');

export interface ConsoleWorld {
  daemon: Daemon;
  /** The admin token `sriovd` wrote at first run. */
  admin: string;
  dataDir: string;
  browser: Browser;
  close(): Promise<void>;
}

/** A daemon on the demo fleet and a headless Chromium; `extra` are more `sriovd` flags. */
export async function startConsoleWorld(extra: string[] = []): Promise<ConsoleWorld> {
  const dataDir = await mkdtemp(join(tmpdir(), 'vfleet-console-'));
  const daemon = await startDaemon(['--data-dir', dataDir, '--listen', '127.0.0.1:0', ...extra]);
  const admin = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  // The flags keep Chromium off the network it cannot reach here (see the machine notes).
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    daemon,
    admin,
    dataDir,
    browser,
    async close() {
      await browser.close().catch(() => undefined);
      await daemon.kill();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ConsolePage {
  page: Page;
  /** Every API response with status 403 this page saw: the console must never ask for what its role may not read. */
  forbidden: string[];
  close(): Promise<void>;
}

/** A new browser context, signed in with `token`, at `path` under /ui. */
export async function openConsole(world: ConsoleWorld, token: string, path = '/', viewport = { width: 1366, height: 768 }): Promise<ConsolePage> {
  const context = await world.browser.newContext({ viewport });
  const page = await context.newPage();
  const forbidden: string[] = [];
  page.on('response', (r: Response) => {
    if (r.status() === 403) forbidden.push(`${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  await page.goto(`${world.daemon.url}/ui${path}`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Pages' }).waitFor();
  return { page, forbidden, close: () => context.close() };
}

/** Navigates inside the console (a full load, as a pasted URL would be), keeping the session. */
export async function visit(cp: ConsolePage, world: ConsoleWorld, path: string): Promise<void> {
  await cp.page.goto(`${world.daemon.url}/ui${path}`);
  await cp.page.getByRole('navigation', { name: 'Pages' }).waitFor();
}

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFile(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string;
  help: string;
  nodes: number;
}

/** axe-core's serious and critical violations on the page as it is now. */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  // Evaluated through the DevTools protocol: the console's CSP rightly refuses an inline <script>.
  await page.evaluate(await AXE_SOURCE);
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(): Promise<{ violations: Array<{ id: string; impact: string; help: string; nodes: unknown[] }> }> } }).axe;
    const result = await axe.run();
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }));
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}
