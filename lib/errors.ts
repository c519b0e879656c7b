/**
 * One error type for every OAuth failure (RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2).
 * The HTTP status comes from {@link statusFor}; the internal `reason` and `cause` reach the
 * logger and the `onError` hook only, never a response body.
 */

/** The error codes of RFC 6749 §4.1.2.1 / §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1 and RFC 8707 §2, spelled as the RFCs do. */
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
  | 'unsupported_token_type'
  | 'invalid_target'
  // OpenID Connect Core 1.0 §3.1.2.6: the authentication request needs an interaction it may not have (400, on the redirect)
  | 'login_required'
  | 'consent_required'
  | 'interaction_required'
  | 'account_selection_required'
  // OpenID Connect Core 1.0 §3.1.2.6: request objects (`request`, `request_uri`) are not served (400, on the redirect)
  | 'request_not_supported'
  | 'request_uri_not_supported'
  // RFC 7591 §3.2.2: dynamic client registration (400)
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata';

/**
 * Why a request failed, for logs and hooks (rodauth's error reasons). One line each:
 * - `missing_parameter`: a required parameter is absent or empty.
 * - `duplicate_parameter`: a parameter appears more than once (RFC 6749 §3.1).
 * - `malformed_parameter`: a parameter is not a string, is too long or has a bad shape.
 * - `malformed_host`: the Host header is not a host name, and the issuer is derived from it.
 * - `method_not_allowed`: an OAuth route was asked with a method it does not serve (405).
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
 * - `token_client_mismatch`: a client asked to revoke a token issued to another client (RFC 7009 §2.1).
 * - `unknown_grant_type`: no enabled feature handles the grant type.
 * - `grant_type_not_allowed`: the application is not registered for the grant type.
 * - `scope_not_allowed`: a requested scope is outside what may be granted.
 * - `hook_denied`: a hook threw an OAuthError.
 * - `missing_token`: a protected resource was requested without a bearer token.
 * - `unknown_token`: the token matches no grant.
 * - `expired_token`: the token's lifetime is over.
 * - `revoked_token`: the token's grant was revoked.
 * - `missing_scope`: the token lacks a scope the resource requires.
 * - `malformed_resource`: a `resource` parameter is not an absolute URI, or has a fragment (RFC 8707 §2).
 * - `resource_not_allowed`: a `resource` is not one the client may ask for, or not among the grant's (RFC 8707 §2.2).
 * - `audience_mismatch`: the token is not for this resource (its audience, RFC 8707 resources or `aud`, does not include it).
 * - `malformed_token`: a JWT access token is oversized, not a JWS, or lacks a claim it needs (RFC 9068 §2.2).
 * - `token_signature_invalid`: a JWT access token's signature does not verify, or its `alg` is not one of the published keys'.
 * - `unknown_signing_key`: a JWT access token names a `kid` (or `alg`) of no published key.
 * - `token_claim_mismatch`: a JWT access token's `typ`, `iss`, `aud` or `nbf` / `iat` is not what this server issues (RFC 9068 §4).
 * - `unknown_code`, `expired_code`, `code_reused`, `redirect_uri_mismatch`: authorization code checks.
 * - `pkce_required`, `pkce_mismatch`, `pkce_method_not_allowed`: RFC 7636 checks.
 * - `csrf_mismatch`: a form post without the CSRF token of the session or cookie.
 * - `unknown_grant`: the grants page was asked to revoke an application the signed-in account has no unrevoked grant with (unknown, never authorized, or already revoked).
 * - `consent_denied`: the resource owner denied the authorization request.
 * - `login_required`: `prompt=none` without a logged-in account, or a fresh login (`prompt=login`, `authorizationLogin`) that did not happen.
 * - `consent_required`: `prompt=none` and the account has not already granted these scopes to the client.
 * - `invalid_id_token_hint`: an RP-initiated logout's `id_token_hint` is not an ID token this server issued (forged, tampered, of another issuer).
 * - `malformed_prompt`: an unknown `prompt` value, or `none` with another one.
 * - `unknown_refresh_token`, `expired_refresh_token`, `refresh_token_reused`: refresh checks.
 * - `invalid_assertion`, `assertion_replayed`, `untrusted_issuer`, `unknown_subject`: JWT bearer checks.
 * - `jwks_unavailable`: the signer's JWK Set could not be fetched or read (RFC 7523; for `resourceServer()`, the issuer's).
 * - `authorization_server_unavailable`: `resourceServer()` could not use the issuer: its metadata or introspection endpoint failed, was misconfigured or too slow.
 * - `inactive_token`: `resourceServer()`'s introspection request answered that the token is not active, or not an unexpired Bearer access token (RFC 7662 §2.2).
 * - `no_verification_key`: the signer has no key for the assertion (no jwks, jwks_uri or recoverable secret).
 * - `internal_error`: an unexpected exception (the cause is logged).
 * - `database_unavailable`: the database could not be reached.
 * - `purge_failed`: a purge run by `startPurging()` failed (the cause is logged; its batch was rolled back).
 * - `invalid_client_metadata`: RFC 7591 client metadata was refused (malformed, oversized, inconsistent or not supported here).
 * - `client_metadata_document_unavailable`: a URL client id's metadata document could not be had: unreachable, slow, oversized, redirecting, not 200, or at an address that is not allowed.
 * - `invalid_client_metadata_document`: a URL client id is not a valid client identifier URL, or its document is not JSON, names another `client_id`, holds a secret or invalid metadata.
 * - `invalid_initial_access_token`: a registration request without the initial access token registration requires, or with a wrong one (RFC 7591 §3).
 * - `invalid_registration_access_token`: an RFC 7592 request without a registration access token, or with one not of that client.
 * - `registration_rate_limited`: a source made more registration requests than `oauthRegistrationRateLimit` allows (429, Retry-After).
 * - `ambiguous_sector_identifier`: a pairwise client (`oidc`) whose redirect URIs span several hosts, so it has no sector identifier (OpenID Connect Core §8.1).
 */
