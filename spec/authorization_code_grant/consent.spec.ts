import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { consent, errorPage, formFields, ISSUER, PAGE_HEADERS, pageHeaders, query, testLogin } from './flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';
const XSS = '"><script>alert(1)</script>';

async function setup(options: Record<string, unknown> = {}, client: Record<string, unknown> = {}): Promise<{ t: TestApp; clientId: string }> {
  const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER, ...options }, { setup: testLogin });
  const { clientId } = await t.createClient({ redirectUri: [REDIRECT], ...client });
  return { t, clientId };
}

function page(t: TestApp, params: Record<string, string | undefined>) {
  return t.agent.get(`${t.path('/authorize')}?${query(params)}`).set('X-Test-User', 'alice');
}

/** The text of the first element matching a class, unescaped. */
function text(html: string, cls: string): string | undefined {
  return new RegExp(`class="${cls}">([^<]*)<`).exec(html)?.[1];
}

describe('authorization_code_grant › consent page', () => {
  it('shows the application, its links, the requested scopes and a CSRF-protected Approve/Deny form', async () => {
    const { t, clientId } = await setup({}, {
      name: 'Books app',
      description: 'Reads your books',
      homepageUrl: 'https://books.example/',
      policyUri: 'https://books.example/privacy',
      tosUri: 'https://books.example/terms',
      logoUri: 'https://books.example/logo.png',
    });
    const res = await page(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read books.write', state: 'st' });
    expect(res.status).toBe(200);
    expect(pageHeaders(res.headers)).toEqual(PAGE_HEADERS);
    expect(/<title>([^<]*)<\/title>/.exec(res.text)?.[1]).toBe('Authorize');
    expect(text(res.text, 'lead')).toBe('The application Books app would like to access your data');
    expect(text(res.text, 'description')).toBe('Reads your books');
    expect([...res.text.matchAll(/<a href="([^"]*)" rel="noopener noreferrer" target="_blank">([^<]*)<\/a>/g)].map((m) => [m[1], m[2]])).toEqual([
      ['https://books.example/', 'Homepage'],
      ['https://books.example/privacy', 'Policy URL'],
      ['https://books.example/terms', 'Terms of service URL'],
    ]);
    expect(res.text).toContain('<img class="logo" src="https://books.example/logo.png" alt="Logo of Books app">');
    expect([...res.text.matchAll(/<code class="scope">([^<]*)<\/code>/g)].map((m) => m[1])).toEqual(['books.read', 'books.write']);
    expect(res.text).toContain(`<form method="post" action="${t.path('/authorize')}">`);
    const fields = formFields(res.text);
    expect(fields).toEqual({
      client_id: clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'books.read books.write',
      state: 'st',
      csrf_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    expect(res.text).toContain('<button type="submit" name="decision" value="approve" id="approve">Allow</button>');
    expect(res.text).toContain('<button type="submit" name="decision" value="deny" id="deny">Deny</button>');
  });

  it('escapes an application name and a state containing markup (rodauth-oauth 1.6.6 XSS)', async () => {
    const { t, clientId } = await setup({}, { name: XSS, description: XSS });
    const res = await page(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: XSS });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('<script>');
    expect(res.text).toContain('The application &#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt; would like to access your data');
    expect(res.text).toContain('<input type="hidden" name="state" value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">');
    expect(formFields(res.text).state).toBe(XSS);
  });

  it("puts the application name into the lead as is: no String.replace patterns ($', $&, $1, $$), and escaped", async () => {
    const { t, clientId } = await setup({}, { name: "Evil $' $& $1 $$ <b>" });
    const res = await page(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
    expect(res.status).toBe(200);
    expect(res.text).toContain('<p class="lead">The application Evil $&#39; $&amp; $1 $$ &lt;b&gt; would like to access your data</p>');
  });

  it('escapes the state on the form_post response page', async () => {
    const { t, clientId } = await setup();
    const res = await consent(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: XSS, response_mode: 'form_post' });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('<script>alert');
    expect(res.text).toContain('<input type="hidden" name="state" value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">');
  });

  it('links only http(s) URLs: a javascript: homepage or logo is left out', async () => {
    const { t, clientId } = await setup({}, { homepageUrl: 'javascript:alert(1)', logoUri: 'javascript:alert(2)', policyUri: 'https://books.example/privacy' });
    const res = await page(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('javascript:');
    expect([...res.text.matchAll(/<a href="([^"]*)"/g)].map((m) => m[1])).toEqual(['https://books.example/privacy']);
  });

  it('takes every label from a value, constant or computed from the request', async () => {
    const { t, clientId } = await setup({
      authorizePageTitle: 'Autoriser',
      authorizePageLead: "L'application {name} veut accéder à vos données",
      oauthGrantsScopesLabel: 'Portées',
      oauthAuthorizeButton: (ctx: { req: { get(h: string): string | undefined } }) => (ctx.req.get('accept-language') === 'fr' ? 'Accepter' : 'Authorize'),
      oauthDenyButton: 'Refuser',
    }, { name: 'Livres' });
    const res = await page(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' }).set('Accept-Language', 'fr');
    expect(res.status).toBe(200);
    expect(/<title>([^<]*)<\/title>/.exec(res.text)?.[1]).toBe('Autoriser');
    expect(text(res.text, 'lead')).toBe('L&#39;application Livres veut accéder à vos données');
    expect(res.text).toContain('<h2 id="scopes-heading">Portées</h2>');
    expect(res.text).toContain('id="approve">Accepter</button>');
    expect(res.text).toContain('id="deny">Refuser</button>');
  });

  it("renders the host's own templates from oauthTemplatesDir, falling back to the built-in ones", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eof-templates-'));
    writeFileSync(join(dir, 'authorize.html'), '<p id="mine"><%= application.name %> wants <%= scopes.join(", ") %></p><form><% fields.forEach(function (f) { %><input type="hidden" name="<%= f.name %>" value="<%= f.value %>"><% }) %></form>');
    const { t, clientId } = await setup({ oauthTemplatesDir: dir }, { name: '<b>Books</b>' });
    const res = await page(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read books.write' });
    expect(res.status).toBe(200);
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.text).toMatch(/^<p id="mine">&lt;b&gt;Books&lt;\/b&gt; wants books.read, books.write<\/p><form>/);
    const missing = await page(t, { client_id: 'unknown', redirect_uri: REDIRECT });
    expect(missing.status).toBe(400);
    expect(errorPage(missing.text)).toEqual({ error: 'invalid_request', description: "Invalid or missing 'client_id'" });
  });

  it('runs beforeAuthorizeRoute before the handler, on GET and POST', async () => {
    const seen: string[] = [];
    const { t, clientId } = await setup({ beforeAuthorizeRoute: (ctx: { req: { method: string } }) => void seen.push(ctx.req.method) });
    const res = await consent(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
    expect(res.status).toBe(302);
    expect(seen).toEqual(['GET', 'POST']);
  });

  it('serves GET and POST under an overridden authorizeRoute', async () => {
    const { t, clientId } = await setup({ authorizeRoute: 'oauth2/auth' });
    const res = await t.agent.get(`${t.path('/oauth2/auth')}?${query({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' })}`).set('X-Test-User', 'alice');
    expect(res.status).toBe(200);
    expect(res.text).toContain(`<form method="post" action="${t.path('/oauth2/auth')}">`);
    const post = await t.agent.post(t.path('/oauth2/auth')).set('X-Test-User', 'alice').type('form').send({ ...formFields(res.text), decision: 'approve' });
    expect(post.status).toBe(302);
    expect(post.headers.location).toMatch(/^https:\/\/client\.example\/cb\?code=[A-Za-z0-9_-]{43}&iss=/);
    expect((await t.agent.get(t.path('/authorize'))).status).toBe(404);
  });
});
