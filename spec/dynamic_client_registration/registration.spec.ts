import request from 'supertest';
import bcrypt from 'bcrypt';
import { OAuthError } from '../../lib';
import { basic, buildApp, closeAll, MOUNT, type TestApp } from '../support/build_app';
import { expectError } from '../support/expect_oauth_error';

afterAll(closeAll);

const ISSUER = 'https://auth.example';
const FEATURES = ['dynamic_client_registration', 'authorization_code_grant', 'refresh', 'client_credentials_grant'];

async function countApps(t: TestApp): Promise<number> {
  const [{ n }] = (await t.db('oauth_applications').count({ n: '*' })) as [{ n: number | string }];
  return Number(n);
}

describe('dynamic_client_registration › registration', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildApp({ enable: FEATURES, issuer: `${ISSUER}${MOUNT}`, oauthApplicationScopes: ['books.read', 'books.write'], oauthRegistrationGrantTypes: null });
  });
  const register = (body: unknown) => request(t.app).post(t.path('/register')).set('Content-Type', 'application/json').send(JSON.stringify(body));

  it('registers a confidential client: 201 with client_id, client_secret, the registered metadata and the RFC 7592 token and URI (RFC 7591 §3.2.1)', async () => {
    const before = Math.floor(Date.now() / 1000);
    const res = await register({ redirect_uris: ['https://client.example/cb'], client_name: 'Books <b>app</b>', grant_types: ['authorization_code', 'refresh_token'], scope: 'books.read' });
    expect(res.status).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.pragma).toBe('no-cache');
    const { client_id, client_secret, client_id_issued_at, registration_access_token, ...rest } = res.body;
    expect(client_id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    expect(client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(registration_access_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(client_id_issued_at).toBeGreaterThanOrEqual(before);
    expect(rest).toEqual({
      client_secret_expires_at: 0,
      redirect_uris: ['https://client.example/cb'],
      client_name: 'Books <b>app</b>',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      scope: 'books.read',
      registration_client_uri: `${ISSUER}${MOUNT}/register/${client_id}`,
    });
    // Stored: the secret as a bcrypt hash, the registration token as a SHA-256 hash, never as given.
    const row = await t.db('oauth_applications').where({ client_id }).first();
    expect(row.client_secret).not.toBe(client_secret);
    expect(await bcrypt.compare(client_secret, row.client_secret)).toBe(true);
    expect(row.registration_access_token).toHaveLength(43);
    expect(row.registration_access_token).not.toBe(registration_access_token);
    expect(row.name).toBe('Books <b>app</b>');
    // The client works at the token endpoint with its registered method.
    const token = await request(t.app).post(t.path('/token')).set('Authorization', basic(client_id, client_secret)).type('form').send({ grant_type: 'client_credentials' });
    expectError(token, 400, { error: 'unsupported_grant_type', error_description: 'Invalid grant type' });
  });

  it('registers a public client (none) without client_secret or client_secret_expires_at', async () => {
    const res = await register({ redirect_uris: ['http://127.0.0.1:3000/callback'], token_endpoint_auth_method: 'none', client_name: 'CLI' });
    expect(res.status).toBe(201);
    expect(res.body.client_secret).toBeUndefined();
    expect(res.body.client_secret_expires_at).toBeUndefined();
    expect(res.body.token_endpoint_auth_method).toBe('none');
    // RFC 7591 §2 defaults; no scope asked: the server's scopes (oauthRegistrationDefaultScopes null).
    expect(res.body.grant_types).toEqual(['authorization_code']);
    expect(res.body.response_types).toEqual(['code']);
    expect(res.body.scope).toBe('books.read books.write');
    const row = await t.db('oauth_applications').where({ client_id: res.body.client_id }).first();
    expect(row.client_secret).toBeNull();
    expect(row.token_endpoint_auth_method).toBe('none');
  });

  it('names a client without client_name by its client_id, and reports it', async () => {
    const res = await register({ redirect_uris: ['https://client.example/cb'] });
    expect(res.status).toBe(201);
    expect(res.body.client_name).toBe(res.body.client_id);
  });

  it('registers a client_credentials client with no redirect URI and no response type', async () => {
    const res = await register({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_post' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_post' });
    const token = await request(t.app).post(t.path('/token')).type('form').send({ grant_type: 'client_credentials', client_id: res.body.client_id, client_secret: res.body.client_secret, scope: 'books.read' });
    expect(token.status).toBe(200);
    expect(token.body.scope).toBe('books.read');
  });

  it('by default lets a client register only the grants a user consents to: client_credentials is refused, and nothing is written', async () => {
    const u = await buildApp({ enable: FEATURES, oauthApplicationScopes: ['books.read'] });
    const before = (await u.db('oauth_applications').count({ n: '*' })) as [{ n: number | string }];
    const res = await request(u.app).post(u.path('/register')).send({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_post', scope: 'books.read' });
    expectError(res, 400, { error: 'invalid_client_metadata', error_description: "grant_types: 'client_credentials' is not supported (supported: authorization_code, refresh_token)" });
    const after = (await u.db('oauth_applications').count({ n: '*' })) as [{ n: number | string }];
    expect(Number(after[0].n)).toBe(Number(before[0].n));
    const meta = await request(u.app).get(u.path('/.well-known/oauth-authorization-server'));
    expect(meta.body.grant_types_supported).toContain('client_credentials'); // the server still serves it to clients it registered itself
    const ok = await request(u.app).post(u.path('/register')).send({ redirect_uris: ['https://client.example/cb'], grant_types: ['authorization_code', 'refresh_token'] });
    expect(ok.status).toBe(201);
  });

  it('ignores unknown members and software_statement (RFC 7591 §2, §3.1.1)', async () => {
    const res = await register({ redirect_uris: ['https://client.example/cb'], token_endpoint_auth_method: 'none', application_type: 'web', 'client_name#fr': 'Livres', software_statement: 'eyJ.x.y', extra: { a: 1 } });
    expect(res.status).toBe(201);
    expect(res.body).not.toHaveProperty('extra');
    expect(res.body).not.toHaveProperty('software_statement');
  });

  it('advertises registration_endpoint in the metadata (RFC 8414 §2)', async () => {
    const res = await request(t.app).get(t.path('/.well-known/oauth-authorization-server'));
    expect(res.status).toBe(200);
    expect(res.body.registration_endpoint).toBe(`${ISSUER}${MOUNT}/register`);
  });

  it('answers GET /register with 405 and Allow: POST', async () => {
    const res = await request(t.app).get(t.path('/register'));
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST');
  });

  it('follows registerRoute', async () => {
    const u = await buildApp({ enable: FEATURES, registerRoute: 'clients/new' });
    const res = await request(u.app).post(u.path('/clients/new')).set('Content-Type', 'application/json').send({ redirect_uris: ['https://client.example/cb'] });
    expect(res.status).toBe(201);
    const meta = await request(u.app).get(u.path('/.well-known/oauth-authorization-server'));
    expect(meta.body.registration_endpoint).toMatch(/\/clients\/new$/);
  });

  it('accepts a body already parsed by the host app (express.json())', async () => {
    const express = (await import('express')).default;
    const u = await buildApp({ enable: FEATURES }, { setup: (app) => app.use(express.json()) });
    const res = await request(u.app).post(u.path('/register')).send({ redirect_uris: ['https://client.example/cb'], token_endpoint_auth_method: 'none' });
    expect(res.status).toBe(201);
    expect(res.body.token_endpoint_auth_method).toBe('none');
  });

  it('never logs the secret or the registration access token', async () => {
    const res = await register({ redirect_uris: ['https://client.example/cb'] });
    await request(t.app).get(t.path(`/register/${res.body.client_id}`)).set('Authorization', 'Bearer wrong-token-wrong');
    t.logger.assertNoSecrets([res.body.client_secret, res.body.registration_access_token]);
  });
});

describe('dynamic_client_registration › initial access token', () => {
  const TOKEN = 'initial-access-token-0123456789';
  const body = { redirect_uris: ['https://client.example/cb'] };

  it('requires oauthRegistrationInitialAccessToken when set: none → 401 with a bare Bearer challenge, wrong → invalid_token (RFC 7591 §3, RFC 6750 §3)', async () => {
    const t = await buildApp({ enable: FEATURES, oauthRegistrationInitialAccessToken: TOKEN });
    const before = await countApps(t);
    const none = await request(t.app).post(t.path('/register')).send(body);
    expectError(none, 401, { error: 'invalid_token' });
    expect(none.headers['www-authenticate']).toBe('Bearer realm="oauth"');
    const wrong = await request(t.app).post(t.path('/register')).set('Authorization', `Bearer ${TOKEN}x`).send(body);
    expectError(wrong, 401, { error: 'invalid_token', error_description: 'Invalid initial access token' });
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="oauth", error="invalid_token", error_description="Invalid initial access token"');
    const malformed = await request(t.app).post(t.path('/register')).set('Authorization', 'Bearer a b').send(body);
    expectError(malformed, 401, { error: 'invalid_token', error_description: 'Invalid initial access token' });
    expect(await countApps(t)).toBe(before);
    const ok = await request(t.app).post(t.path('/register')).set('Authorization', `bearer ${TOKEN}`).send(body);
    expect(ok.status).toBe(201);
  });

  it('lets registrationInitialAccessTokenValid decide (here: tokens of a partner list)', async () => {
    const seen: (string | null)[] = [];
    const t = await buildApp({
      enable: FEATURES,
      registrationInitialAccessTokenValid: async (_ctx: unknown, token: string | null) => {
        seen.push(token);
        return token === 'partner-a' || token === 'partner-b';
      },
    });
    expect((await request(t.app).post(t.path('/register')).set('Authorization', 'Bearer partner-b').send(body)).status).toBe(201);
    expectError(await request(t.app).post(t.path('/register')).send(body), 401, { error: 'invalid_token' });
    expect(seen).toEqual(['partner-b', null]);
  });

  it('refuses a too short initial access token at start-up', async () => {
    await expect(buildApp({ enable: FEATURES, oauthRegistrationInitialAccessToken: 'short' })).rejects.toThrow(/oauthRegistrationInitialAccessToken' is too short/);
  });
});

describe('dynamic_client_registration › rate limit', () => {
  const body = { redirect_uris: ['https://client.example/cb'] };

  it('answers 429 temporarily_unavailable with Retry-After beyond oauthRegistrationRateLimit, per source, until the window ends', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const t = await buildApp({ enable: FEATURES, oauthRegistrationRateLimit: { max: 2, windowSeconds: 60 }, now: () => new Date(now) });
    t.app.set('trust proxy', true);
    const post = (ip: string) => request(t.app).post(t.path('/register')).set('X-Forwarded-For', ip).send(body);
    expect((await post('198.51.100.1')).status).toBe(201);
    now += 10_000;
    expect((await post('198.51.100.1')).status).toBe(201);
    const before = await countApps(t);
    const limited = await post('198.51.100.1');
    expectError(limited, 429, { error: 'temporarily_unavailable', error_description: 'Too many registration requests, try again later' });
    expect(limited.headers['retry-after']).toBe('50');
    expect(await countApps(t)).toBe(before);
    // Another source is counted apart; an IPv6 /64 counts as one source.
    expect((await post('198.51.100.2')).status).toBe(201);
    expect((await post('2001:db8::1')).status).toBe(201);
    expect((await post('2001:db8::2')).status).toBe(201);
    expect((await post('2001:db8::3')).status).toBe(429);
    now += 50_000;
    expect((await post('198.51.100.1')).status).toBe(201);
  });

  it('refuses a malformed oauthRegistrationRateLimit at start-up', async () => {
    await expect(buildApp({ enable: FEATURES, oauthRegistrationRateLimit: { max: 0, windowSeconds: 60 } })).rejects.toThrow(/oauthRegistrationRateLimit/);
  });
});

describe('dynamic_client_registration › hooks', () => {
  const body = { redirect_uris: ['https://client.example/cb'], client_name: 'Hooked' };

  it('beforeRegister can refuse with invalid_client_metadata and its own message; nothing is written', async () => {
    const t = await buildApp({
      enable: FEATURES,
      beforeRegister: (ctx: { clientMetadata?: { redirectUris: string[] } }) => {
        if (!ctx.clientMetadata!.redirectUris.every((u) => u.startsWith('https://partner.example/'))) throw new OAuthError('invalid_client_metadata', 'Only partner.example may register');
      },
    });
    const before = await countApps(t);
    expectError(await request(t.app).post(t.path('/register')).send(body), 400, { error: 'invalid_client_metadata', error_description: 'Only partner.example may register' });
    expect(await countApps(t)).toBe(before);
    const ok = await request(t.app).post(t.path('/register')).send({ redirect_uris: ['https://partner.example/cb'] });
    expect(ok.status).toBe(201);
  });

  it('beforeRegister can change the metadata, which is validated again', async () => {
    const t = await buildApp({
      enable: FEATURES,
      beforeRegister: (ctx: { clientMetadata?: Record<string, unknown> }) => {
        const m = ctx.clientMetadata!;
        ctx.clientMetadata = { ...m, clientName: `${String(m.clientName)} (unverified)`, grantTypes: ['authorization_code'] };
      },
    });
    const res = await request(t.app).post(t.path('/register')).send({ ...body, grant_types: ['authorization_code', 'refresh_token'] });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ client_name: 'Hooked (unverified)', grant_types: ['authorization_code'] });

    const bad = await buildApp({
      enable: FEATURES,
      beforeRegister: (ctx: { clientMetadata?: Record<string, unknown> }) => {
        ctx.clientMetadata = { ...ctx.clientMetadata!, redirectUris: ['http://evil.example/cb'] };
      },
    });
    const before = await countApps(bad);
    const refused = await request(bad.app).post(bad.path('/register')).send(body);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_redirect_uri');
    expect(await countApps(bad)).toBe(before);
  });

  it('afterRegister runs in the transaction: throwing there rolls the new client back', async () => {
    let seen: string | undefined;
    const t = await buildApp({
      enable: FEATURES,
      afterRegister: (ctx: { application?: { clientId: string } }) => {
        seen = ctx.application!.clientId;
        throw new OAuthError('access_denied', 'Registration closed');
      },
    });
    const before = await countApps(t);
    expectError(await request(t.app).post(t.path('/register')).send(body), 400, { error: 'access_denied', error_description: 'Registration closed' });
    expect(seen).toBeDefined();
    expect(await countApps(t)).toBe(before);
    expect(await t.db('oauth_applications').where({ client_id: seen! }).first()).toBeUndefined();
  });

  it('beforeRegisterRoute runs first, even before the initial access token', async () => {
    const t = await buildApp({ enable: FEATURES, oauthRegistrationInitialAccessToken: 'initial-access-token-0123456789', beforeRegisterRoute: () => { throw new OAuthError('access_denied', 'Closed'); } });
    expectError(await request(t.app).post(t.path('/register')).send(body), 400, { error: 'access_denied', error_description: 'Closed' });
  });
});
