/**
 * RFC 7591 dynamic client registration and RFC 7592 client registration management.
 *
 * `POST /register` takes the client's metadata as JSON, validates it against what this server
 * serves (lib/client_metadata.ts), and creates the client: a generated client id, a secret
 * (stored as a bcrypt hash) only for the secret-based methods, and a registration access token
 * (stored as a SHA-256 hash) for `GET` / `PUT` / `DELETE` on its `registration_client_uri`
 * (`/register/<client_id>`). Registration is open by default, or needs an initial access token
 * (`oauthRegistrationInitialAccessToken`, or the `registrationInitialAccessTokenValid` method).
 * Policy: the `beforeRegister` hook; flooding: `oauthRegistrationRateLimit`.
 *
 * Order of a registration (and of an update): rate limit → initial access token (or registration
 * access token) → read and validate the metadata → `beforeRegister` (outside the transaction, so
 * a policy that calls out does not hold the database; it may change `ctx.clientMetadata`, which
 * is validated again after it) → secret hashing (bcrypt, outside the transaction too) →
 * transaction(insert or update, token hash, `afterRegister`) → 201 / 200. A hook that throws
 * leaves no row behind.
 */
import express, { type Response } from 'express';
import type { OAuthContext } from '../lib/context';
import { defineFeature, method, value, type MethodsOf, type ValuesOf } from '../lib/feature';
import { OAuthError } from '../lib/errors';
import { CLIENT_METADATA_MAX_BYTES, clientMetadataJson, parseClientMetadata, type ClientMetadata, type ClientMetadataPolicy } from '../lib/client_metadata';
import { newClientId } from '../lib/applications';
import { supportedAuthMethods } from '../lib/client_auth';
import { constantTimeEqual, randomToken } from '../lib/crypto';
import { bearerCredentials } from '../lib/http/bearer_credentials';
import { renderBearerError, renderJsonError } from '../lib/http/error_handler';
import { setNoCache } from '../lib/http/no_cache';
import { isRateLimit, SourceRateLimit, type RateLimit } from '../lib/http/rate_limit';
import { OAuthConfigurationError } from '../lib/options';
import type { Application } from '../lib/store';
import type { ApplicationChanges } from '../lib/store/applications';
import oauthBase from './oauth_base';

const values = {
  // (b) limits
  oauthRegistrationRateLimit: value<RateLimit | null>(
    null,
    'Registration requests (POST /register) one source (`req.ip`, IPv6 by /64) may make per window, per process: `{ max, windowSeconds }`; beyond it, 429 `temporarily_unavailable` with Retry-After. null: no limit.',
    'nullable-object',
  ),
  // (c) policy
  oauthRegistrationInitialAccessToken: value<string | null>(
    null,
    'The initial access token POST /register requires as `Authorization: Bearer` (RFC 7591 §3), compared in constant time; null: open registration (unless `registrationInitialAccessTokenValid` says otherwise).',
    'nullable-string',
  ),
  oauthRegistrationGrantTypes: value<string[] | null>(
    ['authorization_code', 'refresh_token'],
    "Grant types a client may register (of the enabled features'). By default the ones a user consents to: a self-registered client given `client_credentials` could mint tokens for any registrable scope with no user at all, and one given the JWT-bearer grant could assert any account with its own keys. null: every grant type of the enabled features (with an initial access token, or a `beforeRegister` policy).",
    'nullable-array',
  ),
  oauthRegistrationDefaultScopes: value<string[] | null>(
    null,
    'Scopes of a client registered without `scope`; null: `oauthApplicationScopes` (every scope the server knows). A registered `scope` must be within `oauthApplicationScopes` and these; with neither set, a registration naming a scope is refused (invalid_client_metadata) and one naming none gets no scopes.',
    'nullable-array',
  ),
  oauthRegistrationRotateAccessToken: value(
    true,
    'Whether an RFC 7592 update (PUT) issues a new registration access token, returned in its response, and retires the one used (§2.2 lets the server rotate it).',
  ),
  // (d) messages
  oauthRegistrationInvalidInitialAccessTokenMessage: value('Invalid initial access token', 'error_description of invalid_token when registration needs an initial access token and the request has a wrong one.'),
  oauthRegistrationInvalidAccessTokenMessage: value('Invalid registration access token', "error_description of invalid_token for an RFC 7592 request whose registration access token is not that client's."),
  oauthRegistrationRateLimitedMessage: value('Too many registration requests, try again later', 'error_description of the 429 answer to a source over `oauthRegistrationRateLimit`.'),
  oauthRegistrationMalformedMessage: value('The registration request must be a JSON object (application/json)', 'error_description of invalid_client_metadata for a body that is not a JSON object, or too large.'),
};

