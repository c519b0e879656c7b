/**
 * RFC 9068 JWT access tokens: `at+jwt` tokens signed with the server's key (`jwks`), checked by
 * `requireOauthAuthorization` from the signature and claims alone (§4), without a query.
 *
 * The grant row is still written, and it stores the token's SHA-256 hash, as for an opaque
 * token, not its `jti`: `/introspect`, `/revoke`, refresh, reuse detection and the optional
 * revocation check find a JWT exactly as they find an opaque token (one indexed lookup on the
 * same column, no JWT parsing on those paths), and a token whose signing key has since been
 * retired can still be introspected and revoked. The price: the token names its grant (`gid`),
 * so a grant without a code (client credentials, jwt-bearer) is inserted first and given the
 * token's hash by a second statement in the same transaction.
 *
 * Claims: `iss`, `sub` (the account, or the client id when there is no resource owner), `aud`,
 * `exp`, `iat`, `jti`, `client_id`, `scope`, `auth_time` when known, and the private claims
 * `requireOauthAuthorization` rebuilds `req.oauth` from: `gid` (grant id), `aid` (application
 * id) and, on tokens without a resource owner only, `gty` (the grant type, e.g.
 * `client_credentials`, as Auth0 does), so that an account whose id happens to equal a client
 * id is never taken for a client.
 *
 * With `oidc`, `sub` is the subject the client knows the end user by (the ID token's, pairwise
 * included: lib/subject.ts), never the local account id when that differs; such a token carries
 * the private `acct: 'grant'` and its account is read once from the grant `gid`, then cached.
 */
import { errors, jwtVerify, type JWTHeaderParameters, type JWTPayload, type KeyLike } from 'jose';
import type { OAuthContext } from '../lib/context';
import { defineFeature, method, value, type MethodsOf, type ValuesOf } from '../lib/feature';
import { OAuthError, type OAuthErrorReason } from '../lib/errors';
import { randomToken } from '../lib/crypto';
import { serverKeys, type ServerKeys } from '../lib/keys';
import { OAuthConfigurationError } from '../lib/options';
import { ownAudience, type OAuthAuthorization } from '../lib/resource';
import type { AccessTokenFormat, AccessTokenRequest } from '../lib/tokens';
import { isCanonicalCompactJws, isCompactJws } from '../lib/jws';
import { authorizationFor, ExpiryDate, VerifiedTokenCache, type RememberedAuthorization, type TokenTimes } from '../lib/verified_tokens';
import { subjectFor } from '../lib/subject';
import jwks from './jwks';

export type AccessTokenFormatName = 'jwt' | 'opaque';

/** The claims of a JWT access token (RFC 9068 §2.2), before `jwtAccessTokenClaims` adds or changes any. */
export interface JwtAccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  scope: string;
  auth_time?: number;
  /** Private: the grant's id (`req.oauth.grantId`). */
  gid: number;
  /** Private: the application's id (`req.oauth.applicationId`). */
  aid: number;
  /** Private, only on tokens without a resource owner: the grant type (`req.oauth.accountId` is then null). */
  gty?: string;
  /**
   * Private, only when `sub` is not the account id (`oidc`: a pairwise subject or a custom
   * `accountSubject`): `'grant'`, the account is read from the grant `gid` when the token is checked.
   */
  acct?: 'grant';
}

const values = {
  // (b) lifetimes and limits
  oauthJwtAccessTokenLeeway: value(10, 'Clock skew, in seconds, allowed when checking the `exp`, `nbf` and `iat` of a JWT access token.'),
  oauthJwtAccessTokenMaxLength: value(8192, 'Longest JWT access token, in characters, that is minted or checked; a longer bearer token is invalid_token unread.'),
  oauthJwtAccessTokenCacheSize: value(
    10000,
    'How many verified JWT access tokens `requireOauthAuthorization` remembers (by the SHA-256 of their signature, until `exp`), so a token presented again byte for byte skips the signature check; `exp`, `nbf` and `iat` are still checked on every request. 0: verify every time.',
  ),
  // (c) policy
  oauthAccessTokenFormat: value<AccessTokenFormatName>('jwt', "Format of access tokens for applications whose `accessTokenFormat` is not set: 'jwt' (RFC 9068) or 'opaque' (random, checked by a query)."),
  oauthJwtAudience: value<string | null>(
    null,
    '`aud` of JWT access tokens when the request names no resource (RFC 8707), and the audience `requireOauthAuthorization` expects; null: the issuer.',
    'nullable-string',
  ),
  oauthJwtAccessTokenCheckRevocation: value(
    false,
    "Whether `requireOauthAuthorization` also looks up a JWT access token's grant (one query), so a revoked token, or one replaced by a refresh, fails at once; without it such a token works until its `exp`.",
  ),
};

