import { afterAll, describe, expect, it } from '@jest/globals';
import { sha256 } from '../../lib/crypto';
import { buildApp, closeAll } from '../support/build_app';
import { createGrant, reloadGrant } from '../support/grants';
import { INVALID_REFRESH_TOKEN, expectNoStore, me, refresh, testClock } from './helpers';

afterAll(closeAll);

const DAY = 86400;

describe('refresh › rotation', () => {
  it('rotates by default: the new refresh token works, the old one is retired (RFC 9700 §4.14.2)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const first = await refresh(t, client, refreshToken);
    expect(first.status).toBe(200);
    const stored = await reloadGrant(t, grant.id);
    expect(stored.refreshTokenHash).toBe(sha256(first.body.refresh_token));
    expect(await t.db('oauth_retired_refresh_tokens').select('oauth_grant_id', 'token')).toEqual([{ oauth_grant_id: grant.id, token: sha256(refreshToken) }]);
    const second = await refresh(t, client, first.body.refresh_token);
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, refresh_token: expect.any(String), scope: 'books.read books.write' });
    expect(new Set([refreshToken, first.body.refresh_token, second.body.refresh_token]).size).toBe(3);
    expect((await me(t, second.body.access_token)).status).toBe(200);
  });

  it('gives each new refresh token the default lifetime of 30 days from its issuance', async () => {
    const clock = testClock();
    const t = await buildApp({ enable: ['refresh'], now: clock.now });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    await refresh(t, client, refreshToken);
    const stored = await reloadGrant(t, grant.id);
    expect(stored.refreshTokenExpiresIn?.getTime()).toBe(clock.now().getTime() + 30 * DAY * 1000);
  });

  it('honours oauthRefreshTokenExpiresIn: a rotated token expires after the configured lifetime', async () => {
    const clock = testClock();
    const t = await buildApp({ enable: ['refresh'], now: clock.now, oauthRefreshTokenExpiresIn: 60 });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const first = await refresh(t, client, refreshToken);
    expect((await reloadGrant(t, grant.id)).refreshTokenExpiresIn?.getTime()).toBe(clock.now().getTime() + 60_000);
    clock.advance(61);
    const late = await refresh(t, client, first.body.refresh_token);
    expect(late.status).toBe(400);
    expectNoStore(late);
    expect(late.body).toEqual(INVALID_REFRESH_TOKEN);
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
  });

  it('accepts oauthRefreshTokenExpiresIn as a function of the request', async () => {
    const clock = testClock();
    const t = await buildApp({
      enable: ['refresh'],
      now: clock.now,
      oauthRefreshTokenExpiresIn: (ctx: { application?: { name: string } }) => (ctx.application?.name === 'Short-lived' ? 10 : 1000),
    });
    const short = await t.createClient({ name: 'Short-lived' });
    const long = await t.createClient({ name: 'Long-lived' });
    const a = await createGrant(t, { applicationId: short.id });
    const b = await createGrant(t, { applicationId: long.id });
    await refresh(t, short, a.refreshToken);
    await refresh(t, long, b.refreshToken);
    expect((await reloadGrant(t, a.grant.id)).refreshTokenExpiresIn?.getTime()).toBe(clock.now().getTime() + 10_000);
    expect((await reloadGrant(t, b.grant.id)).refreshTokenExpiresIn?.getTime()).toBe(clock.now().getTime() + 1_000_000);
  });

  it("with policy 'none' keeps the refresh token: no new one in the response, the same one keeps working", async () => {
    const t = await buildApp({ enable: ['refresh'], oauthRefreshTokenProtectionPolicy: 'none' });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const first = await refresh(t, client, refreshToken);
    expect(first.status).toBe(200);
    expectNoStore(first);
    expect(first.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read books.write' });
    const second = await refresh(t, client, refreshToken);
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read books.write' });
    const stored = await reloadGrant(t, grant.id);
    expect(stored.refreshTokenHash).toBe(sha256(refreshToken));
    expect(stored.refreshTokenExpiresIn?.getTime()).toBe(grant.refreshTokenExpiresIn?.getTime());
    expect(Number((await t.db('oauth_retired_refresh_tokens').count({ n: '*' }))[0]!.n)).toBe(0);
    expect((await me(t, second.body.access_token)).status).toBe(200);
  });

  it("with policy 'none' still expires the refresh token at its original expiry", async () => {
    const clock = testClock();
    const t = await buildApp({ enable: ['refresh'], now: clock.now, oauthRefreshTokenProtectionPolicy: 'none' });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id, refreshTokenExpiresIn: new Date(clock.now().getTime() + 30_000) });
    expect((await refresh(t, client, refreshToken)).status).toBe(200);
    clock.advance(31);
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(400);
    expect(res.body).toEqual(INVALID_REFRESH_TOKEN);
  });

  it("always rotates for public clients, even with policy 'none' (OAuth 2.1 §4.3.1)", async () => {
    const t = await buildApp({ enable: ['refresh'], oauthRefreshTokenProtectionPolicy: 'none' });
    const client = await t.createClient({ tokenEndpointAuthMethod: 'none' });
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const first = await refresh(t, client, refreshToken);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, refresh_token: expect.any(String), scope: 'books.read books.write' });
    expect(first.body.refresh_token).not.toBe(refreshToken);
    expect((await refresh(t, client, first.body.refresh_token)).status).toBe(200);
  });

  it('accepts the policy as a function of the request', async () => {
    const t = await buildApp({
      enable: ['refresh'],
      oauthRefreshTokenProtectionPolicy: (ctx: { application?: { name: string } }) => (ctx.application?.name === 'Legacy' ? 'none' : 'rotation'),
    });
    const legacy = await t.createClient({ name: 'Legacy' });
    const modern = await t.createClient({ name: 'Modern' });
    const a = await createGrant(t, { applicationId: legacy.id });
    const b = await createGrant(t, { applicationId: modern.id });
    expect((await refresh(t, legacy, a.refreshToken)).body.refresh_token).toBeUndefined();
    expect((await refresh(t, modern, b.refreshToken)).body.refresh_token).toEqual(expect.any(String));
  });
});
