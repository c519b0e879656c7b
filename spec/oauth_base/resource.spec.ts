import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { OAuthError, type OAuthContext } from '../../lib';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { createGrant } from '../support/grants';
import { SQL_LOOKING, tokenRequest } from './helpers';

afterAll(closeAll);

const INVALID_TOKEN = { error: 'invalid_token', error_description: 'Invalid access token' };
const INVALID_TOKEN_CHALLENGE = 'Bearer realm="oauth", error="invalid_token", error_description="Invalid access token"';

function expectInvalidToken(res: Response): void {
  expect(res.status).toBe(401);
  expect(res.headers['www-authenticate']).toBe(INVALID_TOKEN_CHALLENGE);
  expect(res.body).toEqual(INVALID_TOKEN);
}

describe('oauth_base › resource (requireOauthAuthorization)', () => {
  let t: TestApp;
  let clientId: string;
  let applicationId: number;
  beforeAll(async () => {
    t = await buildApp({ enable: ['client_credentials_grant'] }, {
      setup: (app, auth) => {
        app.get('/api/write', auth.requireOauthAuthorization('books.read', 'books.write'), (req, res) => void res.json(req.oauth));
      },
    });
    const c = await t.createClient();
    clientId = c.clientId;
    applicationId = c.id;
  });

  it('lets a valid token through and sets req.oauth exactly (RFC 6750 §2.1)', async () => {
    const { grant, accessToken } = await createGrant(t, { applicationId, scopes: ['books.read'], accountId: 'account-7' });
    const res = await t.agent.get('/api/me').set('Authorization', `Bearer ${accessToken}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      accountId: 'account-7',
      clientId,
      applicationId,
      scopes: ['books.read'],
      grantId: grant.id,
      expiresAt: grant.expiresIn.toISOString(),
      token: accessToken,
    });
  });

  it('accepts a token from the client_credentials grant, whose account is null', async () => {
    const c = await t.createClient();
    const tok = await tokenRequest(t, c, { grant_type: 'client_credentials', scope: 'books.read' });
    const res = await t.agent.get('/api/books').set('Authorization', `bearer ${tok.body.access_token}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ books: [], scopes: ['books.read'] });
    const me = await t.agent.get('/api/me').set('Authorization', `Bearer ${tok.body.access_token}`);
    expect(me.body).toEqual({ accountId: null, clientId: c.clientId, applicationId: c.id, scopes: ['books.read'], grantId: expect.any(Number), expiresAt: expect.any(String), token: tok.body.access_token });
  });

  it('answers 401 with a bare Bearer challenge (no error code) when no token is sent (RFC 6750 §3.1)', async () => {
    const res = await t.agent.get('/api/me');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth"');
    expect(res.body).toEqual({ error: 'invalid_token', error_description: 'An access token is required' });
  });

  it('treats another scheme as no token', async () => {
    const res = await t.agent.get('/api/me').set('Authorization', 'Basic YTpi');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth"');
  });

  it.each([
    ['the scheme alone', 'Bearer'],
    ['two tokens', 'Bearer abc def'],
    ['characters outside b64token', 'Bearer abc<def>'],
    ['non-ASCII (latin-1) bytes', 'Bearer t\u00e9st'],
    ['SQL', `Bearer ${SQL_LOOKING}`],
  ])('answers 400 invalid_request for a malformed Authorization header: %s (RFC 6750 §3.1)', async (_name, header) => {
    const res = await t.agent.get('/api/me').set('Authorization', header);
    expect(res.status).toBe(400);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="invalid_request", error_description="Malformed Authorization header"');
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Malformed Authorization header' });
  });

  it('answers 401 invalid_token for an unknown token (RFC 6750 §3.1)', async () => {
    expectInvalidToken(await t.agent.get('/api/me').set('Authorization', 'Bearer not-a-token'));
  });

  it('answers 401 invalid_token for an expired token', async () => {
    const { accessToken } = await createGrant(t, { applicationId, expiresIn: new Date(Date.now() - 1000) });
    expectInvalidToken(await t.agent.get('/api/me').set('Authorization', `Bearer ${accessToken}`));
  });

  it('answers 401 invalid_token for a revoked token', async () => {
    const { accessToken } = await createGrant(t, { applicationId, revokedAt: new Date() });
    expectInvalidToken(await t.agent.get('/api/me').set('Authorization', `Bearer ${accessToken}`));
  });

  it('answers 403 insufficient_scope with the required scope (RFC 6750 §3.1)', async () => {
    const { accessToken } = await createGrant(t, { applicationId, scopes: ['books.write'] });
    const res = await t.agent.get('/api/books').set('Authorization', `Bearer ${accessToken}`);
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="insufficient_scope", error_description="Insufficient scope", scope="books.read"');
    expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'Insufficient scope' });
  });

  it('requires all of several scopes (design.md §4.8)', async () => {
    const partial = await createGrant(t, { applicationId, scopes: ['books.read'] });
    const res = await t.agent.get('/api/write').set('Authorization', `Bearer ${partial.accessToken}`);
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="insufficient_scope", error_description="Insufficient scope", scope="books.read books.write"');
    const full = await createGrant(t, { applicationId, scopes: ['books.write', 'books.read'] });
    const ok = await t.agent.get('/api/write').set('Authorization', `Bearer ${full.accessToken}`);
    expect(ok.status).toBe(200);
    expect(ok.body.scopes).toEqual(['books.write', 'books.read']);
  });

  it('never logs a presented token', async () => {
    const { accessToken } = await createGrant(t, { applicationId, revokedAt: new Date() });
    await t.agent.get('/api/me').set('Authorization', `Bearer ${accessToken}`);
    t.logger.assertNoSecrets([accessToken]);
  });

  it('rejects an invalid scope name when the middleware is built', () => {
    expect(() => t.auth.requireOauthAuthorization('books read')).toThrow("requireOauthAuthorization(): 'books read' is not a valid scope");
  });
});

