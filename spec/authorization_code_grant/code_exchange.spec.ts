import { sha256 } from '../../lib/crypto';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { ISSUER, obtainCode, testLogin } from './flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';
const INVALID_GRANT = { error: 'invalid_grant', error_description: 'Invalid grant' };

interface Setup {
  t: TestApp;
  clientId: string;
  clientSecret: string;
  code: string;
}

async function setup(options: Record<string, unknown> = {}, opts: { shared?: boolean; authorize?: Record<string, string> } = {}): Promise<Setup> {
  const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER, ...options }, { setup: testLogin, shared: opts.shared });
  const { clientId, clientSecret } = await t.createClient({ redirectUri: [REDIRECT] });
  const code = await obtainCode(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: 's', ...opts.authorize });
  return { t, clientId, clientSecret, code };
}

function exchange(t: TestApp, clientId: string, secret: string, body: Record<string, string>) {
  return t.agent.post(t.path('/token')).set('Authorization', basic(clientId, secret)).type('form').send({ grant_type: 'authorization_code', ...body });
}

function expectNoStore(res: { headers: Record<string, string> }): void {
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers.pragma).toBe('no-cache');
}

describe('authorization_code_grant › code exchange', () => {
  it('exchanges a code for an access token that works on a protected route (RFC 6749 §4.1.3–§4.1.4)', async () => {
    const { t, clientId, clientSecret, code } = await setup();
    const res = await exchange(t, clientId, clientSecret, { code, redirect_uri: REDIRECT });
    expect(res.status).toBe(200);
    expectNoStore(res);
    expect(res.body).toEqual({ access_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), token_type: 'Bearer', expires_in: 3600, scope: 'books.read' });
    const me = await t.agent.get('/api/me').set('Authorization', `Bearer ${res.body.access_token}`);
    expect(me.status).toBe(200);
    expect(me.body).toEqual({
      accountId: 'alice',
      clientId,
      applicationId: expect.any(Number),
      scopes: ['books.read'],
      grantId: expect.any(Number),
      expiresAt: expect.any(String),
      token: res.body.access_token,
    });
    const [row] = await t.db('oauth_grants').select('token', 'code_redeemed_at');
    expect((row as { token: string }).token).toBe(sha256(res.body.access_token));
    expect((row as { code_redeemed_at: unknown }).code_redeemed_at).not.toBeNull();
    t.logger.assertNoSecrets([code, res.body.access_token, clientSecret]);
  });

  it('accepts client_secret_post as well', async () => {
    const { t, clientId, clientSecret, code } = await setup();
    const res = await t.agent.post(t.path('/token')).type('form').send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: clientId, client_secret: clientSecret });
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('books.read');
  });

  it('issues a refresh token when the refresh feature is enabled', async () => {
    const { t, clientId, clientSecret, code } = await setup({ enable: ['authorization_code_grant', 'refresh'] });
    const res = await exchange(t, clientId, clientSecret, { code, redirect_uri: REDIRECT });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      access_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      token_type: 'Bearer',
      expires_in: 3600,
      refresh_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      scope: 'books.read',
    });
    const [row] = await t.db('oauth_grants').select('refresh_token');
    expect((row as { refresh_token: string }).refresh_token).toBe(sha256(res.body.refresh_token));
    const refreshed = await t.agent.post(t.path('/token')).set('Authorization', basic(clientId, clientSecret)).type('form').send({ grant_type: 'refresh_token', refresh_token: res.body.refresh_token });
    expect(refreshed.status).toBe(200);
  });

  it('answers invalid_request without a code', async () => {
    const { t, clientId, clientSecret } = await setup();
    const res = await exchange(t, clientId, clientSecret, { redirect_uri: REDIRECT });
    expect(res.status).toBe(400);
    expectNoStore(res);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: "Missing parameter 'code'" });
  });

  it('answers invalid_grant for an unknown code', async () => {
    const { t, clientId, clientSecret } = await setup();
    const res = await exchange(t, clientId, clientSecret, { code: 'not-a-code', redirect_uri: REDIRECT });
    expect(res.status).toBe(400);
    expect(res.body).toEqual(INVALID_GRANT);
  });

  it('answers invalid_grant when another client presents the code, which stays usable by its own client (RFC 6749 §4.1.3)', async () => {
    const { t, clientId, clientSecret, code } = await setup();
    const other = await t.createClient({ redirectUri: [REDIRECT] });
    const stolen = await exchange(t, other.clientId, other.clientSecret, { code, redirect_uri: REDIRECT });
    expect(stolen.status).toBe(400);
    expect(stolen.body).toEqual(INVALID_GRANT);
    const own = await exchange(t, clientId, clientSecret, { code, redirect_uri: REDIRECT });
    expect(own.status).toBe(200);
  });

  it('rejects a wrong client secret with invalid_client before looking at the code', async () => {
    const { t, clientId, code } = await setup();
    const res = await exchange(t, clientId, 'wrong', { code, redirect_uri: REDIRECT });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Basic realm="oauth"');
    expect(res.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
  });

  it.each([
    ['a different redirect_uri', { redirect_uri: 'https://client.example/other' }],
    ['no redirect_uri although the request had one', {}],
  ])('answers invalid_grant for %s (RFC 6749 §4.1.3)', async (_label, extra) => {
    const { t, clientId, clientSecret, code } = await setup();
    const res = await exchange(t, clientId, clientSecret, { code, ...extra });
    expect(res.status).toBe(400);
    expect(res.body).toEqual(INVALID_GRANT);
  });

  it('accepts a code requested without redirect_uri with or without the registered one at the token endpoint', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER }, { setup: testLogin });
    const { clientId, clientSecret } = await t.createClient({ redirectUri: [REDIRECT] });
    const params = { client_id: clientId, response_type: 'code', scope: 'books.read' };
    const first = await exchange(t, clientId, clientSecret, { code: await obtainCode(t, params) });
    expect(first.status).toBe(200);
    const second = await exchange(t, clientId, clientSecret, { code: await obtainCode(t, params), redirect_uri: REDIRECT });
    expect(second.status).toBe(200);
    const third = await exchange(t, clientId, clientSecret, { code: await obtainCode(t, params), redirect_uri: 'https://evil.example/cb' });
    expect(third.status).toBe(400);
    expect(third.body).toEqual(INVALID_GRANT);
  });

  it('answers invalid_grant once the code has expired (oauthGrantExpiresIn)', async () => {
    let clock = new Date('2030-01-01T00:00:00Z');
    const { t, clientId, clientSecret, code } = await setup({ now: () => clock });
    clock = new Date(clock.getTime() + 300_000);
    const res = await exchange(t, clientId, clientSecret, { code, redirect_uri: REDIRECT });
    expect(res.status).toBe(400);
    expect(res.body).toEqual(INVALID_GRANT);
  });

  it('still accepts the code just before it expires', async () => {
    let clock = new Date('2030-01-01T00:00:00Z');
    const { t, clientId, clientSecret, code } = await setup({ now: () => clock });
    clock = new Date(clock.getTime() + 299_000);
    const res = await exchange(t, clientId, clientSecret, { code, redirect_uri: REDIRECT });
    expect(res.status).toBe(200);
    expect(res.body.expires_in).toBe(3600);
  });

  it('answers a replayed code with invalid_grant and revokes the tokens issued from it (RFC 6749 §4.1.2)', async () => {
    const { t, clientId, clientSecret, code } = await setup();
    const first = await exchange(t, clientId, clientSecret, { code, redirect_uri: REDIRECT });
    expect(first.status).toBe(200);
    const ok = await t.agent.get('/api/me').set('Authorization', `Bearer ${first.body.access_token}`);
    expect(ok.status).toBe(200);
    const replay = await exchange(t, clientId, clientSecret, { code, redirect_uri: REDIRECT });
    expect(replay.status).toBe(400);
    expectNoStore(replay);
    expect(replay.body).toEqual(INVALID_GRANT);
    const revoked = await t.agent.get('/api/me').set('Authorization', `Bearer ${first.body.access_token}`);
    expect(revoked.status).toBe(401);
    expect(revoked.body).toEqual({ error: 'invalid_token', error_description: 'Invalid access token' });
    const [row] = await t.db('oauth_grants').select('revoked_at');
    expect((row as { revoked_at: unknown }).revoked_at).not.toBeNull();
    expect(t.logger.lines.some((l) => l.includes('code_reused'))).toBe(true);
  });

  it('revokes the refresh token issued from a replayed code too', async () => {
    const { t, clientId, clientSecret, code } = await setup({ enable: ['authorization_code_grant', 'refresh'] });
    const first = await exchange(t, clientId, clientSecret, { code, redirect_uri: REDIRECT });
    await exchange(t, clientId, clientSecret, { code, redirect_uri: REDIRECT });
    const refreshed = await t.agent.post(t.path('/token')).set('Authorization', basic(clientId, clientSecret)).type('form').send({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token });
    expect(refreshed.status).toBe(400);
    expect(refreshed.body.error).toBe('invalid_grant');
  });

  it('gives exactly one 200 to 20 concurrent redemptions of one code, and revokes it (single conditional update)', async () => {
    const { t, clientId, clientSecret, code } = await setup({}, { shared: true });
    const results = await Promise.all(Array.from({ length: 20 }, () => exchange(t, clientId, clientSecret, { code, redirect_uri: REDIRECT })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, ...Array(19).fill(400)]);
    for (const r of results.filter((x) => x.status === 400)) expect(r.body).toEqual(INVALID_GRANT);
    expect(await t.db('oauth_grants').count({ n: '*' }).then((r) => Number((r[0] as { n: unknown }).n))).toBe(1);
    const winner = results.find((r) => r.status === 200)!;
    const me = await t.agent.get('/api/me').set('Authorization', `Bearer ${winner.body.access_token}`);
    expect(me.status).toBe(401);
  });

  it('does not let a public client redeem a code issued without PKCE (RFC 9700 §2.1.1)', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER }, { setup: testLogin });
    const { clientId } = await t.createClient({ redirectUri: [REDIRECT], tokenEndpointAuthMethod: 'none' });
    const code = await obtainCode(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
    const res = await t.agent.post(t.path('/token')).type('form').send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: clientId });
    expect(res.status).toBe(400);
    expect(res.body).toEqual(INVALID_GRANT);
  });

  it('answers unsupported_grant_type for an application not registered for the code grant', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant', 'client_credentials_grant'], issuer: ISSUER }, { setup: testLogin });
    const { clientId, clientSecret } = await t.createClient({ redirectUri: [REDIRECT], grantTypes: ['client_credentials'] });
    const res = await exchange(t, clientId, clientSecret, { code: 'x', redirect_uri: REDIRECT });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'unsupported_grant_type', error_description: 'Invalid grant type' });
  });

  it('beforeToken runs in the exchange transaction: throwing in it leaves the code unredeemed', async () => {
    let fail = true;
    const { t, clientId, clientSecret, code } = await setup({
      beforeToken: () => {
        if (fail) throw new Error('hook failure');
      },
    });
    const res = await exchange(t, clientId, clientSecret, { code, redirect_uri: REDIRECT });
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'server_error', error_description: 'An unexpected error occurred' });
    fail = false;
    const again = await exchange(t, clientId, clientSecret, { code, redirect_uri: REDIRECT });
    expect(again.status).toBe(200);
  });
});
