/**
 * The consent page in a real browser (Chromium through playwright-core): on a phone, approved
 * with the keyboard alone, readable (WCAG AA contrast, labelled controls), and unmoved by a
 * hostile registration. The test login is the `X-Test-User` header, sent by the browser context.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Express, Request, Response } from 'express';
import type { Page } from 'playwright-core';
import { launchBrowser, type Browser } from '../support/browser';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { query, testLogin } from '../authorization_code_grant/flow';

jest.setTimeout(120_000);

const HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
/** One long word: 240 characters, within the 255 of the name column. */
const LONG = 'Supercalifragilistic'.repeat(12);

let t: TestApp;
let server: Server;
let origin: string;
let browser: Browser;
let page: Page;

/** The client's redirect URI: shows what it received. */
function callback(app: Express): void {
  testLogin(app);
  app.get('/cb', (req: Request, res: Response) => {
    res.type('text').send(`code=${String(req.query.code ?? '')} error=${String(req.query.error ?? '')}`);
  });
}

beforeAll(async () => {
  t = await buildApp({ enable: ['authorization_code_grant', 'refresh'], oauthScopeDescriptions: { 'books.read': 'Read your books', 'books.write': HOSTILE }, logoutRoute: '/logout', oauthRememberConsent: false }, { setup: callback });
  server = t.app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
  page = browser.page;
  await browser.context.setExtraHTTPHeaders({ 'X-Test-User': 'alice' });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await closeAll();
});

async function openConsent(client: Record<string, unknown> = {}, scope = 'books.read books.write'): Promise<string> {
  const { clientId } = await t.createClient({ redirectUri: ['http://127.0.0.1/cb'], name: 'Books', homepageUrl: 'https://books.example/', ...client });
  const redirectUri = `${origin}/cb`;
  await page.goto(`${origin}${t.path('/authorize')}?${query({ client_id: clientId, redirect_uri: redirectUri, response_type: 'code', scope, state: 'st' })}`);
  expect(await page.locator('#approve').count()).toBe(1);
  return clientId;
}

/** Whether the page scrolls sideways (the layout broke out of the viewport). */
function overflowsSideways(p: Page): Promise<boolean> {
  return p.evaluate<boolean>('document.documentElement.scrollWidth > window.innerWidth + 1');
}

/** WCAG 2.x contrast ratio of an element's text colour on the first opaque background up its ancestors. */
function contrastOf(p: Page, selector: string): Promise<number> {
  return p.evaluate<number>(`(${CONTRAST})(${JSON.stringify(selector)})`);
}

/** Runs in the page (source text: the specs compile without the DOM library). */
const CONTRAST = `function (sel) {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = (rgb) => {
    const [r, g, b] = rgb.slice(0, 3).map((v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const el = document.querySelector(sel);
  const fg = parse(getComputedStyle(el).color);
  let bgEl = el;
  let bg = [255, 255, 255];
  while (bgEl) {
    const c = parse(getComputedStyle(bgEl).backgroundColor);
    if (c.length >= 3 && (c.length === 3 || c[3] > 0)) { bg = c; break; }
    bgEl = bgEl.parentElement;
  }
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  return (hi + 0.05) / (lo + 0.05);
}`;

/** The id of the focused element, else its class or tag. */
const FOCUSED = "document.activeElement ? document.activeElement.id || document.activeElement.className || document.activeElement.tagName : ''";

describe('browser › consent page', () => {
  it('fits a phone: no sideways scrolling, buttons large enough to tap, one above the other or side by side', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    await openConsent();
    expect(await overflowsSideways(page)).toBe(false);
    for (const id of ['#approve', '#deny']) {
      const box = (await page.locator(id).boundingBox())!;
      expect(box.height).toBeGreaterThanOrEqual(44);
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(360);
    }
    expect(await page.locator('.redirect-host').textContent()).toBe('127.0.0.1:' + new URL(origin).port);
  });

  it('is approved with the keyboard alone: Tab reaches Allow before Deny, Enter submits', async () => {
    await page.setViewportSize({ width: 1024, height: 768 });
    await openConsent();
    const order: string[] = [];
    for (let i = 0; i < 20 && !order.includes('approve'); i++) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate<string>(FOCUSED));
    }
    expect(order).toContain('approve');
    // Focus is visible where it lands.
    expect(await page.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle')).not.toBe('none');
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string>(FOCUSED)).toBe('deny');
    await page.keyboard.press('Shift+Tab');
    await Promise.all([page.waitForURL((u) => u.pathname === '/cb'), page.keyboard.press('Enter')]);
    expect(await page.locator('body').textContent()).toMatch(/^code=[A-Za-z0-9_-]{43} error=$/);
  });

  it('is readable: AA contrast for text and both buttons, labelled controls, a language, a heading', async () => {
    await openConsent({ logoUri: 'https://books.example/logo.png' });
    for (const sel of ['.lead', '.signed-in-as', '.scope-description', 'code.scope', '.redirect-host', '#approve', '#deny', '.not-you']) {
      // The selector in the comparison names the element that fails.
      expect([sel, (await contrastOf(page, sel)) >= 4.5]).toEqual([sel, true]);
    }
    expect(await page.getByRole('button', { name: 'Allow' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Deny' }).count()).toBe(1);
    expect(await page.getByRole('group', { name: 'Your decision' }).count()).toBe(1);
    expect(await page.getByRole('heading', { level: 1 }).count()).toBe(1);
    expect(await page.getByRole('img', { name: 'Logo of Books' }).count()).toBe(1);
    expect(await page.getByRole('link', { name: 'Not you?' }).getAttribute('href')).toMatch(/^\/logout\?return_to=/);
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
  });

  it('a hostile registration stays text: nothing runs, nothing links to javascript:, long words wrap on a phone', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    await openConsent({ name: `${HOSTILE}${LONG.slice(0, 160)}`, description: `${HOSTILE}${LONG.repeat(5)}`, homepageUrl: 'javascript:window.__xss=3', logoUri: 'javascript:window.__xss=4' });
    expect(await page.evaluate<unknown>('window.__xss')).toBeUndefined();
    expect(await page.locator('main script, main img').count()).toBe(0);
    expect(await page.locator('a[href^="javascript"]').count()).toBe(0);
    expect(await page.locator('.description').textContent()).toBe(`${HOSTILE}${LONG.repeat(5)}`);
    expect(await page.locator('.lead').textContent()).toBe(`The application ${HOSTILE}${LONG.slice(0, 160)} would like to access your data`);
    expect(await page.locator('.scope-description').nth(1).textContent()).toBe(HOSTILE);
    expect(await overflowsSideways(page)).toBe(false);
    // The buttons are still on screen and work.
    const box = (await page.locator('#approve').boundingBox())!;
    expect(box.x + box.width).toBeLessThanOrEqual(360);
    await Promise.all([page.waitForURL((u) => u.pathname === '/cb'), page.locator('#deny').click()]);
    expect(await page.locator('body').textContent()).toBe('code= error=access_denied');
  });

  it('the error page fits a phone and links home', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    await page.goto(`${origin}${t.path('/authorize')}?client_id=${LONG}`);
    expect(await page.locator('.problem').textContent()).toBe('The application that sent you here is not known to this site.');
    expect(await page.getByRole('link', { name: 'Go back to the home page' }).getAttribute('href')).toBe('/');
    expect(await overflowsSideways(page)).toBe(false);
    expect(await contrastOf(page, '.action')).toBeGreaterThanOrEqual(4.5);
  });
});