describe('oauth_base › resource overrides', () => {
  it('fetchAccessToken can be overridden (a custom header), and messages and realm are values', async () => {
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      fetchAccessToken: (ctx: OAuthContext) => {
        const v = ctx.req.headers['x-api-token'];
        return typeof v === 'string' ? v : undefined;
      },
      oauthInvalidTokenMessage: 'Token refused',
      oauthMissingTokenMessage: (ctx: OAuthContext) => `Token needed for ${ctx.req.path}`,
      oauthInsufficientScopeMessage: 'More scope please',
      oauthRealm: 'books',
    });
    const c = await t.createClient();
    const { accessToken } = await createGrant(t, { applicationId: c.id, scopes: ['books.write'] });
    const ok = await t.agent.get('/api/me').set('X-Api-Token', accessToken);
    expect(ok.status).toBe(200);
    const ignored = await t.agent.get('/api/me').set('Authorization', `Bearer ${accessToken}`);
    expect(ignored.status).toBe(401);
    expect(ignored.headers['www-authenticate']).toBe('Bearer realm="books"');
    expect(ignored.body).toEqual({ error: 'invalid_token', error_description: 'Token needed for /api/me' });
    const bad = await t.agent.get('/api/me').set('X-Api-Token', 'nope');
    expect(bad.headers['www-authenticate']).toBe('Bearer realm="books", error="invalid_token", error_description="Token refused"');
    expect(bad.body).toEqual({ error: 'invalid_token', error_description: 'Token refused' });
    const scope = await t.agent.get('/api/books').set('X-Api-Token', accessToken);
    expect(scope.status).toBe(403);
    expect(scope.body).toEqual({ error: 'insufficient_scope', error_description: 'More scope please' });
  });

  it('a fetchAccessToken override throwing a plain Error gives a generic 500 without details', async () => {
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      fetchAccessToken: () => {
        throw new Error('kaboom');
      },
    });
    const res = await t.agent.get('/api/me').set('Authorization', 'Bearer abc');
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'server_error', error_description: 'An unexpected error occurred' });
    expect(res.text).not.toContain('kaboom');
  });

  it('an OAuthError thrown by fetchAccessToken is the response', async () => {
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      fetchAccessToken: () => {
        throw new OAuthError('invalid_request', 'Send the token in the header');
      },
    });
    const res = await t.agent.get('/api/me');
    expect(res.status).toBe(400);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="invalid_request", error_description="Send the token in the header"');
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Send the token in the header' });
  });
});
