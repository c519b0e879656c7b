import { afterAll, describe, expect, it } from '@jest/globals';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { exportJWK, generateKeyPair } from 'jose';
import { oauth } from '../../lib';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { createTestDb } from '../support/db';
import { testLogin } from '../authorization_code_grant/flow';
import { bearer, BOOKS, codeFlow, INVALID_TARGET, ISSUER, MCP, tokenRequest } from '../resource_indicators/support';
import { expectError } from '../support/expect_oauth_error';

afterAll(closeAll);

const METADATA_URL = 'https://api.example.com/.well-known/oauth-protected-resource/mcp';
const CHALLENGE = `Bearer realm="oauth", resource_metadata="${METADATA_URL}"`;

/** An app with `protectedResource({ resource: MCP })` mounted at the root and `/mcp` requiring `mcp`; the allow-list holds only BOOKS. */
async function mcpApp(options: Record<string, unknown> = {}): Promise<TestApp> {
  const enable = ['resource_indicators', 'authorization_code_grant', 'pkce', 'refresh', 'client_credentials_grant', ...((options.enable as string[] | undefined) ?? [])];
  const t = await buildApp({ issuer: ISSUER, oauthResourceIndicators: [BOOKS], ...options, enable }, { setup: testLogin });
  const mcp = t.auth.protectedResource({ resource: MCP, scopes: ['mcp', 'mcp.admin'], documentation: 'https://api.example.com/docs', name: 'Example MCP' });
  t.app.use(mcp);
  t.app.get('/mcp', mcp.require('mcp'), (req, res) => {
    const info: AuthInfo | undefined = req.auth;
    res.json({ auth: { ...info, resource: info?.resource?.href }, oauth: req.oauth });
  });
  t.app.get('/mcp/admin', mcp.require('mcp.admin'), (_req, res) => void res.json({ ok: true }));
  t.app.get('/mcp/any', mcp.require(), (_req, res) => void res.json({ ok: true }));
  t.app.get('/books', t.auth.requireOauthAuthorization({ resource: BOOKS }), (_req, res) => void res.json({ ok: true }));
  return t;
}

async function mcpToken(t: TestApp, scope = 'mcp'): Promise<{ token: string; clientId: string }> {
  const client = await t.createClient({ scopes: ['mcp', 'mcp.admin', 'books.read'] });
  const res = await tokenRequest(t, client, { grant_type: 'client_credentials', scope }, [MCP]);
  expect(res.status).toBe(200);
  return { token: res.body.access_token, clientId: client.clientId };
}

describe('protected_resource › metadata (RFC 9728 §3)', () => {
  const DOC = {
    resource: MCP,
    authorization_servers: [ISSUER],
    scopes_supported: ['mcp', 'mcp.admin'],
    bearer_methods_supported: ['header'],
    resource_documentation: 'https://api.example.com/docs',
    resource_name: 'Example MCP',
  };

  it('serves the document at the path-inserted URL, cacheable, whatever the OAuth mount path', async () => {
    const t = await mcpApp();
    const path = '/.well-known/oauth-protected-resource/mcp';
    const res = await t.agent.get(path);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['cache-control']).toBe('public, max-age=3600');
    expect(res.body).toEqual(DOC);
    expect((await t.agent.head(path)).status).toBe(200);
  });

  it('leaves the root form to the host for a resource with a path: its `resource` would not match that URL (RFC 9728 §3.3)', async () => {
    const t = await mcpApp();
    expect((await t.agent.get('/.well-known/oauth-protected-resource')).status).toBe(404);
  });

  it('serves a resource without a path at the root form (RFC 9728 §3.1)', async () => {
    const t = await buildApp({ issuer: ISSUER, enable: ['resource_indicators'] });
    t.app.use(t.auth.protectedResource({ resource: 'https://api.example.com' }));
    const res = await t.agent.get('/.well-known/oauth-protected-resource');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ resource: 'https://api.example.com', authorization_servers: [ISSUER], bearer_methods_supported: ['header'] });
    expect((await t.agent.get('/.well-known/oauth-protected-resource/mcp')).status).toBe(404);
  });

  it('answers another method 405 with Allow, and leaves other paths to the host', async () => {
    const t = await mcpApp();
    const res = await t.agent.post('/.well-known/oauth-protected-resource/mcp');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Method not allowed' });
    expect((await t.agent.get('/.well-known/oauth-protected-resource/other')).status).toBe(404);
  });

  it('names the derived issuer without the issuer option, not cacheable', async () => {
    const t = await buildApp({ enable: ['resource_indicators'] });
    t.app.use(t.auth.protectedResource({ resource: 'http://127.0.0.1/api', mountPath: '/oauth' }));
    const res = await t.agent.get('/.well-known/oauth-protected-resource/api').set('Host', 'localhost:3000');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ resource: 'http://127.0.0.1/api', authorization_servers: ['http://localhost:3000/oauth'], bearer_methods_supported: ['header'] });
  });

  it('refuses bad options and a server without resource_indicators with a TypeError', async () => {
    const t = await mcpApp();
    expect(() => t.auth.protectedResource({ resource: '/mcp' })).toThrow('protectedResource(): resource must be an absolute URI without a fragment (RFC 8707 §2), got "/mcp"');
    expect(() => t.auth.protectedResource({ resource: 'https://a.example/mcp#x' })).toThrow(TypeError);
    expect(() => t.auth.protectedResource({ resource: 'http://a.example/mcp' })).toThrow('protectedResource(): resource must use https (http only on a loopback host), got "http://a.example/mcp"');
    expect(() => t.auth.protectedResource({ resource: 'https://a.example/mcp?x=1' })).toThrow('protectedResource(): resource must not have a query (RFC 9728 §1.2), got "https://a.example/mcp?x=1"');
    expect(() => t.auth.protectedResource({ resource: MCP, scopes: ['a b'] })).toThrow("protectedResource(): 'a b' is not a valid scope");
    const { db, destroy } = await createTestDb();
    try {
      expect(() => oauth({ db, issuer: ISSUER }).protectedResource({ resource: MCP })).toThrow(
        "protectedResource(): enable the resource_indicators feature: tokens are bound to 'https://api.example.com/mcp' only when clients can ask for it (RFC 8707)",
      );
    } finally {
      await destroy();
    }
  });
});

