import { afterAll, describe, expect, it } from '@jest/globals';
import { sha256 } from '../../lib/crypto';
import type { OAuthError } from '../../lib/errors';
import { buildApp, closeAll } from '../support/build_app';
import { createGrant, reloadGrant, storeOf } from '../support/grants';
import { INVALID_REFRESH_TOKEN, INVALID_TOKEN, REFRESH_TOKEN_REUSED, expectNoStore, me, refresh, testClock } from './helpers';

afterAll(closeAll);

describe('refresh › reuse_detection', () => {
  it('answers a rotated-out refresh token with invalid_grant and revokes the whole grant (RFC 9700 §4.14.2)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const rotated = await refresh(t, client, refreshToken);
    expect(rotated.status).toBe(200);

    const reused = await refresh(t, client, refreshToken);
    expect(reused.status).toBe(400);
    expectNoStore(reused);
    expect(reused.body).toEqual(REFRESH_TOKEN_REUSED);

    // The revocation is committed although the request failed.
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeInstanceOf(Date);
    const api = await me(t, rotated.body.access_token);
    expect(api.status).toBe(401);
    expect(api.body).toEqual(INVALID_TOKEN);
    const next = await refresh(t, client, rotated.body.refresh_token);
    expect(next.status).toBe(400);
    expect(next.body).toEqual(INVALID_REFRESH_TOKEN);
  });

  it('keeps answering the reused token with invalid_grant once the grant is revoked', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    await refresh(t, client, refreshToken);
    await refresh(t, client, refreshToken);
    const again = await refresh(t, client, refreshToken);
    expect(again.status).toBe(400);
    expect(again.body).toEqual(REFRESH_TOKEN_REUSED);
  });

  it('detects the reuse of any earlier token of the chain, not only the last one', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const r1 = await refresh(t, client, refreshToken);
    const r2 = await refresh(t, client, r1.body.refresh_token);
    expect(r2.status).toBe(200);
    const reused = await refresh(t, client, refreshToken);
    expect(reused.body).toEqual(REFRESH_TOKEN_REUSED);
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeInstanceOf(Date);
  });

  it('reports the internal reason to onError and the logger only, never in the body', async () => {
    const reasons: (string | undefined)[] = [];
    const t = await buildApp({ enable: ['refresh'], onError: (_ctx: unknown, err: OAuthError) => void reasons.push(err.reason) });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    await refresh(t, client, refreshToken);
    const reused = await refresh(t, client, refreshToken);
    expect(JSON.stringify(reused.body)).not.toContain('refresh_token_reused');
    await new Promise((r) => setImmediate(r));
    expect(reasons).toEqual(['refresh_token_reused']);
    expect(t.logger.lines).toEqual([expect.stringContaining('invalid_grant (refresh_token_reused)')]);
  });

  it("does not let another client revoke the owner's grant with a retired token", async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const owner = await t.createClient();
    const other = await t.createClient({ name: 'Other client' });
    const { grant, refreshToken } = await createGrant(t, { applicationId: owner.id });
    const rotated = await refresh(t, owner, refreshToken);
    const res = await refresh(t, other, refreshToken);
    expect(res.status).toBe(400);
    expect(res.body).toEqual(INVALID_REFRESH_TOKEN);
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
    expect((await refresh(t, owner, rotated.body.refresh_token)).status).toBe(200);
  });

  it('detects reuse for public clients too', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient({ tokenEndpointAuthMethod: 'none' });
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    await refresh(t, client, refreshToken);
    const reused = await refresh(t, client, refreshToken);
    expect(reused.status).toBe(400);
    expect(reused.body).toEqual(REFRESH_TOKEN_REUSED);
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeInstanceOf(Date);
  });
});

