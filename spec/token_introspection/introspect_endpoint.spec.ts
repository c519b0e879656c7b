import request from 'supertest';
import { basic, buildApp, closeAll, MOUNT, type TestApp } from '../support/build_app';
import { clientCredentialsToken, insertGrant, storeOf } from '../support/token_fixtures';

afterAll(closeAll);

type Client = { clientId: string; clientSecret: string; id: number };

const ISSUER = 'https://auth.example.com';
const T0 = new Date('2030-01-01T00:00:00Z');
const s = (d: Date) => Math.floor(d.getTime() / 1000);
const plus = (d: Date, seconds: number) => new Date(d.getTime() + seconds * 1000);

function introspect(t: TestApp, client: Client, form: Record<string, string>): request.Test {
  return request(t.app).post(t.path('/introspect')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send(form);
}

function expectJson200(res: request.Response, body: Record<string, unknown>): void {
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers.pragma).toBe('no-cache');
  expect(res.body).toEqual(body);
}

const INACTIVE = { active: false };

describe('token_introspection › introspect_endpoint', () => {
  let t: TestApp;
  let client: Client;
  let clock: Date;

  beforeAll(async () => {
    clock = T0;
    t = await buildApp({ enable: ['token_introspection', 'client_credentials_grant'], issuer: ISSUER, now: () => clock });
    client = await t.createClient({ name: 'Books app' });
  });
  afterEach(() => {
    clock = T0;
  });

  it('describes an active client-credentials access token: its client as sub and aud, the app name as username (RFC 7662 §2.2)', async () => {
    const token = await clientCredentialsToken(t, client, 'books.read');
    const res = await introspect(t, client, { token, token_type_hint: 'access_token' });
    expectJson200(res, {
      active: true,
      scope: 'books.read',
      client_id: client.clientId,
      username: 'Books app',
      token_type: 'Bearer',
      exp: s(T0) + 3600,
      iat: s(T0),
      sub: client.clientId,
      aud: ISSUER,
      iss: ISSUER,
    });
  });

  it('describes an access token of a resource owner: sub is the account id and username is omitted by default (RFC 7662 §2.2)', async () => {
    const { accessToken } = await insertGrant(t, { applicationId: client.id, accountId: '42', scopes: ['books.read', 'books.write'], createdAt: T0 });
    const res = await introspect(t, client, { token: accessToken! });
    expectJson200(res, {
      active: true,
      scope: 'books.read books.write',
      client_id: client.clientId,
      token_type: 'Bearer',
      exp: s(T0) + 3600,
      iat: s(T0),
      sub: '42',
      aud: ISSUER,
      iss: ISSUER,
    });
  });

  it('gives a refreshed access token its own issue time, not the grant creation time (RFC 7662 §2.2 iat)', async () => {
    // Issued two hours after the grant, as a refresh does: expiry = issue time + oauthAccessTokenExpiresIn.
    const issued = plus(T0, 7200);
    clock = plus(issued, 60);
    const { accessToken } = await insertGrant(t, { applicationId: client.id, createdAt: T0, expiresIn: plus(issued, 3600) });
    const res = await introspect(t, client, { token: accessToken! });
    expect(res.status).toBe(200);
    expect({ iat: res.body.iat, exp: res.body.exp }).toEqual({ iat: s(issued), exp: s(issued) + 3600 });
  });

  it("describes an active refresh token without token_type (RFC 7662 §2.2: an access token's type) and with the refresh token's own expiry", async () => {
    const { refreshToken } = await insertGrant(t, { applicationId: client.id, accountId: '42', createdAt: T0, refreshTokenExpiresIn: plus(T0, 86400) });
    const res = await introspect(t, client, { token: refreshToken!, token_type_hint: 'refresh_token' });
    expectJson200(res, {
      active: true,
      scope: 'books.read',
      client_id: client.clientId,
      exp: s(T0) + 86400,
      iat: s(T0),
      sub: '42',
      aud: ISSUER,
      iss: ISSUER,
    });
  });

  it('omits exp for a refresh token without expiry', async () => {
    const { refreshToken } = await insertGrant(t, { applicationId: client.id, accountId: '42', createdAt: T0, refreshTokenExpiresIn: null });
    const res = await introspect(t, client, { token: refreshToken! });
    expectJson200(res, {
      active: true,
      scope: 'books.read',
      client_id: client.clientId,
      iat: s(T0),
      sub: '42',
      aud: ISSUER,
      iss: ISSUER,
    });
  });

  it('keeps a refresh token active after its access token expired, and reports the access token inactive', async () => {
    const { accessToken, refreshToken } = await insertGrant(t, { applicationId: client.id, createdAt: T0 });
    clock = plus(T0, 3600);
    expectJson200(await introspect(t, client, { token: accessToken! }), INACTIVE);
    const res = await introspect(t, client, { token: refreshToken! });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ active: true, exp: s(T0) + 30 * 86400 });
    expect(res.body).not.toHaveProperty('token_type');
  });

  it('answers {"active": false} for an unknown token (RFC 7662 §2.2)', async () => {
    expectJson200(await introspect(t, client, { token: 'never-issued' }), INACTIVE);
  });

  it('answers {"active": false} for an expired access token and an expired refresh token (RFC 7662 §2.2)', async () => {
    const { accessToken, refreshToken } = await insertGrant(t, { applicationId: client.id, createdAt: T0, refreshTokenExpiresIn: plus(T0, 7200) });
    clock = plus(T0, 7200);
    expectJson200(await introspect(t, client, { token: accessToken! }), INACTIVE);
    expectJson200(await introspect(t, client, { token: refreshToken! }), INACTIVE);
  });

  it('answers {"active": false} for both tokens of a revoked grant (RFC 7662 §2.2)', async () => {
    const { grant, accessToken, refreshToken } = await insertGrant(t, { applicationId: client.id, createdAt: T0 });
    expect((await introspect(t, client, { token: accessToken! })).body.active).toBe(true);
    await storeOf(t).grants.revoke(grant.id, T0);
    expectJson200(await introspect(t, client, { token: accessToken! }), INACTIVE);
    expectJson200(await introspect(t, client, { token: refreshToken! }), INACTIVE);
  });

  it('answers {"active": false} for an authorization code: codes are not tokens', async () => {
    const { code } = await insertGrant(t, { applicationId: client.id, createdAt: T0, accessToken: false, refreshToken: false, code: true });
    expectJson200(await introspect(t, client, { token: code! }), INACTIVE);
  });

  it('finds an access token sent with token_type_hint=refresh_token, and a refresh token sent with access_token (RFC 7662 §2.1)', async () => {
    const { accessToken, refreshToken } = await insertGrant(t, { applicationId: client.id, createdAt: T0 });
    const a = await introspect(t, client, { token: accessToken!, token_type_hint: 'refresh_token' });
    expect({ active: a.body.active, token_type: a.body.token_type }).toEqual({ active: true, token_type: 'Bearer' });
    const r = await introspect(t, client, { token: refreshToken!, token_type_hint: 'access_token' });
    // The refresh token's own expiry tells it apart; it has no token_type (RFC 7662 §2.2).
    expect({ active: r.body.active, exp: r.body.exp, hasTokenType: 'token_type' in r.body }).toEqual({ active: true, exp: s(T0) + 30 * 86400, hasTokenType: false });
  });

  it('ignores an unknown token_type_hint value (RFC 7662 §2.1: the server MAY ignore the hint)', async () => {
    const { accessToken } = await insertGrant(t, { applicationId: client.id, createdAt: T0 });
    const res = await introspect(t, client, { token: accessToken!, token_type_hint: 'urn:example:unknown' });
    expect({ active: res.body.active, token_type: res.body.token_type }).toEqual({ active: true, token_type: 'Bearer' });
  });

  it('accepts client_secret_post and a JSON body (RFC 7662 §2.1)', async () => {
    const { accessToken } = await insertGrant(t, { applicationId: client.id, accountId: '7', createdAt: T0 });
    const res = await request(t.app).post(t.path('/introspect')).send({ token: accessToken, client_id: client.clientId, client_secret: client.clientSecret });
    expect(res.status).toBe(200);
    expect({ active: res.body.active, sub: res.body.sub }).toEqual({ active: true, sub: '7' });
  });

  it('reports oauthTokenType as the token_type of access tokens', async () => {
    const t2 = await buildApp({ enable: ['token_introspection'], issuer: ISSUER, oauthTokenType: 'bearer' });
    const c2 = await t2.createClient();
    const { accessToken } = await insertGrant(t2, { applicationId: c2.id });
    const res = await introspect(t2, c2, { token: accessToken! });
    expect(res.body.token_type).toBe('bearer');
  });

  it('uses the request-derived issuer as iss when no issuer is configured, following the mount path', async () => {
    const t2 = await buildApp({ enable: ['token_introspection'] });
    const c2 = await t2.createClient();
    const { accessToken } = await insertGrant(t2, { applicationId: c2.id });
    const res = await introspect(t2, c2, { token: accessToken! }).set('Host', 'as.example');
    expect(res.body.iss).toBe(`http://as.example${MOUNT}`);
  });

  it('never logs the introspected token', async () => {
    const { accessToken } = await insertGrant(t, { applicationId: client.id, createdAt: T0 });
    await request(t.app).post(t.path('/introspect')).set('Authorization', basic(client.clientId, 'nope')).type('form').send({ token: accessToken });
    expect(t.logger.lines.length).toBeGreaterThan(0);
    t.logger.assertNoSecrets([accessToken, client.clientSecret]);
  });
});
