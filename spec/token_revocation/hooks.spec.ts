import request from 'supertest';
import { OAuthError, type OAuthContext } from '../../lib';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { insertGrant, reloadGrant } from '../support/token_fixtures';

afterAll(closeAll);

type Client = { clientId: string; clientSecret: string; id: number };

function revoke(t: TestApp, client: Client, token: string, path = '/revoke'): request.Test {
  return request(t.app).post(t.path(path)).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ token });
}

describe('token_revocation › hooks', () => {
  it('runs beforeRevoke and afterRevoke with the grant and the client, inside the transaction (RFC 7009 §2.1)', async () => {
    const seen: string[] = [];
    const t = await buildApp({
      enable: ['token_revocation'],
      beforeRevoke: async (ctx: OAuthContext) => {
        seen.push(`before ${ctx.grant?.id} ${ctx.application?.clientId} ${ctx.grant?.revokedAt === null}`);
      },
      afterRevoke: async (ctx: OAuthContext) => {
        const stored = await ctx.store.grants.findById(ctx.grant!.id);
        seen.push(`after ${ctx.grant?.id} revoked=${stored?.revokedAt !== null}`);
      },
    });
    const client = await t.createClient();
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id });
    const res = await revoke(t, client, accessToken!);
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    expect(seen).toEqual([`before ${grant.id} ${client.clientId} true`, `after ${grant.id} revoked=true`]);
  });

  it('rolls back when beforeRevoke throws: the error is the response and nothing is revoked', async () => {
    const t = await buildApp({
      enable: ['token_revocation'],
      beforeRevoke: async () => {
        throw new OAuthError('access_denied', 'Not now');
      },
    });
    const client = await t.createClient();
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id });
    const res = await revoke(t, client, accessToken!);
    expect(res.status).toBe(400);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ error: 'access_denied', error_description: 'Not now' });
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
  });

  it('rolls back the revocation when afterRevoke throws', async () => {
    const t = await buildApp({
      enable: ['token_revocation'],
      afterRevoke: async () => {
        throw new OAuthError('access_denied', 'Audit log unavailable');
      },
    });
    const client = await t.createClient();
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id });
    const res = await revoke(t, client, accessToken!);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'access_denied', error_description: 'Audit log unavailable' });
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
    expect((await request(t.app).get('/api/me').set('Authorization', `Bearer ${accessToken}`)).status).toBe(200);
  });

  it('turns an unexpected exception in a hook into a generic server_error and revokes nothing', async () => {
    const t = await buildApp({
      enable: ['token_revocation'],
      afterRevoke: async () => {
        throw new Error('boom');
      },
    });
    const client = await t.createClient();
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id });
    const res = await revoke(t, client, accessToken!);
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'server_error', error_description: 'An unexpected error occurred' });
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
    t.logger.assertNoSecrets([accessToken, client.clientSecret]);
  });

  it('does not run the revoke hooks when nothing is revoked (unknown, already revoked, or refused foreign token)', async () => {
    const seen: string[] = [];
    const t = await buildApp({
      enable: ['token_revocation'],
      beforeRevoke: async () => void seen.push('before'),
      afterRevoke: async () => void seen.push('after'),
    });
    const client = await t.createClient();
    const other = await t.createClient({ name: 'Other' });
    const foreign = await insertGrant(t, { applicationId: other.id });
    expect((await revoke(t, client, 'unknown-token')).status).toBe(200);
    const refused = await revoke(t, client, foreign.accessToken!);
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({ error: 'unauthorized_client', error_description: 'You are not authorized to revoke this token' });
    const own = await insertGrant(t, { applicationId: client.id });
    expect((await revoke(t, client, own.accessToken!)).status).toBe(200);
    expect((await revoke(t, client, own.refreshToken!)).status).toBe(200);
    expect(seen).toEqual(['before', 'after']);
  });

  it('runs beforeRevokeRoute before client authentication, and it can refuse the request', async () => {
    const t = await buildApp({
      enable: ['token_revocation'],
      beforeRevokeRoute: async (ctx: OAuthContext) => {
        if (ctx.application === undefined) throw new OAuthError('invalid_request', 'Revocation is closed');
      },
    });
    const client = await t.createClient();
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id });
    const res = await revoke(t, client, accessToken!);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Revocation is closed' });
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
  });

  it('serves the endpoint at the revokeRoute value', async () => {
    const t = await buildApp({ enable: ['token_revocation'], revokeRoute: 'oauth2/revoke' });
    const client = await t.createClient();
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id });
    expect((await revoke(t, client, accessToken!, '/revoke')).status).toBe(404);
    const res = await revoke(t, client, accessToken!, '/oauth2/revoke');
    expect(res.status).toBe(200);
    expect((await reloadGrant(t, grant.id)).revokedAt).not.toBeNull();
  });
});
