/** Token issuance shared by every grant: generate, hash, store, answer (RFC 6749 §5.1). */
import type { OAuthContext } from './context';
import type { TokenResponse } from './feature';
import type { Grant } from './store';

/** The two kinds of token a grant row carries. */
export type TokenKind = 'access_token' | 'refresh_token';

interface TokenValues {
  oauthAccessTokenExpiresIn: number;
  oauthTokenType: string;
}
interface TokenMethods {
  generateToken(): string;
  generateTokenHash(token: string): string;
  now(): Date;
}

export interface IssuedTokens {
  accessToken: string;
  accessTokenHash: string;
  expiresIn: Date;
}

/** A fresh access token, its hash and its absolute expiry. */
export function newAccessToken(ctx: OAuthContext): IssuedTokens {
  const m = ctx.methods as unknown as TokenMethods;
  const v = ctx.values as unknown as TokenValues;
  const accessToken = m.generateToken();
  return { accessToken, accessTokenHash: m.generateTokenHash(accessToken), expiresIn: new Date(m.now().getTime() + v.oauthAccessTokenExpiresIn * 1000) };
}

/** The RFC 6749 §5.1 body: `scope` is always present (design.md §4.2). */
export function tokenResponse(ctx: OAuthContext, accessToken: string, scopes: readonly string[], refreshToken?: string): TokenResponse {
  const v = ctx.values as unknown as TokenValues;
  const body: TokenResponse = { access_token: accessToken, token_type: v.oauthTokenType, expires_in: v.oauthAccessTokenExpiresIn, scope: scopes.join(' ') };
  if (refreshToken !== undefined) body.refresh_token = refreshToken;
  return body;
}

/** Inserts a grant that carries an access token only (client credentials, assertion grants). */
export async function issueDirectGrant(ctx: OAuthContext, fields: { type: string; accountId: string | null; applicationId: number; scopes: string[] }): Promise<{ grant: Grant; body: TokenResponse }> {
  const t = newAccessToken(ctx);
  const grant = await ctx.store.grants.insert({
    accountId: fields.accountId,
    oauthApplicationId: fields.applicationId,
    type: fields.type,
    codeHash: null,
    tokenHash: t.accessTokenHash,
    refreshTokenHash: null,
    expiresIn: t.expiresIn,
    refreshTokenExpiresIn: null,
    redirectUri: null,
    scopes: fields.scopes,
    accessType: 'online',
    codeChallenge: null,
    codeChallengeMethod: null,
    createdAt: (ctx.methods as unknown as TokenMethods).now(),
  });
  ctx.grant = grant;
  return { grant, body: tokenResponse(ctx, t.accessToken, fields.scopes) };
}

export interface IssuedRefreshToken {
  refreshToken: string;
  refreshTokenHash: string;
  refreshTokenExpiresIn: Date;
}

/**
 * A fresh refresh token when the `refresh` feature is enabled (RFC 6749 §1.5) and the client is
 * registered for the `refresh_token` grant (design.md §4.11: a client that may not use one gets
 * none), else undefined. Grants that may carry one (authorization code, refresh) call this;
 * client credentials and assertion grants never do.
 */
export function newRefreshToken(ctx: OAuthContext): IssuedRefreshToken | undefined {
  if (!ctx.runtime.enabled.has('refresh')) return undefined;
  // A NULL grant_types column means every enabled grant.
  const registered = ctx.application?.grantTypes;
  if (registered && !registered.includes('refresh_token')) return undefined;
  const m = ctx.methods as unknown as TokenMethods;
  const lifetime = Number((ctx.values as unknown as { oauthRefreshTokenExpiresIn: number }).oauthRefreshTokenExpiresIn);
  const refreshToken = m.generateToken();
  return { refreshToken, refreshTokenHash: m.generateTokenHash(refreshToken), refreshTokenExpiresIn: new Date(m.now().getTime() + lifetime * 1000) };
}

/**
 * The grant holding `token` as its access or refresh token (RFC 7009 §2.1, RFC 7662 §2.1):
 * `token_type_hint` only orders the search, a miss extends it to the other kind, and an unknown
 * hint is ignored. Codes never match.
 */
export async function findTokenGrant(ctx: OAuthContext, token: string, hint: string | undefined): Promise<{ grant: Grant; kind: TokenKind } | undefined> {
  const hash = (ctx.methods as unknown as TokenMethods).generateTokenHash(token);
  const order: TokenKind[] = hint === 'refresh_token' ? ['refresh_token', 'access_token'] : ['access_token', 'refresh_token'];
  for (const kind of order) {
    const grant = kind === 'access_token' ? await ctx.store.grants.findByTokenHash(hash) : await ctx.store.grants.findByRefreshTokenHash(hash);
    if (grant) return { grant, kind };
  }
  return undefined;
}
