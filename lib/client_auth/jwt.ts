/**
 * JWT assertions (RFC 7521, RFC 7523) with jose: the two client-authentication methods
 * `client_secret_jwt` and `private_key_jwt` (RFC 7523 §2.2), and the verification both they
 * and the `jwt_bearer` grant (§2.1) use. Every failure, jose's included, becomes
 * `invalid_client` (client authentication) or `invalid_grant` (grant), never a 500; the
 * library's error stays as the cause, for the logs.
 */
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyOptions, type ProtectedHeaderParameters } from 'jose';
import type { OAuthContext } from '../context';
import { OAuthError, type OAuthErrorReason } from '../errors';
import type { ClientAuthMethodDef } from '../feature';
import { sha256 } from '../crypto';
import { JwksError, jwksCacheFor, verifyWithKeySet, type JwksSettings, type KeySet } from '../jwks';
import type { Application } from '../store';
import { invalidClient, loadClient } from './common';

/** RFC 7523 §2.2 `client_assertion_type`. */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** The values of `jwt_bearer` this module reads (declared in features/jwt_bearer.ts). */
interface JwtBearerValues {
  oauthInvalidClientMessage: string;
  oauthInvalidGrantMessage: string;
  oauthJwtBearerMaxAssertionSize: number;
  oauthJwtBearerMaxAssertionLifetime: number;
  oauthJwtBearerLeeway: number;
  oauthJwtBearerJtiPurgeInterval: number;
  oauthJwtBearerClientSecretJwtAlgorithms: readonly string[];
  oauthJwtBearerPrivateKeyJwtAlgorithms: readonly string[];
  oauthJwksFetchTimeout: number;
  oauthJwksMaxSize: number;
  oauthJwksMaxKeys: number;
  oauthJwksAllowLoopbackHttp: boolean;
  oauthJwksCacheExpiresIn: number;
  oauthJwksMaxCacheExpiresIn: number;
  oauthJwksMinCacheExpiresIn: number;
  oauthJwksRefetchInterval: number;
}

interface JwtBearerMethods {
  decryptClientSecret(app: Application): Promise<string | null>;
}

function v(ctx: OAuthContext): JwtBearerValues {
  return ctx.values as unknown as JwtBearerValues;
}

/** Who an assertion is presented as: it decides the error code of a failure. */
export type AssertionUse = 'client' | 'grant';

/** The failure of an assertion: 401 `invalid_client` or 400 `invalid_grant` (RFC 7521 §4.1.1, §4.2.1). */
export function assertionError(ctx: OAuthContext, use: AssertionUse, reason: OAuthErrorReason, cause?: unknown): OAuthError {
  if (use === 'client') return invalidClient(ctx, reason, cause);
  return new OAuthError('invalid_grant', v(ctx).oauthInvalidGrantMessage, { reason, cause });
}

/** Why an assertion was refused before or beside jose's own checks (the logged cause). */
export class AssertionError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AssertionError';
  }
}

/** Where the verification key comes from. */
export type AssertionKeys = { kind: 'secret'; secret: Uint8Array } | { kind: 'jwks'; keySet: KeySet } | { kind: 'jwks_uri'; uri: string };

/** An assertion read without trusting it: only to learn who claims to have signed it. */
export interface InspectedAssertion {
  header: ProtectedHeaderParameters;
  claims: JWTPayload;
}

/**
 * Size limit, structure, `alg` and `typ`, before any key is looked up: a truncated, non-JSON,
 * oversized or unsigned assertion is refused here.
 */
