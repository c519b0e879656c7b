import { afterAll, describe, expect, it } from '@jest/globals';
import { sha256 } from '../../lib/crypto';
import { OAuthError } from '../../lib/errors';
import type { OAuthContext } from '../../lib/context';
import { buildApp, closeAll } from '../support/build_app';
import { createGrant, reloadGrant } from '../support/grants';
import { expectNoStore, me, refresh } from './helpers';

afterAll(closeAll);

async function retiredCount(t: Awaited<ReturnType<typeof buildApp>>): Promise<number> {
  return Number((await t.db('oauth_retired_refresh_tokens').count({ n: '*' }))[0]!.n);
}

describe('refresh › hooks', () => {
  it('runs beforeRefreshToken with the grant and client, then afterRefreshToken with the new tokens stored', async () => {
    const seen: unknown[] = [];
    const t = await buildApp({
      enable: ['refresh'],
      beforeRefreshToken: async (ctx: OAuthContext) => void seen.push(['before', ctx.grant?.id, ctx.application?.clientId, ctx.grant?.refreshTokenHash]),
      afterRefreshToken: async (ctx: OAuthContext) => void seen.push(['after', ctx.grant?.id, ctx.grant?.refreshTokenHash]),
    });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(200);
    expect(seen).toEqual([
      ['before', grant.id, client.clientId, sha256(refreshToken)],
      ['after', grant.id, sha256(res.body.refresh_token)],
    ]);
  });

  it('aborts the refresh when beforeRefreshToken throws: the error is the response and nothing is written', async () => {
    const t = await buildApp({
      enable: ['refresh'],
      beforeRefreshToken: async () => {
        throw new OAuthError('access_denied', 'Refresh not allowed now', { reason: 'hook_denied' });
      },
    });
    const client = await t.createClient();
    const { grant, refreshToken, accessToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(400);
    expectNoStore(res);
    expect(res.body).toEqual({ error: 'access_denied', error_description: 'Refresh not allowed now' });
    const stored = await reloadGrant(t, grant.id);
    expect(stored.refreshTokenHash).toBe(sha256(refreshToken));
    expect(stored.tokenHash).toBe(sha256(accessToken));
    expect(await retiredCount(t)).toBe(0);
  });

  it('rolls the rotation back when afterRefreshToken throws: the old tokens still work, no retired row', async () => {
    let fail = true;
    const t = await buildApp({
      enable: ['refresh'],
      afterRefreshToken: async () => {
        if (fail) throw new OAuthError('temporarily_unavailable', 'Try again later', { reason: 'hook_denied' });
      },
    });
    const client = await t.createClient();
    const { grant, refreshToken, accessToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: 'temporarily_unavailable', error_description: 'Try again later' });
    expect((await reloadGrant(t, grant.id)).refreshTokenHash).toBe(sha256(refreshToken));
    expect(await retiredCount(t)).toBe(0);
    expect((await me(t, accessToken)).status).toBe(200);
    fail = false;
    // Not a reuse: the failed attempt retired nothing.
    const retry = await refresh(t, client, refreshToken);
    expect(retry.status).toBe(200);
  });

  it('turns a non-OAuth exception in a hook into a generic server_error and rolls back', async () => {
    const t = await buildApp({
      enable: ['refresh'],
      afterRefreshToken: async () => {
        throw new Error('boom with internal detail');
      },
    });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, client, refreshToken);
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'server_error', error_description: 'An unexpected error occurred' });
    expect((await reloadGrant(t, grant.id)).refreshTokenHash).toBe(sha256(refreshToken));
  });

  it('does not run the refresh hooks for a rejected token', async () => {
    const calls: string[] = [];
    const t = await buildApp({
      enable: ['refresh'],
      beforeRefreshToken: async () => void calls.push('before'),
      afterRefreshToken: async () => void calls.push('after'),
    });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    await refresh(t, client, 'unknown');
    await refresh(t, client, refreshToken, { scope: 'admin' });
    expect(calls).toEqual([]);
  });
});
