/** What the resource_indicators specs share: the app, the resources, the consent round trip keeping repeated fields. */
import { expect } from '@jest/globals';
import type { Response } from 'supertest';
import { basic, buildApp, type TestApp } from '../support/build_app';
import { locationParams, pkcePair, testLogin, unescapeHtml } from '../authorization_code_grant/flow';

export const ISSUER = 'https://auth.example.com';
export const MCP = 'https://api.example.com/mcp';
export const BOOKS = 'https://books.example.com';
export const OTHER = 'https://other.example.com';
export const REDIRECT = 'https://client.example/cb';
export const INVALID_TARGET = { error: 'invalid_target', error_description: 'Unknown or unauthorized resource' };
export const MALFORMED_TARGET = { error: 'invalid_target', error_description: 'The resource must be an absolute URI without a fragment' };

export interface Client {
  clientId: string;
  clientSecret: string;
  id: number;
}

/**
 * An app with the code flow, refresh, client credentials and introspection, the two resources
 * allowed, and routes of each audience: `/api/mcp` (MCP), `/api/books-rs` (BOOKS), `/api/me` (none).
 */
export async function resourceApp(options: Record<string, unknown> = {}): Promise<TestApp> {
  const enable = ['resource_indicators', 'authorization_code_grant', 'pkce', 'refresh', 'client_credentials_grant', 'token_introspection', ...((options.enable as string[] | undefined) ?? [])];
  const t = await buildApp({ issuer: ISSUER, oauthResourceIndicators: [MCP, BOOKS], ...options, enable }, { setup: testLogin });
  t.app.get('/api/mcp', t.auth.requireOauthAuthorization({ resource: MCP }), (req, res) => void res.json(req.oauth));
  t.app.get('/api/books-rs', t.auth.requireOauthAuthorization({ resource: BOOKS, scopes: ['books.read'] }), (req, res) => void res.json(req.oauth));
  return t;
}

/** The query string of an authorization request, `resource` repeated once per value. */
export function authorizeQuery(client: Client, resources: readonly string[], extra: Record<string, string> = {}): { query: string; verifier: string } {
  const { verifier, challenge } = pkcePair();
  const q = new URLSearchParams({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, scope: 'books.read', state: 'xyz', code_challenge: challenge, code_challenge_method: 'S256', ...extra });
  for (const r of resources) q.append('resource', r);
  return { query: q.toString(), verifier };
}

/** The hidden fields of the consent form, in order, repeated names kept. */
export function hiddenFields(html: string): [string, string][] {
  return [...html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)].map((m) => [unescapeHtml(m[1]!), unescapeHtml(m[2]!)]);
}

/** GET the consent page, POST it back approved: the response of the POST. */
export async function approve(t: TestApp, query: string, user = 'alice'): Promise<Response> {
  const page = await t.agent.get(`${t.path('/authorize')}?${query}`).set('X-Test-User', user);
  // A consent given before for the same scopes may be remembered: the code comes at once.
  if (page.status === 302 && page.headers.location?.includes('code=')) return page;
  if (page.status !== 200) throw new Error(`consent page: ${page.status} ${page.headers.location ?? page.text}`);
  const form = new URLSearchParams([...hiddenFields(page.text), ['decision', 'approve']]).toString();
  return t.agent.post(t.path('/authorize')).set('X-Test-User', user).type('form').send(form);
}

/** A code for `resources`, then its exchange (with `tokenResources` as the token request's `resource`s). */
export async function codeFlow(t: TestApp, client: Client, resources: readonly string[], tokenResources: readonly string[] = []): Promise<Response> {
  const { query, verifier } = authorizeQuery(client, resources);
  const res = await approve(t, query);
  const code = locationParams(res.headers.location).code;
  if (res.status !== 302 || !code) throw new Error(`no code: ${res.status} ${res.headers.location}`);
  return tokenRequest(t, client, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, tokenResources);
}

/** POST /token (Basic), with `resource` once per value. */
export function tokenRequest(t: TestApp, client: Client, body: Record<string, string>, resources: readonly string[] = []): Promise<Response> {
  const form = new URLSearchParams(body);
  for (const r of resources) form.append('resource', r);
  return t.agent.post(t.path('/token')).type('form').set('Authorization', basic(client.clientId, client.clientSecret)).send(form.toString());
}

export function bearer(t: TestApp, token: string, path: string): Promise<Response> {
  return t.agent.get(path).set('Authorization', `Bearer ${token}`);
}

export const INVALID_TOKEN_CHALLENGE = 'Bearer realm="oauth", error="invalid_token", error_description="Invalid access token"';

/** 401 invalid_token with the RFC 6750 challenge. */
export function expectInvalidToken(res: Response): void {
  expect(res.status).toBe(401);
  expect(res.headers['www-authenticate']).toBe(INVALID_TOKEN_CHALLENGE);
  expect(res.body).toEqual({ error: 'invalid_token', error_description: 'Invalid access token' });
}

/** The grant row's two resource columns. */
export async function grantResources(t: TestApp): Promise<{ resource: string | null; token_resource: string | null }[]> {
  return (await t.db('oauth_grants').select('resource', 'token_resource').orderBy('id')) as { resource: string | null; token_resource: string | null }[];
}
