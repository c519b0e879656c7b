import { afterAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import request from 'supertest';
import { buildApp, closeAll } from '../support/build_app';

afterAll(closeAll);

describe('lib › route dispatch', () => {
  it('matches a route with a trailing slash and in any case, as Express routes do', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    for (const path of ['/.well-known/oauth-authorization-server/', '/.WELL-KNOWN/OAUTH-AUTHORIZATION-SERVER']) {
      const res = await t.agent.get(t.path(path));
      expect(res.status).toBe(200);
      expect(res.body.token_endpoint).toMatch(/\/token$/);
    }
  });

  it('answers HEAD on a GET route', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const res = await t.agent.head(t.path('/.well-known/oauth-authorization-server'));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
  });

  it('leaves other paths to the host app', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    // /api/me is a host route registered after the router: the request passes through it.
    const host = await t.agent.get('/api/me');
    expect(host.status).toBe(401);
    expect(host.headers['www-authenticate']).toBe('Bearer realm="oauth"');
    expect(host.body).toEqual({ error: 'invalid_token', error_description: 'An access token is required' });
    const unknown = await t.agent.get('/api/unknown');
    expect(unknown.status).toBe(404);
    const unknownUnderMount = await t.agent.delete(t.path('/tokens'));
    expect(unknownUnderMount.status).toBe(404);
    expect(unknownUnderMount.headers.allow).toBeUndefined();
  });

  describe('a method the OAuth path does not serve (RFC 9110 §15.5.6)', () => {
    it.each([
      ['GET', '/token', 'POST'],
      ['PUT', '/token/', 'POST'],
      ['DELETE', '/authorize', 'GET, HEAD, POST'],
      ['PATCH', '/AUTHORIZE', 'GET, HEAD, POST'],
      ['POST', '/.well-known/oauth-authorization-server', 'GET, HEAD'],
      ['DELETE', '/revoke', 'POST'],
      ['GET', '/introspect', 'POST'],
    ])('answers %s %s with 405, Allow: %s and a no-store JSON error', async (method, path, allow) => {
      const t = await buildApp({ enable: ['authorization_code_grant', 'client_credentials_grant', 'token_revocation', 'token_introspection'] });
      const res = await t.agent[method.toLowerCase() as 'get'](t.path(path));
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe(allow);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers.pragma).toBe('no-cache');
      expect(res.headers['www-authenticate']).toBeUndefined();
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Method not allowed' });
    });

    it('answers HEAD on a POST-only path with 405 and Allow, without a body', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'] });
      const res = await t.agent.head(t.path('/token'));
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('POST');
      expect(res.text).toBeUndefined();
    });

    it('answers OPTIONS with 204 and Allow (RFC 9110 §9.3.7), as Express does for its own routes', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'] });
      const res = await t.agent.options(t.path('/token'));
      expect(res.status).toBe(204);
      expect(res.headers.allow).toBe('POST');
      expect(res.text).toBe('');
    });

    it('follows a renamed route: the old path falls through to the host, the new one has Allow', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'], tokenRoute: 'oauth2/token' });
      const renamed = await t.agent.get(t.path('/oauth2/token'));
      expect(renamed.status).toBe(405);
      expect(renamed.headers.allow).toBe('POST');
      const old = await t.agent.get(t.path('/token'));
      expect(old.status).toBe(404);
    });

    it('is answered under the mount path only, when mounted at /api/oauth', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'] });
      const app = express();
      app.use('/api/oauth', t.auth);
      const res = await request(app).get('/api/oauth/token');
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('POST');
      expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Method not allowed' });
      const outside = await request(app).get('/token');
      expect(outside.status).toBe(404);
      expect(outside.headers.allow).toBeUndefined();
    });
  });
});
