/**
 * RFC 7523 (profile of RFC 7521): the JWT bearer authorization grant (§2.1) and the
 * `client_secret_jwt` / `private_key_jwt` client-authentication methods (§2.2), with jose.
 * Keys come from the application (`jwks` / `jwks_uri`, its encrypted secret for HMAC) or
 * from issuers the host trusts; every `jti` is single use; no account is ever created.
 *
 * Who gets a token for an assertion from a trusted (non-client) issuer: the client that
 * presents it, which must then authenticate itself (RFC 7521 §4.1 lets a grant come with
 * client authentication). An assertion whose `iss` is a registered client authenticates
 * that client by its signature; other credentials sent beside it must name the same client.
 * Either way, the application must list the grant type explicitly in its `grant_types`:
 * a NULL list (every grant) does not opt a client into tokens for arbitrary subjects.
 */
import type { JSONWebKeySet, JWTPayload } from 'jose';
import type { OAuthContext, TokenContext } from '../lib/context';
import { defineFeature, grantType, method, value, type MethodsOf, type TokenResponse, type ValidationContext, type ValuesOf } from '../lib/feature';
import { OAuthError } from '../lib/errors';
import { OAuthConfigurationError } from '../lib/options';
import { requireParam } from '../lib/http/params';
import { fetchTimeoutProblem } from '../lib/http/safe_fetch';
import { grantableScopes } from '../lib/scopes';
import { issueDirectGrant } from '../lib/tokens';
import { supportedAuthMethods } from '../lib/client_auth';
import { aeadDecrypt, aeadEncrypt, parseAeadKey } from '../lib/crypto/aead';
import { checkJwksUri, parseKeySet, type KeySet } from '../lib/jwks';
import { jtiValues } from '../lib/store/schema';
import type { Application } from '../lib/store';
import {
  applicationKeys,
  applicationSecretKey,
  assertionError,
  AssertionError,
  clientSecretJwt,
  inspectAssertion,
  privateKeyJwt,
  verifyAssertion,
  type AssertionKeys,
} from '../lib/client_auth/jwt';
import oauthBase from './oauth_base';

/** RFC 7523 §2.1 `grant_type`. */
export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** An issuer whose assertions the host accepts for its own users (`oauthJwtBearerTrustedIssuers`). */
export interface TrustedIssuer {
  /** The exact `iss` of its assertions. */
  issuer: string;
  /** Its public keys, inline… */
  jwks?: JSONWebKeySet;
  /** …or where to fetch them (https; loopback http with `oauthJwksAllowLoopbackHttp`). */
  jwksUri?: string;
  /** The `sub` values it may assert, or `'*'` for any. */
  subjects: readonly string[] | '*';
  /** The scopes a token from its assertions may carry at most. */
  scopes: readonly string[];
}