describe('refresh › reuse_interval', () => {
  it('within oauthRefreshTokenReuseInterval, gives the retrying client new tokens of the same grant', async () => {
    const clock = testClock();
    const t = await buildApp({ enable: ['refresh'], now: clock.now, oauthRefreshTokenReuseInterval: 30 });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const first = await refresh(t, client, refreshToken);
    clock.advance(10);
    const retry = await refresh(t, client, refreshToken);
    expect(retry.status).toBe(200);
    expectNoStore(retry);
    expect(retry.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, refresh_token: expect.any(String), scope: 'books.read books.write' });
    expect(retry.body.refresh_token).not.toBe(first.body.refresh_token);

    // Same grant, one live refresh token: the retry rotated the first response's token out.
    const stored = await reloadGrant(t, grant.id);
    expect(stored.revokedAt).toBeNull();
    expect(stored.refreshTokenHash).toBe(sha256(retry.body.refresh_token));
    expect(Number((await t.db('oauth_grants').count({ n: '*' }))[0]!.n)).toBe(1);
    expect((await t.db('oauth_retired_refresh_tokens').orderBy('id').select('token')).map((r: { token: string }) => r.token)).toEqual([
      sha256(refreshToken),
      sha256(first.body.refresh_token),
    ]);
    expect((await me(t, first.body.access_token)).status).toBe(401);
    expect((await me(t, retry.body.access_token)).status).toBe(200);
  });

  it('after the interval, treats the retired token as reused and revokes the grant', async () => {
    const clock = testClock();
    const t = await buildApp({ enable: ['refresh'], now: clock.now, oauthRefreshTokenReuseInterval: 30 });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const first = await refresh(t, client, refreshToken);
    clock.advance(30);
    const late = await refresh(t, client, refreshToken);
    expect(late.status).toBe(400);
    expect(late.body).toEqual(REFRESH_TOKEN_REUSED);
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeInstanceOf(Date);
    expect((await refresh(t, client, first.body.refresh_token)).body).toEqual(INVALID_REFRESH_TOKEN);
  });

  it('gives no grace to another client presenting the retired token', async () => {
    const clock = testClock();
    const t = await buildApp({ enable: ['refresh'], now: clock.now, oauthRefreshTokenReuseInterval: 30 });
    const owner = await t.createClient();
    const other = await t.createClient({ name: 'Other client' });
    const { grant, refreshToken } = await createGrant(t, { applicationId: owner.id });
    const first = await refresh(t, owner, refreshToken);
    const res = await refresh(t, other, refreshToken);
    expect(res.status).toBe(400);
    expect(res.body).toEqual(INVALID_REFRESH_TOKEN);
    expect((await reloadGrant(t, grant.id)).refreshTokenHash).toBe(sha256(first.body.refresh_token));
  });

  it('gives no grace once the grant is revoked', async () => {
    const clock = testClock();
    const t = await buildApp({ enable: ['refresh'], now: clock.now, oauthRefreshTokenReuseInterval: 30 });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    await refresh(t, client, refreshToken);
    await storeOf(t).grants.revoke(grant.id, clock.now());
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(400);
    expect(res.body).toEqual(REFRESH_TOKEN_REUSED);
  });

  it('accepts the interval as a function of the request', async () => {
    const clock = testClock();
    const t = await buildApp({
      enable: ['refresh'],
      now: clock.now,
      oauthRefreshTokenReuseInterval: (ctx: { application?: { name: string } }) => (ctx.application?.name === 'Flaky network' ? 60 : 0),
    });
    const flaky = await t.createClient({ name: 'Flaky network' });
    const strict = await t.createClient({ name: 'Strict' });
    const a = await createGrant(t, { applicationId: flaky.id });
    const b = await createGrant(t, { applicationId: strict.id });
    await refresh(t, flaky, a.refreshToken);
    await refresh(t, strict, b.refreshToken);
    clock.advance(5);
    expect((await refresh(t, flaky, a.refreshToken)).status).toBe(200);
    expect((await refresh(t, strict, b.refreshToken)).body).toEqual(REFRESH_TOKEN_REUSED);
  });
});
