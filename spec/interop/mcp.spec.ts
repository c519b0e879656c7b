/**
 * The MCP SDK's own client (`@modelcontextprotocol/sdk` 1.32.2: Client, StreamableHTTPClientTransport,
 * an OAuthClientProvider) against examples/mcp-server.ts: discovery from the 401, dynamic client
 * registration, login and consent, a tool call, token expiry and the refresh the SDK does itself.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createMcpApp, type McpDemo } from '../../examples/mcp-server';
import { createTestDb, type TestDb } from '../support/db';
import { BrowserLikeProvider, connectWithOAuth, whoami, type Recorded } from './mcp_support';

const HOUR = 3600_000;

describe('interop › MCP SDK client › dynamic client registration', () => {
  let testDb: TestDb;
  let demo: McpDemo;
  let client: Client;
  const log: Recorded[] = [];
  let offset = 0;
  const provider = new BrowserLikeProvider({ redirectUrl: 'http://127.0.0.1:9/callback', user: { username: 'demo', password: 'demo' } });

  beforeAll(async () => {
    testDb = await createTestDb();
    // The server's clock (`now`), moved forward below to expire the access token.
    demo = await createMcpApp({ db: testDb.db, oauthOptions: { now: () => new Date(Date.now() + offset) } });
    ({ client } = await connectWithOAuth(demo.resource, provider, log));
  });

  afterAll(async () => {
    await client?.close();
    await demo?.close();
    await testDb?.destroy();
  });

  const requests = (method: string, path: string) => log.filter((r) => r.method === method && r.url.pathname === path);

  it('discovers the protected-resource metadata from the 401 challenge, then the server metadata, registers, and after consent exchanges the code (RFC 9728 §5.1, RFC 8414, RFC 7591)', () => {
    const connect = log.slice(0, 9).map((r) => `${r.method} ${r.url.pathname} ${r.status}`);
    expect(connect).toEqual([
      'POST /mcp 401',
      'GET /.well-known/oauth-protected-resource/mcp 200',
      'GET /.well-known/oauth-authorization-server 200',
      'POST /register 201',
      // transport.finishAuth(code) discovers again (the provider keeps no discovery state)
      'GET /.well-known/oauth-protected-resource/mcp 200',
      'GET /.well-known/oauth-authorization-server 200',
      'POST /token 200',
      'POST /mcp 200', // initialize, with the token
      'POST /mcp 202', // notifications/initialized
    ]);
    expect(log[0]!.challenge).toBe(`Bearer realm="oauth", resource_metadata="${demo.origin}/.well-known/oauth-protected-resource/mcp", scope="mcp"`);
    expect(log[7]!.headers.authorization).toBe(`Bearer ${provider.tokens()!.access_token}`);
  });

  it('registers dynamically at registration_endpoint (RFC 7591) with the scope of the resource', () => {
    const [registration] = requests('POST', '/register');
    expect(registration!.status).toBe(201);
    expect(registration!.json).toMatchObject({ redirect_uris: ['http://127.0.0.1:9/callback'], token_endpoint_auth_method: 'none', scope: 'mcp' });
    const info = provider.clientInformation()!;
    expect(info.client_id).toEqual(expect.any(String));
    expect('client_secret' in info ? info.client_secret : undefined).toBeUndefined();
  });

  it('sends the resource, S256 PKCE and the scope at /authorize, and gets the code back with state and iss (RFC 8707, RFC 7636, RFC 9207)', async () => {
    const [visit] = provider.visits;
    const q = visit!.authorizationUrl.searchParams;
    expect(q.get('resource')).toBe(demo.resource);
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('scope')).toBe('mcp');
    expect(q.get('client_id')).toBe(provider.clientInformation()!.client_id);
    expect(visit!.consentPage).toContain('MCP interop client');
    expect(visit!.redirect.searchParams.get('iss')).toBe(demo.origin);
  });

  it('exchanges the code with the resource and its verifier, and gets a Bearer token and a refresh token', () => {
    const [exchange] = requests('POST', '/token');
    expect(exchange!.status).toBe(200);
    expect(exchange!.form).toMatchObject({ grant_type: ['authorization_code'], resource: [demo.resource], code_verifier: [expect.any(String)] });
    expect(provider.tokens()).toMatchObject({ token_type: 'Bearer', scope: 'mcp', refresh_token: expect.any(String) });
  });

  it('calls a tool, and the server saw an audience-bound token: the resource, the client, the account, the scope', async () => {
    const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
    expect(sum.content).toEqual([{ type: 'text', text: '42' }]);
    const seen = await whoami(client);
    expect(seen).toEqual({ accountId: demo.user.id, clientId: provider.clientInformation()!.client_id, scopes: ['mcp'], resource: demo.resource, expiresAt: expect.any(Number) });
    const grants = await testDb.db('oauth_grants').select('resource');
    expect(grants.map((g: { resource: string }) => g.resource)).toEqual([demo.resource]);
  });

  it('the token is refused by another resource of the same server (401 invalid_token naming its own metadata)', async () => {
    const other = demo.auth.protectedResource({ resource: `${demo.origin}/other`, scopes: ['mcp'] });
    demo.app.use(other);
    demo.app.post('/other', other.require('mcp'), (_req, res) => void res.json({ ok: true }));
    const res = await fetch(`${demo.origin}/other`, { method: 'POST', headers: { authorization: `Bearer ${provider.tokens()!.access_token}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(res.headers.get('www-authenticate')).toContain(`resource_metadata="${demo.origin}/.well-known/oauth-protected-resource/other"`);
  });

  it('after the access token expires, the SDK refreshes it with the resource on its own and the call succeeds', async () => {
    const before = provider.tokens()!;
    const expiresBefore = (await whoami(client)).expiresAt!;
    offset = 2 * HOUR;
    const sum = await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } });
    expect(sum.content).toEqual([{ type: 'text', text: '2' }]);
    const refreshes = log.filter((r) => r.url.pathname === '/token' && r.form?.grant_type?.[0] === 'refresh_token');
    expect(refreshes).toHaveLength(1);
    expect(refreshes[0]!.status).toBe(200);
    expect(refreshes[0]!.form).toMatchObject({ refresh_token: [before.refresh_token], resource: [demo.resource] });
    const after = provider.tokens()!;
    expect(after.access_token).not.toBe(before.access_token);
    expect(after.refresh_token).not.toBe(before.refresh_token); // rotation
    const seen = await whoami(client);
    expect(seen.resource).toBe(demo.resource);
    expect(seen.expiresAt! - expiresBefore).toBeGreaterThanOrEqual(2 * 3600 - 5);
    // Exactly one 401 led to the refresh: the call with the expired token.
    const expired = log.filter((r) => r.url.href === demo.resource && r.status === 401 && r.headers.authorization === `Bearer ${before.access_token}`);
    expect(expired).toHaveLength(1);
  });
});
