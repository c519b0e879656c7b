/**
 * `requireOauthAuthorization(...scopes)`: RFC 6750 protection of a host route. One indexed
 * query per request for an opaque token; a token of a contributed format (an RFC 9068 JWT of
 * `jwt_access_tokens`) is checked by its format, without a query. All required scopes must be
 * granted (design.md §4.8).
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ContextImpl } from './context';
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

export function requireOauthAuthorization(rt: Runtime, scopes: string[]): RequestHandler {
  for (const s of scopes) {
    if (typeof s !== 'string' || !isScopeToken(s)) throw new TypeError(`requireOauthAuthorization(): '${String(s)}' is not a valid scope`);
  }
  const required = [...new Set(scopes)];
  // Formats that check their own tokens (jwt_access_tokens); none leaves the opaque path as it was.
  const formats = rt.extensions<AccessTokenFormat>('accessTokenFormats');
  return function requireOauthAuthorizationMiddleware(req: Request, res: Response, next: NextFunction): void {
    const ctx = new ContextImpl(rt, req, res);
    check(ctx, required, formats).then(
      (auth) => {
        req.oauth = auth;
        next();
      },
      (e: unknown) => {
        const err = toOAuthError(e);
        report(rt, ctx, err);
        try {
          renderBearerError(res, err, (ctx.values as unknown as ResourceValues).oauthRealm);
        } catch (renderFailure) {
          // A value read while answering threw: answer generically rather than leave an unhandled rejection.
          const fallback = new OAuthError('server_error', 'An unexpected error occurred', { reason: 'internal_error', cause: renderFailure });
          report(rt, ctx, fallback);
          if (!res.headersSent) res.status(fallback.status).json(fallback.toJSON());
        }
      },
    );
  };
}

async function check(ctx: ContextImpl, required: string[], formats: readonly AccessTokenFormat[]): Promise<OAuthAuthorization> {
  const v = ctx.values as unknown as ResourceValues;
  const m = ctx.methods as unknown as ResourceMethods;
  const token = m.fetchAccessToken();
  if (token === undefined) throw new OAuthError('invalid_token', v.oauthMissingTokenMessage, { reason: 'missing_token' });
  if (formats.length > 0) {
    const format = formats.find((f) => f.recognises(token));
    if (format) return checkScopes(v, await format.authorize(ctx, token), required);
  }
  const grant = await ctx.store.grants.findAccessByTokenHash(m.generateTokenHash(token));
  if (!grant) throw new OAuthError('invalid_token', v.oauthInvalidTokenMessage, { reason: 'unknown_token' });
  if (grant.revokedAt) throw new OAuthError('invalid_token', v.oauthInvalidTokenMessage, { reason: 'revoked_token' });
  if (grant.expiresIn.getTime() <= m.now().getTime()) throw new OAuthError('invalid_token', v.oauthInvalidTokenMessage, { reason: 'expired_token' });
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

/** RFC 6750 §3.1: every required scope must be granted, else 403 insufficient_scope naming them. */
function checkScopes<T extends { scopes: string[] }>(v: ResourceValues, granted: T, required: string[]): T {
  const missing = required.filter((s) => !granted.scopes.includes(s));
  if (missing.length > 0) {
    throw new OAuthError('insufficient_scope', v.oauthInsufficientScopeMessage, { reason: 'missing_scope', scope: required.join(' ') });
  }
  return granted;
}
