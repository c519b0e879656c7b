/**
 * OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01): a
 * `client_id` that is an https URL names its own registration, the JSON document that URL
 * serves. The document is fetched through the SSRF-safe fetcher and cached
 * (lib/client_id_metadata_document.ts), validated with the RFC 7591 rules every registration
 * follows (lib/client_metadata.ts) plus this draft's own (§4.1), and materialised as an
 * application row, so grants reference it like any other client. Such clients are public (or
 * `private_key_jwt` with a `jwks_uri`) and always use PKCE with S256, whatever the server's
 * PKCE policy. Ordinary client ids never take this path.
 */
import type { OAuthContext, TokenContext } from '../lib/context';
import { defineFeature, method, value, type MethodsOf, type ValuesOf } from '../lib/feature';
import { OAuthError } from '../lib/errors';
import { supportedAuthMethods, type ClientRefusal, type ClientResolverExtension } from '../lib/client_auth';
import { parseClientMetadata } from '../lib/client_metadata';
import {
  checkClientIdUrl,
  ClientIdMetadataDocumentError,
  looksLikeClientIdUrl,
  MetadataDocumentCache,
  type MetadataDocument,
  type MetadataDocumentSettings,
} from '../lib/client_id_metadata_document';
import { isRateLimit, SourceRateLimit, type RateLimit } from '../lib/http/rate_limit';
import { fetchTimeoutProblem } from '../lib/http/safe_fetch';
import { OAuthConfigurationError } from '../lib/options';
import type { Application, Grant, NewApplication } from '../lib/store';
import authorizationCodeGrant, { type AuthorizationRequestExtension, type CodeExchangeExtension } from './authorization_code_grant';
import pkce from './pkce';

const values = {
  // (b) lifetimes and limits
  oauthClientIdMetadataDocumentFetchTimeout: value(5000, 'Milliseconds a client ID metadata document has to answer, body included; a slower one is refused (invalid_client at /token, the error page at /authorize).'),
  oauthClientIdMetadataDocumentMaxSize: value(5120, 'Largest client ID metadata document accepted, in bytes (the draft suggests 5 KB, §6.6).'),
  oauthClientIdMetadataDocumentCacheExpiresIn: value(3600, 'How long, in seconds, a document without cache headers is used before it is fetched again.'),
  oauthClientIdMetadataDocumentMinCacheExpiresIn: value(60, 'Shortest time, in seconds, a document is kept, whatever its headers say (no-store and no-cache included): the bound on how often one client id makes the server fetch.'),
  oauthClientIdMetadataDocumentMaxCacheExpiresIn: value(86400, 'Longest time, in seconds, a document is kept, whatever its headers say: how long a changed document may take to apply.'),
  oauthClientIdMetadataDocumentFailureBackoff: value(10, 'Seconds a failed fetch or an invalid document is remembered before its URL is tried again; doubles on each further failure.'),
  oauthClientIdMetadataDocumentMaxFailureBackoff: value(300, 'Longest time, in seconds, a failure of a client ID metadata document is remembered.'),
  oauthClientIdMetadataDocumentCacheSize: value(1000, 'How many documents (and failures) each process remembers, least recently used first out. A constant.'),
  oauthClientIdMetadataDocumentRateLimit: value<RateLimit | null>(
    { max: 20, windowSeconds: 60 },
    'Fetches of documents not cached that one source (`req.ip`, IPv6 by /64) may cause per window, per process: `{ max, windowSeconds }`; beyond it the client id is refused as unavailable (a cached document is still used). Anyone can name a new URL as client_id, so this bounds the outbound requests (and application rows) an anonymous caller can cause. null: no limit.',
    'nullable-object',
  ),
  oauthClientIdMetadataDocumentMaxConcurrentFetches: value(20, 'Documents of distinct URLs fetched at once, per process; a request needing one more is refused as unavailable (not remembered as that URL failing).'),
  // (c) policy
  oauthClientIdMetadataDocumentScopes: value<string[] | null>(
    null,
    "Scopes a client known by its metadata document may be granted: its document's `scope` narrowed to these, or all of them when the document has none. Null: `oauthApplicationScopes`.",
    'nullable-array',
  ),
};

