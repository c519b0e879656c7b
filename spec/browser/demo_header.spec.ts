/**
 * The demo's header in Chromium: one row with the title on the left and the signed-in user
 * with the Log out button on the right, on a desktop and on a phone.
 */
import type { Page } from 'playwright-core';
import { createDemoApp, type Demo } from '../../examples/server';
import { launchBrowser, type Browser } from '../support/browser';
import { createTestDb, type TestDb } from '../support/db';

jest.setTimeout(120_000);

let testDb: TestDb;
let demo: Demo;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  testDb = await createTestDb();
  demo = await createDemoApp({ db: testDb.db });
  browser = await launchBrowser();
  page = browser.page;
  await page.goto(`${demo.origin}/login`);
  await page.getByLabel('Username').fill('demo');
  await page.getByLabel('Password').fill('demo');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL((u) => u.pathname === '/');
});

afterAll(async () => {
  await browser?.close();
  await demo?.close();
  await testDb?.destroy();
});

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The header, its title link and its Log out button, laid out at `width` × 800. */
async function headerAt(width: number): Promise<{ header: Box; title: Box; logout: Box; user: Box; overflow: number }> {
  await page.setViewportSize({ width, height: 800 });
  await page.goto(`${demo.origin}/client`);
  const box = async (locator: ReturnType<Page['locator']>): Promise<Box> => {
    const b = await locator.boundingBox();
    if (!b) throw new Error('not rendered');
    return b;
  };
  const header = page.locator('header');
  return {
    header: await box(header),
    title: await box(header.getByRole('link', { name: 'express-oauth-features demo' })),
    logout: await box(header.getByRole('button', { name: 'Log out' })),
    user: await box(header.getByText('Logged in as')),
    // How far the page scrolls sideways (a string: this project's TypeScript has no DOM types).
    overflow: await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth'),
  };
}

const inside = (inner: Box, outer: Box) =>
  inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width && inner.y + inner.height <= outer.y + outer.height;
const right = (b: Box) => b.x + b.width;
const middle = (b: Box) => b.y + b.height / 2;

describe('browser › demo header', () => {
  let desktopButtonHeight = 0;

  it('on a desktop: the title on the left, the user and Log out on the right, all in one row', async () => {
    const { header, title, logout, user, overflow } = await headerAt(1200);
    expect(inside(logout, header)).toBe(true);
    expect(Math.abs(right(header) - right(logout))).toBeLessThanOrEqual(1);
    expect(Math.abs(title.x - header.x)).toBeLessThanOrEqual(1);
    // One row: each item's middle lies within the Log out button's height.
    for (const item of [title, user]) expect(Math.abs(middle(item) - middle(logout))).toBeLessThanOrEqual(logout.height / 2);
    // The user sits just before the button, not somewhere mid-header.
    expect(user.x).toBeGreaterThan(title.x + title.width);
    expect(logout.x - right(user)).toBeLessThanOrEqual(logout.height);
    expect(overflow).toBe(0);
    desktopButtonHeight = logout.height;
  });

  it('on a phone: Log out stays inside the header, right-aligned, on one line, and nothing scrolls sideways', async () => {
    const { header, title, logout, user, overflow } = await headerAt(375);
    expect(inside(logout, header)).toBe(true);
    expect(inside(user, header)).toBe(true);
    expect(Math.abs(right(header) - right(logout))).toBeLessThanOrEqual(1);
    expect(Math.abs(title.x - header.x)).toBeLessThanOrEqual(1);
    expect(logout.height).toBe(desktopButtonHeight); // its label did not wrap
    expect(Math.abs(middle(user) - middle(logout))).toBeLessThanOrEqual(logout.height / 2);
    expect(overflow).toBe(0);
  });
});
