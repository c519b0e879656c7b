import { buildApp, closeAll } from '../support/build_app';

afterAll(closeAll);

describe('authorization_code_grant › metadata', () => {
  it('advertises the authorization endpoint, response types and modes and RFC 9207 iss support (RFC 8414 §2)', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant'], issuer: 'https://auth.example.com' });
    const res = await t.agent.get(t.path('/.well-known/oauth-authorization-server'));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      issuer: 'https://auth.example.com',
      authorization_endpoint: 'https://auth.example.com/authorize',
      token_endpoint: 'https://auth.example.com/token',
      response_types_supported: ['code'],
      response_modes_supported: ['query', 'form_post'],
      grant_types_supported: ['authorization_code'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      authorization_response_iss_parameter_supported: true,
    });
  });

  it('follows the mount path and an overridden authorizeRoute', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant'], authorizeRoute: 'oauth2/auth' });
    const res = await t.agent.get(t.path('/.well-known/oauth-authorization-server')).set('Host', 'as.example');
    expect(res.status).toBe(200);
    expect(res.body.authorization_endpoint).toBe(`http://as.example${t.path('/oauth2/auth')}`);
    expect(res.body.issuer).toBe(`http://as.example${t.path('')}`);
  });
});
