import { afterAll, describe, expect, it } from '@jest/globals';
import { basic, buildApp, closeAll } from '../support/build_app';
import { createGrant, reloadGrant } from '../support/grants';
import { INVALID_REFRESH_TOKEN, INVALID_TOKEN, expectNoStore, me, refresh } from './helpers';

afterAll(closeAll);

describe('refresh › token_endpoint', () => {
  it('exchanges a refresh token for a new access token and refresh token (RFC 6749 §6, §5.1)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { refreshToken, accessToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(200);
    expectNoStore(res);
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, refresh_token: expect.any(String), scope: 'books.read books.write' });
    expect(res.body.access_token).not.toBe(accessToken);
    expect(res.body.refresh_token).not.toBe(refreshToken);
    const api = await t.agent.get('/api/books').set('Authorization', `Bearer ${res.body.access_token}`);
    expect(api.status).toBe(200);
    expect(api.body).toEqual({ books: [], scopes: ['books.read', 'books.write'] });
  });

  it('invalidates the previous access token of the grant, which holds one access token at a time', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { refreshToken, accessToken } = await createGrant(t, { applicationId: client.id });
    expect((await refresh(t, client, refreshToken)).status).toBe(200);
    const old = await me(t, accessToken);
    expect(old.status).toBe(401);
    expect(old.body).toEqual(INVALID_TOKEN);
  });

  it('stores only hashes: neither token appears in the grant row', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, client, refreshToken);
    const rows = JSON.stringify(await t.db('oauth_grants').where('id', grant.id));
    expect(rows).not.toContain(res.body.access_token);
    expect(rows).not.toContain(res.body.refresh_token);
    const retired = JSON.stringify(await t.db('oauth_retired_refresh_tokens'));
    expect(retired).not.toContain(refreshToken);
  });

  it('uses the overridable access token lifetime and token type', async () => {
    const t = await buildApp({ enable: ['refresh'], oauthAccessTokenExpiresIn: 120 });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const before = Date.now();
    const res = await refresh(t, client, refreshToken);
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 120, refresh_token: expect.any(String), scope: 'books.read books.write' });
    const stored = await reloadGrant(t, grant.id);
    expect(stored.expiresIn.getTime()).toBeGreaterThanOrEqual(before + 120_000 - 1000);
    expect(stored.expiresIn.getTime()).toBeLessThanOrEqual(Date.now() + 120_000 + 1000);
  });

  it('answers invalid_request when refresh_token is missing (RFC 6749 §5.2)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const res = await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(client.clientId, client.clientSecret)).send({ grant_type: 'refresh_token' });
    expect(res.status).toBe(400);
    expectNoStore(res);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: expect.stringContaining('refresh_token') });
  });

  it('answers invalid_grant for an unknown refresh token (RFC 6749 §5.2)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const res = await refresh(t, client, 'not-a-real-refresh-token');
    expect(res.status).toBe(400);
    expectNoStore(res);
    expect(res.body).toEqual(INVALID_REFRESH_TOKEN);
  });

  it.each([
    ['non-ASCII characters', 'réfresh\u{1F600}'],
    ['a very long value', 'x'.repeat(16 * 1024)],
    ['spaces and quotes', `" OR 1=1 --`],
  ])('answers invalid_grant, never a 500, for a malformed refresh token (%s)', async (_name, token) => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const res = await refresh(t, client, token);
    expect(res.status).toBe(400);
    expect(res.body).toEqual(INVALID_REFRESH_TOKEN);
  });

  it('answers invalid_request for a refresh token with a control character (the parameter itself is malformed)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const res = await refresh(t, client, 'ab\u0000cd');
    expect(res.status).toBe(400);
    expectNoStore(res);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: "Parameter 'refresh_token' is malformed" });
  });

  it('answers invalid_grant for an expired refresh token and leaves the grant untouched', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { grant, refreshToken, accessToken } = await createGrant(t, { applicationId: client.id, refreshTokenExpiresIn: new Date(Date.now() - 1000) });
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(400);
    expect(res.body).toEqual(INVALID_REFRESH_TOKEN);
    const stored = await reloadGrant(t, grant.id);
    expect(stored.revokedAt).toBeNull();
    expect((await me(t, accessToken)).status).toBe(200);
  });

  it('answers invalid_grant for the refresh token of a revoked grant', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id, revokedAt: new Date() });
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(400);
    expect(res.body).toEqual(INVALID_REFRESH_TOKEN);
  });

  it('answers invalid_grant once the refresh token is revoked at the revocation endpoint (RFC 7009 §2.1)', async () => {
    const t = await buildApp({ enable: ['refresh', 'token_revocation'] });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const revoked = await t.agent.post(t.path('/revoke')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ token: refreshToken, token_type_hint: 'refresh_token' });
    expect(revoked.status).toBe(200);
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(400);
    expect(res.body).toEqual(INVALID_REFRESH_TOKEN);
  });

  it("answers another client's refresh token like an unknown one, and leaves it usable by its owner (RFC 6749 §10.4)", async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const owner = await t.createClient();
    const other = await t.createClient({ name: 'Other client' });
    const { grant, refreshToken } = await createGrant(t, { applicationId: owner.id });
    const res = await refresh(t, other, refreshToken);
    expect(res.status).toBe(400);
    expectNoStore(res);
    expect(res.body).toEqual(INVALID_REFRESH_TOKEN);
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
    expect((await refresh(t, owner, refreshToken)).status).toBe(200);
  });

  it('authenticates the client first: a wrong secret is 401 invalid_client and the token stays usable (RFC 6749 §6)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, { clientId: client.clientId, clientSecret: 'wrong-secret' }, refreshToken);
    expect(res.status).toBe(401);
    expectNoStore(res);
    expect(res.headers['www-authenticate']).toBe('Basic realm="oauth"');
    expect(res.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
    expect((await refresh(t, client, refreshToken)).status).toBe(200);
  });

  it('does not let a confidential client refresh with client_id alone (no PKCE-style bypass)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, { clientId: client.clientId, clientSecret: '' }, refreshToken);
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
  });

  it('refuses the grant type for a client not registered for refresh_token (unsupported_grant_type)', async () => {
    const t = await buildApp({ enable: ['refresh', 'client_credentials_grant'] });
    const client = await t.createClient({ grantTypes: ['client_credentials'] });
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'unsupported_grant_type', error_description: 'Invalid grant type' });
  });

  it('is not offered when the refresh feature is disabled (unsupported_grant_type)', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'unsupported_grant_type', error_description: 'Invalid grant type' });
  });

  it('lets a public client refresh with its client_id (authentication method none)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient({ tokenEndpointAuthMethod: 'none' });
    expect(client.clientSecret).toBe('');
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, refresh_token: expect.any(String), scope: 'books.read books.write' });
  });

  it('accepts a JSON body', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await t.agent
      .post(t.path('/token'))
      .set('Authorization', basic(client.clientId, client.clientSecret))
      .send({ grant_type: 'refresh_token', refresh_token: refreshToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, refresh_token: expect.any(String), scope: 'books.read books.write' });
  });

  it('rejects a repeated refresh_token parameter with invalid_request (RFC 6749 §3.2)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await t.agent
      .post(t.path('/token'))
      .type('form')
      .set('Authorization', basic(client.clientId, client.clientSecret))
      .send(`grant_type=refresh_token&refresh_token=${refreshToken}&refresh_token=${refreshToken}`);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: expect.any(String) });
  });

  it('never logs the refresh token, the new tokens or the client secret', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const ok = await refresh(t, client, refreshToken);
    const reused = await refresh(t, client, refreshToken);
    expect(reused.status).toBe(400);
    await refresh(t, client, 'unknown-token-value');
    expect(t.logger.lines.length).toBeGreaterThan(0);
    t.logger.assertNoSecrets([refreshToken, ok.body.access_token, ok.body.refresh_token, client.clientSecret, 'unknown-token-value']);
  });
});