const values = {
  // (a) tables and columns
  ...jtiValues,
  // (b) lifetimes and limits
  oauthJwtBearerMaxAssertionLifetime: value(3600, "Longest lifetime of an assertion, in seconds (RFC 7523 §3 item 4): its `exp` at most this long after its `iat` (when present) and after now (plus oauthJwtBearerLeeway). Its jti is kept until `exp`, so this also bounds the jti table. The default accepts Google service accounts' exp = iat + 3600."),
  oauthJwtBearerLeeway: value(30, 'Clock skew, in seconds, allowed on `exp`, `nbf` and `iat`.'),
  oauthJwtBearerMaxAssertionSize: value(8192, 'Longest assertion accepted, in characters, checked before parsing.'),
  oauthJwtBearerJtiPurgeInterval: value(60, 'Least seconds between two purges of expired jtis (run during a verification).'),
  oauthJwksFetchTimeout: value(3000, 'Milliseconds a jwks_uri has to answer, body included.'),
  oauthJwksMaxSize: value(65536, 'Largest JWK Set accepted, in bytes (fetched or stored).'),
  oauthJwksMaxKeys: value(32, 'Most keys a JWK Set may hold.'),
  oauthJwksCacheExpiresIn: value(300, 'Seconds a fetched JWK Set is cached when its response has no cache headers.'),
  oauthJwksMaxCacheExpiresIn: value(86400, 'Longest time, in seconds, a fetched JWK Set is cached, whatever its headers say.'),
  oauthJwksMinCacheExpiresIn: value(30, 'Shortest time, in seconds, a fetched JWK Set is cached, whatever its headers say (`no-store` and `max-age=0` included), so that a client cannot make every request naming it cost a fetch. 0 honours them exactly.'),
  oauthJwksRefetchInterval: value(60, 'Least seconds between two fetches of a jwks_uri caused by an unknown `kid`.'),
  oauthJwksFailureBackoff: value(10, 'Seconds a failed jwks_uri fetch is remembered (requests get the failure without a fetch); doubles on each further failure.'),
  oauthJwksMaxFailureBackoff: value(300, 'Longest time, in seconds, a failed jwks_uri fetch is remembered.'),
  // (c) policy
  oauthJwksAllowLoopbackHttp: value(false, 'Accept http:// jwks_uris on loopback hosts, and loopback addresses (127.0.0.0/8, ::1) for https ones (development only); otherwise https to public addresses only.'),
  oauthJwtBearerClientSecretJwtAlgorithms: value<string[]>([...HMAC_ALGORITHMS], 'Algorithms accepted for client_secret_jwt (HMAC only).'),
  oauthJwtBearerPrivateKeyJwtAlgorithms: value<string[]>([...ASYMMETRIC_ALGORITHMS], 'Algorithms accepted for private_key_jwt and for assertions of trusted issuers (asymmetric only).'),
  oauthJwtBearerTrustedIssuers: value<TrustedIssuer[]>([], 'Issuers whose assertions the grant accepts besides clients: `{ issuer, jwks | jwksUri, subjects: string[] | "*", scopes }`.'),
  oauthClientSecretEncryptionKey: value<string | null>(
    null,
    'AES-256-GCM key (64 hex digits or base64) under which the secrets of client_secret_jwt applications are kept; required to register one.',
    'nullable-string',
  ),
};

const methods = {
  encryptClientSecret: method(encryptClientSecret, 'Encrypts the secret of a client_secret_jwt application (AES-256-GCM under oauthClientSecretEncryptionKey).'),
  decryptClientSecret: method(decryptClientSecret, 'The secret of a client_secret_jwt application, decrypted; null when none is kept or it cannot be decrypted.'),
  accountFromJwtBearerAssertion: method(
    async (_ctx: OAuthContext, claims: JWTPayload): Promise<string | null> => (typeof claims.sub === 'string' && claims.sub !== '' ? claims.sub : null),
    'The account id an assertion grant is for, from its verified claims (default: `sub`); null refuses it. Never creates an account.',
  ),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
  interface OAuthMethods extends MethodsOf<typeof methods> {}
}

export default defineFeature({
  id: 'jwt_bearer',
  doc: 'RFC 7523 JWT bearer assertion grant and client authentication.',
  depends: [oauthBase],
  values,
  methods,
  grantTypes: {
    [JWT_BEARER_GRANT_TYPE]: grantType({
      parameters: ['assertion', 'scope'],
      clientAuthentication: 'assertion',
      prepare: verifyJwtBearerRequest,
      handler: jwtBearerGrant,
      singleStatement: true,
    }),
  },
  // client_secret_jwt needs the secret back, so it works only once secrets can be kept encrypted.
  clientAuthMethods: { client_secret_jwt: { ...clientSecretJwt, available: (ctx) => ctx.values.oauthClientSecretEncryptionKey !== null }, private_key_jwt: privateKeyJwt },
  metadata: { token_endpoint_auth_signing_alg_values_supported: signingAlgorithms },
  tables: ['jtis'],
  validate,
});

/** What the checks of a jwt-bearer request established, before any transaction. */
interface VerifiedJwtBearerRequest {
  application: Application;
  accountId: string;
  scopes: string[];
}

/**
 * RFC 7523 §2.1 / §3, outside any transaction: authenticate the presenting client, fetch the
 * signer's keys, verify the assertion (its jti is spent here, in its own statement), map its
 * subject and settle the scopes. None of it holds the database while it waits.
 */