export function inspectAssertion(ctx: OAuthContext, use: AssertionUse, assertion: string): InspectedAssertion {
  const max = v(ctx).oauthJwtBearerMaxAssertionSize;
  if (assertion.length > max) throw assertionError(ctx, use, 'invalid_assertion', new AssertionError('assertion_too_large', `the assertion is longer than ${max} characters`));
  let header: ProtectedHeaderParameters;
  let claims: JWTPayload;
  try {
    header = decodeProtectedHeader(assertion);
    claims = decodeJwt(assertion);
  } catch (e) {
    throw assertionError(ctx, use, 'invalid_assertion', e);
  }
  // RFC 7515 §4.1.1 / RFC 7518 §3.6: an unsecured JWT never authenticates anything.
  if (typeof header.alg !== 'string' || header.alg.toLowerCase() === 'none') {
    throw assertionError(ctx, use, 'invalid_assertion', new AssertionError('unsigned_assertion', 'the assertion is not signed'));
  }
  // RFC 7519 §5.1: `typ`, when present, says JWT (an at+jwt or a JWE must not pass as an assertion).
  if (header.typ !== undefined && (typeof header.typ !== 'string' || !/^(application\/)?jwt$/i.test(header.typ))) {
    throw assertionError(ctx, use, 'invalid_assertion', new AssertionError('unexpected_typ', 'the assertion typ is not JWT'));
  }
  // Identifiers go to the database as they are: a NUL (which PostgreSQL refuses in text) or a
  // length no column holds is a malformed assertion, not a server error.
  for (const claim of ['iss', 'sub'] as const) {
    const value = claims[claim];
    if (typeof value === 'string' && (value.length > MAX_IDENTIFIER_LENGTH || value.includes('\0'))) {
      throw assertionError(ctx, use, 'invalid_assertion', new AssertionError(`malformed_${claim}`, `the assertion ${claim} is too long or holds a NUL character`));
    }
  }
  return { header, claims };
}

/** The longest `iss` / `sub` accepted: what the client id and account id columns hold. */
const MAX_IDENTIFIER_LENGTH = 255;

/** What a verified assertion must say, besides the signature. */
export interface AssertionExpectations {
  /** The only acceptable `iss`. */
  issuer: string;
  /** The only acceptable `sub`, when fixed (client authentication: the client id). */
  subject?: string;
  algorithms: readonly string[];
  keys: AssertionKeys;
}

/**
 * Verifies signature and claims (RFC 7523 §3): `iss`, `sub`, `aud` (the token endpoint URL or
 * the issuer), `exp` required and at most `oauthJwtBearerMaxAssertionLifetime` after `iat` (when
 * present) and after now, `nbf` and `iat` not in the future (with `oauthJwtBearerLeeway`), `jti`
 * required and single use (one conditional insert into the jti table, so a replay fails across
 * processes).
 */
export async function verifyAssertion(ctx: OAuthContext, use: AssertionUse, assertion: string, expect: AssertionExpectations): Promise<JWTPayload> {
  const values = v(ctx);
  const now = ctx.now();
  const options: JWTVerifyOptions = {
    algorithms: [...expect.algorithms],
    issuer: expect.issuer,
    subject: expect.subject,
    // RFC 7523 §3 item 3: the configured issuer's own URLs only (jwt_bearer requires the option).
    audience: [...new Set([ctx.routeUrl('token'), ctx.issuer])],
    requiredClaims: ['exp', 'jti', 'sub', 'aud', 'iss'],
    clockTolerance: values.oauthJwtBearerLeeway,
    currentDate: now,
  };
  let payload: JWTPayload;
  try {
    payload = await verifyWithKeys(ctx, assertion, expect.keys, options);
  } catch (e) {
    throw assertionError(ctx, use, e instanceof JwksError ? 'jwks_unavailable' : 'invalid_assertion', e);
  }
  const nowSeconds = Math.floor(now.getTime() / 1000);
  const leeway = values.oauthJwtBearerLeeway;
  const exp = payload.exp as number; // required and numeric: checked by jose
  const lifetime = values.oauthJwtBearerMaxAssertionLifetime;
  // RFC 7523 §3 item 4 lets the server bound how far `exp` lies ahead. Measured from now, this
  // bounds how long each jti is kept (until `exp`), so the jti table and the replay window stay
  // within one lifetime whatever the clients send…
  if (exp > nowSeconds + lifetime + leeway) {
    throw assertionError(ctx, use, 'invalid_assertion', new AssertionError('exp_too_far', 'the assertion expires too far in the future'));
  }
  if (typeof payload.iat === 'number' && payload.iat > nowSeconds + leeway) {
    throw assertionError(ctx, use, 'invalid_assertion', new AssertionError('iat_in_future', 'the assertion was issued in the future'));
  }
  // …and measured from `iat` (item 6), it bounds the whole life of the assertion: one minted an
  // hour ago cannot be valid for another hour. Both times are the signer's, so no leeway applies.
  // Google service accounts and rodauth-oauth send exp = iat + 3600, the default lifetime.
  if (typeof payload.iat === 'number' && exp - payload.iat > lifetime) {
    throw assertionError(ctx, use, 'invalid_assertion', new AssertionError('lifetime_too_long', `the assertion is valid for more than ${lifetime} seconds after its iat`));
  }
  if (typeof payload.jti !== 'string' || payload.jti.length === 0) {
    throw assertionError(ctx, use, 'invalid_assertion', new AssertionError('invalid_jti', 'the assertion jti is not a non-empty string'));
  }
  if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
    throw assertionError(ctx, use, 'invalid_assertion', new AssertionError('invalid_sub', 'the assertion sub is not a non-empty string'));
  }
  await purgeExpiredJtis(ctx, now);
  // The jti is stored hashed: fixed length whatever the client sends, and kept until `exp`.
  const fresh = await ctx.store.jtis.use(expect.issuer, sha256(payload.jti), new Date((exp + leeway) * 1000));
  if (!fresh) throw assertionError(ctx, use, 'assertion_replayed');
  return payload;
}

