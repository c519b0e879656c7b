import { createHmac } from 'node:crypto';
import session from 'express-session';
import request from 'supertest';
import { OAuthError } from '../../lib';
import { sha256 } from '../../lib/crypto';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { consent, errorPage, formFields, grantCount, ISSUER, PAGE_HEADERS, pageHeaders, query, testLogin } from './flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';
const ISS = encodeURIComponent(ISSUER);
const T0 = new Date('2030-01-01T00:00:00Z');

async function setup(options: Record<string, unknown> = {}, opts: { session?: boolean } = {}): Promise<{ t: TestApp; clientId: string; appId: number }> {
  const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER, ...options }, {
    setup: (app) => {
      if (opts.session) app.use(session({ secret: 'spec-session-secret', resave: false, saveUninitialized: false }));
      testLogin(app);
    },
  });
  const { clientId, id } = await t.createClient({ redirectUri: [REDIRECT] });
  return { t, clientId, appId: id };
}

const params = (clientId: string, extra: Record<string, string> = {}) => ({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: 'st', ...extra });

async function consentForm(t: TestApp, p: Record<string, string>, agent = t.agent, user = 'alice'): Promise<Record<string, string>> {
  const res = await agent.get(`${t.path('/authorize')}?${query(p)}`).set('X-Test-User', user);
  expect(res.status).toBe(200);
  return formFields(res.text);
}

function post(t: TestApp, body: Record<string, string>, agent = t.agent, user = 'alice') {
  return agent.post(t.path('/authorize')).set('X-Test-User', user).type('form').send(body);
}

