/**
 * Grants with access and refresh tokens, written through the store exactly as production writes
 * them (SHA-256 hashes, absolute expiries), for specs of features that read tokens
 * (revocation, introspection) without depending on the features that issue them.
 */
import request from 'supertest';
import { randomToken, sha256 } from '../../lib/crypto';
import type { Grant } from '../../lib/store';
import { basic, type TestApp } from './build_app';
import { reloadGrant, storeOf } from './grants';

export { reloadGrant, storeOf };

export interface GrantFixture {
  applicationId: number;
  accountId?: string | null;
  type?: string;
  scopes?: string[];
  /** Access-token expiry; default: one hour after `createdAt`. */
  expiresIn?: Date;
  /** Refresh-token expiry; default: thirty days after `createdAt`. Null: no expiry. */
  refreshTokenExpiresIn?: Date | null;
  createdAt?: Date;
  /** Issue an access token (default true) and a refresh token (default true). */
  accessToken?: boolean;
  refreshToken?: boolean;
  /** Give the row an authorization code (not yet redeemed) as well. */
  code?: boolean;
}

export interface IssuedGrant {
  grant: Grant;
  accessToken?: string;
  refreshToken?: string;
  code?: string;
}

/** Inserts one grant row carrying the requested tokens; returns the tokens in clear. `options`: the app's schema renames. */
export async function insertGrant(t: TestApp, f: GrantFixture, options: Record<string, unknown> = {}): Promise<IssuedGrant> {
  const createdAt = f.createdAt ?? new Date();
  const accessToken = f.accessToken === false ? undefined : randomToken();
  const refreshToken = f.refreshToken === false ? undefined : randomToken();
  const code = f.code ? randomToken() : undefined;
  const grant = await storeOf(t, options).grants.insert({
    accountId: f.accountId === undefined ? 'account-1' : f.accountId,
    oauthApplicationId: f.applicationId,
    type: f.type ?? 'authorization_code',
    codeHash: code === undefined ? null : sha256(code),
    tokenHash: accessToken === undefined ? null : sha256(accessToken),
    refreshTokenHash: refreshToken === undefined ? null : sha256(refreshToken),
    expiresIn: f.expiresIn ?? new Date(createdAt.getTime() + 3600 * 1000),
    refreshTokenExpiresIn: refreshToken === undefined ? null : f.refreshTokenExpiresIn === undefined ? new Date(createdAt.getTime() + 30 * 86400 * 1000) : f.refreshTokenExpiresIn,
    redirectUri: code === undefined ? null : 'https://client.example/cb',
    scopes: f.scopes ?? ['books.read'],
    accessType: 'offline',
    codeChallenge: null,
    codeChallengeMethod: null,
    createdAt,
  });
  return { grant, accessToken, refreshToken, code };
}

/** An access token from the client_credentials grant (needs `client_credentials_grant` enabled). */
export async function clientCredentialsToken(t: TestApp, client: { clientId: string; clientSecret: string }, scope?: string): Promise<string> {
  const res = await request(t.app)
    .post(t.path('/token'))
    .set('Authorization', basic(client.clientId, client.clientSecret))
    .type('form')
    .send(scope === undefined ? { grant_type: 'client_credentials' } : { grant_type: 'client_credentials', scope });
  if (res.status !== 200) throw new Error(`client_credentials failed: ${res.status} ${res.text}`);
  return (res.body as { access_token: string }).access_token;
}