const methods = {
  registrationInitialAccessTokenValid: method(
    (ctx: OAuthContext, token: string | null): boolean | Promise<boolean> => {
      const expected = ctx.values.oauthRegistrationInitialAccessToken;
      if (expected === null) return true;
      return token !== null && constantTimeEqual(token, expected);
    },
    'Whether a registration request may proceed, given its `Authorization: Bearer` token (null without one): by default, open without `oauthRegistrationInitialAccessToken`, else that token (constant-time comparison). Override to accept tokens of your own (one per partner, single-use, …).',
  ),
};

/** The metadata being registered or updated: `beforeRegister` may read and replace it. */
declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
  interface OAuthMethods extends MethodsOf<typeof methods> {}
  interface OAuthContext {
    /** `dynamic_client_registration`: the validated RFC 7591 metadata of the request, in `beforeRegister` and after. */
    clientMetadata?: ClientMetadata;
  }
}

export default defineFeature({
  id: 'dynamic_client_registration',
  doc: 'RFC 7591 dynamic client registration and RFC 7592 registration management.',
  depends: [oauthBase],
  values,
  methods,
  hooks: ['beforeRegister', 'afterRegister'],
  routes: [
    { name: 'register', method: 'post', body: false, query: false, cors: 'endpoint', handler: registerRoute, renderError: renderRegistrationError },
    { name: 'registration_client', path: 'register/:client_id', method: 'get', query: false, cors: 'endpoint', handler: readRoute, renderError: renderRegistrationError },
    { name: 'registration_client', path: 'register/:client_id', method: 'put', body: false, query: false, cors: 'endpoint', handler: updateRoute, renderError: renderRegistrationError },
    { name: 'registration_client', path: 'register/:client_id', method: 'delete', body: false, query: false, cors: 'endpoint', handler: deleteRoute, renderError: renderRegistrationError },
  ],
  metadata: {
    registration_endpoint: (ctx) => ctx.routeUrl('register'),
  },
  validate(v) {
    const limit = v.oauthRegistrationRateLimit;
    if (limit !== null && typeof limit !== 'function' && !isRateLimit(limit)) {
      throw new OAuthConfigurationError("oauth(): option 'oauthRegistrationRateLimit' must be null or { max, windowSeconds } with a positive integer max and a positive windowSeconds.");
    }
    const token = v.oauthRegistrationInitialAccessToken;
    if (typeof token === 'string' && token.length < 16) {
      throw new OAuthConfigurationError("oauth(): option 'oauthRegistrationInitialAccessToken' is too short to be a secret: use at least 16 characters (a random 32-byte base64url string is best).");
    }
  },
});

/** The methods a client-secret is issued for (RFC 7591 §3.2.1: client_secret only for them). */
const SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post', 'client_secret_jwt']);

// ---------------------------------------------------------------------------------------------
// RFC 7591 §3: registration

