/** What the oidc specs share: an app with OpenID Connect, a signing key, the code flow with `openid`, and ID token checks. */
import { exportJWK, generateKeyPair, jwtVerify, createLocalJWKSet, type JWK, type JWTPayload } from 'jose';
import type { Response } from 'supertest';
import { basic, buildApp, type TestApp } from '../support/build_app';
import { consent, locationParams, obtainCode, testLogin } from '../authorization_code_grant/flow';

export const ISSUER = `https://auth.example.com${process.env.MOUNT_PATH ?? ''}`;
export const REDIRECT_URI = 'https://client.example/cb';

export interface OidcApp extends TestApp {
  privateJwk: JWK;
  client: { clientId: string; clientSecret: string; id: number };
}

/** An app with `oidc` (and refresh), a fresh ES256 key, and a confidential client registered for `openid profile email`. */
export async function oidcApp(options: Record<string, unknown> = {}, clientInput: Record<string, unknown> = {}): Promise<OidcApp> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const privateJwk = await exportJWK(privateKey);
  const enable = ['oidc', 'refresh', ...((options.enable as string[] | undefined) ?? [])];
  const t = await buildApp({ issuer: ISSUER, oauthJwtKeys: [{ key: privateJwk, alg: 'ES256', kid: 'k1' }], ...options, enable }, { setup: testLogin });
  const client = await t.createClient({ scopes: ['openid', 'profile', 'email', 'address', 'phone', 'books.read'], postLogoutRedirectUris: ['https://client.example/logged-out'], ...clientInput });
  return Object.assign(t, { privateJwk, client });
}

/** The authorization request parameters of an OpenID Connect code flow. */
export function authParams(t: OidcApp, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { response_type: 'code', client_id: t.client.clientId, redirect_uri: REDIRECT_URI, scope: 'openid profile email', state: 'xyz', nonce: 'n-0S6_WzA2Mj', ...extra };
}

export function tokenRequest(t: OidcApp, body: Record<string, string>): Promise<Response> {
  return t.agent.post(t.path('/token')).type('form').set('Authorization', basic(t.client.clientId, t.client.clientSecret)).send(body);
}

/** Code flow as `user`: the token response. */
export async function codeFlow(t: OidcApp, extra: Record<string, string | undefined> = {}, user = 'alice'): Promise<Response> {
  const code = await obtainCode(t, authParams(t, extra), { user });
  return tokenRequest(t, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
}

/** The claims of an ID token, verified with the app's published key (jose). */
export async function verifyIdToken(t: OidcApp, idToken: string, options: { currentDate?: Date } = {}): Promise<JWTPayload> {
  const jwks = (await t.agent.get(t.path('/jwks'))).body;
  const { payload, protectedHeader } = await jwtVerify(idToken, createLocalJWKSet(jwks), { issuer: ISSUER, audience: t.client.clientId, algorithms: ['ES256'], ...options });
  if (protectedHeader.typ !== 'JWT' || protectedHeader.kid !== 'k1') throw new Error(`unexpected header ${JSON.stringify(protectedHeader)}`);
  return payload;
}

export { consent, locationParams, obtainCode };