const lastPurge = new WeakMap<object, number>();

/** Deletes expired jtis at most once per `oauthJwtBearerJtiPurgeInterval` per instance. */
async function purgeExpiredJtis(ctx: OAuthContext, now: Date): Promise<void> {
  const interval = v(ctx).oauthJwtBearerJtiPurgeInterval * 1000;
  const last = lastPurge.get(ctx.runtime);
  if (last !== undefined && now.getTime() - last < interval && now.getTime() >= last) return;
  lastPurge.set(ctx.runtime, now.getTime());
  await ctx.store.jtis.purgeExpired(now);
}

async function verifyWithKeys(ctx: OAuthContext, assertion: string, keys: AssertionKeys, options: JWTVerifyOptions): Promise<JWTPayload> {
  if (keys.kind === 'secret') return (await jwtVerify(assertion, keys.secret, options)).payload;
  if (keys.kind === 'jwks') return verifyWithKeySet(assertion, keys.keySet, options);
  // A kid the cached set lacks: the client may have rotated; refetch once (rate-limited).
  const cache = jwksCacheFor(ctx.runtime);
  const settings = jwksSettings(ctx);
  const now = ctx.now().getTime();
  const entry = await cache.get(keys.uri, now, settings);
  try {
    return await verifyWithKeySet(assertion, entry, options);
  } catch (e) {
    if (!(e instanceof joseErrors.JWKSNoMatchingKey)) throw e;
    const fresh = await cache.refetchForUnknownKey(keys.uri, now, settings);
    if (!fresh) throw e;
    return verifyWithKeySet(assertion, fresh, options);
  }
}

/** The fetch limits, from the values. */
export function jwksSettings(ctx: OAuthContext): JwksSettings {
  const values = v(ctx);
  return {
    timeoutMs: values.oauthJwksFetchTimeout,
    maxBytes: values.oauthJwksMaxSize,
    maxKeys: values.oauthJwksMaxKeys,
    allowLoopbackHttp: values.oauthJwksAllowLoopbackHttp,
    defaultCacheSeconds: values.oauthJwksCacheExpiresIn,
    maxCacheSeconds: values.oauthJwksMaxCacheExpiresIn,
    minCacheSeconds: values.oauthJwksMinCacheExpiresIn,
    clock: () => ctx.now().getTime(),
    refetchIntervalSeconds: values.oauthJwksRefetchInterval,
    allowPrivateAddresses: ctx.values.oauthFetchAllowPrivateAddresses,
    trustedCertificates: ctx.values.oauthFetchTrustedCertificates,
    failureBackoffSeconds: ctx.values.oauthJwksFailureBackoff,
    maxFailureBackoffSeconds: ctx.values.oauthJwksMaxFailureBackoff,
  };
}