/** POST /register: rate limit → initial access token → metadata → beforeRegister → transaction(insert, afterRegister) → 201 (§3.2.1). */
async function registerRoute(ctx: OAuthContext): Promise<void> {
  setNoCache(ctx.res);
  enforceRateLimit(ctx);
  const token = bearerToken(ctx);
  if (!(await ctx.methods.registrationInitialAccessTokenValid(token))) {
    throw new OAuthError('invalid_token', token === null ? undefined : ctx.values.oauthRegistrationInvalidInitialAccessTokenMessage, {
      reason: token === null ? 'missing_token' : 'invalid_initial_access_token',
    });
  }
  ctx.clientMetadata = parseClientMetadata(await readJson(ctx), metadataPolicy(ctx));
  const metadata = await applyPolicyHook(ctx);

  const clientId = newClientId();
  const secret = await newSecret(ctx, metadata.tokenEndpointAuthMethod);
  const registrationToken = ctx.methods.generateToken();
  const app = await ctx.transaction(async () => {
    const inserted = await ctx.store.applications.insert({
      accountId: null,
      // The name is NOT NULL and the consent page shows it: a client without client_name is
      // named by its id, which the response then reports (§3.2.1: values the server provisioned).
      name: metadata.clientName ?? clientId,
      description: null,
      clientId,
      clientSecretHash: secret?.hash ?? null,
      clientSecretEncrypted: secret?.encrypted ?? null,
      ...applicationFields(ctx, metadata),
      responseModes: null,
      createdAt: ctx.now(),
    });
    await ctx.store.applications.setRegistrationAccessTokenHash(inserted.id, ctx.methods.generateTokenHash(registrationToken));
    ctx.application = inserted;
    await ctx.hook('afterRegister');
    return inserted;
  });
  ctx.res.status(201).json(registrationResponse(ctx, app, { secret: secret?.value, registrationToken }));
}

// ---------------------------------------------------------------------------------------------
// RFC 7592: reading, updating and deleting a registration

/**
 * GET /register/:client_id (RFC 7592 §2.1): the current registration, without the secret (stored
 * hashed, it cannot be shown). §3 has the response carry `registration_access_token`: it is the
 * token the request presented (stored hashed too, but the request holds it), as node-oidc-provider
 * answers. A read never rotates it: a GET whose response is lost must not lock the client out.
 */
async function readRoute(ctx: OAuthContext): Promise<void> {
  setNoCache(ctx.res);
  const { app, token } = await authenticateRegistration(ctx);
  ctx.res.status(200).json(registrationResponse(ctx, app, { registrationToken: token }));
}

/**
 * PUT /register/:client_id (RFC 7592 §2.2): the body replaces the registration. It carries the
 * client_id (which must match); omitted fields take their defaults (`null` / the RFC 7591
 * default), as a new registration would. A client_secret it carries must be the current one; the
 * server never takes a secret from the client. A change to a secret-based method of a client
 * without a usable secret issues one. The registration access token is rotated unless
 * `oauthRegistrationRotateAccessToken` is false; the response carries the new one, or the one
 * presented (§3).
 */
async function updateRoute(ctx: OAuthContext): Promise<void> {
  setNoCache(ctx.res);
  const { app, token, tokenHash } = await authenticateRegistration(ctx);
  const body = await readJson(ctx);
  const given = body as Record<string, unknown>;
  if (given.client_id !== app.clientId) throw metadataError('client_id must be included and be the client_id of this registration (RFC 7592 section 2.2)');
  if (given.client_secret !== undefined && given.client_secret !== null) {
    if (typeof given.client_secret !== 'string' || !(await ctx.methods.secretMatches(app, given.client_secret))) {
      throw metadataError('client_secret, when included, must be the current client secret (RFC 7592 section 2.2)');
    }
  }
  ctx.clientMetadata = parseClientMetadata(body, metadataPolicy(ctx));
  ctx.application = app;
  const metadata = await applyPolicyHook(ctx);

  const method = metadata.tokenEndpointAuthMethod;
  const needsSecret = SECRET_METHODS.has(method) && (app.clientSecretHash === null || (method === 'client_secret_jwt' && app.clientSecretEncrypted === null));
  const secret = needsSecret ? await newSecret(ctx, method) : undefined;
  const registrationToken = ctx.values.oauthRegistrationRotateAccessToken ? ctx.methods.generateToken() : undefined;
  const changes: ApplicationChanges = { name: metadata.clientName ?? app.clientId, ...applicationFields(ctx, metadata) };
  const updated = await ctx.transaction(async () => {
    // One conditional UPDATE on the token checked above: of two requests with the same token, the
    // second finds it replaced (or the client deleted) and changes nothing.
    const nextHash = registrationToken === undefined ? tokenHash : ctx.methods.generateTokenHash(registrationToken);
    if (!(await ctx.store.applications.replaceRegistrationAccessTokenHash(app.id, tokenHash, nextHash))) throw invalidRegistrationToken(ctx);
    if (!(await ctx.store.applications.update(app.id, changes))) throw invalidRegistrationToken(ctx);
    if (secret) await ctx.store.applications.updateSecret(app.id, secret.hash, secret.encrypted);
    const row = (await ctx.store.applications.findById(app.id))!;
    ctx.application = row;
    await ctx.hook('afterRegister');
    return row;
  });
  ctx.res.status(200).json(registrationResponse(ctx, updated, { secret: secret?.value, registrationToken: registrationToken ?? token }));
}