const methods = {
  allowClientIdMetadataDocument: method(
    (_ctx: OAuthContext, _url: URL): boolean | Promise<boolean> => true,
    'Whether a client identifier URL may be used at all, before it is fetched (an allow-list of hosts, say); false refuses it like an invalid document.',
  ),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
  interface OAuthMethods extends MethodsOf<typeof methods> {}
}

/** The English texts of this feature, by `translate` key (contributed to the `translations` point). */
const TRANSLATIONS = {
  'consent.clientIdHost': 'This application is not registered here: it describes itself, and only its website vouches for it. Continue only if you trust',
  'errorPage.problem.invalid_client_metadata_document': 'The application that sent you here describes itself with a document this site cannot accept.',
  'errorPage.action.invalid_client_metadata_document': 'Go back to the application and contact its support.',
  'errorPage.problem.client_metadata_document_unavailable': 'The application that sent you here could not be looked up on its website.',
  'errorPage.action.client_metadata_document_unavailable': 'Please try again in a moment. If it keeps happening, contact the application’s support.',
};

const clientResolver: ClientResolverExtension = { handles: looksLikeClientIdUrl, resolve: resolveClient };

/** §6.3 (and OAuth 2.1 §7.5.1): such a client is not known in advance, so PKCE with S256 it is. */
const authorizationRequest: AuthorizationRequestExtension = { parameters: [], validate: requireS256 };
const codeExchange: CodeExchangeExtension = { verify: requireChallengedCode };

export default defineFeature({
  id: 'client_id_metadata_documents',
  doc: 'OAuth Client ID Metadata Documents: https client ids resolved from the document they serve, SSRF-safe and cached.',
  depends: [authorizationCodeGrant, pkce],
  values,
  methods,
  extend: { clientResolver, authorizationRequest, codeExchange, translations: TRANSLATIONS },
  metadata: {
    // §5
    client_id_metadata_document_supported: () => true,
  },
  validate(v) {
    const limit = v.oauthClientIdMetadataDocumentRateLimit;
    if (limit !== null && typeof limit !== 'function' && !isRateLimit(limit)) {
      throw new OAuthConfigurationError("oauth(): option 'oauthClientIdMetadataDocumentRateLimit' must be null or { max, windowSeconds } with a positive integer max and a positive windowSeconds.");
    }
    const timeout = v.oauthClientIdMetadataDocumentFetchTimeout;
    const timeoutProblem = typeof timeout === 'function' ? undefined : fetchTimeoutProblem(timeout);
    if (timeoutProblem) throw new OAuthConfigurationError(`oauth(): option 'oauthClientIdMetadataDocumentFetchTimeout' ${timeoutProblem}; got ${JSON.stringify(timeout)}.`);
    const concurrent = v.oauthClientIdMetadataDocumentMaxConcurrentFetches;
    if (typeof concurrent === 'number' && !(Number.isInteger(concurrent) && concurrent > 0)) {
      throw new OAuthConfigurationError("oauth(): option 'oauthClientIdMetadataDocumentMaxConcurrentFetches' must be a positive integer.");
    }
  },
});

/** The registration a document gives, in the application's fields (what its hash covers). */
type DocumentRegistration = Pick<
  NewApplication,
  | 'name' | 'description' | 'homepageUrl' | 'redirectUris' | 'scopes' | 'tokenEndpointAuthMethods' | 'grantTypes' | 'responseTypes'
  | 'responseModes' | 'jwks' | 'jwksUri' | 'logoUri' | 'tosUri' | 'policyUri' | 'contacts' | 'softwareId' | 'softwareVersion'
>;

/** The longest client id the client_id column holds. */
const MAX_CLIENT_ID_LENGTH = 255;

/**
 * The `clientResolver` of a URL client id: a client the host registered under that URL itself
 * keeps its registration (no fetch); otherwise the document, fresh from the cache or fetched,
 * and its application row, written only when the document changed.
 */
