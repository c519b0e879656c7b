/**
 * The demo in a real browser: Debian's Chromium, driven by playwright-core, logs in to the demo
 * server, consents, and lands on the demo client with a token that works; then refreshes and
 * revokes it from the client page.
 */
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoApp, type Demo } from '../../examples/server';
import { createTestDb, type TestDb } from '../support/db';

jest.setTimeout(120_000);

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

let testDb: TestDb;
let demo: Demo;
let profile: string;
let browser: BrowserContext;
let page: Page;

beforeAll(async () => {
  testDb = await createTestDb();
  demo = await createDemoApp({ db: testDb.db, password: 'correct horse' });
  profile = mkdtempSync(join(tmpdir(), 'eof-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = browser.pages()[0] ?? (await browser.newPage());
});

afterAll(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await demo?.close();
  await testDb?.destroy();
});

async function text(selector: string): Promise<string> {
  return (await page.locator(selector).textContent()) ?? '';
}

async function apiMe(accessToken: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${demo.origin}/api/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  return { status: res.status, body: await res.json() };
}

function meAnswer(grantId: unknown, expiresAt: unknown) {
  return {
    accountId: '1',
    clientId: demo.client.clientId,
    applicationId: 1,
    scopes: ['profile', 'email'],
    grantId,
    expiresAt,
    user: { id: '1', username: 'demo', name: 'Demo User', email: 'demo@example.com' },
  };
}

describe('browser › demo flow', () => {
  let accessToken = '';
  let refreshToken = '';

  it('logs in, consents and lands on the demo client with a working token (RFC 6749 §4.1, RFC 7636 S256)', async () => {
    await page.goto(`${demo.origin}/client`);
    await page.getByRole('button', { name: 'Log in with the demo server' }).click();

    // Not logged in: /authorize sends the browser to the host's login page, carrying the request.
    await page.waitForURL((u) => u.pathname === '/login');
    expect(new URL(page.url()).searchParams.get('return_to')).toMatch(/^\/authorize\?response_type=code&client_id=/);
    await page.getByLabel('Username').fill('demo');
    await page.getByLabel('Password').fill('correct horse');
    await page.getByRole('button', { name: 'Log in' }).click();

    // Back at /authorize: the consent page names the client and the scopes.
    await page.waitForURL((u) => u.pathname === '/authorize');
    expect(await page.locator('main').textContent()).toContain('The application Demo client would like to access your data');
    expect(await page.locator('ul.scopes li').allTextContents()).toEqual(['profile', 'email']);
    await page.locator('#approve').click();

    await page.waitForURL((u) => u.pathname === '/client');
    expect(await page.locator('#error').count()).toBe(0);
    expect(await text('#message')).toBe('Logged in: code exchanged for tokens.');
    accessToken = await text('#access-token');
    refreshToken = await text('#refresh-token');
    expect(accessToken).toMatch(TOKEN);
    expect(refreshToken).toMatch(TOKEN);
    expect(await text('#scope')).toBe('profile email');
    expect(await text('#me-status')).toBe('200');
    const shown = JSON.parse(await text('#me-body')) as { grantId: number; expiresAt: string };
    expect(shown).toEqual(meAnswer(expect.any(Number), expect.any(String)));

    // The token works outside the browser too.
    expect(await apiMe(accessToken)).toEqual({ status: 200, body: meAnswer(shown.grantId, shown.expiresAt) });
  });

  it('refreshes from the client page: new access and refresh tokens replace the old ones (RFC 6749 §6, RFC 9700 §4.14.2 rotation)', async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForURL((u) => u.pathname === '/client');
    expect(await text('#message')).toBe('Refreshed: new tokens issued.');
    const newAccess = await text('#access-token');
    const newRefresh = await text('#refresh-token');
    expect(newAccess).toMatch(TOKEN);
    expect(newRefresh).toMatch(TOKEN);
    expect(newAccess).not.toBe(accessToken);
    expect(newRefresh).not.toBe(refreshToken);
    expect(await text('#me-status')).toBe('200');
    expect((await apiMe(newAccess)).status).toBe(200);
    // One grant row holds one access token: the replaced one is no longer accepted.
    expect(await apiMe(accessToken)).toEqual({ status: 401, body: { error: 'invalid_token', error_description: 'Invalid access token' } });
    accessToken = newAccess;
    refreshToken = newRefresh;
  });

  it('revokes from the client page: the grant is revoked and /api/me answers 401 invalid_token (RFC 7009 §2.1, RFC 6750 §3.1)', async () => {
    await page.getByRole('button', { name: 'Revoke' }).click();
    await page.waitForURL((u) => u.pathname === '/client');
    expect(await text('#message')).toBe('Revoked the refresh token.');
    expect(await text('#revoked')).toBe('(revoked)');
    expect(await text('#me-status')).toBe('401');
    expect(JSON.parse(await text('#me-body'))).toEqual({ error: 'invalid_token', error_description: 'Invalid access token' });
    expect(await apiMe(accessToken)).toEqual({ status: 401, body: { error: 'invalid_token', error_description: 'Invalid access token' } });

    // The revoked refresh token no longer refreshes.
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForURL((u) => u.pathname === '/client');
    expect(await text('#error')).toContain('Refresh: token endpoint answered 400');
    expect(await text('#error')).toContain('invalid_grant');
  });
});
