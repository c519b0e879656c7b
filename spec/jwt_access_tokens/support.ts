/** What the jwt_access_tokens specs share: a server key, the app, token requests and checks of the answers. */
import { expect } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Response } from 'supertest';
import { jest } from '@jest/globals';
import { Sql } from '../../lib/store/sql';
import { basic, buildApp, type TestApp } from '../support/build_app';

export const ISSUER = 'https://auth.example.com';
export const KID = 'key-1';
export const INVALID_TOKEN = { error: 'invalid_token', error_description: 'Invalid access token' };
export const INVALID_TOKEN_CHALLENGE = 'Bearer realm="oauth", error="invalid_token", error_description="Invalid access token"';

/** A fresh ES256 private key as a JWK, and the `oauthJwtKeys` option that makes it the signing key. */
export async function es256(kid = KID): Promise<{ privateJwk: JWK; option: unknown[] }> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const privateJwk = await exportJWK(privateKey);
  return { privateJwk, option: [{ key: privateJwk, alg: 'ES256', kid }] };
}

/** An app with JWT access tokens, client credentials, revocation and introspection, signing with a fresh ES256 key. */
export async function jwtApp(options: Record<string, unknown> = {}, opts: Parameters<typeof buildApp>[1] = {}): Promise<TestApp & { privateJwk: JWK }> {
  const { privateJwk, option } = await es256();
  const enable = ['jwt_access_tokens', 'client_credentials_grant', 'token_revocation', 'token_introspection', ...((options.enable as string[] | undefined) ?? [])];
  const t = await buildApp({ issuer: ISSUER, oauthJwtKeys: option, ...options, enable }, opts);
  return Object.assign(t, { privateJwk });
}

export interface Client {
  clientId: string;
  clientSecret: string;
  id: number;
}

export function tokenRequest(t: TestApp, client: Client, body: Record<string, string>): Promise<Response> {
  return t.agent.post(t.path('/token')).type('form').set('Authorization', basic(client.clientId, client.clientSecret)).send(body);
}

export async function clientCredentials(t: TestApp, client: Client, scope = 'books.read'): Promise<string> {
  const res = await tokenRequest(t, client, { grant_type: 'client_credentials', scope });
  expect(res.status).toBe(200);
  return res.body.access_token as string;
}

export function bearer(t: TestApp, token: string, path = '/api/me'): Promise<Response> {
  return t.agent.get(path).set('Authorization', `Bearer ${token}`);
}

export function expectInvalidToken(res: Response): void {
  expect(res.status).toBe(401);
  expect(res.headers['www-authenticate']).toBe(INVALID_TOKEN_CHALLENGE);
  expect(res.body).toEqual(INVALID_TOKEN);
}

/** The header and claims of a JWT, decoded (not verified) with jose. */
export function decode(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  return { header: decodeProtectedHeader(token) as Record<string, unknown>, claims: decodeJwt(token) as Record<string, unknown> };
}

/** Counts every statement the store runs (SQLite and PostgreSQL alike: all go through `Sql`). */
export function countQueries(): { count(): number; restore(): void } {
  const spies = (['first', 'changes', 'insert', 'added', 'transaction'] as const).map((name) => jest.spyOn(Sql.prototype, name));
  return {
    count: () => spies.reduce((n, s) => n + s.mock.calls.length, 0),
    restore: () => spies.forEach((s) => s.mockRestore()),
  };
}
