/**
 * `requireOauthAuthorization(...scopes)`: RFC 6750 protection of a host route. One indexed
 * query per request for an opaque token; a token of a contributed format (an RFC 9068 JWT of
 * `jwt_access_tokens`) is checked by its format, without a query. All required scopes must be
 * granted (design.md §4.8).
 *
 * Audience (RFC 8707): a token's audience is the resources its request named, or, when it named
 * none, the server's own audience (`oauthJwtAudience ?? issuer`). A route accepts a token only if
 * that audience includes what the route expects: its `resource` option, or the server's own
 * audience. So a token bound to `https://api.example/mcp` works at the route (or
 * `protectedResource()`) of that resource and nowhere else, and a token that named no resource
 * works at the routes without one. Opaque tokens are checked against the resources stored on the
 * grant row the one query already reads; JWTs by jose's `aud` check.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ContextImpl, type OAuthContext } from './context';
import { OAuthError, toOAuthError } from './errors';
import { renderBearerError } from './http/error_handler';
import { isScopeToken } from './scopes';
import type { Runtime } from './runtime';
import { report } from './report';
import type { AccessTokenFormat } from './tokens';
import type { RemoteOAuthAuthorization } from './resource_server';

/** What `req.oauth` holds after `requireOauthAuthorization`. */
export interface OAuthAuthorization {
  /** The resource owner; null for client-credentials tokens. */
  accountId: string | null;
  clientId: string;
  applicationId: number;
  scopes: string[];
  grantId: number;
  expiresAt: Date;
  /** The bearer token as presented. */
  token: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    /**
     * Set by `requireOauthAuthorization` for the rest of the request, or by
     * `resourceServer().require()` in another service (which knows no application or grant id).
     */
    oauth?: OAuthAuthorization | RemoteOAuthAuthorization;
  }
}

interface ResourceValues {
  oauthInvalidTokenMessage: string;
  oauthMissingTokenMessage: string;
  oauthInsufficientScopeMessage: string;
  oauthRealm: string;
}
interface ResourceMethods {
  fetchAccessToken(): string | undefined;
  generateTokenHash(token: string): string;
  now(): Date;
}

/** Options of `requireOauthAuthorization({ resource, scopes })`. */
export interface RequireOauthAuthorizationOptions {
  /** The RFC 8707 resource (an absolute URI) the route serves: only tokens bound to it are accepted. Default: the server's own audience. */
  resource?: string;
  /** Scopes the token must all carry, as the string form's arguments. */
  scopes?: readonly string[];
}

/** What a bearer check needs, resolved once when the middleware is built. */
export interface BearerCheck {
  required: string[];
  resource: string | undefined;
  formats: readonly AccessTokenFormat[];
  /** `fetchAccessToken` is the default: a remembered token may be looked up as the header carries it (`headerToken`). */
  defaultFetch: boolean;
}

/** Checks the arguments of `requireOauthAuthorization` (or `protectedResource().require`) once, at start-up. */
export function bearerCheck(rt: Runtime, caller: string, scopes: readonly unknown[], resource?: unknown): BearerCheck {
  for (const s of scopes) {
    if (typeof s !== 'string' || !isScopeToken(s)) throw new TypeError(`${caller}: '${String(s)}' is not a valid scope`);
  }
  if (resource !== undefined && !isResourceUri(resource)) {
    throw new TypeError(`${caller}: resource must be an absolute URI without a fragment (RFC 8707 §2), got ${JSON.stringify(resource)}`);
  }
  // Formats that check their own tokens (jwt_access_tokens); none leaves the opaque path as it was.
  return { required: [...new Set(scopes as string[])], resource, formats: rt.extensions<AccessTokenFormat>('accessTokenFormats'), defaultFetch: !rt.overridden('fetchAccessToken') };
}

