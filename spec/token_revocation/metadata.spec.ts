import request from 'supertest';
import { buildApp, closeAll } from '../support/build_app';
import { insertGrant, reloadGrant } from '../support/token_fixtures';

afterAll(closeAll);

describe('token_revocation › metadata', () => {
  const keys = (body: Record<string, unknown>) => ({
    revocation_endpoint: body.revocation_endpoint,
    revocation_endpoint_auth_methods_supported: body.revocation_endpoint_auth_methods_supported,
  });

  it('advertises revocation_endpoint and its client authentication methods (RFC 8414 §2)', async () => {
    const t = await buildApp({ enable: ['token_revocation'], issuer: 'https://auth.example.com', revokeRoute: 'oauth2/revoke' });
    const res = await request(t.app).get(t.path('/.well-known/oauth-authorization-server'));
    expect(res.status).toBe(200);
    expect(keys(res.body)).toEqual({
      revocation_endpoint: 'https://auth.example.com/oauth2/revoke',
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    });
  });

  it('follows oauthTokenEndpointAuthMethodsSupported, and the endpoint enforces it', async () => {
    const t = await buildApp({ enable: ['token_revocation'], issuer: 'https://auth.example.com', oauthTokenEndpointAuthMethodsSupported: ['client_secret_basic'] });
    const res = await request(t.app).get(t.path('/.well-known/oauth-authorization-server'));
    expect(keys(res.body)).toEqual({ revocation_endpoint: 'https://auth.example.com/revoke', revocation_endpoint_auth_methods_supported: ['client_secret_basic'] });
    const client = await t.createClient();
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id });
    const post = await request(t.app).post(t.path('/revoke')).type('form').send({ token: accessToken, client_id: client.clientId, client_secret: client.clientSecret });
    expect(post.status).toBe(401);
    expect(post.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
  });

  it('has no revocation keys and no /revoke route when the feature is not enabled', async () => {
    const t = await buildApp({ enable: [], issuer: 'https://auth.example.com' });
    const res = await request(t.app).get(t.path('/.well-known/oauth-authorization-server'));
    expect(keys(res.body)).toEqual({ revocation_endpoint: undefined, revocation_endpoint_auth_methods_supported: undefined });
    expect((await request(t.app).post(t.path('/revoke')).type('form').send({ token: 'x' })).status).toBe(404);
  });
});