describe('refresh › token_confusion', () => {
  it('refuses a refresh token sent as a bearer access token with 401 invalid_token (RFC 6750 §3.1)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await t.agent.get('/api/books').set('Authorization', `Bearer ${refreshToken}`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="invalid_token", error_description="Invalid access token"');
    expect(res.body).toEqual(INVALID_TOKEN);
  });

  it('refuses an access token sent as refresh_token with invalid_grant', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { grant, accessToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, client, accessToken);
    expect(res.status).toBe(400);
    expect(res.body).toEqual(INVALID_REFRESH_TOKEN);
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
    expect((await me(t, accessToken)).status).toBe(200);
  });
});

describe('refresh › metadata', () => {
  it('lists refresh_token in grant_types_supported (RFC 8414 §2)', async () => {
    const t = await buildApp({ enable: ['refresh', 'client_credentials_grant'] });
    const res = await t.agent.get(t.path('/.well-known/oauth-authorization-server'));
    expect(res.status).toBe(200);
    expect(res.body.grant_types_supported).toEqual(['refresh_token', 'client_credentials']);
  });

  it('does not list refresh_token when the feature is off', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const res = await t.agent.get(t.path('/.well-known/oauth-authorization-server'));
    expect(res.body.grant_types_supported).toEqual(['client_credentials']);
  });
});
