import { afterAll, describe, expect, it } from '@jest/globals';
import { OAuthError, type OAuthContext } from '../../lib';
import { buildApp, closeAll } from '../support/build_app';
import { countGrants, expectInvalidClient, expectNoStore, expectTokenError, tokenBody, tokenRequest } from './helpers';

afterAll(closeAll);

describe('oauth_base › hooks', () => {
  it('runs beforeTokenRoute, beforeToken and afterToken in order, the last two seeing the client', async () => {
    const calls: string[] = [];
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      beforeTokenRoute: async (ctx: OAuthContext) => void calls.push(`route:${ctx.application?.clientId ?? '-'}`),
      beforeToken: async (ctx: OAuthContext) => void calls.push(`before:${ctx.application?.clientId}:${ctx.grant ? 'grant' : '-'}`),
      afterToken: async (ctx: OAuthContext) => void calls.push(`after:${ctx.application?.clientId}:${ctx.grant ? 'grant' : '-'}`),
    });
    const c = await t.createClient();
    const res = await tokenRequest(t, c);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(tokenBody('books.read books.write'));
    expect(calls).toEqual(['route:-', `before:${c.clientId}:-`, `after:${c.clientId}:grant`]);
  });

  it('answers with an OAuthError thrown in beforeTokenRoute, before client authentication', async () => {
    let authenticated = false;
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      beforeTokenRoute: () => {
        throw new OAuthError('temporarily_unavailable', 'Maintenance');
      },
      secretMatches: async () => (authenticated = true),
    });
    const c = await t.createClient();
    const res = await tokenRequest(t, c);
    expect(res.status).toBe(503);
    expectNoStore(res);
    expect(res.body).toEqual({ error: 'temporarily_unavailable', error_description: 'Maintenance' });
    expect(authenticated).toBe(false);
  });

  it('answers with an OAuthError thrown in beforeToken and writes no grant row', async () => {
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      beforeToken: async () => {
        throw new OAuthError('access_denied', 'Not now');
      },
    });
    const c = await t.createClient();
    const res = await tokenRequest(t, c);
    expectTokenError(res, 'access_denied', 'Not now');
    expect(await countGrants(t)).toBe(0);
  });

  it('rolls back the grant row when afterToken throws an OAuthError, which is the response', async () => {
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      afterToken: async (ctx: OAuthContext) => {
        expect(ctx.grant).toBeDefined();
        throw new OAuthError('invalid_scope', 'Scope quota exceeded');
      },
    });
    const c = await t.createClient();
    const res = await tokenRequest(t, c);
    expectTokenError(res, 'invalid_scope', 'Scope quota exceeded');
    expect(await countGrants(t)).toBe(0);
  });

  it('beforeToken runs inside the transaction: its own writes through ctx.store roll back with the grant', async () => {
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      beforeToken: async (ctx: OAuthContext) => {
        await ctx.store.applications.updateSecret(ctx.application!.id, 'audit-marker', null);
      },
      afterToken: async () => {
        throw new OAuthError('access_denied', 'Denied after the fact');
      },
    });
    const c = await t.createClient();
    const res = await tokenRequest(t, c);
    expectTokenError(res, 'access_denied', 'Denied after the fact');
    expect(await countGrants(t)).toBe(0);
    const row = await t.db('oauth_applications').where('id', c.id).first();
    expect(row.client_secret).not.toBe('audit-marker');
    expect((await tokenRequest(t, c)).status).toBe(400);
  });

  it('a hook throwing a plain Error gives a generic server_error with no stack, rolls back, and logs without secrets', async () => {
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      afterToken: async (ctx: OAuthContext) => {
        throw new Error(`database exploded near ${ctx.req.headers.authorization}`);
      },
    });
    const c = await t.createClient();
    const res = await tokenRequest(t, c);
    expect(res.status).toBe(500);
    expectNoStore(res);
    expect(res.body).toEqual({ error: 'server_error', error_description: 'An unexpected error occurred' });
    expect(res.text).not.toMatch(/exploded|at .*\.ts|Error:/);
    expect(await countGrants(t)).toBe(0);
    expect(t.logger.lines.some((l) => l.startsWith('error server_error (internal_error)') && l.includes('exploded'))).toBe(true);
    t.logger.assertNoSecrets([c.clientSecret, Buffer.from(`${c.clientId}:${c.clientSecret}`).toString('base64')]);
  });

  it('a failed client authentication is 401 even when a hook would run later', async () => {
    let ran = false;
    const t = await buildApp({ enable: ['client_credentials_grant'], beforeToken: () => void (ran = true) });
    const c = await t.createClient();
    expectInvalidClient(await tokenRequest(t, { clientId: c.clientId, clientSecret: 'wrong' }));
    expect(ran).toBe(false);
  });

  it('hands every error with its internal reason to onError, never to the client', async () => {
    const seen: string[] = [];
    const t = await buildApp({ enable: ['client_credentials_grant'], onError: (_ctx: unknown, err: OAuthError) => void seen.push(`${err.code}/${err.reason}`) });
    const c = await t.createClient();
    const res = await tokenRequest(t, { clientId: c.clientId, clientSecret: 'wrong' });
    expectInvalidClient(res);
    expect(JSON.stringify(res.body)).not.toContain('bad_client_secret');
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['invalid_client/bad_client_secret']);
  });
});

describe('oauth_base › failures while answering', () => {
  const throwingRealm = () => {
    throw new Error('realm lookup failed');
  };

  it('a value that throws while an error is rendered still gives a generic server_error JSON, no stack', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'], oauthRealm: throwingRealm });
    const c = await t.createClient();
    const res = await tokenRequest(t, { clientId: c.clientId, clientSecret: 'wrong' });
    expect(res.status).toBe(500);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ error: 'server_error', error_description: 'An unexpected error occurred' });
    expect(res.text).not.toMatch(/realm lookup failed|\.ts:\d+/);
  });

  it('a value that throws while a protected resource refuses a token gives a generic server_error JSON, no crash', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'], oauthRealm: throwingRealm });
    const res = await t.agent.get('/api/me').set('Authorization', 'Bearer unknown-token');
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'server_error', error_description: 'An unexpected error occurred' });
    expect(res.text).not.toContain('realm lookup failed');
  });
});
