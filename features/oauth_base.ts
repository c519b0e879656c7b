/**
 * The token endpoint and what every feature builds on: grant-type dispatch (RFC 6749 §3.2,
 * §5), client authentication (§2.3), token hashing, resource protection (RFC 6750) and the
 * authorization server metadata document (RFC 8414).
 */
import type { Request } from 'express';
import type { OAuthContext, TokenContext } from '../lib/context';
import { defineFeature, method, value, type MethodsOf, type ValuesOf } from '../lib/feature';
import { OAuthError } from '../lib/errors';
import { authenticateClient, clientSecretBasic, clientSecretPost, none, supportedAuthMethods } from '../lib/client_auth';
import { guardedSecretMatch } from '../lib/client_auth/secret_guard';
import { bcryptHash, randomToken, sha256 } from '../lib/crypto';
import { bearerCredentials, MALFORMED_BEARER } from '../lib/http/bearer_credentials';
import { requireParam } from '../lib/http/params';
import { deleteApplication, getApplication, listApplications, revokeGrants, rotateClientSecret, updateApplication } from '../lib/client_management';
import { setNoCache } from '../lib/http/no_cache';
import { sendMetadata } from '../lib/metadata';
import type { TokenResponseExtension } from '../lib/tokens';
import { corsOriginsProblem } from '../lib/http/cors';
import { OAuthConfigurationError } from '../lib/options';
import type { LogLevel } from '../lib/log';
import { applicationValues, grantValues, schemaVersionValues } from '../lib/store/schema';
import type { Application } from '../lib/store';
import { defaultLocale, defaultTranslate } from '../lib/translate';