export type OAuthErrorReason =
  | 'missing_parameter'
  | 'duplicate_parameter'
  | 'malformed_parameter'
  | 'malformed_host'
  | 'method_not_allowed'
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
  | 'token_client_mismatch'
  | 'unknown_grant_type'
  | 'grant_type_not_allowed'
  | 'scope_not_allowed'
  | 'hook_denied'
  | 'missing_token'
  | 'unknown_token'
  | 'expired_token'
  | 'revoked_token'
  | 'missing_scope'
  | 'malformed_resource'
  | 'resource_not_allowed'
  | 'audience_mismatch'
  | 'malformed_token'
  | 'token_signature_invalid'
  | 'unknown_signing_key'
  | 'token_claim_mismatch'
  | 'unknown_code'
  | 'expired_code'
  | 'code_reused'
  | 'redirect_uri_mismatch'
  | 'pkce_required'
  | 'pkce_mismatch'
  | 'pkce_method_not_allowed'
  | 'csrf_mismatch'
  | 'unknown_grant'
  | 'consent_denied'
  | 'login_required'
  | 'consent_required'
  | 'malformed_prompt'
  | 'invalid_id_token_hint'
  | 'unknown_refresh_token'
  | 'expired_refresh_token'
  | 'refresh_token_reused'
  | 'invalid_assertion'
  | 'assertion_replayed'
  | 'untrusted_issuer'
  | 'unknown_subject'
  | 'jwks_unavailable'
  | 'authorization_server_unavailable'
  | 'inactive_token'
  | 'no_verification_key'
  | 'internal_error'
  | 'database_unavailable'
  | 'purge_failed'
  | 'invalid_client_metadata'
  | 'client_metadata_document_unavailable'
  | 'invalid_client_metadata_document'
  | 'invalid_initial_access_token'
  | 'invalid_registration_access_token'
  | 'registration_rate_limited'
  | 'ambiguous_sector_identifier';

