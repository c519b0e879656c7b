/**
 * RFC 6749 §6 refresh_token grant, with the protections of RFC 9700 §4.14 and OAuth 2.1 §4.3:
 * sender binding to the client, rotation (always for public clients), reuse detection that
 * revokes the grant, an optional retry grace period, and down-scoping.
 */
import type { OAuthContext, TokenContext } from '../lib/context';
import { defineFeature, value, type TokenResponse, type ValuesOf } from '../lib/feature';
import { OAuthError, type OAuthErrorReason } from '../lib/errors';
import { requireParam } from '../lib/http/params';
import { OAuthConfigurationError } from '../lib/options';
import { grantableScopes } from '../lib/scopes';
import { retiredRefreshTokenValues } from '../lib/store/schema';
import type { Grant } from '../lib/store';
import { narrowedResources, newAccessToken, newRefreshToken, tokenResources, tokenResponse } from '../lib/tokens';
import oauthBase from './oauth_base';

export type RefreshTokenProtectionPolicy = 'rotation' | 'none';

const values = {
  // (a) tables and columns
  ...retiredRefreshTokenValues,
  // (b) lifetimes and limits
  oauthRefreshTokenExpiresIn: value(60 * 60 * 24 * 30, 'Refresh token lifetime, in seconds (default 30 days). A rotated refresh token gets a fresh lifetime, so with rotation it is an inactivity limit.'),
  oauthRefreshTokenReuseInterval: value(
    0,
    'Grace period, in seconds: a rotated-out refresh token presented again by its own client this soon after its rotation is treated as a retry and gets new tokens of the same grant instead of revoking it. 0 disables.',
  ),
  // (c) policy
  oauthRefreshTokenProtectionPolicy: value<RefreshTokenProtectionPolicy>(
    'rotation',
    "'rotation': every refresh issues a new refresh token and retires the old one (RFC 9700 §4.14.2); 'none': the refresh token is kept. Public clients always rotate.",
  ),
  // (d) messages
  oauthInvalidRefreshTokenMessage: value('Invalid refresh token', 'error_description for an unknown, expired or revoked refresh token, or one issued to another client.'),
  oauthRefreshTokenReusedMessage: value('Refresh token already used; the grant has been revoked', 'error_description when a rotated-out refresh token is presented again.'),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
}

export default defineFeature({
  id: 'refresh',
  doc: 'RFC 6749 §6 refresh_token grant with rotation and reuse detection.',
  depends: [oauthBase],
  values,
  hooks: ['beforeRefreshToken', 'afterRefreshToken'],
  grantTypes: { refresh_token: { parameters: ['refresh_token', 'scope'], handler: refreshTokenGrant } },
  tables: ['retiredRefreshTokens'],
  validate: validateOptions,
});

/** How many times a refresh may lose a race to a concurrent one (within the grace period) before giving up. */
const ATTEMPTS = 3;

/** The grant to write to, and the refresh-token hash it must still hold for the write to apply. */
interface Target {
  grant: Grant;
  expectedHash: string;
  /** A retry within the grace period always gets a new refresh token. */
  rotate: boolean;
}

/**
 * §6: find the grant by the refresh token's hash, check it belongs to this client and is live,
 * then issue a new access token (and, with rotation, a new refresh token) in one conditional
 * write. Runs inside the token endpoint's transaction, hooks included.
 */
async function refreshTokenGrant(ctx: TokenContext): Promise<TokenResponse> {
  const hash = ctx.methods.generateTokenHash(requireParam(ctx.params, 'refresh_token'));
  const current = await ctx.store.grants.findByRefreshTokenHash(hash);
  if (current) checkUsable(ctx, current);
  let target = current ? { grant: current, expectedHash: hash, rotate: rotates(ctx) } : await retiredTokenPresented(ctx, hash);
  const scopes = requestedScopes(ctx, target.grant);
  // RFC 8707 §2.2: a refresh may narrow the audience to some of the grant's resources.
  const resources = tokenResources(ctx, target.grant);
  ctx.grant = target.grant;
  await ctx.hook('beforeRefreshToken');
  for (let attempt = 1; ; attempt++) {
    const body = await issue(ctx, target, scopes, resources);
    if (body) {
      await ctx.hook('afterRefreshToken');
      return body;
    }
    // A concurrent request rotated the token (or revoked the grant) first: judge the token again.
    if (attempt === ATTEMPTS) throw invalidRefreshToken(ctx, 'unknown_refresh_token');
    target = await retiredTokenPresented(ctx, hash);
  }
}

/** RFC 6749 §10.4: only the client it was issued to may use it; revoked and expired tokens are dead. */
function checkUsable(ctx: TokenContext, grant: Grant): void {
  // Another client's token is answered like an unknown one (nothing is revealed about it).
  if (grant.oauthApplicationId !== ctx.application.id) throw invalidRefreshToken(ctx, 'unknown_refresh_token');
  if (grant.revokedAt) throw invalidRefreshToken(ctx, 'revoked_token');
  if (grant.refreshTokenExpiresIn && grant.refreshTokenExpiresIn.getTime() <= ctx.now().getTime()) throw invalidRefreshToken(ctx, 'expired_refresh_token');
}