const values = {
  // (a) tables and columns
  ...applicationValues,
  ...grantValues,
  ...schemaVersionValues,
  // (b) lifetimes and limits
  oauthAccessTokenExpiresIn: value(3600, 'Access token lifetime, in seconds (also `expires_in` of token responses).'),
  oauthClientSecretHashCost: value(10, 'bcrypt cost for new client secrets, and for the dummy check an unknown client id pays. After raising it, a wrong secret of a client hashed at the old cost is answered faster than an unknown id (which tells the two apart) until that secret is rotated.'),
  oauthSqliteLockTimeout: value(5000, 'SQLite (better-sqlite3): how long, in milliseconds, a write waits for the write lock while another process holds it. The wait is asynchronous (retries on timers; reads go on), then the request gets 503 temporarily_unavailable. A constant.'),
  oauthSecretCacheSize: value(1000, 'How many verified client secrets to remember (HMAC-keyed, per process), so bcrypt runs once per client and secret, not per request. 0 disables.'),
  oauthBcryptConcurrency: value(2, "How many client-secret bcrypt checks run at once per instance (libuv's thread pool has 4 threads, shared with fs and dns)."),
  oauthBcryptQueueLimit: value(32, 'How many client-secret checks may wait for a bcrypt slot; beyond that, 503 temporarily_unavailable with Retry-After.'),
  oauthClientAuthFailureLimit: value(5, "Failed secret checks of one client id from one source (`req.ip`, following Express's `trust proxy`; IPv6 by /64), within oauthClientAuthFailureWindow, that lock that client id out for that source only. 0 disables."),
  oauthClientAuthFailureWindow: value(60, 'The window in which failed secret checks of a client id from one source are counted, in seconds.'),
  oauthPurgeRetention: value(604800, "How long, in seconds, `auth.purge()` keeps a grant after its last token expired or it was revoked (default 7 days), so introspection and refresh-token reuse detection still recognise recent ones. Unused codes are kept as long after they expire. A constant."),
  oauthPurgeBatchSize: value(1000, 'How many grants (or jtis) `auth.purge()` deletes per transaction, 1 to 10000, unless `batchSize` is given. A constant.'),
  oauthClientAuthLockout: value(60, 'How long a client id is refused to a locked-out source (401 invalid_client with Retry-After) without bcrypt, in seconds; other sources are checked as usual. A secret in the verified-secret cache is still accepted.'),
  // (c) policy
  oauthLogLevel: value<LogLevel>(
    'warn',
    "What the default (console) logger prints: `'error'` server errors; `'warn'` also start-up configuration warnings; `'info'` also every refused request, with its reason and client id (why a client got invalid_client). A constant. A `logger` you pass gets every line; its own levels decide.",
  ),
  oauthTokenType: value('Bearer', '`token_type` of token responses.'),
  oauthDefaultTokenEndpointAuthMethods: value<string[]>(['client_secret_basic', 'client_secret_post'], 'Client-authentication methods of an application whose token_endpoint_auth_method column is NULL.'),
  oauthTokenEndpointAuthMethodsSupported: value<string[] | null>(null, 'Client-authentication methods the server accepts at all; null means every method of the enabled features.', 'nullable-array'),
  oauthApplicationScopes: value<string[]>([], 'Scopes the server knows, advertised as `scopes_supported`.'),
  oauthDefaultScopes: value<string[] | null>(null, 'Scopes of a request without `scope` (RFC 6749 §3.3) at /authorize, client_credentials and jwt-bearer: null means all the client\'s registered scopes; a list means those of its scopes the client is registered for; `[]` makes `scope` required. A request the default leaves no scope fails with invalid_scope. A refresh without `scope` keeps the grant\'s scopes.', 'nullable-array'),
  oauthMetadataServiceDocumentation: value<string | null>(null, '`service_documentation` of the metadata document.', 'nullable-string'),
  oauthMetadataUiLocalesSupported: value<string[] | null>(null, '`ui_locales_supported` of the metadata document.', 'nullable-array'),
  oauthScopeDescriptions: value<Record<string, string>>({}, 'Human descriptions of scopes by scope (`{ "books.read": "Read your books" }`), shown on the consent page through `translate` (key `scope.<scope>`); a scope without one is shown as is. A function of the context may return the table (e.g. by language).', 'object'),
  oauthMetadataOpPolicyUri: value<string | null>(null, '`op_policy_uri` of the metadata document.', 'nullable-string'),
  oauthMetadataOpTosUri: value<string | null>(null, '`op_tos_uri` of the metadata document.', 'nullable-string'),
  oauthMetadataCacheControl: value('public, max-age=3600', 'Cache-Control of the metadata document when the `issuer` option is set (a derived issuer always gets `no-store`).'),
  oauthRealm: value('oauth', 'The realm of `WWW-Authenticate` challenges.'),
  oauthCorsDocumentOrigins: value<string[]>(['*'], "Origins whose scripts may read the public documents (server metadata, JWKS, protected-resource metadata) cross-origin (CORS): `['*']` any, a list of origins (`'https://app.example'`), or a function of the request context (the request's `Origin` is `ctx.req.get('Origin')`) returning one. Never credentials mode."),
  oauthCorsOrigins: value<string[]>([], "Origins of browser-based clients that may call the token, revocation and registration endpoints cross-origin (CORS): `[]` none, a list of origins (`'https://app.example'`), `['*']`, or a function of the request context returning one. Introspection and the authorization endpoint never answer CORS."),
  oauthCorsMaxAge: value(600, '`Access-Control-Max-Age` of CORS preflight answers, in seconds (browsers cap it: Chromium at 7200).'),
  oauthFetchAllowPrivateAddresses: value(false, 'Let the server fetch URLs a client controls (jwks_uri, and every later fetch through lib/http/safe_fetch.ts) that resolve to private, loopback, link-local or other non-public addresses (development only); otherwise they are refused after DNS resolution.'),
  oauthFetchTrustedCertificates: value<string | null>(null, "PEM certificates that fetches of URLs a client controls (jwks_uri, client ID metadata documents) trust besides Node's bundled roots: a private CA, or a development self-signed certificate (with oauthFetchAllowPrivateAddresses for a loopback server). Certificates are always verified.", 'nullable-string'),
  // (d) messages
  oauthInvalidClientMessage: value('Invalid client', 'error_description of invalid_client.'),
  oauthClientAuthBusyMessage: value('Too many client authentications in progress, try again later', 'error_description of temporarily_unavailable when the bcrypt queue is full.'),
  oauthInvalidGrantMessage: value('Invalid grant', 'error_description of invalid_grant.'),
  oauthInvalidScopeMessage: value('Invalid scope', 'error_description of invalid_scope.'),
  oauthMultipleClientAuthMethodsMessage: value('Use exactly one client authentication method', 'error_description of invalid_request when a request carries credentials of more than one client-authentication method (RFC 6749 §2.3).'),
  oauthInvalidGrantTypeMessage: value('Invalid grant type', 'error_description of unsupported_grant_type.'),
  oauthInvalidTokenMessage: value('Invalid access token', 'error_description of invalid_token (unknown, expired or revoked token).'),
  oauthMissingTokenMessage: value('An access token is required', 'error_description when a protected resource gets no token.'),
  oauthInvalidAuthorizationHeaderMessage: value('Malformed Authorization header', 'error_description when the Bearer header cannot be read.'),
  oauthInsufficientScopeMessage: value('Insufficient scope', 'error_description of insufficient_scope.'),
  oauthInvalidHostMessage: value('Invalid Host header', 'error_description of the 400 answer to a Host header that is not a host name, when the issuer is derived from it (no `issuer` option).'),
  oauthMethodNotAllowedMessage: value('Method not allowed', 'error_description of the 405 answer to a method an OAuth route does not serve (with `Allow`).'),
};

