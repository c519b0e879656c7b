import { afterAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { sha256 } from '../../lib/crypto';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { createGrant, reloadGrant } from '../support/grants';
import { INVALID_REFRESH_TOKEN, REFRESH_TOKEN_REUSED, me, refresh } from './helpers';

afterAll(closeAll);

const N = 20;

async function grantCount(t: TestApp): Promise<number> {
  return Number((await t.db('oauth_grants').count({ n: '*' }))[0]!.n);
}

/** How many of the returned access tokens a protected resource still accepts. */
async function liveAccessTokens(t: TestApp, responses: Response[]): Promise<number> {
  let live = 0;
  for (const r of responses) if (r.status === 200 && (await me(t, r.body.access_token)).status === 200) live++;
  return live;
}

describe('refresh › concurrency', () => {
  it(`${N} concurrent refreshes with one token: one succeeds, the rest are reuse, no second token family (RFC 9700 §4.14.2)`, async () => {
    const t = await buildApp({ enable: ['refresh'] }, { shared: true });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const responses = await Promise.all(Array.from({ length: N }, () => refresh(t, client, refreshToken)));

    const ok = responses.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    for (const r of responses) if (r.status !== 200) expect([r.status, r.body]).toEqual([400, REFRESH_TOKEN_REUSED]);
    // The concurrent reuse revoked the grant: nothing issued here still works, and nothing was split off.
    const stored = await reloadGrant(t, grant.id);
    expect(stored.revokedAt).toBeInstanceOf(Date);
    expect(await grantCount(t)).toBe(1);
    expect(await liveAccessTokens(t, responses)).toBe(0);
    expect((await refresh(t, client, ok[0]!.body.refresh_token)).body).toEqual(INVALID_REFRESH_TOKEN);
  });

  it(`${N} concurrent retries within the reuse interval stay in one grant with exactly one live refresh token`, async () => {
    const t = await buildApp({ enable: ['refresh'], oauthRefreshTokenReuseInterval: 60 }, { shared: true });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const responses = await Promise.all(Array.from({ length: N }, () => refresh(t, client, refreshToken)));

    const ok = responses.filter((r) => r.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    // A retry that keeps losing races gives up with invalid_grant rather than forking the grant.
    for (const r of responses) if (r.status !== 200) expect([r.status, r.body]).toEqual([400, INVALID_REFRESH_TOKEN]);
    const stored = await reloadGrant(t, grant.id);
    expect(stored.revokedAt).toBeNull();
    expect(await grantCount(t)).toBe(1);
    const current = ok.filter((r) => sha256(r.body.refresh_token) === stored.refreshTokenHash);
    expect(current).toHaveLength(1);
    expect(new Set(ok.map((r) => r.body.refresh_token)).size).toBe(ok.length);
    expect(await liveAccessTokens(t, responses)).toBe(1);
    expect((await refresh(t, client, current[0]!.body.refresh_token)).status).toBe(200);
  });

  it(`${N} concurrent refreshes with policy 'none' all succeed on the one grant, which keeps its refresh token`, async () => {
    const t = await buildApp({ enable: ['refresh'], oauthRefreshTokenProtectionPolicy: 'none' }, { shared: true });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const responses = await Promise.all(Array.from({ length: N }, () => refresh(t, client, refreshToken)));

    for (const r of responses) expect([r.status, r.body]).toEqual([200, { access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read books.write' }]);
    const stored = await reloadGrant(t, grant.id);
    expect(stored.refreshTokenHash).toBe(sha256(refreshToken));
    expect(stored.revokedAt).toBeNull();
    expect(await grantCount(t)).toBe(1);
    // One row holds one access token: the last write wins.
    expect(await liveAccessTokens(t, responses)).toBe(1);
    expect((await refresh(t, client, refreshToken)).status).toBe(200);
  });
});
