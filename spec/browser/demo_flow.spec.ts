/**
 * The demo in a real browser: Debian's Chromium, driven by playwright-core, logs in to the demo
 * server, consents, and lands on the demo client with a token that works; then refreshes and
 * revokes it from the client page and logs in again; logs in once more without seeing the
 * consent page (remembered consent), revokes the demo client on the grants page, which the
 * client then feels (its API call answers 401), and denies the consent asked again.
 */
import type { Page } from 'playwright-core';
import { createDemoApp, type Demo } from '../../examples/server';
import { launchBrowser, type Browser } from '../support/browser';
import { createTestDb, type TestDb } from '../support/db';

jest.setTimeout(120_000);

const TOKEN = /^[A-Za-z0-9_-]{43}$/;

let testDb: TestDb;
let demo: Demo;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  testDb = await createTestDb();
  demo = await createDemoApp({ db: testDb.db, password: 'correct horse' });
  browser = await launchBrowser();
  page = browser.page;
});

afterAll(async () => {
  await browser?.close();
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

/** A refresh_token grant as the demo client, outside the browser. */
async function refresh(refreshToken: string): Promise<{ status: number; body: unknown }> {
  const basic = Buffer.from(`${demo.client.clientId}:${demo.client.clientSecret}`).toString('base64');
  const res = await fetch(`${demo.origin}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
  });
  return { status: res.status, body: await res.json() };
}

function meAnswer(grantId: unknown, expiresAt: unknown) {
  return {
    accountId: '1',
    clientId: demo.client.clientId,
    applicationId: 1,
    scopes: ['openid', 'profile', 'email'],
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

    // Back at /authorize: the consent page names the client and describes the scopes (oauthScopeDescriptions).
    await page.waitForURL((u) => u.pathname === '/authorize');
    expect(await page.locator('main').textContent()).toContain('The application Demo client would like to access your data');
    expect(await page.locator('ul.scopes li .scope-description').allTextContents()).toEqual(['Sign you in with your demo account', 'See your name and username', 'See your email address']);
    expect(await page.locator('ul.scopes li .scope').allTextContents()).toEqual(['openid', 'profile', 'email']);
    await page.locator('#approve').click();

    await page.waitForURL((u) => u.pathname === '/client');
    expect(await page.locator('#error').count()).toBe(0);
    expect(await text('#message')).toBe('Logged in: code exchanged for tokens.');
    accessToken = await text('#access-token');
    refreshToken = await text('#refresh-token');
    expect(accessToken).toMatch(TOKEN);
    expect(refreshToken).toMatch(TOKEN);
    expect(await text('#scope')).toBe('openid profile email');
    // OpenID Connect: the client verified the ID token and shows its claims, and the userinfo answer.
    expect(JSON.parse(await text('#id-token-claims'))).toMatchObject({ iss: demo.origin, sub: '1', aud: demo.client.clientId, nonce: expect.any(String), at_hash: expect.any(String) });
    expect(await text('#userinfo-status')).toBe('200');
    expect(JSON.parse(await text('#userinfo-body'))).toEqual({ sub: '1', name: 'Demo User', preferred_username: 'demo', email: 'demo@example.com', email_verified: true });
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

  it('revokes from the client page: the grant is revoked, /api/me answers 401 invalid_token, and the page no longer shows the tokens (RFC 7009 §2.1, §2.2)', async () => {
    await page.getByRole('button', { name: 'Revoke' }).click();
    await page.waitForURL((u) => u.pathname === '/client');
    expect(await text('#message')).toBe('Revoked the refresh token. The client discarded its tokens.');
    expect(await text('#revoked')).toBe('None: the client revoked its refresh token and discarded its tokens.');
    expect(await page.locator('#access-token, #refresh-token').count()).toBe(0);
    const html = await page.content();
    expect(html).not.toContain(accessToken);
    expect(html).not.toContain(refreshToken);
    // Only the way in is left: nothing to refresh, introspect or revoke.
    expect(await page.locator('.actions button').allTextContents()).toEqual(['Log in with the demo server']);

    // The last call, made with the revoked access token, is labelled as such.
    expect(await text('h2:has(#me-status)')).toBe('GET /api/me with the revoked access token → 401');
    expect(JSON.parse(await text('#me-body'))).toEqual({ error: 'invalid_token', error_description: 'Invalid access token' });
    expect(await apiMe(accessToken)).toEqual({ status: 401, body: { error: 'invalid_token', error_description: 'Invalid access token' } });

    // The revoked refresh token no longer refreshes.
    expect(await refresh(refreshToken)).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: expect.any(String) } });
  });

  it('logs in again (already signed in at the server: straight to consent) and shows the new tokens as live', async () => {
    await page.getByRole('button', { name: 'Log in with the demo server' }).click();
    await page.waitForURL((u) => u.pathname === '/authorize');
    await page.locator('#approve').click();
    await page.waitForURL((u) => u.pathname === '/client');
    expect(await text('#message')).toBe('Logged in: code exchanged for tokens.');
    expect(await page.locator('#revoked').count()).toBe(0);
    accessToken = await text('#access-token');
    refreshToken = await text('#refresh-token');
    expect(accessToken).toMatch(TOKEN);
    expect(await text('h2:has(#me-status)')).toBe('GET /api/me → 200');
  });

  it('logs in once more without the consent page: the consent is remembered (same client, same scopes, grant not revoked)', async () => {
    const shown: string[] = [];
    const record = (frame: { url(): string; parentFrame(): unknown }) => void (frame.parentFrame() === null && shown.push(new URL(frame.url()).pathname));
    page.on('framenavigated', record);
    try {
      await page.getByRole('button', { name: 'Log in with the demo server' }).click();
      await page.waitForURL((u) => u.pathname === '/client');
    } finally {
      page.off('framenavigated', record);
    }
    // /authorize answered with a redirect straight back to the client: no page was shown there.
    expect(shown).not.toContain('/authorize');
    expect(await text('#message')).toBe('Logged in: code exchanged for tokens.');
    expect(await text('#me-status')).toBe('200');
    accessToken = await text('#access-token');
    refreshToken = await text('#refresh-token');
  });

  it('revokes the demo client on the grants page (linked from the client page): it is listed with its scopes, then gone', async () => {
    await page.getByRole('link', { name: 'your authorized applications' }).click();
    await page.waitForURL((u) => u.pathname === '/oauth-grants');
    expect(await page.locator('li.application h2').allTextContents()).toEqual(['Demo client']);
    expect(await page.locator('li.application ul.scopes li').allTextContents()).toEqual([
      'Sign you in with your demo account (openid)',
      'See your name and username (profile)',
      'See your email address (email)',
    ]);
    expect(await page.locator('li.application time.last-used-at').count()).toBe(1);
    await page.getByRole('button', { name: 'Revoke access for Demo client' }).click();
    await page.waitForURL((u) => u.pathname === '/oauth-grants' && u.searchParams.has('revoked'));
    expect(await text('#notice')).toBe('You revoked the access of Demo client. It can no longer use your account unless you authorize it again.');
    expect(await text('#empty')).toBe('You have not authorized any application.');
  });

  it('the demo client feels the revoke: its API call answers 401 and its refresh token is refused', async () => {
    await page.goto(`${demo.origin}/client`);
    // The client still holds its tokens: nothing told it.
    expect(await text('#access-token')).toBe(accessToken);
    await page.getByRole('button', { name: 'Call /api/me' }).click();
    await page.waitForURL((u) => u.pathname === '/client');
    expect(await text('#me-status')).toBe('401');
    expect(JSON.parse(await text('#me-body'))).toEqual({ error: 'invalid_token', error_description: 'Invalid access token' });
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForURL((u) => u.pathname === '/client');
    expect(await text('#error')).toContain('invalid_grant');
    expect(await refresh(refreshToken)).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: expect.any(String) } });
  });

  it('denies the consent asked again after the revoke: the callback shows access_denied and none of the earlier tokens (RFC 6749 §4.1.2.1)', async () => {
    await page.getByRole('button', { name: 'Log in with the demo server' }).click();
    await page.waitForURL((u) => u.pathname === '/authorize');
    await page.locator('#deny').click();
    await page.waitForURL((u) => u.pathname === '/client');
    expect(await text('#error')).toBe('Callback: access_denied (The resource owner or authorization server denied the request)');
    expect(await page.locator('#message').count()).toBe(0);
    expect(await page.locator('#access-token, #refresh-token, #me-status, #introspection-status').count()).toBe(0);
    const html = await page.content();
    expect(html).not.toContain(accessToken);
    expect(html).not.toContain(refreshToken);
    expect(await text('#no-tokens')).toBe('No tokens.');
  });
});
