/**
 * The console's administration pages in Debian's Chromium against a real
 * sriovd on its demo fleet: networks with the API's refusal at the field,
 * edit and delete through a confirmation; tokens shown once and revoked;
 * the audit log pushed live; a tenant session that sees only its own and is
 * never refused; and axe-core on every page.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { api } from '../helpers/daemon.js';
import { axeViolations, openConsole, screenshot, startConsoleWorld, visit, type ConsoleWorld } from '../support/browser.js';

/** Waits for a page's requests to end: the events page's stream never does, so there its "Live" status. */
async function settled(page: Page, path: string): Promise<void> {
  const h1 = await page.getByRole('heading', { level: 1 }).innerText();
  if (path === '/events' && h1 === 'Events') await page.getByText('Live: new events appear as they happen.').waitFor();
  else await page.waitForLoadState('networkidle');
}

/** Every page's URL, read from src/console/pages.ts (pages added later are visited too); `:name` is the demo host. */
async function pagePaths(host: string): Promise<string[]> {
  const text = await readFile(join(process.cwd(), 'src/console/pages.ts'), 'utf8');
  return [...text.matchAll(/pattern: '([^']+)'/g)].map((m) => m[1]!.replace(/:[a-z]+/g, host));
}

const main = (page: Page) => page.locator('main');

