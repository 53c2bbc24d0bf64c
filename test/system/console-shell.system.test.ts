/**
 * The console's shell in Debian's Chromium: sign-in, the nav each role may
 * see, a page's URL reached directly, and no request the role is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api } from '../helpers/daemon.js';
import { axeViolations, openConsole, screenshot, startConsoleWorld, visit, type ConsoleWorld } from '../support/browser.js';

describe('console: shell', () => {
  let world: ConsoleWorld;
  before(async () => {
    world = await startConsoleWorld();
  });
  after(async () => world?.close());

  it('refuses a wrong token at sign-in, with the API\'s reason', async () => {
    const context = await world.browser.newContext();
    const page = await context.newPage();
    await page.goto(`${world.daemon.url}/ui/`);
    await page.getByLabel('API token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    assert.match(await page.getByRole('alert').innerText(), /UNAUTHENTICATED/);
    await context.close();
  });

  it('shows an admin every page, and a tenant only its own, with no 403', async () => {
    const admin = await openConsole(world, world.admin);
    const adminNav = await admin.page.getByRole('navigation', { name: 'Pages' }).getByRole('link').allInnerTexts();
    assert.ok(adminNav.includes('Hosts') && adminNav.includes('Tokens'), adminNav.join(','));
    await screenshot(admin.page, 'shell-admin');
    assert.deepEqual(await axeViolations(admin.page), []);
    await admin.close();

    const { body } = await api<{ token: string }>(world.daemon.url, world.admin, 'POST', '/v1/tokens', { role: 'tenant:demo' });
    const tenant = await openConsole(world, body.token);
    const tenantNav = await tenant.page.getByRole('navigation', { name: 'Pages' }).getByRole('link').allInnerTexts();
    assert.ok(!tenantNav.includes('Hosts') && !tenantNav.includes('Tokens') && !tenantNav.includes('Events'), tenantNav.join(','));
    // A page the role may not open, reached by its URL, is not rendered and asks the API nothing.
    await visit(tenant, world, '/hosts');
    await tenant.page.getByRole('heading', { name: 'Not found' }).waitFor();
    assert.deepEqual(tenant.forbidden, []);
    await tenant.close();
  });
});