/**
 * DELETE /register/:client_id (RFC 7592 §2.3): in one transaction, retires the registration access
 * token on the condition that it is still the one checked (a concurrent update that rotated it
 * wins), then revokes the client's grants and deletes it (`deleteApplication`) → 204.
 */
async function deleteRoute(ctx: OAuthContext): Promise<void> {
  setNoCache(ctx.res);
  const { app, tokenHash } = await authenticateRegistration(ctx);
  await ctx.transaction(async () => {
    if (!(await ctx.store.applications.replaceRegistrationAccessTokenHash(app.id, tokenHash, null))) throw invalidRegistrationToken(ctx);
    await ctx.methods.deleteApplication(app.clientId);
  });
  ctx.res.status(204).end();
}

/**
 * The client of the path, if the request's Bearer token is its registration access token
 * (compared by hash, in constant time). An unknown client, a client registered otherwise (no
 * token) and another client's token all get the same 401 (§2.1: the server does not reveal
 * whether the client exists).
 */
async function authenticateRegistration(ctx: OAuthContext): Promise<{ app: Application; token: string; tokenHash: string }> {
  const token = bearerToken(ctx);
  if (token === null) throw new OAuthError('invalid_token', undefined, { reason: 'missing_token' });
  const clientId = (ctx.req.params as Record<string, string | undefined>).client_id ?? '';
  // An id no client can have (empty, longer than the column, a NUL byte PostgreSQL refuses in
  // text) is an unknown client, without a query.
  const possible = clientId.length > 0 && clientId.length <= 255 && !clientId.includes('\u0000');
  const app = possible ? await ctx.store.applications.findByClientId(clientId) : undefined;
  const stored = app ? await ctx.store.applications.registrationAccessTokenHash(app.id) : null;
  // The hash is compared even without a client, so an unknown id costs the same as a wrong token.
  const tokenHash = ctx.methods.generateTokenHash(token);
  const matches = constantTimeEqual(tokenHash, stored ?? '');
  if (!app || stored === null || !matches) throw invalidRegistrationToken(ctx);
  return { app, token, tokenHash: stored };
}

function invalidRegistrationToken(ctx: OAuthContext): OAuthError {
  return new OAuthError('invalid_token', ctx.values.oauthRegistrationInvalidAccessTokenMessage, { reason: 'invalid_registration_access_token' });
}

// ---------------------------------------------------------------------------------------------
// Steps shared by registration and update

/** What this server lets a client register (RFC 7591 §2 metadata against the enabled features). */
function metadataPolicy(ctx: OAuthContext): ClientMetadataPolicy {
  const grantTypes = [...ctx.runtime.grantTypes.keys()];
  const allowed = ctx.values.oauthRegistrationGrantTypes;
  return {
    authMethods: supportedAuthMethods(ctx),
    grantTypes: allowed === null ? grantTypes : grantTypes.filter((g) => allowed.includes(g)),
    responseTypes: ctx.runtime.grantTypes.has('authorization_code') ? ['code'] : [],
    scopes: registrableScopes(ctx),
    noScopesMessage: 'scope: this server lists no scopes a client may register (oauthApplicationScopes)',
  };
}

