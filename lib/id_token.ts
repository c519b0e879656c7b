/**
 * OpenID Connect ID tokens (Core §2) signed and checked with the server's own keys
 * (lib/keys.ts): `at_hash` (§3.1.3.6), pairwise subject identifiers (§8.1), and the check of an
 * `id_token_hint` we issued (RP-Initiated Logout 1.0 §2: an expired one is still a hint).
 * Signatures and JWT parsing are jose's; hashes and HMACs node:crypto's.
 */
import { createHash, createHmac } from 'node:crypto';
import { compactVerify, decodeJwt, errors, SignJWT, type JWTPayload, type KeyLike, type ProtectedHeaderParameters } from 'jose';
import type { OAuthContext } from './context';
import { serverKeys, type ServerKey } from './keys';

/** The `typ` of our ID tokens: a plain JWT (Core §2 names none; RFC 7519 §5.1's `JWT`). */
export const ID_TOKEN_TYP = 'JWT';

/**
 * The hash function of an `at_hash` / `c_hash` for the JWS algorithm (Core §3.1.3.6: the hash
 * of the `alg`; for EdDSA, as the OpenID Foundation registry and oauth4webapi read it, SHA-512
 * on Ed25519 and SHAKE256 with a 114-byte output on Ed448).
 */
function hashFor(key: Pick<ServerKey, 'alg' | 'publicJwk'>): { name: string; outputLength?: number } {
  const { alg } = key;
  if (alg === 'EdDSA') return key.publicJwk.crv === 'Ed448' ? { name: 'shake256', outputLength: 114 } : { name: 'sha512' };
  const bits = /^(?:ES|RS|PS)(256|384|512)$/.exec(alg)?.[1];
  if (!bits) throw new Error(`id_token: no at_hash hash for the algorithm ${alg}`);
  return { name: `sha${bits}` };
}

/** §3.1.3.6: base64url of the left half of the hash of the ASCII access token. */
export function tokenHash(token: string, key: Pick<ServerKey, 'alg' | 'publicJwk'>): string {
  const { name, outputLength } = hashFor(key);
  const digest = createHash(name, outputLength === undefined ? undefined : { outputLength }).update(token, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/** Signs the ID token's claims with {@link idTokenSigningKey}; the header carries `alg`, `kid` and `typ: JWT`. */
export function signIdToken(ctx: OAuthContext, claims: JWTPayload): Promise<string> {
  const { alg, kid, privateKey } = idTokenSigningKey(ctx);
  return new SignJWT(claims).setProtectedHeader({ alg, kid, typ: ID_TOKEN_TYP }).sign(privateKey as KeyLike);
}

/** The algorithm a client expects its ID tokens in when it registered none (OpenID Connect Dynamic Client Registration §2). */
export const DEFAULT_ID_TOKEN_ALG = 'RS256';

/**
 * The key ID tokens are signed with (for `at_hash` and the advertised algorithm): the first
 * RS256 key of `oauthJwtKeys`, the algorithm clients expect by default and Discovery §3 requires;
 * without one, the first key (the one that signs everything else).
 */
export function idTokenSigningKey(ctx: OAuthContext): ServerKey {
  const keys = serverKeys(ctx);
  return keys.published.find((k) => k.privateKey !== undefined && k.alg === DEFAULT_ID_TOKEN_ALG) ?? keys.signing;
}

/**
 * §8.1: a pairwise `sub`, the same for one account at every client of a sector and different
 * across sectors: base64url(HMAC-SHA-256(salt, sector ‖ 0x00 ‖ local subject)).
 */
export function pairwiseSubject(salt: string, sectorIdentifier: string, localSubject: string): string {
  return createHmac('sha256', salt).update(`${sectorIdentifier}\0${localSubject}`, 'utf8').digest('base64url');
}

/** Longest `id_token_hint` read, in characters. */
const MAX_HINT_LENGTH = 16384;

/**
 * The claims of an ID token this server signed (with a key it still publishes) for its own
 * issuer, or undefined for anything else: forged, tampered, of another issuer, or not a JWS.
 * Its expiry is not checked (RP-Initiated Logout 1.0 §2: the OP should accept an expired hint).
 */
export async function verifyIdTokenHint(ctx: OAuthContext, token: string): Promise<JWTPayload | undefined> {
  if (token.length > MAX_HINT_LENGTH) return undefined;
  const keys = serverKeys(ctx);
  const algorithms = [...new Set(keys.published.map((k) => k.alg))];
  try {
    const { protectedHeader } = await compactVerify(
      token,
      (header: ProtectedHeaderParameters) => {
        const key = keys.find(header.kid, header.alg ?? '');
        if (!key) throw new errors.JWKSNoMatchingKey();
        return key.publicKey as KeyLike;
      },
      { algorithms },
    );
    // Only an ID token: an RFC 9068 access token (typ at+jwt) of ours is no logout hint.
    if (protectedHeader.typ !== ID_TOKEN_TYP) return undefined;
    const claims = decodeJwt(token);
    if (claims.iss !== ctx.issuer || typeof claims.sub !== 'string' || audiences(claims).length === 0) return undefined;
    return claims;
  } catch {
    return undefined;
  }
}

/** The audiences of a JWT, as a list. */
export function audiences(claims: JWTPayload): string[] {
  const aud = claims.aud;
  if (typeof aud === 'string') return [aud];
  return Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}