const methods = {
  jwtAccessTokenClaims: method(
    async (_ctx: OAuthContext, claims: JwtAccessTokenClaims): Promise<JWTPayload> => claims,
    'The claims of a JWT access token before it is signed: add or change claims (`ctx.grant` is its grant). `requireOauthAuthorization` needs `sub`, `client_id`, `scope`, `gid`, `aid` and, when present, `gty` and `acct`.',
  ),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
  interface OAuthMethods extends MethodsOf<typeof methods> {}
}

const jwtFormat: AccessTokenFormat = { name: 'jwt', mint: mintJwtAccessToken, recognises: isCompactJws, authorize: authorizeJwtAccessToken, authorizeRemembered: rememberedJwtAccessToken };

export default defineFeature({
  id: 'jwt_access_tokens',
  doc: 'RFC 9068 JWT access tokens, checked without a query; per-application format.',
  depends: [jwks],
  values,
  methods,
  extend: { accessTokenFormats: jwtFormat },
  validate: validateOptions,
});

/** RFC 9068 §2.1: the media type of the `typ` header. */
const TYP = 'at+jwt';

/**
 * §2.2: the claims, then `jwtAccessTokenClaims`, then the signature of the server's current
 * key (`jwks`). `exp` is whole seconds, and the grant row's expiry is the token's own.
 */
async function mintJwtAccessToken(ctx: OAuthContext, request: AccessTokenRequest): Promise<{ accessToken: string; expiresIn: Date }> {
  const { grant } = request;
  const clientId = ctx.application?.id === grant.oauthApplicationId ? ctx.application.clientId : undefined;
  if (clientId === undefined) throw new Error(`jwt_access_tokens: no client for application ${grant.oauthApplicationId}`);
  const iat = Math.floor(ctx.now().getTime() / 1000);
  // §2.2: without a resource owner, `sub` identifies the client; with one, it is the `sub` the
  // client knows the end user by (lib/subject.ts: the ID token's, pairwise included).
  const sub = grant.accountId === null ? clientId : await subjectFor(ctx, ctx.application!, grant.accountId);
  const claims: JwtAccessTokenClaims = {
    iss: ctx.issuer,
    sub,
    aud: audience(ctx, request),
    exp: iat + ctx.values.oauthAccessTokenExpiresIn,
    iat,
    jti: randomToken(16),
    client_id: clientId,
    scope: request.scopes.join(' '),
    ...(request.authTime && { auth_time: Math.floor(request.authTime.getTime() / 1000) }),
    gid: grant.id,
    aid: grant.oauthApplicationId,
    ...(grant.accountId === null && { gty: grant.type }),
    ...(grant.accountId !== null && sub !== grant.accountId && { acct: 'grant' as const }),
  };
  const payload = await ctx.methods.jwtAccessTokenClaims(claims);
  const accessToken = await serverKeys(ctx).sign(payload, { typ: TYP });
  if (accessToken.length > ctx.values.oauthJwtAccessTokenMaxLength) {
    throw new Error(`jwt_access_tokens: the access token has ${accessToken.length} characters, more than oauthJwtAccessTokenMaxLength (${ctx.values.oauthJwtAccessTokenMaxLength}); it could not be checked`);
  }
  const exp = typeof payload.exp === 'number' ? payload.exp : claims.exp;
  return { accessToken, expiresIn: new Date(exp * 1000) };
}

/** §3: the resources requested (RFC 8707, filled by resource_indicators), else oauthJwtAudience, else the issuer. */
function audience(ctx: OAuthContext, request: AccessTokenRequest): string | string[] {
  const resources = request.resources ?? [];
  if (resources.length === 1) return resources[0]!;
  if (resources.length > 1) return [...resources];
  return ownAudience(ctx);
}

const algorithmsOf = new WeakMap<ServerKeys, string[]>();

/** The algorithms of the published keys, computed once per key set: nothing else is accepted (no `none`, no HS256). */
function algorithmsOfKeys(keys: ServerKeys): string[] {
  let algorithms = algorithmsOf.get(keys);
  if (!algorithms) algorithmsOf.set(keys, (algorithms = [...new Set(keys.published.map((k) => k.alg))]));
  return algorithms;
}

/** What a verified token gives `req.oauth`, but the token itself. */
type VerifiedClaims = RememberedAuthorization<number>;