/**
 * The scopes a client may register: `oauthApplicationScopes` and `oauthRegistrationDefaultScopes`.
 * With neither set, none at all (safe by default: a self-registered client cannot name a scope
 * the host never listed, such as `admin`).
 */
function registrableScopes(ctx: OAuthContext): string[] {
  return [...new Set([...ctx.values.oauthApplicationScopes, ...(ctx.values.oauthRegistrationDefaultScopes ?? [])])];
}

/**
 * `beforeRegister`: the host's policy sees `ctx.clientMetadata` (and, on an update,
 * `ctx.application`), may throw (an `OAuthError('invalid_client_metadata', '…')` is the answer)
 * or replace the metadata, which must still pass validation.
 */
async function applyPolicyHook(ctx: OAuthContext): Promise<ClientMetadata> {
  await ctx.hook('beforeRegister');
  const metadata = ctx.clientMetadata;
  if (metadata === undefined) throw metadataError('The registration was refused');
  ctx.clientMetadata = parseClientMetadata(clientMetadataJson(metadata), metadataPolicy(ctx));
  return ctx.clientMetadata;
}

/** The application columns of validated metadata. */
function applicationFields(ctx: OAuthContext, m: ClientMetadata) {
  return {
    homepageUrl: m.clientUri,
    redirectUris: m.redirectUris,
    scopes: m.scope ?? ctx.values.oauthRegistrationDefaultScopes ?? ctx.values.oauthApplicationScopes,
    tokenEndpointAuthMethods: [m.tokenEndpointAuthMethod],
    grantTypes: m.grantTypes,
    responseTypes: m.responseTypes,
    jwks: m.jwks === null ? null : JSON.stringify(m.jwks),
    jwksUri: m.jwksUri,
    logoUri: m.logoUri,
    tosUri: m.tosUri,
    policyUri: m.policyUri,
    contacts: m.contacts.length ? m.contacts.join(' ') : null,
    softwareId: m.softwareId,
    softwareVersion: m.softwareVersion,
  };
}

/** A new client secret for a secret-based method (256 bits; bcrypt hash; encrypted copy for client_secret_jwt), else undefined. */
async function newSecret(ctx: OAuthContext, method: string): Promise<{ value: string; hash: string; encrypted: string | null } | undefined> {
  if (!SECRET_METHODS.has(method)) return undefined;
  const value = randomToken(32);
  const encrypt = (ctx.methods as unknown as { encryptClientSecret?: (s: string) => Promise<string | null> }).encryptClientSecret;
  const encrypted = method === 'client_secret_jwt' && encrypt ? await encrypt.call(ctx.methods, value) : null;
  return { value, hash: await ctx.methods.secretHash(value), encrypted };
}

/**
 * RFC 7591 §3.2.1 / RFC 7592 §3: client_id, the secret when one was just issued (with
 * client_secret_expires_at 0: it does not expire), client_id_issued_at, every registered field,
 * the registration access token (the one just issued, or on RFC 7592 the one presented), and the
 * registration client URI.
 */
function registrationResponse(ctx: OAuthContext, app: Application, issued: { secret?: string; registrationToken?: string }): Record<string, unknown> {
  const body: Record<string, unknown> = { client_id: app.clientId };
  if (issued.secret !== undefined) body.client_secret = issued.secret;
  if (app.createdAt) body.client_id_issued_at = Math.floor(app.createdAt.getTime() / 1000);
  if (app.clientSecretHash !== null && SECRET_METHODS.has(app.tokenEndpointAuthMethods?.[0] ?? '')) body.client_secret_expires_at = 0;
  Object.assign(body, clientMetadataJson(registeredMetadata(app)));
  if (issued.registrationToken !== undefined) body.registration_access_token = issued.registrationToken;
  body.registration_client_uri = registrationClientUri(ctx, app.clientId);
  return body;
}

