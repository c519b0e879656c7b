import request from 'supertest';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { insertGrant } from '../support/token_fixtures';

afterAll(closeAll);

type Client = { clientId: string; clientSecret: string; id: number };

const ISSUER = 'https://auth.example.com';
const T0 = new Date('2030-01-01T00:00:00Z');
const DAY = 86400;
const s = (d: Date) => Math.floor(d.getTime() / 1000);
const plus = (d: Date, seconds: number) => new Date(d.getTime() + seconds * 1000);

async function setup(options: Record<string, unknown> = {}): Promise<{ t: TestApp; client: Client; setClock(d: Date): void }> {
  let clock = T0;
  const t = await buildApp({ enable: ['refresh', 'token_introspection', 'token_revocation'], issuer: ISSUER, now: () => clock, ...options });
  const client = await t.createClient({ name: 'Books app' });
  return { t, client, setClock: (d) => void (clock = d) };
}

function introspect(t: TestApp, client: Client, token: string): request.Test {
  return request(t.app).post(t.path('/introspect')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ token });
}

function refresh(t: TestApp, client: Client, refreshToken: string): request.Test {
  return request(t.app).post(t.path('/token')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ grant_type: 'refresh_token', refresh_token: refreshToken });
}

function member(client: Client, fields: Record<string, unknown>): Record<string, unknown> {
  return { active: true, scope: 'books.read', client_id: client.clientId, sub: '42', aud: ISSUER, iss: ISSUER, ...fields };
}

describe('token_introspection › with_refresh', () => {
  it('describes the tokens a rotation issued with their own issue time and lifetimes, and the rotated-out token as inactive (RFC 7662 §2.2)', async () => {
    const { t, client, setClock } = await setup();
    const first = await insertGrant(t, { applicationId: client.id, accountId: '42', createdAt: T0, refreshTokenExpiresIn: plus(T0, 30 * DAY) });
    const later = plus(T0, 7200);
    setClock(later);
    const res = await refresh(t, client, first.refreshToken!);
    expect(res.status).toBe(200);
    const { access_token: accessToken, refresh_token: refreshToken } = res.body as { access_token: string; refresh_token: string };

    expect((await introspect(t, client, accessToken)).body).toEqual(member(client, { token_type: 'Bearer', iat: s(later), exp: s(later) + 3600 }));
    expect((await introspect(t, client, refreshToken)).body).toEqual(member(client, { iat: s(later), exp: s(later) + 30 * DAY }));
    expect((await introspect(t, client, first.refreshToken!)).body).toEqual({ active: false });
    expect((await introspect(t, client, first.accessToken!)).body).toEqual({ active: false });
  });

  it('keeps the original issue time of a refresh token that is not rotated (policy none)', async () => {
    const { t, client, setClock } = await setup({ oauthRefreshTokenProtectionPolicy: 'none' });
    const first = await insertGrant(t, { applicationId: client.id, accountId: '42', createdAt: T0, refreshTokenExpiresIn: plus(T0, 30 * DAY) });
    const later = plus(T0, 7200);
    setClock(later);
    const res = await refresh(t, client, first.refreshToken!);
    expect(res.status).toBe(200);
    expect(res.body.refresh_token).toBeUndefined();
    expect((await introspect(t, client, res.body.access_token)).body).toEqual(member(client, { token_type: 'Bearer', iat: s(later), exp: s(later) + 3600 }));
    expect((await introspect(t, client, first.refreshToken!)).body).toEqual(member(client, { iat: s(T0), exp: s(T0) + 30 * DAY }));
  });

  it('a refresh token revoked at /revoke no longer refreshes, and both tokens introspect inactive (RFC 7009 §2.1)', async () => {
    const { t, client } = await setup();
    const { accessToken, refreshToken } = await insertGrant(t, { applicationId: client.id, accountId: '42', createdAt: T0 });
    const revoked = await request(t.app).post(t.path('/revoke')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ token: refreshToken, token_type_hint: 'refresh_token' });
    expect(revoked.status).toBe(200);
    const res = await refresh(t, client, refreshToken!);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_grant', error_description: 'Invalid refresh token' });
    expect((await introspect(t, client, accessToken!)).body).toEqual({ active: false });
    expect((await introspect(t, client, refreshToken!)).body).toEqual({ active: false });
  });
});