export interface OAuthErrorOptions {
  /**
   * Only for the documented exceptions to the status table: 405 for a method an OAuth route does
   * not serve; 429 (with `retryAfter`) for `temporarily_unavailable` when a per-source rate limit
   * refuses a request (RFC 6585 §4; OAuth has no rate-limit code); 403 for `access_denied` when
   * a grants-page revoke (grant_management) lacks its CSRF token.
   */
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
  /**
   * RFC 9110 §10.2.3: seconds after which the client may try again, sent as `Retry-After`.
   * Every 503 carries one (default {@link DEFAULT_RETRY_AFTER}); other errors only when set here.
   */
  retryAfter?: number;
}

/** The `Retry-After` of a 503 that does not say otherwise: a short outage's scale, in seconds. */
export const DEFAULT_RETRY_AFTER = 2;

const STATUS: Partial<Record<OAuthErrorCode, number>> = {
  invalid_client: 401,
  invalid_token: 401,
  insufficient_scope: 403,
  // RFC 8707 §2: "with an HTTP 400 (Bad Request) status code" at the token endpoint.
  invalid_target: 400,
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
  readonly retryAfter: number | undefined;

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
    this.retryAfter = options.retryAfter;
  }

  /** The RFC 6749 §5.2 body, its description in the characters §5.2 allows. */
  toJSON(): { error: OAuthErrorCode; error_description?: string } {
    return this.description === undefined ? { error: this.code } : { error: this.code, error_description: asciiDescription(this.description) };
  }
}

