/**
 * Token issuance shared by every grant: generate, hash, store, answer (RFC 6749 §5.1). An
 * access token is opaque (random, stored as its hash) unless a feature contributes another
 * format to the `accessTokenFormats` point (`jwt_access_tokens`: RFC 9068 JWTs), chosen per
 * application (`accessTokenFormat`) or for the server (`oauthAccessTokenFormat`). Whatever the
 * format, the grant row stores the token's hash, so lookups by token work the same for all.
 */
import type { OAuthContext, TokenContext } from './context';
import type { TokenResponse } from './feature';
import type { OAuthAuthorization } from './resource';
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

/** What an access token is minted for. */
export interface AccessTokenRequest {
  /** The grant the token belongs to; its row receives the token's hash. */
  grant: Pick<Grant, 'id' | 'accountId' | 'oauthApplicationId' | 'type'>;
  /** The token's own scopes (a refresh may narrow the grant's). */
  scopes: readonly string[];
  /**
   * RFC 8707 resources the token is for: the audience of a JWT access token. Filled from
   * {@link tokenResources} / {@link requestedResources}, which `resource_indicators` serves.
   */
  resources?: readonly string[];
  /** When the end user authenticated, where a grant knows it (OpenID Connect, a later issue). */
  authTime?: Date | null;
}

/**
 * An access token format, contributed with `defineFeature({ extend: { accessTokenFormats: … } })`.
 * Opaque tokens are built in; a contributed format is used when its `name` is the
 * application's `accessTokenFormat` or, when that is NULL, the `oauthAccessTokenFormat` value.
 */
export interface AccessTokenFormat {
  readonly name: string;
  /** The token and its absolute expiry; the caller stores its hash on the grant row. */
  mint(ctx: OAuthContext, request: AccessTokenRequest): Promise<{ accessToken: string; expiresIn: Date }>;
  /** Whether a presented bearer token has this format's shape (cheap: no parsing beyond the shape). */
  recognises(token: string): boolean;
  /**
   * Checks a recognised token and says what it authorizes (scopes are checked by the caller);
   * throws invalid_token. `audience`: the resource the route expects (RFC 8707), which the token's
   * audience must include; undefined: the server's own audience (`oauthJwtAudience ?? issuer`).
   */
  authorize(ctx: OAuthContext, token: string, audience?: string): Promise<OAuthAuthorization>;
  /**
   * Optional synchronous answer for a token this format has already checked (a cache): what
   * `authorize` would say, or undefined to let `authorize` decide. `token` may be the header's
   * text before the b64token check of `fetchAccessToken` (which `authorize` always gets after
   * it), so only a token identical to one `authorize` accepted may be answered; what this throws
   * counts as not remembered, and `authorize` gives the answer. Lets a protected route skip the
   * promise machinery on its hottest path.
   */
  authorizeRemembered?(ctx: OAuthContext, token: string, audience?: string): OAuthAuthorization | undefined;
}

/**
 * Extension point `tokenResources` (`resource_indicators`): the RFC 8707 §2.2 `resource`
 * parameters of a token request, checked. Without a contribution no request names any.
 */
export interface TokenResourcesExtension {
  /**
   * A grant that exists (code exchange, refresh): the new access token's resources, the requested
   * subset of `granted`, or all of `granted` when the request names none; else invalid_target.
   */
  narrow(ctx: OAuthContext, granted: readonly string[]): string[];
  /** A grant made at the token endpoint (client credentials, jwt-bearer): the requested resources, each allowed for the client, else invalid_target. */
  request(ctx: OAuthContext): string[];
}

/** The access token's resources for an existing grant (RFC 8707 §2.2): the requested subset of the grant's, or all of them. */
export function tokenResources(ctx: OAuthContext, grant: Pick<Grant, 'resources'>): string[] {
  const granted = grant.resources ?? [];
  const ext = ctx.runtime.extensions<TokenResourcesExtension>('tokenResources')[0];
  return ext ? ext.narrow(ctx, granted) : [...granted];
}

/** What a grant row stores as its current access token's resources: null when they are all the grant's. */
export function narrowedResources(grant: Pick<Grant, 'resources'>, resources: readonly string[]): string[] | null {
  return resources.length === (grant.resources ?? []).length ? null : [...resources];
}

/** The resources a token request for a new grant names (client credentials, jwt-bearer), checked; `[]` for none. */
export function requestedResources(ctx: OAuthContext): string[] {
  const ext = ctx.runtime.extensions<TokenResourcesExtension>('tokenResources')[0];
  return ext ? ext.request(ctx) : [];
}

