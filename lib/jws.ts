/**
 * The syntax of a JWS in compact serialization (RFC 7515 §7.1), for telling a signed access
 * token from an opaque one and for refusing one spelled otherwise than it was issued. Parsing and
 * verifying are jose's.
 */

/** A JWS in compact serialization has exactly three dot-separated parts; an opaque token has none. */
export function isCompactJws(token: string): boolean {
  const first = token.indexOf('.');
  if (first === -1) return false;
  const second = token.indexOf('.', first + 1);
  return second !== -1 && token.indexOf('.', second + 1) === -1;
}

/**
 * Whether `token` is spelled the one way RFC 7515 allows: three base64url parts (§2: no padding,
 * no other character), each part's unused trailing bits zero (RFC 4648 §3.5). An empty part
 * encodes nothing (the signature of `alg: none`, which the signature check then refuses).
 *
 * Decoders are lenient (Node's skips `=` and characters outside the alphabet), so without this
 * check `token + '='`, or a `~` inside the signature, would verify as the same token while being
 * another string: another entry in the verified-token cache, and a token that `/introspect` and
 * `/revoke` (which find tokens by hash) do not know. Checked before a signature check, so a
 * verified token, and any token byte-identical to it, is canonical.
 */
export function isCanonicalCompactJws(token: string): boolean {
  const parts = token.split('.');
  if (parts.length !== 3) return false;
  for (const part of parts) {
    if (!BASE64URL.test(part) || Buffer.from(part, 'base64url').toString('base64url') !== part) return false;
  }
  return true;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