const methods = {
  now: method((_ctx: OAuthContext): Date => new Date(), 'The current time; override to move the clock.'),
  generateToken: method((_ctx: OAuthContext): string => randomToken(), 'A new code, access or refresh token: 256 random bits, base64url.'),
  generateTokenHash: method((_ctx: OAuthContext, token: string): string => sha256(token), 'How codes and tokens are stored: base64url(SHA-256).'),
  secretHash: method(
    (ctx: OAuthContext, secret: string): Promise<string> => bcryptHash(secret, ctx.values.oauthClientSecretHashCost),
    'Hashes a new client secret (bcrypt).',
  ),
  secretMatches: method(secretMatches, 'Whether a presented client secret matches the stored hash (bcrypt, with the verified-secret cache).'),
  authenticateClient: method(
    (ctx: OAuthContext): Promise<Application> => authenticateClient(ctx, ctx.runtime.clientAuthMethods, supportedAuthMethods(ctx)),
    'Authenticates the client with exactly one of its registered methods (RFC 6749 §2.3), or throws invalid_client.',
  ),
  fetchAccessToken: method(fetchAccessToken, 'The bearer token of a resource request (RFC 6750 §2.1 Authorization header).'),
  // Client management (`auth.applications`, lib/client_management.ts): override one to audit or restrict it.
  listApplications: method(listApplications, '`auth.applications.list({ limit, after })`: a page of clients in registration order, without their secrets.'),
  getApplication: method(getApplication, '`auth.applications.get(clientId)`: one client, without its secret; UnknownApplicationError for an unknown id.'),
  updateApplication: method(updateApplication, "`auth.applications.update(clientId, changes)`: changes a client's registration, validated as createApplication() validates it."),
  rotateClientSecret: method(rotateClientSecret, '`auth.applications.rotateSecret(clientId, { graceSeconds })`: a new secret, returned once; the old one works until the grace ends.'),
  revokeGrants: method(revokeGrants, '`auth.applications.revokeGrants({ clientId, accountId })`: revokes every grant of a client, an account or both; resolves with how many.'),
  deleteApplication: method(deleteApplication, '`auth.applications.delete(clientId)`: revokes and removes the grants of a client, then the client, in one transaction.'),
  // Translations (lib/translate.ts): every string a person reads on our pages.
  translate: method(defaultTranslate, '`translate(key, vars)`: the text of a user-facing string by key, `{name}` placeholders filled from `vars`. Default: the label value the key names (`authorizePageTitle`, …), else the English table of lib/translate.ts. Override to plug i18next or your own table (`ctx.super.translate` is the English default); `requestedLocales(ctx)` reads `ui_locales`.'),
  locale: method(defaultLocale, 'The language of the pages (their `lang` attribute), a BCP 47 tag: `en` by default. Override with `translate`.'),
  currentAccountId: method(
    (ctx: OAuthContext): string | null => {
      const user = (ctx.req as Request & { user?: { id?: unknown } }).user;
      return user && user.id !== undefined && user.id !== null ? String(user.id) : null;
    },
    "The logged-in resource owner's id: Passport's `req.user.id` by default.",
  ),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
  interface OAuthMethods extends MethodsOf<typeof methods> {}
}

export default defineFeature({
  id: 'oauth_base',
  doc: 'Token endpoint, client authentication, resource protection and server metadata.',
  values,
  methods,
  hooks: ['beforeToken', 'afterToken'],
  routes: [
    { name: 'token', method: 'post', cors: 'endpoint', handler: tokenRoute },
    // RFC 8414 §3 defines no parameter: the query string is not read (nor refused).
    { name: 'oauth_server_metadata', path: '.well-known/oauth-authorization-server', method: 'get', query: false, cors: 'document', handler: metadataRoute },
  ],
  clientAuthMethods: { client_secret_basic: clientSecretBasic, client_secret_post: clientSecretPost, none },
  metadata: {
    issuer: (ctx) => ctx.issuer,
    token_endpoint: (ctx) => ctx.routeUrl('token'),
    scopes_supported: (ctx) => (ctx.values.oauthApplicationScopes.length ? ctx.values.oauthApplicationScopes : undefined),
    response_types_supported: () => [],
    grant_types_supported: (ctx) => [...ctx.runtime.grantTypes.keys()],
    token_endpoint_auth_methods_supported: supportedAuthMethods,
    service_documentation: (ctx) => ctx.values.oauthMetadataServiceDocumentation,
    ui_locales_supported: (ctx) => ctx.values.oauthMetadataUiLocalesSupported,
    op_policy_uri: (ctx) => ctx.values.oauthMetadataOpPolicyUri,
    op_tos_uri: (ctx) => ctx.values.oauthMetadataOpTosUri,
  },
  tables: ['applications', 'grants'],
  validate: validateCorsOptions,
});