/**
 * Extension point `tokenResponse`: adds to a successful token response, inside the token
 * transaction after the grant's handler (`oidc` adds the ID token of OpenID Connect Core §3.1.3.3).
 * `ctx.grant` is the grant the response is for.
 */
export interface TokenResponseExtension {
  extend(ctx: TokenContext, body: TokenResponse): Promise<void>;
}

/** The contributed format the current client's tokens take; undefined for opaque tokens. */
export function accessTokenFormat(ctx: OAuthContext): AccessTokenFormat | undefined {
  const formats = ctx.runtime.extensions<AccessTokenFormat>('accessTokenFormats');
  if (formats.length === 0) return undefined;
  const name = ctx.application?.accessTokenFormat ?? (ctx.values as unknown as { oauthAccessTokenFormat?: string }).oauthAccessTokenFormat;
  // A format no enabled feature serves any more (its feature was disabled) falls back to opaque tokens.
  return formats.find((f) => f.name === name);
}

/** A fresh access token of the client's format, its hash and its absolute expiry. */
export async function newAccessToken(ctx: OAuthContext, request: AccessTokenRequest): Promise<IssuedTokens> {
  const format = accessTokenFormat(ctx);
  if (!format) return newOpaqueAccessToken(ctx);
  const { accessToken, expiresIn } = await format.mint(ctx, request);
  return { accessToken, accessTokenHash: (ctx.methods as unknown as TokenMethods).generateTokenHash(accessToken), expiresIn };
}

/** A fresh opaque access token (random, `generateToken`), its hash and its absolute expiry. */
function newOpaqueAccessToken(ctx: OAuthContext): IssuedTokens {
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

type DirectGrantFields = { type: string; accountId: string | null; applicationId: number; scopes: string[]; resources?: string[] };

/** Inserts a grant that carries an access token only (client credentials, assertion grants). */
export async function issueDirectGrant(ctx: OAuthContext, direct: DirectGrantFields): Promise<{ grant: Grant; body: TokenResponse }> {
  // RFC 8707 §2.2: the resources are checked before anything is written.
  const fields = { ...direct, resources: direct.resources ?? requestedResources(ctx) };
  const format = accessTokenFormat(ctx);
  if (format) return ctx.transaction(() => issueDirectGrantAs(ctx, format, fields));
  const t = newOpaqueAccessToken(ctx);
  const grant = await insertDirectGrant(ctx, fields, t.accessTokenHash, t.expiresIn);
  return { grant, body: tokenResponse(ctx, t.accessToken, fields.scopes) };
}

/**
 * A contributed format may name the grant in the token (a JWT carries its id), so the row is
 * inserted first and given the token's hash in a second statement, both in one transaction.
 */
async function issueDirectGrantAs(ctx: OAuthContext, format: AccessTokenFormat, fields: DirectGrantFields): Promise<{ grant: Grant; body: TokenResponse }> {
  const v = ctx.values as unknown as TokenValues;
  const provisional = new Date((ctx.methods as unknown as TokenMethods).now().getTime() + v.oauthAccessTokenExpiresIn * 1000);
  const inserted = await insertDirectGrant(ctx, fields, null, provisional);
  const { accessToken, expiresIn } = await format.mint(ctx, { grant: inserted, scopes: fields.scopes, resources: fields.resources });
  const tokenHash = (ctx.methods as unknown as TokenMethods).generateTokenHash(accessToken);
  if (!(await ctx.store.grants.setAccessToken(inserted.id, { tokenHash, expiresIn }))) throw new Error(`grant ${inserted.id} already holds an access token`);
  const grant = { ...inserted, tokenHash, expiresIn };
  ctx.grant = grant;
  return { grant, body: tokenResponse(ctx, accessToken, fields.scopes) };
}

async function insertDirectGrant(ctx: OAuthContext, fields: DirectGrantFields, tokenHash: string | null, expiresIn: Date): Promise<Grant> {
  const now = (ctx.methods as unknown as TokenMethods).now();
  const grant = await ctx.store.grants.insert({
    accountId: fields.accountId,
    oauthApplicationId: fields.applicationId,
    type: fields.type,
    codeHash: null,
    tokenHash,
    refreshTokenHash: null,
    expiresIn,
    refreshTokenExpiresIn: null,
    redirectUri: null,
    scopes: fields.scopes,
    resources: fields.resources?.length ? fields.resources : null,
    accessType: 'online',
    codeChallenge: null,
    codeChallengeMethod: null,
    createdAt: now,
    // Issued with its token: its first use (grant_management's "last used").
    lastUsedAt: now,
  });
  ctx.grant = grant;
  return grant;
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