async function verifyJwtBearerRequest(tctx: TokenContext): Promise<VerifiedJwtBearerRequest> {
  const ctx: OAuthContext = tctx;
  const assertion = requireParam(ctx.params, 'assertion');
  const { header, claims } = inspectAssertion(ctx, 'grant', assertion);
  const iss = claims.iss;
  if (typeof iss !== 'string' || iss === '') throw assertionError(ctx, 'grant', 'untrusted_issuer');

  const trusted = ctx.values.oauthJwtBearerTrustedIssuers.find((t) => t.issuer === iss);
  const source = trusted ? await fromTrustedIssuer(ctx, trusted) : await fromClientIssuer(ctx, iss, String(header.alg));
  const app = source.application;
  const verified = await verifyAssertion(ctx, 'grant', assertion, { issuer: iss, algorithms: source.algorithms, keys: source.keys });
  // Checked once the signature holds, so that an unsigned probe learns nothing about registered
  // clients. The jti is spent already: a signed assertion is single use whatever follows.
  if (!(app.grantTypes ?? []).includes(JWT_BEARER_GRANT_TYPE)) {
    throw new OAuthError('unsupported_grant_type', ctx.values.oauthInvalidGrantTypeMessage, { reason: 'grant_type_not_allowed' });
  }
  if (trusted && trusted.subjects !== '*' && !trusted.subjects.includes(verified.sub as string)) {
    throw assertionError(ctx, 'grant', 'unknown_subject', new AssertionError('subject_not_allowed', 'the issuer may not assert this subject'));
  }
  const accountId = await ctx.methods.accountFromJwtBearerAssertion(verified);
  if (accountId === null) throw assertionError(ctx, 'grant', 'unknown_subject');

  const scopes = grantableScopes(ctx.params.scope, source.scopes, ctx.values.oauthInvalidScopeMessage, ctx.values.oauthDefaultScopes);
  ctx.application = app;
  ctx.accountId = accountId;
  return { application: app, accountId, scopes };
}

/** RFC 7523 §2.1: inside the token transaction, one INSERT: an access token (never a refresh token). */
async function jwtBearerGrant(ctx: TokenContext, request: VerifiedJwtBearerRequest): Promise<TokenResponse> {
  const { body } = await issueDirectGrant(ctx, { type: JWT_BEARER_GRANT_TYPE, accountId: request.accountId, applicationId: request.application.id, scopes: request.scopes });
  return body;
}

interface AssertionSource {
  application: Application;
  algorithms: readonly string[];
  keys: AssertionKeys;
  /** What the token may carry at most. */
  scopes: readonly string[];
}

/**
 * `iss` is a registered client: its own keys (its secret only if registered for client_secret_jwt).
 * Credentials sent beside the assertion are checked before `iss` is looked up: an unknown client
 * id pays the same bcrypt check as a wrong secret, and an `iss` other than the authenticated
 * client, registered or not, is one `client_id_mismatch`. Looking `iss` up first would answer an
 * unknown one at once with `untrusted_issuer` and a registered one after bcrypt with
 * `invalid_client`, so `Basic X:wrong` beside any junk assertion would tell whether X exists.
 */
async function fromClientIssuer(ctx: OAuthContext, iss: string, alg: string): Promise<AssertionSource> {
  let app: Application;
  if (hasClientCredentials(ctx)) {
    app = await ctx.methods.authenticateClient();
    if (app.clientId !== iss) throw assertionError(ctx, 'grant', 'client_id_mismatch');
  } else {
    const found = await ctx.store.applications.findByClientId(iss);
    if (!found) throw assertionError(ctx, 'grant', 'untrusted_issuer');
    if (ctx.params.client_id !== undefined && ctx.params.client_id !== found.clientId) throw assertionError(ctx, 'grant', 'client_id_mismatch');
    app = found;
  }
  const hmac = /^HS/i.test(alg);
  let keys: AssertionKeys | null;
  try {
    // An HMAC assertion is keyed with the client's secret, so only a client_secret_jwt client may send one.
    keys = hmac ? ((app.tokenEndpointAuthMethods ?? []).includes('client_secret_jwt') ? await applicationSecretKey(ctx, app) : null) : applicationKeys(ctx, app);
  } catch (e) {
    throw assertionError(ctx, 'grant', 'jwks_unavailable', e);
  }
  if (keys === null) throw assertionError(ctx, 'grant', 'no_verification_key');
  const algorithms = hmac ? ctx.values.oauthJwtBearerClientSecretJwtAlgorithms : ctx.values.oauthJwtBearerPrivateKeyJwtAlgorithms;
  return { application: app, algorithms, keys, scopes: app.scopes };
}

