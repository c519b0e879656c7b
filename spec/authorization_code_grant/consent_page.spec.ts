import type { Request } from 'express';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { ISSUER, query, testLogin, unescapeHtml } from './flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';

async function setup(options: Record<string, unknown> = {}, client: Record<string, unknown> = {}, enable = ['authorization_code_grant']): Promise<{ t: TestApp; clientId: string }> {
  const t = await buildApp({ enable, issuer: ISSUER, ...options }, { setup: testLogin });
  const { clientId } = await t.createClient({ redirectUri: [REDIRECT], ...client });
  return { t, clientId };
}

function page(t: TestApp, params: Record<string, string | undefined>, user = 'alice') {
  return t.agent.get(`${t.path('/authorize')}?${query({ redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', ...params })}`).set('X-Test-User', user);
}

/** The unescaped text of the first element with this class (no nested markup). */
function text(html: string, cls: string): string | undefined {
  const m = new RegExp(`class="${cls}"[^>]*>([^<]*)<`).exec(html);
  return m ? unescapeHtml(m[1]!) : undefined;
}

/** buildApp `setup`: `X-Test-Username` adds a username to the test user, as a Passport user record would have. */
function usernames(app: import('express').Express): void {
  testLogin(app);
  app.use((req: Request, _res, next) => {
    const u = (req as Request & { user?: Record<string, unknown> }).user;
    if (u && req.get('x-test-username')) u.username = req.get('x-test-username');
    next();
  });
}

describe('authorization_code_grant › consent page: who, where, what', () => {
  it('shows the signed-in account: username, else name, else the id; accountDisplayName overrides it', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER }, { setup: usernames });
    const { clientId } = await t.createClient({ redirectUri: [REDIRECT] });
    const withName = await page(t, { client_id: clientId }).set('X-Test-Username', 'alice.liddell');
    expect(text(withName.text, 'signed-in-as')).toBe('Signed in as alice.liddell');
    const bare = await page(t, { client_id: clientId });
    expect(text(bare.text, 'signed-in-as')).toBe('Signed in as alice');

    const o = await setup({ accountDisplayName: async (_ctx: unknown, id: string) => `Account #${id} <b>` });
    const res = await page(o.t, { client_id: o.clientId });
    expect(text(res.text, 'signed-in-as')).toBe('Signed in as Account #alice <b>');
    expect(res.text).not.toContain('<b>');
  });

  it('offers "Not you?" only with a logoutRoute, linking back to this request', async () => {
    const without = await setup();
    expect((await page(without.t, { client_id: without.clientId })).text).not.toContain('class="not-you"');
    const { t, clientId } = await setup({ logoutRoute: '/logout' });
    const res = await page(t, { client_id: clientId, state: 's 1' });
    const href = unescapeHtml(/<a class="not-you" href="([^"]*)">Not you\?<\/a>/.exec(res.text)![1]!);
    const url = new URL(href, 'http://x');
    expect(url.pathname).toBe('/logout');
    const back = new URL(url.searchParams.get('return_to')!, 'http://x');
    expect(back.pathname).toBe(t.path('/authorize'));
    expect(back.searchParams.get('client_id')).toBe(clientId);
    expect(back.searchParams.get('state')).toBe('s 1');
  });

  it('names the host the user will be sent to, whatever the application calls itself', async () => {
    const { t, clientId } = await setup({}, { name: 'Google Drive (client.example)', redirectUri: ['https://evil.example:8443/cb', 'http://127.0.0.1/cb', 'com.example.app:/cb'] });
    const res = await page(t, { client_id: clientId, redirect_uri: 'https://evil.example:8443/cb' });
    expect(res.status).toBe(200);
    expect(text(res.text, 'redirect-host')).toBe('evil.example:8443');
    expect(text(res.text, 'redirect')).toBe('After your choice you will be sent to ');
    expect(text((await page(t, { client_id: clientId, redirect_uri: 'http://127.0.0.1:53100/cb' })).text, 'redirect-host')).toBe('127.0.0.1:53100');
    // A private-use URI scheme (RFC 8252 §7.1) has no host: the scheme is what the user can check.
    expect(text((await page(t, { client_id: clientId, redirect_uri: 'com.example.app:/cb' })).text, 'redirect-host')).toBe('com.example.app');
  });

  it('describes each scope from oauthScopeDescriptions and shows the raw scope small; undescribed scopes stand alone', async () => {
    const { t, clientId } = await setup({ oauthScopeDescriptions: { 'books.read': 'Read your books' } });
    const res = await page(t, { client_id: clientId, scope: 'books.read books.write' });
    const items = [...res.text.matchAll(/<li>(.*?)<\/li>/gs)].map((m) => m[1]);
    expect(items).toEqual(['<span class="scope-description">Read your books</span><code class="scope">books.read</code>', '<code class="scope">books.write</code>']);
  });

  it('oauthScopeDescriptions may be a function of the request (e.g. its language)', async () => {
    const { t, clientId } = await setup({
      oauthScopeDescriptions: (ctx: { req: Request }) => (ctx.req.get('accept-language') === 'fr' ? { 'books.read': 'Lire vos livres' } : { 'books.read': 'Read your books' }),
    });
    expect(text((await page(t, { client_id: clientId }).set('Accept-Language', 'fr')).text, 'scope-description')).toBe('Lire vos livres');
    expect(text((await page(t, { client_id: clientId })).text, 'scope-description')).toBe('Read your books');
  });

  it('says access lasts only when a refresh token will be issued', async () => {
    const offline = await setup({}, { name: 'Books' }, ['authorization_code_grant', 'refresh']);
    expect(text((await page(offline.t, { client_id: offline.clientId })).text, 'offline')).toBe('Books will keep this access while you are not using it, until you revoke it.');
    // Not registered for refresh_token: no refresh token, no sentence.
    const codeOnly = await offline.t.createClient({ redirectUri: [REDIRECT], grantTypes: ['authorization_code'] });
    expect((await page(offline.t, { client_id: codeOnly.clientId })).text).not.toContain('class="offline"');
    // The refresh feature off: none either.
    const plain = await setup();
    expect((await page(plain.t, { client_id: plain.clientId })).text).not.toContain('class="offline"');
  });

  it('offers Allow first (the primary action) and Deny, grouped and labelled', async () => {
    const { t, clientId } = await setup();
    const res = await page(t, { client_id: clientId });
    expect(res.text).toMatch(/<div class="actions" role="group" aria-label="Your decision">\s*<button type="submit" name="decision" value="approve" id="approve">Allow<\/button>\s*<button type="submit" name="decision" value="deny" id="deny">Deny<\/button>/);
    expect(res.text).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(res.text).toContain('<html lang="en">');
  });
});

