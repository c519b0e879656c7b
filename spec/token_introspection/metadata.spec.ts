import request from 'supertest';
import { OAuthError, type OAuthContext } from '../../lib';
import { basic, buildApp, closeAll } from '../support/build_app';
import { insertGrant } from '../support/token_fixtures';

afterAll(closeAll);

const keys = (body: Record<string, unknown>) => ({
  introspection_endpoint: body.introspection_endpoint,
  introspection_endpoint_auth_methods_supported: body.introspection_endpoint_auth_methods_supported,
});

describe('token_introspection › metadata', () => {
  it('advertises introspection_endpoint and its client authentication methods, without none (RFC 8414 §2)', async () => {
    const t = await buildApp({ enable: ['token_introspection'], issuer: 'https://auth.example.com' });
    const res = await request(t.app).get(t.path('/.well-known/oauth-authorization-server'));
    expect(res.status).toBe(200);
    expect(keys(res.body)).toEqual({
      introspection_endpoint: 'https://auth.example.com/introspect',
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    });
  });

  it('follows oauthTokenEndpointAuthMethodsSupported, and the endpoint enforces it', async () => {
    const t = await buildApp({ enable: ['token_introspection'], issuer: 'https://auth.example.com', oauthTokenEndpointAuthMethodsSupported: ['client_secret_post', 'none'] });
    const res = await request(t.app).get(t.path('/.well-known/oauth-authorization-server'));
    expect(keys(res.body)).toEqual({ introspection_endpoint: 'https://auth.example.com/introspect', introspection_endpoint_auth_methods_supported: ['client_secret_post'] });
    const client = await t.createClient();
    const { accessToken } = await insertGrant(t, { applicationId: client.id });
    const viaBasic = await request(t.app).post(t.path('/introspect')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ token: accessToken });
    expect(viaBasic.status).toBe(401);
    expect(viaBasic.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
    const viaPost = await request(t.app).post(t.path('/introspect')).type('form').send({ token: accessToken, client_id: client.clientId, client_secret: client.clientSecret });
    expect(viaPost.status).toBe(200);
    expect(viaPost.body.active).toBe(true);
  });

  it('serves the endpoint at the introspectRoute value and runs beforeIntrospectRoute first', async () => {
    const seen: string[] = [];
    const t = await buildApp({
      enable: ['token_introspection'],
      issuer: 'https://auth.example.com',
      introspectRoute: 'oauth2/token-info',
      beforeIntrospectRoute: async (ctx: OAuthContext) => {
        seen.push(ctx.application === undefined ? 'unauthenticated' : 'authenticated');
        if (ctx.req.headers['x-block'] === '1') throw new OAuthError('invalid_request', 'Blocked');
      },
    });
    const meta = await request(t.app).get(t.path('/.well-known/oauth-authorization-server'));
    expect(meta.body.introspection_endpoint).toBe('https://auth.example.com/oauth2/token-info');
    const client = await t.createClient();
    const { accessToken } = await insertGrant(t, { applicationId: client.id });
    const send = () => request(t.app).post(t.path('/oauth2/token-info')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ token: accessToken });
    const ok = await send();
    expect(ok.status).toBe(200);
    expect(ok.body.active).toBe(true);
    const blocked = await send().set('X-Block', '1');
    expect(blocked.status).toBe(400);
    expect(blocked.body).toEqual({ error: 'invalid_request', error_description: 'Blocked' });
    expect(seen).toEqual(['unauthenticated', 'unauthenticated']);
    expect((await request(t.app).post(t.path('/introspect')).type('form').send({ token: 'x' })).status).toBe(404);
  });

  it('has no introspection keys when the feature is not enabled', async () => {
    const t = await buildApp({ enable: [], issuer: 'https://auth.example.com' });
    const res = await request(t.app).get(t.path('/.well-known/oauth-authorization-server'));
    expect(keys(res.body)).toEqual({ introspection_endpoint: undefined, introspection_endpoint_auth_methods_supported: undefined });
  });
});