describe('console: administration pages', () => {
  let world: ConsoleWorld;
  let host: string;
  before(async () => {
    world = await startConsoleWorld();
    const hosts = await api<Array<{ name: string }>>(world.daemon.url, world.admin, 'GET', '/v1/hosts');
    host = hosts.body[0]!.name;
  });
  after(async () => world?.close());

  it('creates a network: a bad VLAN is refused at its field with the input kept, then a good one; edits and deletes it', async () => {
    const cp = await openConsole(world, world.admin, '/networks');
    const { page } = cp;
    await page.getByRole('heading', { level: 1, name: 'Networks' }).waitFor();
    await page.getByRole('button', { name: 'New network' }).click();
    await page.getByLabel('Name', { exact: true }).fill('web');
    await page.getByLabel('Physnet').fill('demo-fabric');
    const vlan = page.getByLabel('VLAN', { exact: true });
    await vlan.fill('5000');
    await page.getByRole('button', { name: 'Create network' }).click();
    await page.locator('#network-vlan-error').waitFor();
    assert.equal(await vlan.getAttribute('aria-invalid'), 'true');
    assert.match((await vlan.getAttribute('aria-describedby')) ?? '', /network-vlan-error/);
    assert.match(await page.locator('#network-vlan-error').innerText(), /vlan must be 0-4094, got 5000/);
    assert.equal(await vlan.inputValue(), '5000', 'the input is kept');
    assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), 'web');
    assert.ok(await vlan.evaluate((el) => el === document.activeElement), 'the field at fault has the focus');
    await screenshot(page, 'admin-network-bad-vlan');

    await vlan.fill('1010');
    await page.getByRole('button', { name: 'Create network' }).click();
    await page.getByRole('status').filter({ hasText: 'Network web created on VLAN 1010.' }).waitFor();
    const row = page.getByRole('row', { name: /^web / });
    await row.waitFor();

    await page.getByRole('button', { name: 'Edit network web' }).click();
    await page.getByRole('heading', { name: 'Edit network web' }).waitFor();
    await page.getByLabel('Max rate (Mbps)').fill('500');
    await page.getByRole('button', { name: 'Save network' }).click();
    await page.getByRole('status').filter({ hasText: 'Network web saved.' }).waitFor();
    // The notice comes before the list's reload: wait for the row to show the new rate.
    await page.getByRole('row', { name: /^web .*0\/500/ }).waitFor();
    const saved = await api<{ maxTxRateMbps: number; vlan: number }>(world.daemon.url, world.admin, 'GET', '/v1/networks/web');
    assert.equal(saved.body.maxTxRateMbps, 500);
    assert.equal(saved.body.vlan, 1010);

    // A network in use: the API's refusal is shown in the confirmation, and nothing is deleted.
    await page.getByRole('button', { name: 'Delete network demo-n3' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete network demo-n3?' });
    await dialog.getByRole('button', { name: 'Delete network' }).click();
    assert.match(await dialog.getByRole('alert').innerText(), /CONFLICT: network demo-n3 still has allocations/);
    await screenshot(page, 'admin-network-delete-refused');
    await dialog.getByRole('button', { name: 'Cancel' }).click();

    await page.getByRole('button', { name: 'Delete network web' }).click();
    await page.getByRole('dialog', { name: 'Delete network web?' }).getByRole('button', { name: 'Delete network' }).click();
    await page.getByRole('status').filter({ hasText: 'Network web deleted.' }).waitFor();
    // The notice comes before the list's reload: wait for the row to go.
    await page.getByRole('row', { name: /^web / }).waitFor({ state: 'detached' });
    assert.equal((await api(world.daemon.url, world.admin, 'GET', '/v1/networks/web')).status, 404);
    assert.deepEqual(cp.forbidden, []);
    await cp.close();
  });

  it('creates a token, shows its secret once, and revokes it through a confirmation', async () => {
    const cp = await openConsole(world, world.admin, '/tokens');
    const { page } = cp;
    await page.getByLabel('Role').selectOption('tenant');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = page.getByLabel('Secret');
    await secret.waitFor();
    const token = await secret.inputValue();
    assert.ok(token.length > 20);
    const title = await page.getByRole('heading', { name: /^Token tok-.* \(tenant:demo\) created$/ }).innerText();
    const id = /Token (\S+)/.exec(title)![1]!;
    assert.equal((await api(world.daemon.url, token, 'GET', '/v1/info')).status, 200);
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByRole('status').filter({ hasText: /Copied|Selected/ }).waitFor();
    await screenshot(page, 'admin-token-created');

    await page.getByRole('button', { name: `Revoke token ${id} (tenant:demo)` }).click();
    const dialog = page.getByRole('dialog', { name: `Revoke token ${id}?` });
    assert.match(await dialog.innerText(), /stops working at once/);
    await dialog.getByRole('button', { name: 'Revoke token' }).click();
    await page.getByRole('status').filter({ hasText: `Token ${id} revoked.` }).waitFor();
    assert.equal(await page.getByLabel('Secret').count(), 0, 'the secret is gone with its token');
    assert.equal((await api(world.daemon.url, token, 'GET', '/v1/info')).status, 401);
    assert.deepEqual(cp.forbidden, []);
    await cp.close();
  });

  it('shows a new event on /events live, without a reload, and filters by object and kind', async () => {
    const cp = await openConsole(world, world.admin, '/events');
    const { page } = cp;
    await page.getByText('Live: new events appear as they happen.').waitFor();
    let reloads = 0;
    page.on('framenavigated', () => reloads++);
    await api(world.daemon.url, world.admin, 'POST', '/v1/tenants', { name: 'live-check' });
    const row = main(page).getByRole('row').filter({ hasText: 'tenant/live-check' });
    await row.waitFor();
    assert.match(await row.innerText(), /tenant\.create/);
    assert.equal(reloads, 0);
    await page.getByLabel('Object contains').fill('tenant/live');
    assert.equal(await main(page).getByRole('row').count(), 2, 'the header row and the one event');
    await page.getByLabel('Object contains').fill('');
    await page.getByLabel('Kind').selectOption('token');
    const actions = await main(page).locator('tbody tr td:nth-child(4)').allInnerTexts();
    assert.ok(actions.length > 0 && actions.every((a) => a.startsWith('token.')), actions.join(','));
    await screenshot(page, 'admin-events-live');
    assert.deepEqual(cp.forbidden, []);
    await cp.close();
  });

  it('a tenant session sees nothing of another tenant’s on any page, and is refused nothing', async () => {
    const u = world.daemon.url;
    await api(u, world.admin, 'POST', '/v1/tenants', { name: 'rival' });
    const rival = await api(u, world.admin, 'POST', '/v1/networks', { name: 'rival-net', tenant: 'rival', physnet: 'demo-fabric', vlan: 1050 });
    assert.equal(rival.status, 201, JSON.stringify(rival.body));
    const { body } = await api<{ token: string }>(u, world.admin, 'POST', '/v1/tokens', { role: 'tenant:demo' });
    const cp = await openConsole(world, body.token);
    for (const path of await pagePaths(host)) {
      await visit(cp, world, path);
      await main(cp.page).getByRole('heading', { level: 1 }).waitFor();
      // Let the page's requests settle before reading it.
      await settled(cp.page, path);
      const text = await cp.page.locator('body').innerText();
      assert.doesNotMatch(text, /rival/, `${path} shows another tenant's data`);
    }
    await visit(cp, world, '/networks');
    await cp.page.getByRole('row', { name: /^demo-n3 / }).waitFor();
    await screenshot(cp.page, 'tenant-networks');
    assert.deepEqual(cp.forbidden, []);
    await cp.close();
  });

  it('axe-core finds no serious or critical violation on any page, each with one h1', async () => {
    const cp = await openConsole(world, world.admin);
    const found: string[] = [];
    for (const path of await pagePaths(host)) {
      await visit(cp, world, path);
      await main(cp.page).getByRole('heading', { level: 1 }).waitFor();
      await settled(cp.page, path);
      assert.equal(await cp.page.getByRole('heading', { level: 1 }).count(), 1, `${path}: one h1`);
      for (const v of await axeViolations(cp.page)) found.push(`${path}: ${v.id} (${v.impact}) ${v.help} ×${v.nodes}`);
      await screenshot(cp.page, `admin-page${path === '/' ? '-overview' : path.replace(/\//g, '-')}`);
    }
    // The forms and the confirmation dialog too.
    await visit(cp, world, '/networks');
    await cp.page.getByRole('button', { name: 'New network' }).click();
    await cp.page.getByRole('button', { name: 'Delete network demo-n3' }).click();
    for (const v of await axeViolations(cp.page)) found.push(`/networks (form, dialog): ${v.id} (${v.impact}) ${v.help}`);
    assert.deepEqual(found, []);
    assert.deepEqual(cp.forbidden, []);
    await cp.close();
  });

  it('at 200 % zoom on a 1366×768 screen, the admin pages fit the width and work from the keyboard', async () => {
    const context = await world.browser.newContext({ viewport: { width: 683, height: 384 }, deviceScaleFactor: 2 });
    const page = await context.newPage();
    await page.goto(`${world.daemon.url}/ui/networks`);
    await page.getByLabel('API token').fill(world.admin);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Networks' }).waitFor();
    for (const path of ['/networks', '/tenants', '/physnets', '/events', '/tokens']) {
      await page.goto(`${world.daemon.url}/ui${path}`);
      await main(page).getByRole('heading', { level: 1 }).waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${path} scrolls sideways by ${overflow}px at 200 %`);
      await screenshot(page, `zoom200${path.replace(/\//g, '-')}`);
    }
    // Keyboard only: reach "New network" with Tab, open the form, and its heading takes the focus.
    await page.goto(`${world.daemon.url}/ui/networks`);
    await page.getByRole('button', { name: 'New network' }).waitFor();
    for (let i = 0; i < 40 && !(await page.evaluate(() => document.activeElement?.textContent === 'New network')); i++) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    // The form renders after the key press: wait until its heading has the focus (not the button that bore the same words).
    await page.waitForFunction(() => document.activeElement?.tagName === 'H2' && document.activeElement.textContent === 'New network', null, { timeout: 10_000 });
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'network-name');
    await context.close();
  });
});