describe('authorization_code_grant › consent page: hostile registrations render as inert text', () => {
  const MARKUP = '<img src=x onerror=alert(1)><script>alert(2)</script>';

  it('markup in the name, description and scope descriptions is escaped everywhere', async () => {
    const { t, clientId } = await setup({ oauthScopeDescriptions: { 'books.read': MARKUP }, logoutRoute: '/logout' }, { name: MARKUP, description: MARKUP, logoUri: 'https://books.example/logo.png' }, ['authorization_code_grant', 'refresh']);
    const res = await page(t, { client_id: clientId, state: MARKUP });
    expect(res.status).toBe(200);
    expect(res.text).not.toMatch(/<script>alert|<img src=x/);
    expect(text(res.text, 'description')).toBe(MARKUP);
    expect(text(res.text, 'scope-description')).toBe(MARKUP);
    expect(text(res.text, 'lead')).toBe(`The application ${MARKUP} would like to access your data`);
    expect(text(res.text, 'offline')).toBe(`${MARKUP} will keep this access while you are not using it, until you revoke it.`);
    expect(res.text).toContain('alt="Logo of &lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;"');
  });

  it('javascript:, data: and other non-web logo and homepage URLs are neither linked nor loaded', async () => {
    const { t, clientId } = await setup({}, { homepageUrl: 'javascript:alert(1)', logoUri: 'data:image/svg+xml,<svg onload=alert(1)>', policyUri: ' javascript:alert(3)', tosUri: 'JAVASCRIPT:alert(4)' });
    const res = await page(t, { client_id: clientId });
    expect(res.status).toBe(200);
    expect(res.text.toLowerCase()).not.toContain('javascript:');
    expect(res.text).not.toContain('data:image');
    expect(res.text).not.toContain('<img');
    expect(res.text).not.toContain('<ul class="links">');
  });

  it('very long text stays text (the template lets it wrap)', async () => {
    const long = 'W'.repeat(5000);
    // The name column holds 255 characters (schema version 1); the description is text.
    const { t, clientId } = await setup({ oauthScopeDescriptions: { 'books.read': long } }, { name: 'N'.repeat(255), description: `${long} ${long}` });
    const res = await page(t, { client_id: clientId });
    expect(res.status).toBe(200);
    expect(text(res.text, 'scope-description')).toBe(long);
    expect(text(res.text, 'description')).toBe(`${long} ${long}`);
    expect(text(res.text, 'lead')).toBe(`The application ${'N'.repeat(255)} would like to access your data`);
    expect(res.text).toMatch(/body \{[^}]*overflow-wrap: anywhere/);
  });
});
