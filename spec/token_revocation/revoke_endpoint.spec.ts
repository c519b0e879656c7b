import request from 'supertest';
import { sha256 } from '../../lib/crypto';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { expectError } from '../support/expect_oauth_error';
import { clientCredentialsToken, insertGrant, reloadGrant, storeOf } from '../support/token_fixtures';

afterAll(closeAll);

type Client = { clientId: string; clientSecret: string; id: number };

const UNAUTHORIZED_CLIENT = { error: 'unauthorized_client', error_description: 'You are not authorized to revoke this token' };

function revoke(t: TestApp, client: Client, form: Record<string, string>): request.Test {
  return request(t.app).post(t.path('/revoke')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send(form);
}

function expectEmpty200(res: request.Response): void {
  expect(res.status).toBe(200);
  expect(res.text).toBe('');
  expect(res.headers['content-length']).toBe('0');
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers.pragma).toBe('no-cache');
}

async function bearerStatus(t: TestApp, token: string): Promise<number> {
  return (await request(t.app).get('/api/me').set('Authorization', `Bearer ${token}`)).status;
}

describe('token_revocation › revoke_endpoint', () => {
  let t: TestApp;
  let client: Client;
  let other: Client;
  let clock: Date;

  beforeAll(async () => {
    clock = new Date('2030-01-01T00:00:00Z');
    t = await buildApp({ enable: ['token_revocation', 'client_credentials_grant'], now: () => clock });
    client = await t.createClient();
    other = await t.createClient({ name: 'Other client' });
  });

  it('revokes an access token of the calling client with an empty 200 and no-store headers; the token stops working (RFC 7009 §2.1, §2.2)', async () => {
    const token = await clientCredentialsToken(t, client, 'books.read');
    expect(await bearerStatus(t, token)).toBe(200);
    expectEmpty200(await revoke(t, client, { token, token_type_hint: 'access_token' }));
    expect(await bearerStatus(t, token)).toBe(401);
    const grant = await storeOf(t).grants.findByTokenHash(sha256(token));
    expect(grant?.revokedAt).toEqual(clock);
  });

  it('revoking a refresh token revokes the access token of its grant too (RFC 7009 §2.1)', async () => {
    const { grant, accessToken, refreshToken } = await insertGrant(t, { applicationId: client.id, createdAt: clock });
    expect(await bearerStatus(t, accessToken!)).toBe(200);
    expectEmpty200(await revoke(t, client, { token: refreshToken!, token_type_hint: 'refresh_token' }));
    expect(await bearerStatus(t, accessToken!)).toBe(401);
    expect((await reloadGrant(t, grant.id)).revokedAt).toEqual(clock);
  });

  it('revoking an access token ends the refresh token of the same grant (RFC 7009 §2.1: MAY)', async () => {
    const { grant, accessToken, refreshToken } = await insertGrant(t, { applicationId: client.id, createdAt: clock });
    expectEmpty200(await revoke(t, client, { token: accessToken! }));
    const byRefresh = await storeOf(t).grants.findByRefreshTokenHash(sha256(refreshToken!));
    expect(byRefresh?.id).toBe(grant.id);
    expect(byRefresh?.revokedAt).toEqual(clock);
  });

  it('finds an access token sent with token_type_hint=refresh_token (RFC 7009 §2.1: the search extends to every type)', async () => {
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id, createdAt: clock, refreshToken: false });
    expectEmpty200(await revoke(t, client, { token: accessToken!, token_type_hint: 'refresh_token' }));
    expect((await reloadGrant(t, grant.id)).revokedAt).toEqual(clock);
  });

  it('finds a refresh token sent with token_type_hint=access_token (RFC 7009 §2.1)', async () => {
    const { grant, refreshToken } = await insertGrant(t, { applicationId: client.id, createdAt: clock });
    expectEmpty200(await revoke(t, client, { token: refreshToken!, token_type_hint: 'access_token' }));
    expect((await reloadGrant(t, grant.id)).revokedAt).toEqual(clock);
  });

  it('ignores an unknown token_type_hint value and still revokes the token (RFC 7009 §2.1: the server MAY ignore the hint)', async () => {
    const { grant, refreshToken } = await insertGrant(t, { applicationId: client.id, createdAt: clock });
    expectEmpty200(await revoke(t, client, { token: refreshToken!, token_type_hint: 'urn:example:unknown' }));
    expect((await reloadGrant(t, grant.id)).revokedAt).toEqual(clock);
  });

  it('answers an unknown token with the same empty 200 and changes nothing (RFC 7009 §2.2)', async () => {
    const { grant } = await insertGrant(t, { applicationId: client.id, createdAt: clock });
    expectEmpty200(await revoke(t, client, { token: 'not-a-token-we-issued' }));
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
  });

  it('answers an already revoked token with 200 and keeps the first revocation time (RFC 7009 §2.2)', async () => {
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id, createdAt: clock });
    expectEmpty200(await revoke(t, client, { token: accessToken! }));
    const first = clock;
    clock = new Date(clock.getTime() + 60_000);
    expectEmpty200(await revoke(t, client, { token: accessToken! }));
    expect((await reloadGrant(t, grant.id)).revokedAt).toEqual(first);
  });

  it("refuses to revoke a token issued to another client with 400 unauthorized_client, and the token stays valid (RFC 7009 §2.1, design.md §4.9)", async () => {
    const token = await clientCredentialsToken(t, other);
    const res = await revoke(t, client, { token });
    expectError(res, 400, UNAUTHORIZED_CLIENT);
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(await bearerStatus(t, token)).toBe(200);
    const { grant, refreshToken } = await insertGrant(t, { applicationId: other.id, createdAt: clock });
    expectError(await revoke(t, client, { token: refreshToken!, token_type_hint: 'refresh_token' }), 400, UNAUTHORIZED_CLIENT);
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
    expect(t.logger.lines[t.logger.lines.length - 1]).toMatch(/^info unauthorized_client \(token_client_mismatch\) /);
    // The owner can still revoke it.
    expectEmpty200(await revoke(t, other, { token: refreshToken!, token_type_hint: 'refresh_token' }));
    expect((await reloadGrant(t, grant.id)).revokedAt).toEqual(clock);
  });

  it("refuses another client's token whatever its state: revoked or expired, so the refusal tells nothing of it (RFC 7009 §2.1)", async () => {
    const { grant, accessToken } = await insertGrant(t, { applicationId: other.id, createdAt: clock });
    expectEmpty200(await revoke(t, other, { token: accessToken! }));
    expectError(await revoke(t, client, { token: accessToken! }), 400, UNAUTHORIZED_CLIENT);
    expect((await reloadGrant(t, grant.id)).revokedAt).toEqual(clock);
    const expired = await insertGrant(t, { applicationId: other.id, createdAt: clock, expiresIn: new Date(clock.getTime() - 1000), refreshToken: false });
    expectError(await revoke(t, client, { token: expired.accessToken! }), 400, UNAUTHORIZED_CLIENT);
    expect((await reloadGrant(t, expired.grant.id)).revokedAt).toBeNull();
  });

  it('takes the unauthorized_client description from oauthRevokeUnauthorizedClientMessage, a constant or a function of the request', async () => {
    for (const message of ['Not your token', () => 'Not yours either']) {
      const u = await buildApp({ enable: ['token_revocation', 'client_credentials_grant'], oauthRevokeUnauthorizedClientMessage: message });
      const [a, b] = [await u.createClient(), await u.createClient({ name: 'B' })];
      const token = await clientCredentialsToken(u, b);
      const res = await revoke(u, a, { token });
      expectError(res, 400, { error: 'unauthorized_client', error_description: typeof message === 'string' ? message : message() });
      expect(await bearerStatus(u, token)).toBe(200);
    }
  });

  it('never revokes through an authorization code: only access and refresh tokens are revocable here (RFC 7009 §2)', async () => {
    const { grant, code } = await insertGrant(t, { applicationId: client.id, createdAt: clock, accessToken: false, refreshToken: false, code: true });
    expectEmpty200(await revoke(t, client, { token: code! }));
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
  });

  it('accepts client_secret_post and a JSON body (RFC 7009 §2.1, RFC 6749 §2.3.1)', async () => {
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id, createdAt: clock });
    const res = await request(t.app).post(t.path('/revoke')).send({ token: accessToken, client_id: client.clientId, client_secret: client.clientSecret });
    expectEmpty200(res);
    expect((await reloadGrant(t, grant.id)).revokedAt).toEqual(clock);
  });

  it('lets a public client revoke its own token with its client_id alone (RFC 7009 §2.1, §5)', async () => {
    const pub = await t.createClient({ name: 'Public client', tokenEndpointAuthMethod: 'none' });
    const { grant, refreshToken } = await insertGrant(t, { applicationId: pub.id, createdAt: clock });
    const res = await request(t.app).post(t.path('/revoke')).type('form').send({ client_id: pub.clientId, token: refreshToken });
    expectEmpty200(res);
    expect((await reloadGrant(t, grant.id)).revokedAt).toEqual(clock);
  });

  it('never logs the presented token or the client secret (design.md §4.11)', async () => {
    const token = await clientCredentialsToken(t, client);
    const res = await request(t.app).post(t.path('/revoke')).set('Authorization', basic(client.clientId, 'wrong-secret')).type('form').send({ token });
    expect(res.status).toBe(401);
    expectEmpty200(await revoke(t, client, { token }));
    expect(t.logger.lines.length).toBeGreaterThan(0);
    t.logger.assertNoSecrets([token, client.clientSecret, 'wrong-secret']);
  });
});
