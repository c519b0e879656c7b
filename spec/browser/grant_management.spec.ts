/**
 * The grants page of `grant_management` in Chromium: what a signed-in user sees, a revoke done
 * with the keyboard only, and the page on a phone, hostile application names included.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { insertGrant } from '../support/token_fixtures';
import { testLogin } from '../authorization_code_grant/flow';
import { launchBrowser, type Browser } from '../support/browser';

jest.setTimeout(120_000);

// A 1×1 PNG, served by the app so the logo is a real http(s) image.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const HOSTILE = `<img src=x onerror=alert(1)>${'W'.repeat(180)}`;

let t: TestApp;
let server: Server;
let origin = '';
let browser: Browser;
let page: Page;
const tokens: Record<string, string> = {};
const dialogs: string[] = [];

beforeAll(async () => {
  t = await buildApp(
    { enable: ['grant_management'], oauthScopeDescriptions: { 'books.read': 'Read your books', 'books.write': 'Add and change your books' } },
    { setup: (app) => { testLogin(app); app.get('/logo.png', (_req, res) => void res.type('png').send(PNG)); } },
  );
  server = t.app.listen(0, '127.0.0.1');
  await new Promise((done) => server.once('listening', done));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const books = await t.createClient({ name: 'Books app', logoUri: `${origin}/logo.png`, homepageUrl: 'https://books.example/' });
  const photos = await t.createClient({ name: 'Photos app', description: 'Prints your photos' });
  const hostile = await t.createClient({ name: HOSTILE, description: `${'Very long description. '.repeat(60)}<script>alert(2)</script>`, logoUri: 'javascript:alert(3)' });
  tokens.books = (await insertGrant(t, { applicationId: books.id, accountId: 'alice', scopes: ['books.read', 'books.write'] })).accessToken!;
  tokens.photos = (await insertGrant(t, { applicationId: photos.id, accountId: 'alice', scopes: ['books.read'] })).accessToken!;
  await insertGrant(t, { applicationId: hostile.id, accountId: 'alice', scopes: ['books.read'] });
  await insertGrant(t, { applicationId: photos.id, accountId: 'bob' });

  browser = await launchBrowser();
  page = browser.page;
  // Chromium as Alice: the spec app's stand-in for a session.
  await browser.context.setExtraHTTPHeaders({ 'X-Test-User': 'alice' });
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((done) => (server ? server.close(done) : done(undefined)));
  await closeAll();
});

async function apiMe(accessToken: string): Promise<number> {
  return (await fetch(`${origin}/api/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status;
}

/** How far the page scrolls sideways (0: it fits the viewport). */
function sidewaysOverflow(): Promise<number> {
  // A string: this project's TypeScript has no DOM types.
  return page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
}

describe('browser › grant_management', () => {
  it('shows the signed-in account, each authorized application with its logo, scopes and dates, and nothing runs from a hostile name', async () => {
    await page.setViewportSize({ width: 1200, height: 900 });
    await page.goto(`${origin}${t.path('/oauth-grants')}`);
    await expect(page.title()).resolves.toBe('Your authorized applications');
    expect(await page.locator('h1').textContent()).toBe('Your authorized applications');
    expect(await page.locator('.account').textContent()).toBe('Signed in as alice');
    expect(await page.locator('li.application h2').allTextContents()).toEqual([HOSTILE, 'Books app', 'Photos app']);
    const books = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'Books app' }) });
    expect(await books.locator('ul.scopes li').allTextContents()).toEqual(['Read your books (books.read)', 'Add and change your books (books.write)']);
    expect(await books.locator('dl.dates dt').allTextContents()).toEqual(['Authorized', 'Last used']);
    // The logo loaded (a real image, not a broken one); the javascript: logo is not there at all.
    expect(await books.locator('img.logo').count()).toBe(1);
    expect(await page.evaluate<number>("document.querySelector('img.logo').complete && document.querySelector('img.logo').naturalWidth")).toBe(1);
    expect(await page.locator('img.logo').count()).toBe(1);
    // Every application has its own labelled Revoke button.
    for (const name of ['Books app', HOSTILE, 'Photos app']) expect(await page.getByRole('button', { name: `Revoke access for ${name}` }).count()).toBe(1);
    expect(await page.locator('script').count()).toBe(0);
    expect(dialogs).toEqual([]);
    expect(await sidewaysOverflow()).toBe(0);
  });

  it('revokes with the keyboard alone: Tab to the button, Enter; the page says so and the token stops working', async () => {
    await page.goto(`${origin}${t.path('/oauth-grants')}`);
    expect(await apiMe(tokens.books!)).toBe(200);
    let reached = false;
    for (let i = 0; i < 20 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await page.evaluate<string | null>("document.activeElement.getAttribute('aria-label')")) === 'Revoke access for Books app';
    }
    expect(reached).toBe(true);
    // The focused button shows a visible focus ring.
    expect(await page.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle')).toBe('solid');
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.searchParams.has('revoked'));
    expect(await page.getByRole('status').textContent()).toBe('You revoked the access of Books app. It can no longer use your account unless you authorize it again.');
    expect(await page.locator('li.application h2').allTextContents()).toEqual([HOSTILE, 'Photos app']);
    expect(await apiMe(tokens.books!)).toBe(401);
    expect(await apiMe(tokens.photos!)).toBe(200);
    // Reloading the result page posts nothing again (303 → GET).
    await page.reload();
    expect(await page.locator('li.application').count()).toBe(2);
    expect(await apiMe(tokens.photos!)).toBe(200);
  });

  it('on a phone: nothing scrolls sideways, long names wrap, and the Revoke buttons are full-width touch targets', async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    await page.goto(`${origin}${t.path('/oauth-grants')}`);
    expect(await sidewaysOverflow()).toBe(0);
    const name = await page.getByRole('heading', { name: HOSTILE }).boundingBox();
    expect(name!.x).toBeGreaterThanOrEqual(0);
    expect(name!.x + name!.width).toBeLessThanOrEqual(375);
    expect(name!.height).toBeGreaterThan(30); // wrapped onto several lines
    for (const button of await page.getByRole('button', { name: /^Revoke access for / }).all()) {
      const box = (await button.boundingBox())!;
      const card = (await button.locator('xpath=ancestor::li[1]').boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(375);
      expect(box.height).toBeGreaterThanOrEqual(44);
      // Full width of its card's content box (card border and padding: about 34 px).
      expect(box.width).toBeGreaterThan(card.width - 40);
    }
    expect(dialogs).toEqual([]);
  });
});