/** Start-up check of the CORS origin lists (lib/http/cors.ts). */
function validateCorsOptions(v: Record<string, unknown>): void {
  for (const name of ['oauthCorsDocumentOrigins', 'oauthCorsOrigins']) {
    if (!(name in v)) continue; // a function of the request: its answers are checked as they come
    const problem = corsOriginsProblem(v[name]);
    if (problem) throw new OAuthConfigurationError(`oauth(): option '${name}' ${problem}`);
  }
}

/** POST /token: parse → authenticate → dispatch → prepare → transaction(beforeToken, grant, afterToken) → respond. */
async function tokenRoute(ctx: OAuthContext): Promise<void> {
  setNoCache(ctx.res);
  const grantType = requireParam(ctx.params, 'grant_type');
  const grant = ctx.runtime.grantTypes.get(grantType);
  if (!grant) throw new OAuthError('unsupported_grant_type', ctx.values.oauthInvalidGrantTypeMessage, { reason: 'unknown_grant_type' });
  if (grant.clientAuthentication !== 'assertion') await ctx.methods.authenticateClient();
  const app = ctx.application;
  if (app && !(app.grantTypes ?? [...ctx.runtime.grantTypes.keys()]).includes(grantType)) {
    throw new OAuthError('unsupported_grant_type', ctx.values.oauthInvalidGrantTypeMessage, { reason: 'grant_type_not_allowed' });
  }
  Object.assign(ctx, { grantType });
  // Client authentication above and the grant's own checks here (bcrypt, signatures, key fetches)
  // finish before the transaction opens: it holds the database only for its own statements.
  const prepared = grant.prepare ? await grant.prepare(ctx as never) : undefined;
  const run = async () => {
    await ctx.hook('beforeToken');
    const response = await grant.handler(ctx as never, prepared);
    // Additions to the response (the ID token of `oidc`), inside the transaction: a failure issues nothing.
    for (const ext of ctx.runtime.extensions<TokenResponseExtension>('tokenResponse')) await ext.extend(ctx as TokenContext, response);
    await ctx.hook('afterToken');
    return response;
  };
  // A grant that writes one statement needs no explicit transaction unless hooks may write too,
  // or a response extension may fail after it (its host methods throwing): then the code or
  // refresh token must stay unused, so the whole exchange is one transaction that rolls back.
  const hooked = ctx.runtime.hooks.has('beforeToken') || ctx.runtime.hooks.has('afterToken') || ctx.runtime.extensions('tokenResponse').length > 0;
  const body = grant.singleStatement && !hooked ? await run() : await ctx.transaction(run);
  ctx.res.status(200).json(body);
}

/** GET /.well-known/oauth-authorization-server: built from what is enabled (RFC 8414 §3). */
async function metadataRoute(ctx: OAuthContext): Promise<void> {
  sendMetadata(ctx);
}

/**
 * The cache first: one HMAC, so a client whose secret it holds is served even from a source
 * locked out for its id. A miss goes through the guard (bounded bcrypt, failure throttle); a
 * client without a secret pays the dummy check, like an unknown id.
 */
async function secretMatches(ctx: OAuthContext, app: Application, secret: string): Promise<boolean> {
  const cache = ctx.runtime.secretCache;
  // The current hash, and the previous one of a rotation until its grace ends (on the ctx clock).
  // Cache entries are keyed by the hash they matched, so once the grace is over no process looks
  // up the old secret's entries again: it stops working everywhere at the same time.
  const hashes = [app.clientSecretHash, inGrace(ctx, app) ? app.previousClientSecretHash : null].filter((h): h is string => Boolean(h));
  for (const hash of hashes) if (cache.has(app.id, hash, secret)) return true;
  const matched = await guardedSecretMatch(ctx, app.clientId, secret, hashes);
  if (matched !== null) cache.add(app.id, matched, secret);
  return matched !== null;
}

/** Whether the previous secret of a rotation is still accepted. */
function inGrace(ctx: OAuthContext, app: Application): boolean {
  return app.previousClientSecretExpiresAt !== null && app.previousClientSecretExpiresAt.getTime() > ctx.now().getTime();
}

/** RFC 6750 §2.1: `Authorization: Bearer <b64token>`; the scheme is case-insensitive. */
function fetchAccessToken(ctx: OAuthContext): string | undefined {
  const token = bearerCredentials(ctx.req.headers.authorization);
  // The Bearer scheme with no token, or one that is not a b64token: malformed (RFC 6750 §3.1).
  if (token === MALFORMED_BEARER) throw new OAuthError('invalid_request', ctx.values.oauthInvalidAuthorizationHeaderMessage, { reason: 'malformed_parameter' });
  return token;
}