/** The registered metadata of a stored client, under the ClientMetadata names. */
function registeredMetadata(app: Application): ClientMetadata {
  let jwks: { keys: object[] } | null = null;
  try {
    jwks = app.jwks === null ? null : (JSON.parse(app.jwks) as { keys: object[] });
  } catch {
    jwks = null;
  }
  return {
    redirectUris: app.redirectUris,
    tokenEndpointAuthMethod: app.tokenEndpointAuthMethods?.[0] ?? 'client_secret_basic',
    grantTypes: app.grantTypes ?? [],
    responseTypes: app.responseTypes ?? [],
    clientName: app.name,
    clientUri: app.homepageUrl,
    logoUri: app.logoUri,
    tosUri: app.tosUri,
    policyUri: app.policyUri,
    contacts: app.contacts ? app.contacts.split(' ') : [],
    scope: app.scopes.length ? app.scopes : null,
    jwksUri: app.jwksUri,
    jwks,
    softwareId: app.softwareId,
    softwareVersion: app.softwareVersion,
  };
}

/** RFC 7592 §1: where the client reads, updates and deletes its registration (the `registration_client` route with its id). */
function registrationClientUri(ctx: OAuthContext, clientId: string): string {
  return ctx.routeUrl('registration_client').replace(/:[^/]*$/, encodeURIComponent(clientId));
}

// ---------------------------------------------------------------------------------------------
// Request reading

const registrations = new SourceRateLimit();

/** `oauthRegistrationRateLimit`: 429 with Retry-After for a source over the limit (RFC 6585 §4; OAuth defines no code for it). */
function enforceRateLimit(ctx: OAuthContext): void {
  const limit = ctx.values.oauthRegistrationRateLimit;
  if (limit === null) return;
  if (!isRateLimit(limit)) throw new OAuthError('server_error', undefined, { reason: 'internal_error', cause: new Error('oauthRegistrationRateLimit must be null or { max, windowSeconds }') });
  const wait = registrations.wait(ctx, limit);
  if (wait > 0) {
    throw new OAuthError('temporarily_unavailable', ctx.values.oauthRegistrationRateLimitedMessage, { status: 429, retryAfter: wait, reason: 'registration_rate_limited' });
  }
}

/** RFC 6750 §2.1: the Bearer token of the Authorization header; null without one. A malformed header is a wrong token. */
function bearerToken(ctx: OAuthContext): string | null {
  const header = ctx.req.headers.authorization;
  if (header === undefined) return null;
  const token = bearerCredentials(header);
  return typeof token === 'string' ? token : '';
}

const jsonBody = express.text({ type: () => true, limit: CLIENT_METADATA_MAX_BYTES, defaultCharset: 'utf-8' });

/**
 * The request body as JSON (RFC 7591 §3.1: `application/json`), at most CLIENT_METADATA_MAX_BYTES.
 * Anything else (another type, too large, not JSON, not an object) is invalid_client_metadata.
 */
async function readJson(ctx: OAuthContext): Promise<Record<string, unknown>> {
  const req = ctx.req;
  const malformed = () => new OAuthError('invalid_client_metadata', ctx.values.oauthRegistrationMalformedMessage, { reason: 'invalid_client_metadata' });
  if (!req.is(['application/json', 'application/*+json'])) throw malformed();
  // A body parser of the host app (express.json()) may have read the stream already: the text
  // parser then leaves its result in req.body.
  await new Promise<void>((resolve, reject) => jsonBody(req, ctx.res as Response, (err?: unknown) => (err ? reject(malformed()) : resolve())));
  let parsed: unknown = req.body;
  if (typeof parsed === 'string') {
    try {
      parsed = JSON.parse(parsed);
    } catch {
      throw malformed();
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw malformed();
  return parsed as Record<string, unknown>;
}

function metadataError(description: string): OAuthError {
  return new OAuthError('invalid_client_metadata', description, { reason: 'invalid_client_metadata' });
}

/** invalid_token answers with a Bearer challenge (RFC 6750 §3); everything else is RFC 7591 §3.2.2 JSON. */
function renderRegistrationError(ctx: OAuthContext, err: OAuthError): void {
  if (err.code === 'invalid_token') renderBearerError(ctx.res, err, ctx.values.oauthRealm);
  else renderJsonError(ctx.res, err, ctx.values.oauthRealm);
}
