/**
 * RFC 6750 §2.1: reading `Authorization: Bearer <b64token>`, for `requireOauthAuthorization`
 * (`fetchAccessToken`) and `resourceServer()` alike, and the registration access token of RFC
 * 7592. One linear pass: the token's character class excludes the spaces around it, so no
 * header, however long, makes the expression backtrack more than linearly.
 */

/** `credentials = "Bearer" 1*SP b64token`, the scheme case-insensitive, trailing spaces allowed. */
const BEARER_CREDENTIALS = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
/** The Bearer scheme, whatever follows it. */
const BEARER_SCHEME = /^bearer(\s|$)/i;

/** The Bearer scheme with no token, or one that is not a b64token (RFC 6750 §3.1 `invalid_request`). */
export const MALFORMED_BEARER = Symbol('malformed Bearer credentials');

/** The b64token; undefined without Bearer credentials (no header, another scheme); `MALFORMED_BEARER` for a malformed one. */
export function bearerCredentials(header: string | undefined): string | undefined | typeof MALFORMED_BEARER {
  if (header === undefined) return undefined;
  const m = BEARER_CREDENTIALS.exec(header);
  if (m) return m[1];
  return BEARER_SCHEME.test(header) ? MALFORMED_BEARER : undefined;
}
