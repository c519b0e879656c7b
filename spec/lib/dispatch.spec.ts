import { afterAll, describe, expect, it } from '@jest/globals';
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

  it('leaves other paths and other methods to the host app', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    // /api/me is a host route registered after the router: the request passes through it.
    const host = await t.agent.get('/api/me');
    expect(host.status).toBe(401);
    expect(host.headers['www-authenticate']).toBe('Bearer realm="oauth"');
    expect(host.body).toEqual({ error: 'invalid_token', error_description: 'An access token is required' });
    const wrongMethod = await t.agent.get(t.path('/token'));
    expect(wrongMethod.status).toBe(404);
    const unknown = await t.agent.get('/api/unknown');
    expect(unknown.status).toBe(404);
  });
});
