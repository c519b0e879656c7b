import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildApp, closeAll, MOUNT, type TestApp } from '../support/build_app';

afterAll(closeAll);

const WELL_KNOWN = '/.well-known/oauth-authorization-server';

describe('oauth_base › metadata', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildApp({ enable: ['client_credentials_grant'] });
  });

  it('describes what is enabled, every URL following the mount path (RFC 8414 §2, §3)', async () => {
    const res = await t.agent.get(t.path(WELL_KNOWN)).set('Host', 'auth.example');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    // Derived from Host (no issuer option): never kept by a shared cache (design.md §4.12).
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.vary).toBe('Host');
    expect(res.body).toEqual({
      issuer: `http://auth.example${MOUNT}`,
      token_endpoint: `http://auth.example${MOUNT}/token`,
      response_types_supported: [],
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    });
  });

  it('uses the issuer option for the issuer and every endpoint', async () => {
    const r = await buildApp({ enable: ['client_credentials_grant'], issuer: 'https://auth.example.com/tenant' });
    const res = await r.agent.get(r.path(WELL_KNOWN));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      issuer: 'https://auth.example.com/tenant',
      token_endpoint: 'https://auth.example.com/tenant/token',
      response_types_supported: [],
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    });
  });

  it('follows a renamed token route and the metadata values', async () => {
    const r = await buildApp({
      enable: ['client_credentials_grant'],
      tokenRoute: 'oauth-token',
      oauthApplicationScopes: ['books.read', 'books.write'],
      oauthTokenEndpointAuthMethodsSupported: ['client_secret_basic'],
      oauthMetadataServiceDocumentation: 'https://docs.example/oauth',
      oauthMetadataUiLocalesSupported: ['en', 'fr'],
      oauthMetadataOpPolicyUri: 'https://auth.example/policy',
      oauthMetadataOpTosUri: 'https://auth.example/tos',
      oauthMetadataCacheControl: 'no-cache',
      issuer: `https://auth.example${MOUNT}`,
    });
    const res = await r.agent.get(r.path(WELL_KNOWN)).set('Host', 'auth.example');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.body).toEqual({
      issuer: `https://auth.example${MOUNT}`,
      token_endpoint: `https://auth.example${MOUNT}/oauth-token`,
      scopes_supported: ['books.read', 'books.write'],
      response_types_supported: [],
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic'],
      service_documentation: 'https://docs.example/oauth',
      ui_locales_supported: ['en', 'fr'],
      op_policy_uri: 'https://auth.example/policy',
      op_tos_uri: 'https://auth.example/tos',
    });
  });

  it('lists the grant types of every enabled feature', async () => {
    const r = await buildApp({ enable: ['client_credentials_grant', 'refresh'] });
    const res = await r.agent.get(r.path(WELL_KNOWN));
    expect(res.body.grant_types_supported).toEqual(expect.arrayContaining(['client_credentials', 'refresh_token']));
    expect(res.body.grant_types_supported).toHaveLength(2);
  });

  it('is not served under another method: 405 with Allow', async () => {
    const res = await t.agent.post(t.path(WELL_KNOWN)).type('form').send({});
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Method not allowed' });
  });

  it.each([
    ['a repeated parameter', '?a=1&a=2'],
    ['a malformed parameter', '?x=%00'],
    ['a cache buster', '?v=2'],
  ])('ignores its query string, %s included (RFC 8414 §3 defines no parameter)', async (_label, qs) => {
    const plain = await t.agent.get(t.path(WELL_KNOWN)).set('Host', 'auth.example');
    const res = await t.agent.get(`${t.path(WELL_KNOWN)}${qs}`).set('Host', 'auth.example');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual(plain.body);
  });
});