/** Tokens verified with a key set (one per `oauth()` instance), sized by `oauthJwtAccessTokenCacheSize` when first used. */
const verifiedWith = new WeakMap<ServerKeys, VerifiedTokenCache<VerifiedClaims>>();

class UnknownSigningKey extends Error {
  readonly code = 'ERR_UNKNOWN_SIGNING_KEY';
}

/**
 * RFC 9068 §4 without a query: size, then jose's `jwtVerify` with the published key of the
 * header's `kid` (imported once by `jwks`), the algorithms pinned to the published keys',
 * `typ` at+jwt, `iss`, `aud` and `exp` / `nbf` with the leeway; then the claims `req.oauth` is
 * built from. With `oauthJwtAccessTokenCheckRevocation`, the grant is looked up by the token's
 * hash, as an opaque token's is. `audience`: the RFC 8707 resource a route expects, in place of
 * the server's own audience.
 */
async function authorizeJwtAccessToken(ctx: OAuthContext, token: string, audience?: string): Promise<OAuthAuthorization> {
  const v = ctx.values;
  const invalid = (reason: OAuthErrorReason, cause?: unknown) => new OAuthError('invalid_token', v.oauthInvalidTokenMessage, { reason, cause });
  const check = verificationOf(ctx, token, audience);
  let claims = check.verified.get(token, check.context, ctx.now().getTime() / 1000, check.leeway);
  if (claims === undefined) {
    const checked = await verifyJwtAccessToken(ctx, token, check.keys, algorithmsOfKeys(check.keys), check.audience);
    check.verified.set(token, check.context, checked.times, (claims = checked.claims));
  }
  if (v.oauthJwtAccessTokenCheckRevocation) {
    const grant = await ctx.store.grants.findAccessByTokenHash(ctx.methods.generateTokenHash(token));
    // A token replaced by a refresh is no longer its grant's: unknown, as an opaque one would be.
    if (!grant) throw invalid('unknown_token');
    if (grant.revokedAt) throw invalid('revoked_token');
  }
  return authorizationFor(claims, token);
}

/**
 * The synchronous path of a token verified before (`AccessTokenFormat.authorizeRemembered`): its
 * `req.oauth` when the cache holds it for this issuer and audience and it is valid now, and no
 * query is configured; else undefined, and `authorizeJwtAccessToken` does the rest. No promise,
 * no microtask: on a route every request of a client takes this path after its first.
 */
function rememberedJwtAccessToken(ctx: OAuthContext, token: string, audience?: string): OAuthAuthorization | undefined {
  if (ctx.values.oauthJwtAccessTokenCheckRevocation) return undefined;
  const check = verificationOf(ctx, token, audience);
  const claims = check.verified.get(token, check.context, ctx.now().getTime() / 1000, check.leeway);
  return claims === undefined ? undefined : authorizationFor(claims, token);
}

/** What a check of `token` is made against: the key set, its cache, the expected audience and the cache context (the algorithms only when verifying: `algorithmsOfKeys`). */
function verificationOf(ctx: OAuthContext, token: string, audience: string | undefined) {
  const v = ctx.values;
  if (token.length > v.oauthJwtAccessTokenMaxLength) throw new OAuthError('invalid_token', v.oauthInvalidTokenMessage, { reason: 'malformed_token' });
  const keys = serverKeys(ctx);
  // A derived issuer (development) is the request's origin and the OAuth router's mount path,
  // which a host route does not see: there `iss` is checked by origin below, and is the audience.
  const configured = ctx.runtime.issuerConfigured;
  const expected = audience ?? (configured || v.oauthJwtAudience !== null ? ownAudience(ctx) : undefined);
  // A token verified before against the same issuer and audience needs only its times checked again.
  let verified = verifiedWith.get(keys);
  if (!verified) verifiedWith.set(keys, (verified = new VerifiedTokenCache(v.oauthJwtAccessTokenCacheSize)));
  return { keys, verified, audience: expected, context: `${ctx.issuer}\0${expected ?? ''}`, leeway: v.oauthJwtAccessTokenLeeway };
}

