import { afterAll, describe, expect, it } from '@jest/globals';
import { closeAll } from '../support/build_app';
import { formFields, query } from '../authorization_code_grant/flow';
import { authParams, codeFlow, ISSUER, locationParams, oidcApp, verifyIdToken, type OidcApp } from './support';

afterAll(closeAll);

function authorize(t: OidcApp, params: Record<string, string | undefined>, user: string | null = 'alice') {
  const req = t.agent.get(`${t.path('/authorize')}?${query(params)}`);
  return user === null ? req : req.set('X-Test-User', user);
}

/** An error sent to the verified redirect URI (Core §3.1.2.6): 302 with error, state and iss. */
function expectRedirectedError(res: { status: number; headers: Record<string, string> }, error: string, description?: string): void {
  expect(res.status).toBe(302);
  const location = res.headers.location!;
  expect(location.startsWith('https://client.example/cb?')).toBe(true);
  const params = locationParams(location);
  expect(params).toEqual({ error, ...(description !== undefined && { error_description: description }), state: 'xyz', iss: ISSUER });
}

describe('oidc › authentication request', () => {
  it('requires nonce when oidcRequireNonce is set, and only for openid requests (invalid_request to the redirect URI)', async () => {
    const t = await oidcApp({ oidcRequireNonce: true });
    expectRedirectedError(await authorize(t, authParams(t, { nonce: undefined })), 'invalid_request', 'nonce is required');
    // A plain OAuth request (no openid) is not an OpenID Connect request: no nonce needed.
    const plain = await authorize(t, authParams(t, { nonce: undefined, scope: 'books.read' }));
    expect(plain.status).toBe(200);
    const withNonce = await authorize(t, authParams(t));
    expect(withNonce.status).toBe(200);
  });

  it('takes nonce optional by default, and then issues an ID token without one', async () => {
    const t = await oidcApp();
    const res = await codeFlow(t, { nonce: undefined });
    expect(res.status).toBe(200);
    expect(await verifyIdToken(t, res.body.id_token)).not.toHaveProperty('nonce');
  });

  it('refuses a nonce longer than 255 characters', async () => {
    const t = await oidcApp();
    expectRedirectedError(await authorize(t, authParams(t, { nonce: 'n'.repeat(256) })), 'invalid_request', "Invalid 'nonce'");
  });

  it.each(['abc', '-1', '1.5', '1e3', '99999999999'])('refuses max_age=%j (not a non-negative integer) with invalid_request to the client', async (maxAge) => {
    const t = await oidcApp();
    const res = await authorize(t, authParams(t, { max_age: maxAge }));
    expectRedirectedError(res, 'invalid_request', "Invalid 'max_age'");
  });

  it('reads an empty max_age as absent, as every empty parameter (RFC 6749 §3.1)', async () => {
    const t = await oidcApp();
    expect((await authorize(t, authParams(t, { max_age: '' }))).status).toBe(200);
  });

  it.each([
    ['not JSON', '{'],
    ['not an object', '[1]'],
    ['userinfo not an object', '{"userinfo":"email"}'],
    ['a claim neither null nor an object', '{"id_token":{"email":true}}'],
    ['essential not a boolean', '{"id_token":{"email":{"essential":"yes"}}}'],
  ])('refuses a claims parameter that is %s', async (_what, claims) => {
    const t = await oidcApp();
    expectRedirectedError(await authorize(t, authParams(t, { claims })), 'invalid_request', "Invalid 'claims'");
  });

  it('refuses request objects with request_not_supported / request_uri_not_supported (Core §3.1.2.6)', async () => {
    const t = await oidcApp();
    expectRedirectedError(await authorize(t, authParams(t, { request: 'eyJhbGciOiJub25lIn0.e30.' })), 'request_not_supported', 'Request objects are not supported');
    expectRedirectedError(await authorize(t, authParams(t, { request_uri: 'https://client.example/req' })), 'request_uri_not_supported', 'Request objects are not supported');
  });

  it.each(['id_token', 'code id_token', 'id_token token', 'code token', 'token', 'code id_token token'])(
    'refuses response_type=%j (implicit and hybrid flows) with unsupported_response_type',
    async (responseType) => {
      const t = await oidcApp();
      expectRedirectedError(await authorize(t, authParams(t, { response_type: responseType })), 'unsupported_response_type', 'Unsupported response type');
    },
  );

  it('carries nonce, max_age, claims and claims_locales through the consent form to the POST', async () => {
    const t = await oidcApp({ accountAuthenticatedAt: () => new Date() });
    const claims = '{"id_token":{"email":null}}';
    const page = await authorize(t, authParams(t, { max_age: '600', claims, claims_locales: 'fr-CA en' }));
    expect(page.status).toBe(200);
    expect(formFields(page.text)).toMatchObject({ nonce: 'n-0S6_WzA2Mj', max_age: '600', claims, claims_locales: 'fr-CA en' });
  });

  it('with max_age, sends a login older than max_age back to the login page (lib/prompt.ts), and issues auth_time once fresh', async () => {
    let loggedInAt = new Date(Date.now() - 3600_000);
    const t = await oidcApp({ accountAuthenticatedAt: () => loggedInAt });
    const res = await authorize(t, authParams(t, { max_age: '60' }));
    expect(res.status).toBe(302);
    const login = new URL(res.headers.location!, 'https://auth.example.com');
    expect(login.pathname).toBe('/login');
    expect(login.searchParams.get('prompt')).toBe('login');
    expect(login.searchParams.get('return_to')).toContain('max_age=60');
    // A login within max_age: the consent page, and auth_time in the ID token.
    loggedInAt = new Date(Date.now() - 10_000);
    const token = await codeFlow(t, { max_age: '60' });
    expect(token.status).toBe(200);
    expect((await verifyIdToken(t, token.body.id_token)).auth_time).toBe(Math.floor(loggedInAt.getTime() / 1000));
  });

  it('carries login_hint and id_token_hint to the host login page in return_to', async () => {
    const t = await oidcApp();
    const res = await authorize(t, authParams(t, { login_hint: 'alice@example.com', id_token_hint: 'eyJ.hint.x' }), null);
    expect(res.status).toBe(302);
    const login = new URL(res.headers.location!, 'https://auth.example.com');
    expect(login.pathname).toBe('/login');
    const returnTo = new URL(login.searchParams.get('return_to')!, 'https://auth.example.com');
    expect(returnTo.searchParams.get('login_hint')).toBe('alice@example.com');
    expect(returnTo.searchParams.get('id_token_hint')).toBe('eyJ.hint.x');
  });

  it('with max_age and prompt=none, a too old login is login_required to the client', async () => {
    const t = await oidcApp({ accountAuthenticatedAt: () => new Date(Date.now() - 3600_000) });
    expectRedirectedError(await authorize(t, authParams(t, { max_age: '60', prompt: 'none' })), 'login_required', 'Login required');
  });

  it('with max_age and a host that cannot say when the user logged in, asks for a fresh login', async () => {
    const t = await oidcApp();
    const res = await authorize(t, authParams(t, { max_age: '3600' }));
    expect(res.status).toBe(302);
    expect(new URL(res.headers.location!, 'https://auth.example.com').pathname).toBe('/login');
  });

  it('treats a request granted openid by the default scopes (no scope parameter) as OpenID Connect: max_age applies', async () => {
    const t = await oidcApp({ accountAuthenticatedAt: () => new Date(Date.now() - 3600_000) });
    const res = await authorize(t, authParams(t, { scope: undefined, max_age: '60' }));
    expect(res.status).toBe(302);
    expect(new URL(res.headers.location!, 'https://auth.example.com').pathname).toBe('/login');
  });

  it('ignores max_age for a request without openid (an OAuth request)', async () => {
    const t = await oidcApp({ accountAuthenticatedAt: () => new Date(Date.now() - 3600_000) });
    const res = await authorize(t, authParams(t, { max_age: '60', scope: 'books.read' }));
    expect(res.status).toBe(200);
  });

  it.each([
    ['an unknown prompt value', 'sometimes', 'invalid_request'],
    ['prompt=none with another value', 'none login', 'invalid_request'],
  ])('answers %s (prompt=%j) with %s to the redirect URI', async (_what, prompt, error) => {
    const t = await oidcApp();
    const res = await authorize(t, authParams(t, { prompt }));
    expect(res.status).toBe(302);
    expect(locationParams(res.headers.location)).toMatchObject({ error, state: 'xyz', iss: ISSUER });
  });

  it('answers prompt=none without a logged-in user with login_required, and without remembered consent with consent_required', async () => {
    const t = await oidcApp();
    expectRedirectedError(await authorize(t, authParams(t, { prompt: 'none' }), null), 'login_required', 'Login required');
    const res = await authorize(t, authParams(t, { prompt: 'none' }));
    expect(res.status).toBe(302);
    expect(locationParams(res.headers.location)).toMatchObject({ error: 'consent_required', state: 'xyz', iss: ISSUER });
  });
});
