import { afterAll, describe, expect, it } from '@jest/globals';
import { closeAll, MOUNT } from '../support/build_app';
import { ISSUER, oidcApp } from './support';

afterAll(closeAll);

describe('oidc › discovery', () => {
  it('serves /.well-known/openid-configuration under the issuer (Discovery §4: path appended), with the OpenID Provider metadata (§3)', async () => {
    const t = await oidcApp({ oauthApplicationScopes: ['books.read'], oidcAcrValuesSupported: ['urn:example:loa:2'] });
    const res = await t.agent.get(t.path('/.well-known/openid-configuration'));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['cache-control']).toBe('public, max-age=3600');
    const doc = res.body;
    expect(doc).toMatchObject({
      issuer: ISSUER,
      authorization_endpoint: `${ISSUER}/authorize`,
      token_endpoint: `${ISSUER}/token`,
      userinfo_endpoint: `${ISSUER}/userinfo`,
      jwks_uri: `${ISSUER}/jwks`,
      end_session_endpoint: `${ISSUER}/end-session`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
      claims_parameter_supported: true,
      request_parameter_supported: false,
      request_uri_parameter_supported: false,
      claim_types_supported: ['normal'],
      acr_values_supported: ['urn:example:loa:2'],
      authorization_response_iss_parameter_supported: true,
    });
    expect(doc.scopes_supported).toEqual(['books.read', 'openid', 'profile', 'email', 'address', 'phone']);
    expect(doc.claims_supported).toEqual(expect.arrayContaining(['sub', 'iss', 'auth_time', 'nonce', 'acr', 'amr', 'name', 'email', 'email_verified', 'address', 'phone_number']));
    expect(doc.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token']));
    // No implicit or hybrid response type is advertised.
    expect(doc.response_types_supported.some((r: string) => r.includes('token'))).toBe(false);
  });

  it('is the RFC 8414 document: both come from one source', async () => {
    const t = await oidcApp();
    const oidc = await t.agent.get(t.path('/.well-known/openid-configuration'));
    const oauth = await t.agent.get(t.path('/.well-known/oauth-authorization-server'));
    expect(oidc.body).toEqual(oauth.body);
  });

  it('is a public document for browser-based relying parties (CORS, like the RFC 8414 document)', async () => {
    const t = await oidcApp();
    const res = await t.agent.get(t.path('/.well-known/openid-configuration')).set('Origin', 'https://spa.example');
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('advertises pairwise when a salt is configured', async () => {
    const t = await oidcApp({ oidcPairwiseSalt: 'a-pairwise-salt-of-32-characters!!' });
    expect((await t.agent.get(t.path('/.well-known/openid-configuration'))).body.subject_types_supported).toEqual(['public', 'pairwise']);
  });

  it('follows the mount path with a derived issuer (development)', async () => {
    const t = await oidcApp({ issuer: undefined });
    const res = await t.agent.get(t.path('/.well-known/openid-configuration')).set('Host', 'localhost:3000');
    expect(res.body.issuer).toBe(`http://localhost:3000${MOUNT}`);
    expect(res.body.userinfo_endpoint).toBe(`http://localhost:3000${MOUNT}/userinfo`);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('refuses start-up options it cannot use', async () => {
    await expect(oidcApp({ oidcPairwiseSalt: 'short' })).rejects.toThrow("'oidcPairwiseSalt' must be at least 32 characters");
    await expect(oidcApp({ oidcSubjectType: 'pairwise' })).rejects.toThrow("'pairwise' needs 'oidcPairwiseSalt'");
    await expect(oidcApp({ oidcIdTokenExpiresIn: 0 })).rejects.toThrow("'oidcIdTokenExpiresIn' must be a whole number");
    await expect(oidcApp({ oauthJwtKeys: [] })).rejects.toThrow("'oauthJwtKeys' needs at least one private key");
  });
});