/** The full §4 check of a token the cache does not hold: its claims for `req.oauth`, and its times. */
async function verifyJwtAccessToken(
  ctx: OAuthContext,
  token: string,
  keys: ServerKeys,
  algorithms: string[],
  audienceOption: string | undefined,
): Promise<{ claims: VerifiedClaims; times: TokenTimes }> {
  const v = ctx.values;
  const invalid = (reason: OAuthErrorReason, cause?: unknown) => new OAuthError('invalid_token', v.oauthInvalidTokenMessage, { reason, cause });
  const now = ctx.now();
  const leeway = v.oauthJwtAccessTokenLeeway;
  const configured = ctx.runtime.issuerConfigured;
  if (!isCanonicalCompactJws(token)) throw invalid('malformed_token');
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(
      token,
      (header: JWTHeaderParameters) => {
        const key = keys.find(header.kid, header.alg);
        if (!key) throw new UnknownSigningKey('no published key has this kid and alg');
        return key.publicKey as KeyLike;
      },
      { algorithms, typ: TYP, issuer: configured ? ctx.issuer : undefined, audience: audienceOption, clockTolerance: leeway, currentDate: now, requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'] },
    ));
  } catch (e) {
    throw invalid(reasonOf(e), e);
  }
  if (!configured && !derivedIssuerMatches(ctx.issuer, payload, audienceOption === undefined)) throw invalid('token_claim_mismatch');
  // jose checks `iat` only against a maximum age; a token issued in the future is not valid yet.
  if ((payload.iat as number) > now.getTime() / 1000 + leeway) throw invalid('token_claim_mismatch');
  const { sub, client_id: clientId, scope, gid, aid, gty, acct, exp } = payload as Record<string, unknown>;
  if (typeof sub !== 'string' || typeof clientId !== 'string' || typeof scope !== 'string' || !isId(gid) || !isId(aid) || (gty !== undefined && typeof gty !== 'string')) {
    throw invalid('malformed_token');
  }
  if (acct !== undefined && (acct !== 'grant' || gty !== undefined)) throw invalid('malformed_token');
  const claims: VerifiedClaims = {
    accountId: gty !== undefined ? null : acct === 'grant' ? await grantAccount(ctx, gid, aid) : sub,
    clientId,
    applicationId: aid,
    scopes: scope === '' ? [] : scope.split(' '),
    grantId: gid,
    expiresAt: new ExpiryDate((exp as number) * 1000),
  };
  const nbf = payload.nbf;
  return { claims, times: { exp: exp as number, iat: payload.iat as number, ...(typeof nbf === 'number' && { nbf }) } };
}

/**
 * The local account of a token whose `sub` is not it (pairwise, or a custom `accountSubject`):
 * one lookup of its grant, then kept with the verified token. A grant gone (purged) or of
 * another client: the token is not valid.
 */
async function grantAccount(ctx: OAuthContext, gid: number, aid: number): Promise<string> {
  const grant = await ctx.store.grants.findById(gid);
  if (!grant || grant.oauthApplicationId !== aid || grant.accountId === null) {
    throw new OAuthError('invalid_token', ctx.values.oauthInvalidTokenMessage, { reason: 'unknown_token' });
  }
  return grant.accountId;
}

/** Development: `iss` is of the request's origin and, without oauthJwtAudience, among the token's `aud`. */
function derivedIssuerMatches(requestIssuer: string, payload: JWTPayload, issIsAudience: boolean): boolean {
  const iss = payload.iss;
  if (typeof iss !== 'string' || originOf(iss) === undefined || originOf(iss) !== originOf(requestIssuer)) return false;
  return !issIsAudience || (Array.isArray(payload.aud) ? payload.aud.includes(iss) : payload.aud === iss);
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

function isId(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}

/** The jose failure as a reason for the logs; every one is invalid_token to the client (RFC 6750 §3.1). */
function reasonOf(e: unknown): OAuthErrorReason {
  if (e instanceof UnknownSigningKey) return 'unknown_signing_key';
  if (e instanceof errors.JWTExpired) return 'expired_token';
  if (e instanceof errors.JWTClaimValidationFailed) return e.reason === 'missing' ? 'malformed_token' : 'token_claim_mismatch';
  if (e instanceof errors.JWSSignatureVerificationFailed || e instanceof errors.JOSEAlgNotAllowed || e instanceof errors.JOSENotSupported) return 'token_signature_invalid';
  return 'malformed_token';
}

/** Rejects at start-up what the types cannot (JavaScript callers). */
function validateOptions(v: Record<string, unknown>): void {
  const format = v.oauthAccessTokenFormat;
  if (typeof format === 'string' && format !== 'jwt' && format !== 'opaque') {
    throw new OAuthConfigurationError(`oauth(): option 'oauthAccessTokenFormat' must be 'jwt' or 'opaque' (got '${format}').`);
  }
  for (const name of ['oauthJwtAccessTokenLeeway', 'oauthJwtAccessTokenMaxLength'] as const) {
    const n = v[name];
    if (typeof n === 'number' && !(Number.isFinite(n) && n >= 0)) throw new OAuthConfigurationError(`oauth(): option '${name}' must be a number, 0 or more.`);
  }
}
