/**
 * One error type for every OAuth failure (RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2).
 * The HTTP status comes from {@link statusFor}; the internal `reason` and `cause` reach the
 * logger and the `onError` hook only, never a response body.
 */

/** The error codes of RFC 6749 §4.1.2.1 / §5.2, RFC 6750 §3.1 and RFC 7009 §2.2.1, spelled as the RFCs do. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'unsupported_response_type'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'unsupported_token_type';

/**
 * Why a request failed, for logs and hooks (rodauth's error reasons). One line each:
 * - `missing_parameter`: a required parameter is absent or empty.
 * - `duplicate_parameter`: a parameter appears more than once (RFC 6749 §3.1).
 * - `malformed_parameter`: a parameter is not a string, is too long or has a bad shape.
 * - `malformed_body`: the body could not be parsed, or is too large.
 * - `multiple_client_auth_methods`: more than one client authentication method was used (RFC 6749 §2.3).
 * - `no_client_auth`: the request carries no client credentials.
 * - `malformed_basic_header`: the Basic Authorization header cannot be decoded.
 * - `unknown_client`: no application has the presented client id.
 * - `auth_method_not_allowed`: the application is not registered for the method used.
 * - `bad_client_secret`: the presented secret does not match.
 * - `client_locked_out`: the client id failed too many secret checks lately; refused without checking (Retry-After).
 * - `client_auth_overloaded`: every bcrypt slot and the queue are taken (503, Retry-After).
 * - `client_id_mismatch`: a `client_id` parameter differs from the authenticated client.
 * - `unknown_grant_type`: no enabled feature handles the grant type.
 * - `grant_type_not_allowed`: the application is not registered for the grant type.
 * - `scope_not_allowed`: a requested scope is outside what may be granted.
 * - `hook_denied`: a hook threw an OAuthError.
 * - `missing_token`: a protected resource was requested without a bearer token.
 * - `unknown_token`: the token matches no grant.
 * - `expired_token`: the token's lifetime is over.
 * - `revoked_token`: the token's grant was revoked.
 * - `missing_scope`: the token lacks a scope the resource requires.
 * - `unknown_code`, `expired_code`, `code_reused`, `redirect_uri_mismatch`: authorization code checks.
 * - `pkce_required`, `pkce_mismatch`, `pkce_method_not_allowed`: RFC 7636 checks.
 * - `csrf_mismatch`: a form post without the CSRF token of the session or cookie.
 * - `consent_denied`: the resource owner denied the authorization request.
 * - `unknown_refresh_token`, `expired_refresh_token`, `refresh_token_reused`: refresh checks.
 * - `invalid_assertion`, `assertion_replayed`, `untrusted_issuer`, `unknown_subject`: JWT bearer checks.
 * - `jwks_unavailable`: the signer's JWK Set could not be fetched or read (RFC 7523).
 * - `no_verification_key`: the signer has no key for the assertion (no jwks, jwks_uri or recoverable secret).
 * - `internal_error`: an unexpected exception (the cause is logged).
 * - `database_unavailable`: the database could not be reached.
 */
export type OAuthErrorReason =
  | 'missing_parameter'
  | 'duplicate_parameter'
  | 'malformed_parameter'
  | 'malformed_body'
  | 'multiple_client_auth_methods'
  | 'no_client_auth'
  | 'malformed_basic_header'
  | 'unknown_client'
  | 'auth_method_not_allowed'
  | 'bad_client_secret'
  | 'client_locked_out'
  | 'client_auth_overloaded'
  | 'client_id_mismatch'
  | 'unknown_grant_type'
  | 'grant_type_not_allowed'
  | 'scope_not_allowed'
  | 'hook_denied'
  | 'missing_token'
  | 'unknown_token'
  | 'expired_token'
  | 'revoked_token'
  | 'missing_scope'
  | 'unknown_code'
  | 'expired_code'
  | 'code_reused'
  | 'redirect_uri_mismatch'
  | 'pkce_required'
  | 'pkce_mismatch'
  | 'pkce_method_not_allowed'
  | 'csrf_mismatch'
  | 'consent_denied'
  | 'unknown_refresh_token'
  | 'expired_refresh_token'
  | 'refresh_token_reused'
  | 'invalid_assertion'
  | 'assertion_replayed'
  | 'untrusted_issuer'
  | 'unknown_subject'
  | 'jwks_unavailable'
  | 'no_verification_key'
  | 'internal_error'
  | 'database_unavailable';

export interface OAuthErrorOptions {
  /** Only for the documented exceptions to the status table (none in the core features). */
  status?: number;
  reason?: OAuthErrorReason;
  cause?: unknown;
  /** RFC 6750 §3: the scope a protected resource needs, sent back with `insufficient_scope`. */
  scope?: string;
  /** The client authentication scheme that was attempted, for the `WWW-Authenticate` challenge. */
  challenge?: 'Basic';
  /**
   * Keep the transaction's writes although this error is the response: for a detected replay
   * (reused code or refresh token), whose revocation must stick (RFC 6749 §4.1.2, RFC 9700 §4.14.2).
   */
  commit?: boolean;
}

const STATUS: Partial<Record<OAuthErrorCode, number>> = {
  invalid_client: 401,
  invalid_token: 401,
  insufficient_scope: 403,
  server_error: 500,
  temporarily_unavailable: 503,
};

/** The HTTP status of an error code: the one table every renderer reads. */
export function statusFor(code: OAuthErrorCode): number {
  return STATUS[code] ?? 400;
}

/**
 * An OAuth error. Throw it from a feature, a hook or an overridden method; the renderer of
 * the channel (JSON, Bearer, redirect, HTML page) turns it into the response.
 *
 * @example
 * ```ts
 * oauth({ db, beforeToken: async (ctx) => {
 *   if (await isBlocked(ctx.application)) throw new OAuthError('access_denied', 'Not now');
 * } });
 * ```
 */
export class OAuthError extends Error {
  readonly code: OAuthErrorCode;
  readonly description: string | undefined;
  readonly status: number;
  readonly reason: OAuthErrorReason | undefined;
  readonly scope: string | undefined;
  readonly challenge: 'Basic' | undefined;
  readonly commit: boolean;

  constructor(code: OAuthErrorCode, description?: string, options: OAuthErrorOptions = {}) {
    super(description ? `${code}: ${description}` : code, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OAuthError';
    this.code = code;
    this.description = description;
    this.status = options.status ?? statusFor(code);
    this.reason = options.reason;
    this.scope = options.scope;
    this.challenge = options.challenge;
    this.commit = options.commit ?? false;
  }

  /** The RFC 6749 §5.2 body. */
  toJSON(): { error: OAuthErrorCode; error_description?: string } {
    return this.description === undefined ? { error: this.code } : { error: this.code, error_description: this.description };
  }
}

/** Turns anything thrown into an OAuthError: unknown exceptions become a generic `server_error`. */
export function toOAuthError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  if (isDatabaseUnavailable(err)) {
    return new OAuthError('temporarily_unavailable', 'The service is temporarily unavailable', { reason: 'database_unavailable', cause: err });
  }
  return new OAuthError('server_error', 'An unexpected error occurred', { reason: 'internal_error', cause: err });
}

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', '57P01', '57P03', 'SQLITE_BUSY', 'SQLITE_CANTOPEN']);

function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true;
  if (!(err instanceof Error)) return false;
  // knex's pool: timed out, or destroyed while a request still wanted a connection.
  return err.name === 'KnexTimeoutError' || err.message.startsWith('Unable to acquire a connection');
}
