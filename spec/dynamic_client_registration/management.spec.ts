import request from 'supertest';
import { OAuthError } from '../../lib';
import { basic, buildApp, closeAll, MOUNT, type TestApp } from '../support/build_app';
import { expectError } from '../support/expect_oauth_error';
import { insertGrant, reloadGrant } from '../support/token_fixtures';

afterAll(closeAll);

const ISSUER = 'https://auth.example';
const FEATURES = ['dynamic_client_registration', 'authorization_code_grant', 'refresh', 'client_credentials_grant'];
const INVALID = { error: 'invalid_token', error_description: 'Invalid registration access token' };

type Registered = { client_id: string; client_secret?: string; registration_access_token: string; registration_client_uri: string } & Record<string, unknown>;

describe('dynamic_client_registration › management (RFC 7592)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildApp({ enable: FEATURES, issuer: `${ISSUER}${MOUNT}`, oauthApplicationScopes: ['books.read', 'books.write'], oauthRegistrationGrantTypes: null });
  });
  const register = async (body: Record<string, unknown> = {}): Promise<Registered> => {
    const res = await request(t.app).post(t.path('/register')).send({ redirect_uris: ['https://client.example/cb'], client_name: 'Managed', ...body });
    expect(res.status).toBe(201);
    return res.body as Registered;
  };
  const uri = (r: Registered) => t.path(`/register/${encodeURIComponent(r.client_id)}`);

  it('GET returns the current registration without the secret (§2.1: stored hashed, it cannot be shown), with the token presented (§3), not rotated', async () => {
    const r = await register({ scope: 'books.read', contacts: ['ops@client.example'] });
    expect(r.registration_client_uri).toBe(`${ISSUER}${MOUNT}/register/${r.client_id}`);
    const res = await request(t.app).get(uri(r)).set('Authorization', `Bearer ${r.registration_access_token}`);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const { client_secret: _s, ...expected } = r;
    expect(res.body).toEqual(expected);
    expect(res.body.client_secret).toBeUndefined();
    expect(res.body.registration_access_token).toBe(r.registration_access_token);
    expect((await request(t.app).get(uri(r)).set('Authorization', `Bearer ${r.registration_access_token}`)).status).toBe(200);
  });

  it('refuses a missing, wrong or other client\'s token, and an unknown client, with the same 401 invalid_token', async () => {
    const a = await register();
    const b = await register();
    const none = await request(t.app).get(uri(a));
    expectError(none, 401, { error: 'invalid_token' });
    expect(none.headers['www-authenticate']).toBe('Bearer realm="oauth"');
    const wrong = await request(t.app).get(uri(a)).set('Authorization', 'Bearer not-the-token');
    expectError(wrong, 401, INVALID);
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="oauth", error="invalid_token", error_description="Invalid registration access token"');
    expectError(await request(t.app).get(uri(a)).set('Authorization', `Bearer ${b.registration_access_token}`), 401, INVALID);
    expectError(await request(t.app).get(t.path('/register/no-such-client')).set('Authorization', `Bearer ${a.registration_access_token}`), 401, INVALID);
    expectError(await request(t.app).delete(uri(a)).set('Authorization', `Bearer ${b.registration_access_token}`), 401, INVALID);
    expectError(await request(t.app).put(uri(a)).set('Authorization', `Bearer ${b.registration_access_token}`).send({ client_id: a.client_id, redirect_uris: ['https://evil.example/cb'] }), 401, INVALID);
    // A client created by createApplication() has no registration access token at all.
    const admin = await t.createClient();
    expectError(await request(t.app).get(t.path(`/register/${admin.clientId}`)).set('Authorization', `Bearer ${a.registration_access_token}`), 401, INVALID);
    // Nothing changed.
    const still = await request(t.app).get(uri(a)).set('Authorization', `Bearer ${a.registration_access_token}`);
    expect(still.body.redirect_uris).toEqual(['https://client.example/cb']);
  });

  it('PUT replaces the registration: omitted fields reset to their defaults, the token rotates (§2.2)', async () => {
    const r = await register({ scope: 'books.read', contacts: ['ops@client.example'], logo_uri: 'https://client.example/logo.png', grant_types: ['authorization_code', 'refresh_token'] });
    const res = await request(t.app)
      .put(uri(r))
      .set('Authorization', `Bearer ${r.registration_access_token}`)
      .send({ client_id: r.client_id, redirect_uris: ['https://client.example/new-cb'], client_name: 'Renamed' });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({
      client_id: r.client_id,
      client_id_issued_at: r.client_id_issued_at,
      client_secret_expires_at: 0,
      redirect_uris: ['https://client.example/new-cb'],
      client_name: 'Renamed',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      scope: 'books.read books.write',
      registration_access_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      registration_client_uri: r.registration_client_uri,
    });
    expect(res.body.registration_access_token).not.toBe(r.registration_access_token);
    // The old token is retired, the new one works; the secret is unchanged.
    expectError(await request(t.app).get(uri(r)).set('Authorization', `Bearer ${r.registration_access_token}`), 401, INVALID);
    expect((await request(t.app).get(uri(r)).set('Authorization', `Bearer ${res.body.registration_access_token}`)).status).toBe(200);
    const row = await t.db('oauth_applications').where({ client_id: r.client_id }).first();
    expect(row.logo_uri).toBeNull();
    expect(row.contacts).toBeNull();
    const token = await request(t.app).post(t.path('/token')).set('Authorization', basic(r.client_id, r.client_secret!)).type('form').send({ grant_type: 'refresh_token', refresh_token: 'x' });
    expectError(token, 400, { error: 'unsupported_grant_type', error_description: 'Invalid grant type' });
  });

  it('PUT keeps the token with oauthRegistrationRotateAccessToken: false', async () => {
    const u = await buildApp({ enable: FEATURES, oauthRegistrationRotateAccessToken: false });
    const r = (await request(u.app).post(u.path('/register')).send({ redirect_uris: ['https://client.example/cb'] })).body as Registered;
    const res = await request(u.app).put(u.path(`/register/${r.client_id}`)).set('Authorization', `Bearer ${r.registration_access_token}`).send({ client_id: r.client_id, redirect_uris: ['https://client.example/cb2'] });
    expect(res.status).toBe(200);
    expect(res.body.registration_access_token).toBe(r.registration_access_token);
    expect((await request(u.app).get(u.path(`/register/${r.client_id}`)).set('Authorization', `Bearer ${r.registration_access_token}`)).body.redirect_uris).toEqual(['https://client.example/cb2']);
  });

  it('PUT from none to a secret method issues a secret, returned once', async () => {
    const r = await register({ token_endpoint_auth_method: 'none' });
    expect(r.client_secret).toBeUndefined();
    const res = await request(t.app).put(uri(r)).set('Authorization', `Bearer ${r.registration_access_token}`).send({ client_id: r.client_id, redirect_uris: ['https://client.example/cb'], token_endpoint_auth_method: 'client_secret_post' });
    expect(res.status).toBe(200);
    expect(res.body.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(res.body.client_secret_expires_at).toBe(0);
    const token = await request(t.app).post(t.path('/token')).type('form').send({ grant_type: 'authorization_code', code: 'x', client_id: r.client_id, client_secret: res.body.client_secret, redirect_uri: 'https://client.example/cb' });
    expectError(token, 400, { error: 'invalid_grant', error_description: 'Invalid grant' });
  });

  it('PUT refuses a body whose client_id is missing or another, or with a wrong client_secret, and a bad metadata, changing nothing', async () => {
    const r = await register();
    const put = (body: Record<string, unknown>) => request(t.app).put(uri(r)).set('Authorization', `Bearer ${r.registration_access_token}`).send(body);
    expectError(await put({ redirect_uris: ['https://client.example/x'] }), 400, { error: 'invalid_client_metadata', error_description: 'client_id must be included and be the client_id of this registration (RFC 7592 section 2.2)' });
    expectError(await put({ client_id: 'other', redirect_uris: ['https://client.example/x'] }), 400, { error: 'invalid_client_metadata', error_description: 'client_id must be included and be the client_id of this registration (RFC 7592 section 2.2)' });
    expectError(await put({ client_id: r.client_id, client_secret: 'guess', redirect_uris: ['https://client.example/x'] }), 400, { error: 'invalid_client_metadata', error_description: 'client_secret, when included, must be the current client secret (RFC 7592 section 2.2)' });
    expectError(await put({ client_id: r.client_id, redirect_uris: ['https://client.example/x#f'] }), 400, { error: 'invalid_redirect_uri', error_description: 'redirect_uris[0] must not have a fragment' });
    expectError(await request(t.app).put(uri(r)).set('Authorization', `Bearer ${r.registration_access_token}`).type('form').send('client_id=x'), 400, { error: 'invalid_client_metadata', error_description: 'The registration request must be a JSON object (application/json)' });
    // The current secret is accepted; and the token was not rotated by the refused requests.
    const ok = await put({ client_id: r.client_id, client_secret: r.client_secret, redirect_uris: ['https://client.example/y'] });
    expect(ok.status).toBe(200);
    expect(ok.body.redirect_uris).toEqual(['https://client.example/y']);
  });

  it('PUT runs beforeRegister with the current client in ctx.application', async () => {
    const seen: (string | undefined)[] = [];
    const u = await buildApp({
      enable: FEATURES,
      beforeRegister: (ctx: { application?: { clientId: string }; clientMetadata?: { redirectUris: string[] } }) => {
        seen.push(ctx.application?.clientId);
        if (ctx.clientMetadata!.redirectUris.some((x) => x.includes('evil'))) throw new OAuthError('invalid_client_metadata', 'Not there');
      },
    });
    const r = (await request(u.app).post(u.path('/register')).send({ redirect_uris: ['https://client.example/cb'] })).body as Registered;
    const res = await request(u.app).put(u.path(`/register/${r.client_id}`)).set('Authorization', `Bearer ${r.registration_access_token}`).send({ client_id: r.client_id, redirect_uris: ['https://evil.example/cb'] });
    expectError(res, 400, { error: 'invalid_client_metadata', error_description: 'Not there' });
    expect(seen).toEqual([undefined, r.client_id]);
    const row = await u.db('oauth_applications').where({ client_id: r.client_id }).first();
    expect(row.redirect_uri).toBe('https://client.example/cb');
  });

  it('DELETE revokes the client\'s grants and deletes it: 204, then 401 (§2.3)', async () => {
    const r = await register();
    const app = await t.db('oauth_applications').where({ client_id: r.client_id }).first();
    const grant = await insertGrant(t, { applicationId: app.id });
    const me = await request(t.app).get('/api/me').set('Authorization', `Bearer ${grant.accessToken}`);
    expect(me.status).toBe(200);
    const res = await request(t.app).delete(uri(r)).set('Authorization', `Bearer ${r.registration_access_token}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(await t.db('oauth_applications').where({ client_id: r.client_id }).first()).toBeUndefined();
    expect(await reloadGrant(t, grant.grant.id).catch(() => undefined)).toBeUndefined();
    expect((await request(t.app).get('/api/me').set('Authorization', `Bearer ${grant.accessToken}`)).status).toBe(401);
    expectError(await request(t.app).get(uri(r)).set('Authorization', `Bearer ${r.registration_access_token}`), 401, INVALID);
  });

  it('answers other methods on the client URI with 405 and Allow', async () => {
    const r = await register();
    const res = await request(t.app).post(uri(r)).set('Authorization', `Bearer ${r.registration_access_token}`).send({});
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD, PUT, DELETE');
  });
});