/** `iss` is an issuer the host trusts: the presenting client must authenticate; scopes are what both allow. */
async function fromTrustedIssuer(ctx: OAuthContext, trusted: TrustedIssuer): Promise<AssertionSource> {
  const app = await ctx.methods.authenticateClient();
  let keys: AssertionKeys;
  try {
    keys = trusted.jwks !== undefined ? { kind: 'jwks', keySet: trustedKeySet(ctx, trusted.jwks) } : { kind: 'jwks_uri', uri: String(trusted.jwksUri) };
  } catch (e) {
    throw assertionError(ctx, 'grant', 'jwks_unavailable', e);
  }
  return { application: app, algorithms: ctx.values.oauthJwtBearerPrivateKeyJwtAlgorithms, keys, scopes: app.scopes.filter((s) => trusted.scopes.includes(s)) };
}

const trustedSets = new WeakMap<object, KeySet>();

function trustedKeySet(ctx: OAuthContext, jwks: JSONWebKeySet): KeySet {
  let set = trustedSets.get(jwks);
  if (!set) {
    set = parseKeySet(jwks, ctx.values.oauthJwksMaxKeys);
    trustedSets.set(jwks, set);
  }
  return set;
}

/** Whether the request carries client credentials besides a bare `client_id`. */
function hasClientCredentials(ctx: OAuthContext): boolean {
  for (const [name, def] of ctx.runtime.clientAuthMethods) if (name !== 'none' && def.detect(ctx)) return true;
  return false;
}

/** RFC 8414 §2: the algorithms of the JWT methods the server accepts (HMAC only once secrets can be kept encrypted). */
function signingAlgorithms(ctx: OAuthContext): string[] | undefined {
  const supported = supportedAuthMethods(ctx);
  const hmac = supported.includes('client_secret_jwt');
  const algs = [
    ...(hmac ? ctx.values.oauthJwtBearerClientSecretJwtAlgorithms : []),
    ...(supported.includes('private_key_jwt') ? ctx.values.oauthJwtBearerPrivateKeyJwtAlgorithms : []),
  ];
  return algs.length ? algs : undefined;
}

/** The AAD binding an encrypted value to its purpose. */
const SECRET_CONTEXT = 'oauth_applications.client_secret';

function encryptionKey(ctx: OAuthContext): Buffer | null {
  const key = ctx.values.oauthClientSecretEncryptionKey;
  return key === null ? null : parseAeadKey(key);
}

async function encryptClientSecret(ctx: OAuthContext, secret: string): Promise<string | null> {
  const key = encryptionKey(ctx);
  if (key === null) {
    throw new TypeError('createApplication(): client_secret_jwt needs the oauthClientSecretEncryptionKey option (a 32-byte AES-256-GCM key, hex or base64), so that the secret is kept encrypted rather than in plaintext');
  }
  return aeadEncrypt(key, secret, SECRET_CONTEXT);
}

async function decryptClientSecret(ctx: OAuthContext, app: Application): Promise<string | null> {
  const key = encryptionKey(ctx);
  if (key === null || app.clientSecretEncrypted === null) return null;
  return aeadDecrypt(key, app.clientSecretEncrypted, SECRET_CONTEXT);
}