/** §6: `scope` may narrow the grant, never widen it; without it, the whole grant. */
function requestedScopes(ctx: TokenContext, grant: Grant): string[] {
  return grantableScopes(ctx.params.scope, grant.scopes, ctx.values.oauthInvalidScopeMessage);
}

/** OAuth 2.1 §4.3.1: public clients always rotate; confidential ones follow the policy. */
function rotates(ctx: TokenContext): boolean {
  return ctx.clientAuthMethod === 'none' || ctx.values.oauthRefreshTokenProtectionPolicy !== 'none';
}

/**
 * New tokens for the grant, provided it still holds the expected refresh-token hash and is not
 * revoked: one conditional UPDATE, so of several concurrent refreshes with one token exactly
 * one wins. The grant keeps its scopes; a narrowed access token's scopes are stored beside them.
 * Undefined when the write did not apply.
 */
async function issue(ctx: TokenContext, { grant, expectedHash, rotate }: Target, scopes: string[], resources: string[]): Promise<TokenResponse | undefined> {
  const access = await newAccessToken(ctx, { grant, scopes, resources });
  const refresh = rotate ? newRefreshToken(ctx) : undefined;
  const fields = {
    tokenHash: access.accessTokenHash,
    expiresIn: access.expiresIn,
    tokenScopes: scopes.length === grant.scopes.length ? null : scopes,
    tokenResources: narrowedResources(grant, resources),
    lastUsedAt: ctx.now(),
    ...(refresh && { refreshTokenHash: refresh.refreshTokenHash, refreshTokenExpiresIn: refresh.refreshTokenExpiresIn }),
  };
  if (!(await ctx.store.grants.rotateTokens(grant.id, expectedHash, fields))) return undefined;
  if (refresh) await ctx.store.retiredRefreshTokens.insert(grant.id, expectedHash, ctx.now());
  ctx.grant = { ...grant, ...fields };
  return tokenResponse(ctx, access.accessToken, scopes, refresh?.refreshToken);
}

/**
 * RFC 9700 §4.14.2: a rotated-out refresh token presented again means it was copied, so the
 * grant (its access and refresh tokens) is revoked, and the revocation is committed although
 * the request fails. Within the grace period its own client's retry instead gets new tokens of
 * the same grant, rotating its current refresh token: there is never a second live family.
 */
async function retiredTokenPresented(ctx: TokenContext, hash: string): Promise<Target> {
  const retired = await ctx.store.retiredRefreshTokens.findByTokenHash(hash);
  if (!retired) throw invalidRefreshToken(ctx, 'unknown_refresh_token');
  const grant = await ctx.store.grants.findById(retired.oauthGrantId);
  // Another client presenting it can neither revoke the owner's grant nor learn that it exists.
  if (!grant || grant.oauthApplicationId !== ctx.application.id) throw invalidRefreshToken(ctx, 'unknown_refresh_token');
  if (!grant.revokedAt && grant.refreshTokenHash && withinGracePeriod(ctx, retired.retiredAt)) {
    checkUsable(ctx, grant);
    return { grant, expectedHash: grant.refreshTokenHash, rotate: true };
  }
  await ctx.store.grants.revoke(grant.id, ctx.now());
  throw new OAuthError('invalid_grant', ctx.values.oauthRefreshTokenReusedMessage, { reason: 'refresh_token_reused', commit: true });
}

function withinGracePeriod(ctx: OAuthContext, retiredAt: Date): boolean {
  const interval = ctx.values.oauthRefreshTokenReuseInterval;
  return interval > 0 && ctx.now().getTime() - retiredAt.getTime() < interval * 1000;
}

function invalidRefreshToken(ctx: OAuthContext, reason: OAuthErrorReason): OAuthError {
  return new OAuthError('invalid_grant', ctx.values.oauthInvalidRefreshTokenMessage, { reason });
}

/** Rejects at start-up what the types cannot (JavaScript callers, out-of-range numbers). */
function validateOptions(v: Record<string, unknown>): void {
  const policy = v.oauthRefreshTokenProtectionPolicy;
  if (policy !== undefined && policy !== 'rotation' && policy !== 'none') {
    throw new OAuthConfigurationError(`oauth(): option 'oauthRefreshTokenProtectionPolicy' must be 'rotation' or 'none' (got '${String(policy)}').`);
  }
  const lifetime = v.oauthRefreshTokenExpiresIn;
  if (lifetime !== undefined && !(typeof lifetime === 'number' && Number.isFinite(lifetime) && lifetime > 0)) {
    throw new OAuthConfigurationError("oauth(): option 'oauthRefreshTokenExpiresIn' must be a positive number of seconds.");
  }
  const interval = v.oauthRefreshTokenReuseInterval;
  if (interval !== undefined && !(typeof interval === 'number' && Number.isFinite(interval) && interval >= 0)) {
    throw new OAuthConfigurationError("oauth(): option 'oauthRefreshTokenReuseInterval' must be a number of seconds, 0 or more.");
  }
}
