import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { SQL_LOOKING, countGrants, expectNoStore, expectTokenError, tokenBody, tokenRequest, type Client } from '../oauth_base/helpers';

afterAll(closeAll);

describe('client_credentials_grant › token_endpoint', () => {
  let t: TestApp;
  let client: Client & { id: number };
  beforeAll(async () => {
    t = await buildApp({ enable: ['client_credentials_grant'] });
    client = await t.createClient({ scopes: ['books.read', 'books.write', 'admin'] });
  });

  const cc = (scope?: string) => tokenRequest(t, client, scope === undefined ? { grant_type: 'client_credentials' } : { grant_type: 'client_credentials', scope });

  it('issues an access token with every scope of the application when none is requested (RFC 6749 §4.4.2, §3.3)', async () => {
    const res = await cc();
    expect(res.status).toBe(200);
    expectNoStore(res);
    expect(res.body).toEqual(tokenBody('books.read books.write admin'));
  });

  it('issues the requested subset of the application scopes (RFC 6749 §4.4.2)', async () => {
    const res = await cc('admin books.read');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(tokenBody('admin books.read'));
  });

  it('collapses repeated scope tokens and extra spaces', async () => {
    const res = await cc('books.read  books.read admin');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(tokenBody('books.read admin'));
  });

  it('stores a grant row of type client_credentials with no account and no refresh token', async () => {
    const res = await cc('books.write');
    const row = await t.db('oauth_grants').orderBy('id', 'desc').first();
    expect(row).toEqual(expect.objectContaining({ type: 'client_credentials', account_id: null, oauth_application_id: client.id, refresh_token: null, code: null, scopes: 'books.write', revoked_at: null }));
    expect(row.token).not.toBe(res.body.access_token);
  });

  it.each([
    ['a scope the application does not have', 'books.read delete'],
    ['an SQL-looking scope', SQL_LOOKING],
    ['a scope with a double quote', 'books"read'],
    ['a scope with a backslash', 'books\\read'],
    ['a unicode scope', 'bücher'],
    ['only spaces', '   '],
  ])('answers invalid_scope for %s and writes nothing (RFC 6749 §5.2)', async (_name, scope) => {
    const before = await countGrants(t);
    const res = await cc(scope);
    expectTokenError(res, 'invalid_scope', 'Invalid scope');
    expect(await countGrants(t)).toBe(before);
  });

  it('uses the overridable invalid_scope message', async () => {
    const r = await buildApp({ enable: ['client_credentials_grant'], oauthInvalidScopeMessage: 'Scope not allowed' });
    const c = await r.createClient();
    expectTokenError(await tokenRequest(r, c, { grant_type: 'client_credentials', scope: 'nope' }), 'invalid_scope', 'Scope not allowed');
  });

  it('an application without scopes gets a token with an empty scope', async () => {
    const c = await t.createClient({ scopes: [] });
    const res = await tokenRequest(t, c);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(tokenBody(''));
  });

  it('never issues a refresh token, even with the refresh feature enabled (RFC 6749 §4.4.3)', async () => {
    const r = await buildApp({ enable: ['client_credentials_grant', 'refresh'] });
    const c = await r.createClient();
    const res = await tokenRequest(r, c);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(tokenBody('books.read books.write'));
    expect(res.body).not.toHaveProperty('refresh_token');
    const row = await r.db('oauth_grants').first();
    expect(row.refresh_token).toBeNull();
  });

  it('uses the overridable lifetime and token type, constant or a function of the request', async () => {
    const r = await buildApp({
      enable: ['client_credentials_grant'],
      oauthAccessTokenExpiresIn: (ctx: { application?: { name: string } }) => (ctx.application?.name === 'Short' ? 60 : 600),
      oauthTokenType: 'bearer',
    });
    const short = await r.createClient({ name: 'Short' });
    const long = await r.createClient({ name: 'Long' });
    const before = Date.now();
    const a = await tokenRequest(r, short);
    expect(a.body).toEqual({ ...tokenBody('books.read books.write', 60), token_type: 'bearer' });
    const b = await tokenRequest(r, long);
    expect(b.body).toEqual({ ...tokenBody('books.read books.write', 600), token_type: 'bearer' });
    const rows = await r.db('oauth_grants').orderBy('id');
    const expiry = (v: unknown) => new Date(v as string | number | Date).getTime();
    expect(expiry(rows[0].expires_in) - before).toBeGreaterThanOrEqual(59_000);
    expect(expiry(rows[0].expires_in) - Date.now()).toBeLessThanOrEqual(60_000);
    expect(expiry(rows[1].expires_in) - Date.now()).toBeGreaterThan(590_000);
  });

  it('the issued token opens a protected route with its scopes', async () => {
    const res = await cc('books.read');
    const api = await t.agent.get('/api/books').set('Authorization', `Bearer ${res.body.access_token}`);
    expect(api.status).toBe(200);
    expect(api.body).toEqual({ books: [], scopes: ['books.read'] });
  });
});

describe('client_credentials_grant › default scopes (RFC 6749 §3.3, oauthDefaultScopes)', () => {
  it('grants the default list intersected with the application’s scopes to a request without scope', async () => {
    const r = await buildApp({ enable: ['client_credentials_grant'], oauthDefaultScopes: ['books.write', 'profile'] });
    const c = await r.createClient({ scopes: ['books.read', 'books.write'] });
    const res = await tokenRequest(r, c);
    expect(res.status).toBe(200);
    expectNoStore(res);
    expect(res.body).toEqual(tokenBody('books.write'));
  });

  it.each([
    ['[] (scope required)', []],
    ['a list the application holds none of', ['profile']],
  ])('answers invalid_scope to a request without scope when the default is %s, and writes nothing', async (_label, defaults) => {
    const r = await buildApp({ enable: ['client_credentials_grant'], oauthDefaultScopes: defaults });
    const c = await r.createClient({ scopes: ['books.read'] });
    expectTokenError(await tokenRequest(r, c), 'invalid_scope', 'Invalid scope');
    expect(await countGrants(r)).toBe(0);
    const ok = await tokenRequest(r, c, { grant_type: 'client_credentials', scope: 'books.read' });
    expect(ok.body).toEqual(tokenBody('books.read'));
  });
});