async function resolveClient(ctx: OAuthContext, clientId: string, refuse: ClientRefusal): Promise<Application> {
  let url: URL;
  try {
    url = checkClientIdUrl(clientId, MAX_CLIENT_ID_LENGTH);
  } catch (e) {
    throw refuse('invalid_client_metadata_document', e);
  }
  const row = await ctx.store.applications.findByClientId(clientId);
  if (row && row.metadataDocumentHash === null) return row;
  if (!(await ctx.methods.allowClientIdMetadataDocument(url))) {
    throw refuse('invalid_client_metadata_document', new ClientIdMetadataDocumentError('invalid', 'allowClientIdMetadataDocument refused the client identifier URL'));
  }
  let doc: MetadataDocument<DocumentRegistration>;
  try {
    const cache = cacheOf(ctx);
    if (cache.wouldFetch(clientId, ctx.now().getTime())) limitFetches(ctx);
    doc = await cache.get(clientId, ctx.now().getTime(), settings(ctx), (body) => readDocument(ctx, url, clientId, body));
  } catch (e) {
    const invalid = e instanceof ClientIdMetadataDocumentError && e.kind === 'invalid';
    throw refuse(invalid ? 'invalid_client_metadata_document' : 'client_metadata_document_unavailable', e);
  }
  if (row && row.metadataDocumentHash === doc.hash) return row;
  return materialise(ctx, clientId, row, doc);
}

/**
 * §4.1: a JSON object whose `client_id` is the URL, character for character; no client secret
 * (nothing can be shared with a client nobody registered); RFC 7591 metadata as any registration
 * (lib/client_metadata.ts) within what such a client may use: `none` (the default) or
 * `private_key_jwt` with a `jwks_uri`, the code grant and refresh tokens.
 */
function readDocument(ctx: OAuthContext, url: URL, clientId: string, body: unknown): DocumentRegistration {
  const invalid = (message: string, cause?: unknown) => new ClientIdMetadataDocumentError('invalid', `the client ID metadata document ${message}`, cause);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('is not a JSON object');
  const doc = body as Record<string, unknown>;
  if (doc.client_id !== clientId) throw invalid('does not name its own URL as client_id');
  if (doc.client_secret !== undefined || doc.client_secret_expires_at !== undefined) throw invalid('holds a client secret');
  const authMethods = ['none', 'private_key_jwt'].filter((m) => supportedAuthMethods(ctx).includes(m));
  const grantTypes = ['authorization_code', 'refresh_token'].filter((g) => ctx.runtime.grantTypes.has(g));
  let meta;
  try {
    meta = parseClientMetadata(doc, { authMethods, grantTypes, responseTypes: ['code'], defaultAuthMethod: 'none' });
  } catch (e) {
    throw invalid(`is invalid: ${e instanceof OAuthError ? e.description : 'unreadable metadata'}`, e);
  }
  if (meta.tokenEndpointAuthMethod === 'private_key_jwt' && meta.jwksUri === null) throw invalid('uses private_key_jwt without a jwks_uri');
  const allowed = ctx.values.oauthClientIdMetadataDocumentScopes ?? ctx.values.oauthApplicationScopes;
  return {
    // The host is what a user can check: it stands in for a missing name.
    name: meta.clientName ?? url.host,
    description: null,
    homepageUrl: meta.clientUri,
    redirectUris: meta.redirectUris,
    scopes: meta.scope === null ? [...allowed] : meta.scope.filter((s) => allowed.includes(s)),
    tokenEndpointAuthMethods: [meta.tokenEndpointAuthMethod],
    grantTypes: meta.grantTypes,
    responseTypes: meta.responseTypes,
    responseModes: null,
    jwks: null,
    jwksUri: meta.jwksUri,
    logoUri: meta.logoUri,
    tosUri: meta.tosUri,
    policyUri: meta.policyUri,
    contacts: meta.contacts.length ? meta.contacts.join(' ') : null,
    softwareId: meta.softwareId,
    softwareVersion: meta.softwareVersion,
  };
}

/**
 * The application row of a document: inserted once (`ON CONFLICT DO NOTHING`, so concurrent
 * first uses in several processes add one row), and updated in one statement when the document
 * changed. A public client with no secret, marked by the document's hash.
 */