describe('authorization_code_grant › authorize POST', () => {
  it('creates a grant with the code stored hashed and redirects with code, state and iss (RFC 6749 §4.1.2, RFC 9207)', async () => {
    const { t, clientId, appId } = await setup({ now: () => T0 });
    const res = await consent(t, params(clientId));
    expect(res.status).toBe(302);
    expect(res.headers['cache-control']).toBe('no-store');
    const location = res.headers.location!;
    const m = /^https:\/\/client\.example\/cb\?code=([A-Za-z0-9_-]{43})&state=st&iss=(.*)$/.exec(location);
    expect(m).not.toBeNull();
    expect(m![2]).toBe(ISS);
    const code = m![1]!;
    const rows = await t.db('oauth_grants').select();
    expect(rows).toHaveLength(1);
    const row = rows[0] as Record<string, unknown>;
    expect({
      code: row.code,
      account_id: row.account_id,
      oauth_application_id: Number(row.oauth_application_id),
      type: row.type,
      scopes: row.scopes,
      redirect_uri: row.redirect_uri,
      token: row.token,
      expires_in: new Date(row.expires_in as string).getTime(),
    }).toEqual({
      code: sha256(code),
      account_id: 'alice',
      oauth_application_id: appId,
      type: 'authorization_code',
      scopes: 'books.read',
      redirect_uri: REDIRECT,
      token: null,
      expires_in: T0.getTime() + 300_000,
    });
    t.logger.assertNoSecrets([code]);
  });

  it('lets oauthGrantExpiresIn set the code lifetime', async () => {
    const { t, clientId } = await setup({ now: () => T0, oauthGrantExpiresIn: 60 });
    await consent(t, params(clientId));
    const [row] = await t.db('oauth_grants').select('expires_in');
    expect(new Date((row as { expires_in: string }).expires_in).getTime()).toBe(T0.getTime() + 60_000);
  });

  it('answers with the auto-submitting form_post page (OAuth 2.0 Form Post Response Mode)', async () => {
    const { t, clientId } = await setup();
    const res = await consent(t, params(clientId, { response_mode: 'form_post' }));
    expect(res.status).toBe(200);
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['cache-control']).toBe('no-store');
    const nonce = /<script nonce="([^"]+)">/.exec(res.text)?.[1];
    expect(res.headers['content-security-policy']).toBe(`default-src 'none'; script-src 'nonce-${nonce}'; frame-ancestors 'none'`);
    expect(res.text).toContain(`<form method="post" action="${REDIRECT}" id="form-post">`);
    const fields = [...res.text.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)].map((m) => [m[1], m[2]]);
    expect(fields).toEqual([
      ['code', expect.stringMatching(/^[A-Za-z0-9_-]{43}$/)],
      ['state', 'st'],
      ['iss', ISSUER],
    ]);
    expect(await grantCount(t)).toBe(1);
  });

  it('lets oauthResponseMode make form_post the default', async () => {
    const { t, clientId } = await setup({ oauthResponseMode: 'form_post' });
    const res = await consent(t, params(clientId));
    expect(res.status).toBe(200);
    expect(res.text).toContain('id="form-post"');
  });

  it('answers access_denied when the resource owner denies, without a grant (RFC 6749 §4.1.2.1)', async () => {
    const { t, clientId } = await setup();
    const res = await consent(t, params(clientId), { decision: 'deny' });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${REDIRECT}?error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request&state=st&iss=${ISS}`);
    expect(await grantCount(t)).toBe(0);
  });

  describe('CSRF', () => {
    it.each([
      ['a tampered token', (f: Record<string, string>) => ({ ...f, csrf_token: `${f.csrf_token!.slice(0, -2)}AA` })],
      ['no token', (f: Record<string, string>) => Object.fromEntries(Object.entries(f).filter(([k]) => k !== 'csrf_token'))],
    ])('shows the error page for %s, without a grant and without telling the client', async (_label, change) => {
      const { t, clientId } = await setup();
      const fields = await consentForm(t, params(clientId));
      const res = await post(t, { ...change(fields), decision: 'approve' });
      expect(res.status).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(pageHeaders(res.headers)).toEqual(PAGE_HEADERS);
      expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: 'The form has expired or was not sent by this site; please try again' });
      expect(await grantCount(t)).toBe(0);
    });

    it('shows the error page for a POST without the cookie the consent page set (a forged cross-site form)', async () => {
      const { t, clientId } = await setup();
      const fields = await consentForm(t, params(clientId));
      const res = await post(t, { ...fields, decision: 'approve' }, request.agent(t.app));
      expect(res.status).toBe(400);
      expect(errorPage(res.text).description).toBe('The form has expired or was not sent by this site; please try again');
      expect(await grantCount(t)).toBe(0);
    });

    it('does not accept the token of another account', async () => {
      const { t, clientId } = await setup();
      const fields = await consentForm(t, params(clientId), t.agent, 'mallory');
      const res = await post(t, { ...fields, decision: 'approve' }, t.agent, 'alice');
      expect(res.status).toBe(400);
      expect(errorPage(res.text).error).toBe('invalid_request');
      expect(await grantCount(t)).toBe(0);
    });

    it('marks the cookie Secure when the issuer is https, although this hop is plain http (TLS ended at a proxy)', async () => {
      const { t, clientId } = await setup({ issuer: 'https://as.example' });
      const res = await t.agent.get(`${t.path('/authorize')}?${query(params(clientId))}`).set('X-Test-User', 'alice');
      expect(res.status).toBe(200);
      expect(res.headers['set-cookie']).toEqual([expect.stringMatching(new RegExp(`^oauth_csrf=[A-Za-z0-9_-]{43}; Path=${t.path('/authorize')}; HttpOnly; Secure; SameSite=Lax$`))]);
    });

    it('leaves the cookie without Secure for an http issuer over http (a local development server)', async () => {
      const { t, clientId } = await setup({ issuer: undefined });
      const res = await t.agent.get(`${t.path('/authorize')}?${query(params(clientId))}`).set('X-Test-User', 'alice');
      expect(res.status).toBe(200);
      expect(res.headers['set-cookie']).toEqual([expect.stringMatching(new RegExp(`^oauth_csrf=[A-Za-z0-9_-]{43}; Path=${t.path('/authorize')}; HttpOnly; SameSite=Lax$`))]);
    });

    it('without a session, keys the token with oauthCsrfSecret over the cookie nonce and the account', async () => {
      const { t, clientId } = await setup({ oauthCsrfSecret: 'k'.repeat(32) });
      const first = await t.agent.get(`${t.path('/authorize')}?${query(params(clientId))}`).set('X-Test-User', 'alice');
      const setCookie = String(first.headers['set-cookie']);
      expect(setCookie).toMatch(new RegExp(`^oauth_csrf=[A-Za-z0-9_-]{43}; Path=${t.path('/authorize')}; HttpOnly; Secure; SameSite=Lax$`));
      const nonce = /^oauth_csrf=([^;]+)/.exec(setCookie)![1]!;
      const expected = createHmac('sha256', 'k'.repeat(32)).update(`${nonce}\0alice`).digest('base64url');
      expect(formFields(first.text).csrf_token).toBe(expected);
      const again = await t.agent.get(`${t.path('/authorize')}?${query(params(clientId))}`).set('X-Test-User', 'alice');
      expect(again.headers['set-cookie']).toBeUndefined();
      expect(formFields(again.text).csrf_token).toBe(expected);
      const res = await post(t, { ...formFields(again.text), decision: 'approve' });
      expect(res.status).toBe(302);
    });

    it('binds the token to the host session when there is one (express-session)', async () => {
      const { t, clientId } = await setup({}, { session: true });
      const first = await t.agent.get(`${t.path('/authorize')}?${query(params(clientId))}`).set('X-Test-User', 'alice');
      expect(first.status).toBe(200);
      expect(String(first.headers['set-cookie'])).toMatch(/^connect\.sid=/);
      expect(String(first.headers['set-cookie'])).not.toContain('oauth_csrf');
      const fields = formFields(first.text);
      const other = await post(t, { ...fields, decision: 'approve' }, request.agent(t.app));
      expect(other.status).toBe(400);
      expect(errorPage(other.text).error).toBe('invalid_request');
      expect(await grantCount(t)).toBe(0);
      const ok = await post(t, { ...fields, decision: 'approve' });
      expect(ok.status).toBe(302);
      expect(ok.headers.location).toMatch(/^https:\/\/client\.example\/cb\?code=/);
      expect(await grantCount(t)).toBe(1);
    });
  });

  it('sends a POST without a logged-in account to the login page, back to the same request as a GET', async () => {
    const { t, clientId } = await setup();
    const fields = await consentForm(t, params(clientId));
    const res = await t.agent.post(t.path('/authorize')).type('form').send({ ...fields, decision: 'approve' });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`/login?return_to=${encodeURIComponent(`${t.path('/authorize')}?${query(params(clientId))}`)}`);
    expect(await grantCount(t)).toBe(0);
  });

  describe('validates everything again', () => {
    it('answers invalid_scope for a scope changed in the form', async () => {
      const { t, clientId } = await setup();
      const fields = await consentForm(t, params(clientId));
      const res = await post(t, { ...fields, scope: 'books.read admin', decision: 'approve' });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(`${REDIRECT}?error=invalid_scope&error_description=Invalid+scope&state=st&iss=${ISS}`);
      expect(await grantCount(t)).toBe(0);
    });

    it('shows the error page for a redirect_uri changed in the form', async () => {
      const { t, clientId } = await setup();
      const fields = await consentForm(t, params(clientId));
      const res = await post(t, { ...fields, redirect_uri: 'https://evil.example/cb', decision: 'approve' });
      expect(res.status).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Invalid or missing 'redirect_uri'" });
      expect(await grantCount(t)).toBe(0);
    });

    it('shows the error page for a repeated parameter in the form', async () => {
      const { t, clientId } = await setup();
      const fields = await consentForm(t, params(clientId));
      const body = `${new URLSearchParams({ ...fields, decision: 'approve' }).toString()}&decision=approve`;
      const res = await t.agent.post(t.path('/authorize')).set('X-Test-User', 'alice').type('form').send(body);
      expect(res.status).toBe(400);
      expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Parameter 'decision' must not be repeated" });
      expect(await grantCount(t)).toBe(0);
    });
  });

  describe('hooks run inside the transaction', () => {
    it('beforeAuthorize can refuse: its OAuthError goes back to the client, and no grant is written', async () => {
      const { t, clientId } = await setup({ beforeAuthorize: () => { throw new OAuthError('access_denied', 'Not now'); } });
      const res = await consent(t, params(clientId));
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(`${REDIRECT}?error=access_denied&error_description=Not+now&state=st&iss=${ISS}`);
      expect(await grantCount(t)).toBe(0);
    });

    it('afterAuthorize sees the new grant, and throwing in it rolls the grant back', async () => {
      const seen: unknown[] = [];
      const { t, clientId } = await setup({
        afterAuthorize: (ctx: { grant?: { accountId: string | null; scopes: string[] } }) => {
          seen.push({ accountId: ctx.grant?.accountId, scopes: ctx.grant?.scopes });
          throw new Error('boom');
        },
      });
      const res = await consent(t, params(clientId));
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(`${REDIRECT}?error=server_error&error_description=An+unexpected+error+occurred&state=st&iss=${ISS}`);
      expect(seen).toEqual([{ accountId: 'alice', scopes: ['books.read'] }]);
      expect(await grantCount(t)).toBe(0);
    });
  });

  it('stores the columns resourceOwnerParams returns on the grant', async () => {
    const { t, clientId } = await setup({
      resourceOwnerParams: async (ctx: { req: { get(h: string): string | undefined } }) => ({ tenant: ctx.req.get('x-tenant') ?? null }),
    });
    await t.db.schema.alterTable('oauth_grants', (tb) => void tb.string('tenant'));
    const form = await consentForm(t, params(clientId));
    const res = await post(t, { ...form, decision: 'approve' }).set('X-Tenant', 'acme');
    expect(res.status).toBe(302);
    expect(await t.db('oauth_grants').select('tenant', 'account_id')).toEqual([{ tenant: 'acme', account_id: 'alice' }]);
  });
});