/** Start-up checks of the configuration (values that are functions of the request are checked when used). */
function validate(vals: Record<string, unknown>, instance: ValidationContext): void {
  // RFC 7523 §3 item 3: the audience is this server's token endpoint or issuer, as configured. A
  // derived issuer comes from the Host header, so an assertion minted for another server would pass.
  if (instance.issuer === undefined) {
    throw new OAuthConfigurationError(
      "oauth(): jwt_bearer needs the 'issuer' option: assertion audiences (RFC 7523 §3) are checked against the configured issuer and its token endpoint, never against the request's Host header.",
    );
  }
  const key = vals.oauthClientSecretEncryptionKey;
  if (typeof key === 'string') {
    try {
      parseAeadKey(key);
    } catch (e) {
      throw new OAuthConfigurationError(`oauth(): option 'oauthClientSecretEncryptionKey': ${(e as Error).message}.`);
    }
  }
  const supported = vals.oauthTokenEndpointAuthMethodsSupported;
  if (key === null && Array.isArray(supported) && supported.includes('client_secret_jwt')) {
    throw new OAuthConfigurationError("oauth(): client_secret_jwt is in oauthTokenEndpointAuthMethodsSupported but option 'oauthClientSecretEncryptionKey' is not set (a 32-byte AES-256-GCM key, hex or base64).");
  }
  for (const name of POSITIVE_VALUES) {
    const n = vals[name];
    if (typeof n === 'number' && !(n > 0)) throw new OAuthConfigurationError(`oauth(): option '${name}' must be a positive number.`);
  }
  const timeout = vals.oauthJwksFetchTimeout;
  const timeoutProblem = typeof timeout === 'number' ? fetchTimeoutProblem(timeout) : undefined;
  if (timeoutProblem) throw new OAuthConfigurationError(`oauth(): option 'oauthJwksFetchTimeout' ${timeoutProblem}; got ${timeout}.`);
  for (const name of ['oauthJwtBearerLeeway', 'oauthJwksMinCacheExpiresIn']) {
    const n = vals[name];
    if (typeof n === 'number' && !(n >= 0)) throw new OAuthConfigurationError(`oauth(): option '${name}' must not be negative.`);
  }
  checkAlgorithms(vals.oauthJwtBearerClientSecretJwtAlgorithms, 'oauthJwtBearerClientSecretJwtAlgorithms', HMAC_ALGORITHMS);
  checkAlgorithms(vals.oauthJwtBearerPrivateKeyJwtAlgorithms, 'oauthJwtBearerPrivateKeyJwtAlgorithms', ASYMMETRIC_ALGORITHMS);
  const issuers = vals.oauthJwtBearerTrustedIssuers;
  if (Array.isArray(issuers)) {
    const allowHttp = vals.oauthJwksAllowLoopbackHttp === true;
    issuers.forEach((t: unknown, i) => checkTrustedIssuer(t, i, allowHttp, typeof vals.oauthJwksMaxKeys === 'number' ? vals.oauthJwksMaxKeys : 32));
  }
}

/** Limits that make no sense at zero or below. */
const POSITIVE_VALUES = ['oauthJwtBearerMaxAssertionLifetime', 'oauthJwtBearerMaxAssertionSize', 'oauthJwksFetchTimeout', 'oauthJwksMaxSize', 'oauthJwksMaxKeys'];

function checkAlgorithms(list: unknown, name: string, allowed: readonly string[]): void {
  if (!Array.isArray(list)) return;
  for (const alg of list) {
    if (!allowed.includes(alg)) throw new OAuthConfigurationError(`oauth(): option '${name}' may hold only ${allowed.join(', ')}; got '${String(alg)}'.`);
  }
}

function checkTrustedIssuer(t: unknown, i: number, allowHttp: boolean, maxKeys: number): void {
  const where = `oauth(): oauthJwtBearerTrustedIssuers[${i}]`;
  if (typeof t !== 'object' || t === null) throw new OAuthConfigurationError(`${where} must be an object.`);
  const o = t as Record<string, unknown>;
  if (typeof o.issuer !== 'string' || o.issuer === '' || o.issuer.length > 255) throw new OAuthConfigurationError(`${where}.issuer must be a non-empty string of at most 255 characters.`);
  if ((o.jwks === undefined) === (o.jwksUri === undefined)) throw new OAuthConfigurationError(`${where} needs exactly one of jwks and jwksUri.`);
  if (o.jwks !== undefined) {
    try {
      parseKeySet(o.jwks, maxKeys);
    } catch (e) {
      throw new OAuthConfigurationError(`${where}.jwks: ${(e as Error).message}.`);
    }
  }
  if (o.jwksUri !== undefined) {
    try {
      checkJwksUri(String(o.jwksUri), allowHttp);
    } catch (e) {
      throw new OAuthConfigurationError(`${where}.jwksUri: ${(e as Error).message}.`);
    }
  }
  if (o.subjects !== '*' && !(Array.isArray(o.subjects) && o.subjects.every((s) => typeof s === 'string'))) {
    throw new OAuthConfigurationError(`${where}.subjects must be an array of strings or '*'.`);
  }
  if (!Array.isArray(o.scopes) || !o.scopes.every((s) => typeof s === 'string')) throw new OAuthConfigurationError(`${where}.scopes must be an array of strings.`);
}