async function materialise(ctx: OAuthContext, clientId: string, row: Application | undefined, doc: MetadataDocument<DocumentRegistration>): Promise<Application> {
  const apps = ctx.store.applications;
  let current = row;
  if (!current) {
    const added = await apps.insertIfAbsent({
      ...doc.value,
      accountId: null,
      clientId,
      clientSecretHash: null,
      clientSecretEncrypted: null,
      createdAt: ctx.now(),
      metadataDocumentHash: doc.hash,
    });
    current = await apps.findByClientId(clientId);
    if (!current) throw new Error(`client_id_metadata_documents: the application row of ${clientId} vanished`);
    // Another process may have inserted an older document, or the host a registration of its own.
    if (added || current.metadataDocumentHash === doc.hash || current.metadataDocumentHash === null) return current;
  }
  await apps.update(current.id, { ...doc.value, metadataDocumentHash: doc.hash });
  return { ...current, ...doc.value, metadataDocumentHash: doc.hash };
}

/** `authorizationRequest`: a code_challenge with S256 from every client known by its document. */
function requireS256(ctx: OAuthContext, app: Application): Record<string, never> {
  if (app.metadataDocumentHash === null) return {};
  const v = ctx.values;
  if (ctx.params.code_challenge === undefined) throw new OAuthError('invalid_request', v.oauthCodeChallengeRequiredMessage, { reason: 'pkce_required' });
  if (ctx.params.code_challenge_method !== 'S256') throw new OAuthError('invalid_request', v.oauthUnsupportedTransformAlgorithmMessage, { reason: 'pkce_method_not_allowed' });
  return {};
}

/** `codeExchange`: the code of such a client was issued with a challenge (pkce verifies it). */
function requireChallengedCode(ctx: TokenContext, grant: Grant): void {
  if (ctx.application.metadataDocumentHash !== null && grant.codeChallengeMethod !== 'S256') {
    throw new OAuthError('invalid_grant', ctx.values.oauthInvalidCodeVerifierMessage, { reason: 'pkce_required' });
  }
}

function settings(ctx: OAuthContext): MetadataDocumentSettings {
  const v = ctx.values;
  return {
    timeoutMs: v.oauthClientIdMetadataDocumentFetchTimeout,
    maxBytes: v.oauthClientIdMetadataDocumentMaxSize,
    allowPrivateAddresses: v.oauthFetchAllowPrivateAddresses,
    trustedCertificates: v.oauthFetchTrustedCertificates,
    defaultCacheSeconds: v.oauthClientIdMetadataDocumentCacheExpiresIn,
    minCacheSeconds: v.oauthClientIdMetadataDocumentMinCacheExpiresIn,
    maxCacheSeconds: v.oauthClientIdMetadataDocumentMaxCacheExpiresIn,
    failureBackoffSeconds: v.oauthClientIdMetadataDocumentFailureBackoff,
    maxFailureBackoffSeconds: v.oauthClientIdMetadataDocumentMaxFailureBackoff,
    maxConcurrentFetches: v.oauthClientIdMetadataDocumentMaxConcurrentFetches,
    clock: () => ctx.now().getTime(),
  };
}

const fetches = new SourceRateLimit();

/**
 * `oauthClientIdMetadataDocumentRateLimit`: a source over its fetches of uncached documents gets
 * the client id refused as unavailable. Only what would fetch is counted: clients whose document
 * is cached cost nothing.
 */
function limitFetches(ctx: OAuthContext): void {
  const limit = ctx.values.oauthClientIdMetadataDocumentRateLimit;
  if (limit === null) return;
  if (!isRateLimit(limit)) throw new Error('oauthClientIdMetadataDocumentRateLimit must be null or { max, windowSeconds }');
  const wait = fetches.wait(ctx, limit);
  if (wait > 0) throw new ClientIdMetadataDocumentError('unavailable', `the client ID metadata document was not fetched: too many new client ids from this source (try again in ${wait} s)`);
}

const caches = new WeakMap<object, MetadataDocumentCache<DocumentRegistration>>();

/** The document cache of the configured instance. */
function cacheOf(ctx: OAuthContext): MetadataDocumentCache<DocumentRegistration> {
  let cache = caches.get(ctx.runtime);
  if (!cache) {
    cache = new MetadataDocumentCache(ctx.values.oauthClientIdMetadataDocumentCacheSize);
    caches.set(ctx.runtime, cache);
  }
  return cache;
}