/** RFC 6749 §5.2: `error_description` is %x20-21 / %x23-5B / %x5D-7E (printable ASCII without `"` and `\`). */
export const DESCRIPTION_CHARS = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * A description as it may go on the wire (RFC 6749 §5.2): accents dropped (NFKD, then the
 * combining marks removed), `"` → `'`, `\` → `/`, anything else outside the set → `?`.
 * Constant messages are refused at start-up instead (`checkMessageValue`); this covers
 * descriptions made at request time.
 */
export function asciiDescription(description: string): string {
  if (DESCRIPTION_CHARS.test(description)) return description;
  return description
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/"/g, "'")
    .replace(/\\/g, '/')
    .replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/gu, '?');
}

/** Turns anything thrown into an OAuthError: unknown exceptions become a generic `server_error`. */
export function toOAuthError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  if (isDatabaseUnavailable(err)) {
    return new OAuthError('temporarily_unavailable', 'The service is temporarily unavailable', { reason: 'database_unavailable', cause: err });
  }
  return new OAuthError('server_error', 'An unexpected error occurred', { reason: 'internal_error', cause: err });
}

/*
 * "Try later" errors: the request was fine and the same request may succeed in a moment, so
 * the answer is 503 with Retry-After (RFC 6749 §4.1.2.1 / §5.2 temporarily_unavailable), not a
 * 500 that says "bug". Errors of the query itself (syntax, constraint, corruption, a wrong
 * schema) stay 500: retrying cannot help and an operator must look.
 */

/**
 * SQLite primary result codes (better-sqlite3 puts the extended name in `err.code`, e.g.
 * `SQLITE_IOERR_WRITE`, so a primary code also covers its extended codes):
 * - BUSY, LOCKED: another connection or process holds the lock (incl. BUSY_SNAPSHOT, BUSY_RECOVERY).
 * - FULL: the disk or the database's size limit is full; space comes back (WAL checkpoint, log rotation).
 * - IOERR: a read, write, fsync or lock failed (incl. IOERR_NOMEM); storage hiccups, network filesystems.
 * - CANTOPEN: the file could not be opened now (descriptor exhaustion, a directory being rotated).
 * - NOMEM: out of memory, which passes with the load.
 * - PROTOCOL: a race on the WAL locks; SQLite's own advice is to retry.
 */
const SQLITE_TRANSIENT = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_CANTOPEN', 'SQLITE_NOMEM', 'SQLITE_PROTOCOL']);

/**
 * Of the SQLITE_READONLY family only the codes another connection resolves by itself: WAL
 * recovery in progress, the shared-memory lock or a hot journal's rollback not ours to take.
 * Plain READONLY (opened read-only, a read-only mount), READONLY_DBMOVED (the file was
 * replaced under us) and READONLY_DIRECTORY (permissions) stay 500: they last until an
 * operator acts, and a 503 would invite clients to keep retrying against a misconfiguration.
 */
const SQLITE_READONLY_TRANSIENT = new Set(['SQLITE_READONLY_RECOVERY', 'SQLITE_READONLY_CANTLOCK', 'SQLITE_READONLY_ROLLBACK', 'SQLITE_READONLY_CANTINIT']);

/**
 * PostgreSQL SQLSTATEs, besides classes 08 (connection exception) and 53 (insufficient
 * resources: 53000, 53100 disk full, 53200 out of memory, 53300 too many connections, 53400
 * configuration limit exceeded), which are transient as a whole.
 */
const PG_TRANSIENT = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, in recovery)
  '57P04', // database_dropped: the connection is gone; a new one reports what is now true
  '57P05', // idle_session_timeout
  '57014', // query_canceled: statement_timeout or a cancel request
  '40001', // serialization_failure: retryable by definition
  '40P01', // deadlock_detected: one side is chosen to retry
  '55P03', // lock_not_available: lock_timeout or NOWAIT
  '58030', // io_error
  '25P03', // idle_in_transaction_session_timeout: the server closed the session
]);

/** Network errors of the connection to the database server (and descriptor exhaustion). */
const NODE_TRANSIENT = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EMFILE',
  'ENFILE',
]);

/** pg errors without a code: the server went away mid-query (knex may prefix them with the SQL). */
const PG_CONNECTION_LOST = /(?:^| - )(?:Connection terminated|Client has encountered a connection error|Client was closed and is not queryable)/;

/** Whether a code names a "try later" condition of SQLite, PostgreSQL or the network. */
export function isTransientCode(code: string): boolean {
  if (code.startsWith('SQLITE_')) {
    if (code.startsWith('SQLITE_READONLY')) return SQLITE_READONLY_TRANSIENT.has(code);
    const primary = code.match(/^SQLITE_[A-Z]+/)![0];
    // SQLITE_ABORT_ROLLBACK: the transaction was abandoned by an earlier error of this group (a full disk, say).
    return SQLITE_TRANSIENT.has(primary) || code === 'SQLITE_ABORT_ROLLBACK';
  }
  if (/^[0-9A-Z]{5}$/.test(code) && (code.startsWith('08') || code.startsWith('53') || PG_TRANSIENT.has(code))) return true;
  return NODE_TRANSIENT.has(code);
}

/**
 * Whether an error means the database cannot serve now. Looks at the error itself and at what
 * it wraps (`cause`, `originalError`, `nativeError`, an AggregateError's `errors`), because
 * knex, pg-pool and node's dual-stack connect each wrap the driver's error differently.
 */
export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > 3) return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown; originalError?: unknown; nativeError?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && isTransientCode(e.code)) return true;
  // knex's pool: timed out, or destroyed while a request still wanted a connection.
  if (e.name === 'KnexTimeoutError') return true;
  if (typeof e.message === 'string' && (e.message.startsWith('Unable to acquire a connection') || PG_CONNECTION_LOST.test(e.message))) return true;
  for (const inner of [e.cause, e.originalError, e.nativeError]) if (inner !== undefined && inner !== err && isDatabaseUnavailable(inner, depth + 1)) return true;
  if (Array.isArray(e.errors)) return e.errors.some((x) => isDatabaseUnavailable(x, depth + 1));
  return false;
}