describe('protected_resource › require (RFC 6750 §3, RFC 9728 §5.1)', () => {
  it('answers a request without a token 401 with resource_metadata and the required scope, no error code', async () => {
    const t = await mcpApp();
    const res = await t.agent.get('/mcp');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(`${CHALLENGE}, scope="mcp"`);
    expect(res.body).toEqual({ error: 'invalid_token', error_description: 'An access token is required' });
    // Without required scopes, the resource's own.
    expect((await t.agent.get('/mcp/any')).headers['www-authenticate']).toBe(`${CHALLENGE}, scope="mcp mcp.admin"`);
  });

  it('answers a bad token 401 invalid_token with resource_metadata', async () => {
    const t = await mcpApp();
    const res = await bearer(t, 'not-a-token', '/mcp');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(`Bearer realm="oauth", error="invalid_token", error_description="Invalid access token", resource_metadata="${METADATA_URL}", scope="mcp"`);
  });

  it('accepts a token for the resource: req.auth in the MCP SDK shape and req.oauth', async () => {
    const t = await mcpApp();
    const { token, clientId } = await mcpToken(t);
    const res = await bearer(t, token, '/mcp');
    expect(res.status).toBe(200);
    const { auth, oauth: o } = res.body;
    expect(auth).toEqual({ token, clientId, scopes: ['mcp'], expiresAt: Math.floor(Date.parse(o.expiresAt) / 1000), resource: MCP, extra: { accountId: null, applicationId: o.applicationId, grantId: o.grantId } });
    expect(o).toMatchObject({ clientId, scopes: ['mcp'], token });
  });

  it('answers 403 insufficient_scope naming the required scope, for step-up', async () => {
    const t = await mcpApp();
    const { token } = await mcpToken(t);
    const res = await bearer(t, token, '/mcp/admin');
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe(`Bearer realm="oauth", error="insufficient_scope", error_description="Insufficient scope", resource_metadata="${METADATA_URL}", scope="mcp.admin"`);
    expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'Insufficient scope' });
  });

  it('refuses a token for another audience, and requireOauthAuthorization({ resource }) refuses the MCP token', async () => {
    const t = await mcpApp();
    const client = await t.createClient({ scopes: ['mcp', 'books.read'] });
    const books = await tokenRequest(t, client, { grant_type: 'client_credentials', scope: 'mcp' }, [BOOKS]);
    const none = await tokenRequest(t, client, { grant_type: 'client_credentials', scope: 'mcp' });
    for (const token of [books.body.access_token, none.body.access_token]) {
      const res = await bearer(t, token, '/mcp');
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe(`Bearer realm="oauth", error="invalid_token", error_description="Invalid access token", resource_metadata="${METADATA_URL}", scope="mcp"`);
    }
    expect((await bearer(t, books.body.access_token, '/books')).status).toBe(200);
    const { token } = await mcpToken(t);
    expect((await bearer(t, token, '/books')).status).toBe(401);
    expect((await bearer(t, token, '/api/me')).status).toBe(401);
  });

  it('lets clients ask for the declared resource at /authorize and /token, and no other', async () => {
    const t = await mcpApp();
    const client = await t.createClient({ scopes: ['mcp', 'books.read'] });
    const tok = await codeFlow(t, client, [MCP]);
    expect(tok.status).toBe(200);
    expect((await bearer(t, tok.body.access_token, '/mcp')).status).toBe(403);
    expectError(await tokenRequest(t, client, { grant_type: 'client_credentials', scope: 'mcp' }, ['https://api.example.com/other']), 400, INVALID_TARGET);
  });

  it('checks JWT access tokens by aud', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const t = await mcpApp({ enable: ['jwt_access_tokens'], oauthJwtKeys: [{ key: await exportJWK(privateKey), alg: 'ES256', kid: 'k1' }] });
    const { token } = await mcpToken(t);
    expect(token.split('.')).toHaveLength(3);
    expect((await bearer(t, token, '/mcp')).status).toBe(200);
    expect((await bearer(t, token, '/books')).status).toBe(401);
    const client = await t.createClient({ scopes: ['mcp'] });
    const books = await tokenRequest(t, client, { grant_type: 'client_credentials', scope: 'mcp' }, [BOOKS]);
    expect((await bearer(t, books.body.access_token, '/mcp')).status).toBe(401);
  });
});
