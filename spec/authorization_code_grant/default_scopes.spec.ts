import type { OAuthContext } from '../../lib';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { formFields, grantCount, ISSUER, locationParams, obtainCode, query, testLogin } from './flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';
const back = (params: string) => `${REDIRECT}?${params}&iss=${encodeURIComponent(ISSUER)}`;

async function setup(options: Record<string, unknown> = {}): Promise<{ t: TestApp; clientId: string; clientSecret: string }> {
  const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER, ...options }, { setup: testLogin });
  const { clientId, clientSecret } = await t.createClient({ redirectUri: [REDIRECT], scopes: ['books.read', 'books.write'] });
  return { t, clientId, clientSecret };
}

/** The whole flow without `scope`: the scope of the token response. */
async function tokenWithoutScope(t: TestApp, clientId: string, clientSecret: string): Promise<Record<string, unknown>> {
  const code = await obtainCode(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', state: 's' });
  const res = await t.agent.post(t.path('/token')).set('Authorization', basic(clientId, clientSecret)).type('form').send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
  expect(res.status).toBe(200);
  expect(res.headers['cache-control']).toBe('no-store');
  return res.body;
}

describe('authorization_code_grant › default scopes (RFC 6749 §3.3, oauthDefaultScopes)', () => {
  it('grants the application’s registered scopes to a request without scope by default (null)', async () => {
    const { t, clientId, clientSecret } = await setup();
    const page = await t.agent.get(`${t.path('/authorize')}?${query({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code' })}`).set('X-Test-User', 'alice');
    expect(page.status).toBe(200);
    expect(page.text).toContain('books.write');
    // The consent form carries no scope either: the POST resolves the same default.
    expect(formFields(page.text).scope).toBeUndefined();
    expect(await tokenWithoutScope(t, clientId, clientSecret)).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read books.write' });
  });

  it('grants the default list intersected with the application’s scopes', async () => {
    const { t, clientId, clientSecret } = await setup({ oauthDefaultScopes: ['profile', 'books.read'] });
    expect(await tokenWithoutScope(t, clientId, clientSecret)).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read' });
  });

  it('takes a function of the request', async () => {
    const { t, clientId, clientSecret } = await setup({ oauthDefaultScopes: (ctx: OAuthContext) => (ctx.application?.clientId === clientId ? ['books.write'] : []) });
    expect(await tokenWithoutScope(t, clientId, clientSecret)).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.write' });
  });

  it.each([
    ['[] (scope required)', []],
    ['a list the application holds none of', ['profile']],
  ])('answers invalid_scope to a request without scope when the default is %s, and stores nothing', async (_label, defaults) => {
    const { t, clientId } = await setup({ oauthDefaultScopes: defaults });
    const res = await t.agent.get(`${t.path('/authorize')}?${query({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', state: 'xyz' })}`).set('X-Test-User', 'alice');
    expect(res.status).toBe(302);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.location).toBe(back('error=invalid_scope&error_description=Invalid+scope&state=xyz'));
    expect(locationParams(res.headers.location).code).toBeUndefined();
    expect(await grantCount(t)).toBe(0);
  });

  it('still checks an explicit scope against the application, not the default', async () => {
    const { t, clientId, clientSecret } = await setup({ oauthDefaultScopes: ['books.read'] });
    const code = await obtainCode(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.write' });
    const res = await t.agent.post(t.path('/token')).set('Authorization', basic(clientId, clientSecret)).type('form').send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.write' });
  });
});