/** An application's public keys: its `jwks` column, else its `jwks_uri`; null when it has neither. */
export function applicationKeys(ctx: OAuthContext, app: Application): AssertionKeys | null {
  if (app.jwks !== null) {
    const values = v(ctx);
    if (app.jwks.length > values.oauthJwksMaxSize) throw new JwksError('jwks_too_large', `the JWK Set is larger than ${values.oauthJwksMaxSize} bytes`);
    return { kind: 'jwks', keySet: jwksCacheFor(ctx.runtime).inline(app.jwks, values.oauthJwksMaxKeys) };
  }
  if (app.jwksUri !== null) return { kind: 'jwks_uri', uri: app.jwksUri };
  return null;
}

/** The HMAC key of a `client_secret_jwt` application: its secret, decrypted; null when not kept. */
export async function applicationSecretKey(ctx: OAuthContext, app: Application): Promise<AssertionKeys | null> {
  const secret = await (ctx.methods as unknown as JwtBearerMethods).decryptClientSecret(app);
  return secret === null ? null : { kind: 'secret', secret: new TextEncoder().encode(secret) };
}

/** Whether an assertion's header names an HMAC algorithm (without trusting it). */
export function isHmacAssertion(assertion: string | undefined): boolean {
  if (assertion === undefined) return false;
  try {
    const { alg } = decodeProtectedHeader(assertion);
    return typeof alg === 'string' && /^HS/i.test(alg);
  } catch {
    return false;
  }
}

type JwtMethod = 'client_secret_jwt' | 'private_key_jwt';

/**
 * RFC 7523 §2.2 client authentication. Both methods see the same parameters; the header's
 * `alg` tells them apart (HMAC → client_secret_jwt, anything else → private_key_jwt), so
 * exactly one of them claims a request and a malformed assertion still gets `invalid_client`.
 */
function jwtClientAuth(method: JwtMethod): ClientAuthMethodDef {
  const hmac = method === 'client_secret_jwt';
  return {
    detect: (ctx) => (ctx.params.client_assertion !== undefined || ctx.params.client_assertion_type !== undefined) && isHmacAssertion(ctx.params.client_assertion) === hmac,
    async authenticate(ctx) {
      const assertion = ctx.params.client_assertion;
      if (ctx.params.client_assertion_type !== CLIENT_ASSERTION_TYPE || assertion === undefined) {
        throw invalidClient(ctx, 'invalid_assertion', new AssertionError('bad_client_assertion_type', 'client_assertion_type and client_assertion are both required (RFC 7521 §4.2)'));
      }
      const { claims } = inspectAssertion(ctx, 'client', assertion);
      // RFC 7523 §3 items 1–2: both iss and sub are the client id.
      const clientId = claims.sub;
      if (typeof clientId !== 'string' || clientId.length === 0 || claims.iss !== clientId) {
        throw invalidClient(ctx, 'invalid_assertion', new AssertionError('iss_sub_mismatch', 'iss and sub must both be the client id'));
      }
      const app = await loadClient(ctx, clientId, method);
      let keys: AssertionKeys | null;
      try {
        keys = hmac ? await applicationSecretKey(ctx, app) : applicationKeys(ctx, app);
      } catch (e) {
        throw invalidClient(ctx, 'jwks_unavailable', e);
      }
      if (keys === null) throw invalidClient(ctx, 'no_verification_key');
      const values = v(ctx);
      const algorithms = hmac ? values.oauthJwtBearerClientSecretJwtAlgorithms : values.oauthJwtBearerPrivateKeyJwtAlgorithms;
      await verifyAssertion(ctx, 'client', assertion, { issuer: clientId, subject: clientId, algorithms, keys });
      return app;
    },
  };
}

export const clientSecretJwt: ClientAuthMethodDef = jwtClientAuth('client_secret_jwt');
export const privateKeyJwt: ClientAuthMethodDef = jwtClientAuth('private_key_jwt');