/** RFC 8707 §2: an absolute URI (RFC 3986 §4.3), no fragment, nothing a space-separated column cannot hold. */
export function isResourceUri(v: unknown): v is string {
  if (typeof v !== 'string' || v.length > 2048 || /[\s\x00-\x1f\x7f#]/.test(v) || !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(v)) return false;
  try {
    new URL(v);
    return true;
  } catch {
    return false;
  }
}

export function requireOauthAuthorization(rt: Runtime, scopes: readonly unknown[], resource?: unknown): RequestHandler {
  const spec = bearerCheck(rt, 'requireOauthAuthorization()', scopes, resource);
  return function requireOauthAuthorizationMiddleware(req: Request, res: Response, next: NextFunction): void {
    authorizeBearer(rt, spec, req, res, next);
  };
}

/** What a caller of `authorizeBearer` adds: more challenge parameters (RFC 9728 §5.1), and what to set besides `req.oauth`. */
export interface BearerOptions {
  challenge?: { resource_metadata?: string; scope?: string };
  onAuthorized?: (req: Request, auth: OAuthAuthorization) => void;
}

/**
 * The middleware step of a bearer check: `req.oauth` set and `next()`, or the RFC 6750 challenge.
 * Shared by `requireOauthAuthorization` and `protectedResource().require`.
 */
export function authorizeBearer(rt: Runtime, spec: BearerCheck, req: Request, res: Response, next: NextFunction, options: BearerOptions = NO_OPTIONS): void {
  const ctx = new ContextImpl(rt, req, res);
  // A token its format has checked before is answered synchronously; anything else takes the full path.
  let remembered: OAuthAuthorization | undefined;
  try {
    remembered = rememberedBearer(ctx, spec);
  } catch (e) {
    return refuseBearer(ctx, options, e);
  }
  if (remembered !== undefined) return acceptBearer(req, next, options, remembered);
  checkBearer(ctx, spec).then(
    (auth) => acceptBearer(req, next, options, auth),
    (e: unknown) => refuseBearer(ctx, options, e),
  );
}

const NO_OPTIONS: BearerOptions = Object.freeze({});

function acceptBearer(req: Request, next: NextFunction, options: BearerOptions, auth: OAuthAuthorization): void {
  req.oauth = auth;
  options.onAuthorized?.(req, auth);
  next();
}

/** The RFC 6750 challenge for a failed check (a reported error). */
function refuseBearer(ctx: ContextImpl, options: BearerOptions, e: unknown): void {
  const err = toOAuthError(e);
  report(ctx.rt, ctx, err);
  const res = ctx.res;
  try {
    renderBearerError(res, err, (ctx.values as unknown as ResourceValues).oauthRealm, options.challenge);
  } catch (renderFailure) {
    // A value read while answering threw: answer generically rather than leave an unhandled rejection.
    const fallback = new OAuthError('server_error', 'An unexpected error occurred', { reason: 'internal_error', cause: renderFailure });
    report(ctx.rt, ctx, fallback);
    if (!res.headersSent) res.status(fallback.status).json(fallback.toJSON());
  }
}

/**
 * `checkBearer` for a token its format remembers (`authorizeRemembered`), without a promise;
 * undefined otherwise. With the default `fetchAccessToken` and the usual `Bearer <token>`, the
 * token is looked up as the header carries it, before its b64token check: a format remembers
 * only tokens that passed that check (and one identical to them byte for byte), so a token it
 * finds has passed it. A token it does not find takes the full path, and the check, as always.
 */
function rememberedBearer(ctx: ContextImpl, { required, resource, formats, defaultFetch }: BearerCheck): OAuthAuthorization | undefined {
  if (formats.length === 0) return undefined;
  const token = defaultFetch ? headerToken(ctx.req) : (ctx.methods as unknown as ResourceMethods).fetchAccessToken();
  if (token === undefined) return undefined;
  let auth: OAuthAuthorization | undefined;
  try {
    auth = formatOf(formats, token)?.authorizeRemembered?.(ctx, token, resource);
  } catch {
    // Not remembered: the full path checks the header first (400 for a malformed one), then meets
    // whatever failed here again, so every refusal is the one the full path gives.
    return undefined;
  }
  return auth === undefined ? undefined : checkScopes(ctx.values as unknown as ResourceValues, auth, required);
}

/** What follows `Bearer ` (the scheme as RFC 6750 §2.1 spells it, one space) in the Authorization header, unchecked; undefined for any other form. */
function headerToken(req: Request): string | undefined {
  const header = req.headers.authorization;
  return header !== undefined && header.startsWith('Bearer ') ? header.slice(7) : undefined;
}

/** The contributed format that recognises `token`, if any. */
function formatOf(formats: readonly AccessTokenFormat[], token: string): AccessTokenFormat | undefined {
  for (const f of formats) if (f.recognises(token)) return f;
  return undefined;
}

/** The bearer token of the request, checked: valid, for the expected audience, with the required scopes. */
export async function checkBearer(ctx: ContextImpl, { required, resource, formats }: BearerCheck): Promise<OAuthAuthorization> {
  const v = ctx.values as unknown as ResourceValues;
  const m = ctx.methods as unknown as ResourceMethods;
  const token = m.fetchAccessToken();
  if (token === undefined) throw new OAuthError('invalid_token', v.oauthMissingTokenMessage, { reason: 'missing_token' });
  if (formats.length > 0) {
    const format = formatOf(formats, token);
    if (format) return checkScopes(v, await format.authorize(ctx, token, resource), required);
  }
  const grant = await ctx.store.grants.findAccessByTokenHash(m.generateTokenHash(token));
  if (!grant) throw new OAuthError('invalid_token', v.oauthInvalidTokenMessage, { reason: 'unknown_token' });
  if (grant.revokedAt) throw new OAuthError('invalid_token', v.oauthInvalidTokenMessage, { reason: 'revoked_token' });
  if (grant.expiresIn.getTime() <= m.now().getTime()) throw new OAuthError('invalid_token', v.oauthInvalidTokenMessage, { reason: 'expired_token' });
  // RFC 8707: the same rule as the `aud` check of a JWT (see the module comment).
  const audience = grant.resources.length > 0 ? grant.resources : undefined;
  if (!(audience ? audience.includes(resource ?? ownAudience(ctx)) : resource === undefined || resource === ownAudience(ctx))) {
    throw new OAuthError('invalid_token', v.oauthInvalidTokenMessage, { reason: 'audience_mismatch' });
  }
  checkScopes(v, grant, required);
  return {
    accountId: grant.accountId,
    clientId: grant.clientId,
    applicationId: grant.oauthApplicationId,
    scopes: grant.scopes,
    grantId: grant.id,
    expiresAt: grant.expiresIn,
    token,
  };
}

/** The audience of a token that names no resource: `oauthJwtAudience` (jwt_access_tokens), else the issuer. */
export function ownAudience(ctx: OAuthContext): string {
  return (ctx.values as unknown as { oauthJwtAudience?: string | null }).oauthJwtAudience ?? ctx.issuer;
}

/** RFC 6750 §3.1: every required scope must be granted, else 403 insufficient_scope naming them. */
function checkScopes<T extends { scopes: string[] }>(v: ResourceValues, granted: T, required: string[]): T {
  for (const s of required) {
    if (!granted.scopes.includes(s)) {
      throw new OAuthError('insufficient_scope', v.oauthInsufficientScopeMessage, { reason: 'missing_scope', scope: required.join(' ') });
    }
  }
  return granted;
}
