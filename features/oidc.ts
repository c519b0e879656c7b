/**
 * OpenID Connect Core 1.0 for the authorization code flow: ID tokens signed with the server's
 * keys (§2, §3.1.3.3, §3.1.3.6 `at_hash`, §12.2 on refresh), the UserInfo endpoint (§5.3) with
 * claims by scope (§5.4) and the `claims` parameter (§5.5), the authentication request
 * parameters `nonce` and `max_age` (§3.1.2.1; `prompt` is lib/prompt.ts, shared with plain
 * OAuth), pairwise subjects (§8), Discovery 1.0 (§4) from the same metadata as RFC 8414, and
 * RP-Initiated Logout 1.0. Implicit and hybrid flows are not served: `response_type` stays `code`.
 */
import type { JWTPayload } from 'jose';
import type { OAuthContext, TokenContext } from '../lib/context';
import { defineFeature, method, value, type MethodsOf, type TokenResponse, type ValidationContext, type ValuesOf } from '../lib/feature';
import { OAuthError } from '../lib/errors';
import { ContextImpl } from '../lib/context';
import { issueCsrfToken, verifyCsrfToken, type CsrfOptions } from '../lib/csrf';
import { renderBearerError } from '../lib/http/error_handler';
import { setNoCache } from '../lib/http/no_cache';
import { isWebUrl, renderErrorPage, renderPage } from '../lib/http/redirect';
import { sendMetadata } from '../lib/metadata';
import { bearerCheck, checkBearer, type BearerCheck } from '../lib/resource';
import type { Runtime } from '../lib/runtime';
import { OAuthConfigurationError } from '../lib/options';
import type { Application, Grant } from '../lib/store';
import type { TokenResponseExtension } from '../lib/tokens';
import { freshLoginAt, type AuthorizationLoginExtension } from '../lib/prompt';
import {
  parseClaimsParameter,
  pickClaims,
  PROTOCOL_CLAIMS,
  requestedClaimNames,
  scopeClaimNames,
  serializeClaimsRequest,
  supportedClaimsRequest,
  STANDARD_SCOPE_CLAIMS,
  storedClaimsRequest,
  type ClaimsRequest,
} from '../lib/claims';
import { audiences, DEFAULT_ID_TOKEN_ALG, idTokenSigningKey, signIdToken, tokenHash, verifyIdTokenHint } from '../lib/id_token';
import { ambiguousSector, effectiveSubjectType, redirectHosts, subjectFor } from '../lib/subject';
import authorizationCodeGrant, { type AuthorizationRequestExtension, type AuthorizationRequestFields } from './authorization_code_grant';
import jwks from './jwks';

export type SubjectType = 'public' | 'pairwise';

/** What `accountAuthenticationContext` may say about the end user's login (Core §2). */
export interface AuthenticationContext {
  /** Authentication Context Class Reference, e.g. `urn:mace:incommon:iap:silver`. */
  acr?: string | null;
  /** Authentication Methods References (RFC 8176), e.g. `['pwd', 'otp']`. */
  amr?: string[] | null;
}

/** Options of `accountClaims`. */
export interface AccountClaimsOptions {
  /** The `claims_locales` of the authorization request (BCP 47 tags, best first), for localized claims. */
  locales: string[];
  /** Where the claims go. */
  target: 'userinfo' | 'id_token';
  /** The client the claims are released to. */
  clientId: string;
}

const values = {
  // (b) lifetimes and limits
  oidcIdTokenExpiresIn: value(3600, 'ID token lifetime, in seconds (`exp` − `iat`).'),
  // (c) policy
  oidcRequireNonce: value(false, 'Whether an OpenID Connect authentication request (scope `openid`) must carry `nonce` (invalid_request otherwise). A function of the context makes it per client (`ctx.application`).'),
  oidcSubjectType: value<SubjectType>('public', "`sub` for applications whose `subjectType` is not set: 'public' (the account's `accountSubject`) or 'pairwise' (one per sector identifier, Core §8.1; needs oidcPairwiseSalt)."),
  oidcPairwiseSalt: value<string | null>(null, 'Secret HMAC key of pairwise subject identifiers (at least 32 characters); changing it changes every pairwise `sub`. Null: pairwise is not offered.', 'nullable-string'),
  oidcScopeClaims: value<Readonly<Record<string, readonly string[]>>>(
    STANDARD_SCOPE_CLAIMS,
    'Claims each scope asks for (Core §5.4: profile, email, address, phone); add your own scopes here. Advertised in `claims_supported` and `scopes_supported`.',
    'object',
  ),
  oidcAcrValuesSupported: value<string[] | null>(null, '`acr_values_supported` of the discovery document (the `acr` values `accountAuthenticationContext` can return).', 'nullable-array'),
  oidcClaimsLocalesSupported: value<string[] | null>(null, '`claims_locales_supported` of the discovery document.', 'nullable-array'),
  // (d) messages
  oidcNonceRequiredMessage: value('nonce is required', 'error_description when an OpenID Connect request lacks the nonce oidcRequireNonce requires.'),
  oidcInvalidParameterMessage: value("Invalid '{parameter}'", 'error_description of a malformed OpenID Connect parameter (`nonce`, `max_age`, `claims`); `{parameter}` is its name.'),
  oidcRequestNotSupportedMessage: value('Request objects are not supported', 'error_description of request_not_supported / request_uri_not_supported (Core §3.1.2.6).'),
  oidcAmbiguousSectorMessage: value(
    'The client cannot be given a pairwise subject: its redirect URIs are on several hosts',
    'error_description of unauthorized_client for a pairwise client whose redirect URIs span several hosts (no single sector identifier, Core §8.1), at /authorize and /token.',
  ),
  oidcInvalidLogoutRequestMessage: value('This sign-out request is not valid', 'Error page text of a logout request with a forged or foreign id_token_hint, an unknown client or an unregistered post_logout_redirect_uri.'),
};

const methods = {
  accountSubject: method(
    async (_ctx: OAuthContext, accountId: string): Promise<string> => accountId,
    "The end user's `sub` (at most 255 ASCII characters, never reassigned, Core §2): the account id by default. Pairwise subjects are derived from it.",
  ),
  accountClaims: method(
    async (_ctx: OAuthContext, _accountId: string, _claimNames: readonly string[], _options: AccountClaimsOptions): Promise<Record<string, unknown>> => ({}),
    'The claims of an account for the UserInfo answer or the ID token: an object of claim values (Core §5.1) for the names asked (others are dropped, and so is a null or missing value). Default: none.',
  ),
  accountAuthenticationContext: method(
    async (_ctx: OAuthContext): Promise<AuthenticationContext | null> => null,
    "`acr` and `amr` of the logged-in account's authentication, recorded when the user approves and put in its ID tokens. Default: null (none).",
  ),
  sectorIdentifier: method(sectorIdentifier, "A pairwise client's sector identifier (Core §8.1): the host of its redirect URIs, which must be one."),
  idTokenClaims: method(
    async (_ctx: OAuthContext, claims: JWTPayload): Promise<JWTPayload> => claims,
    'The claims of an ID token before it is signed: add or change claims (`ctx.grant` is its grant).',
  ),
  logoutAccount: method(
    logoutAccount,
    "Logs the end user out of the host's session (RP-Initiated Logout): Passport's `req.logout()` by default, else the session is destroyed; override for another login system.",
  ),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
  interface OAuthMethods extends MethodsOf<typeof methods> {}
}

/** The texts of the logout pages (lib/translate.ts keys), in English. */
const TRANSLATIONS = {
  // The consent page (lib/consent.ts): claims asked by name with the `claims` parameter (Core §5.5).
  'consent.claimsLabel': 'Also asked for',
  'consent.essentialClaim': '(needed by the application)',
  'endSession.title': 'Sign out',
  'endSession.question': 'Do you want to sign out of this site?',
  'endSession.questionFor': '{name} asks you to sign out of this site.',
  'endSession.confirm': 'Sign out',
  'endSession.cancel': 'Stay signed in',
  'endSession.done': 'You have been signed out.',
  'endSession.continue': 'Back to {name}',
  // The error page (lib/translate.ts reads `errorPage.problem.<reason>`) for a logout hint we did not issue.
  'errorPage.problem.invalid_id_token_hint': 'This sign-out request could not be verified.',
  'errorPage.action.invalid_id_token_hint': 'You were not signed out and not sent anywhere. Go back to the application and sign out from there again.',
};

/** Authentication request parameters (Core §3.1.2.1) the consent form carries to the POST. */
const REQUEST_PARAMETERS = ['nonce', 'max_age', 'claims', 'claims_locales', 'id_token_hint', 'acr_values', 'display'] as const;

const authenticationRequest: AuthorizationRequestExtension = { parameters: REQUEST_PARAMETERS, validate: validateAuthenticationRequest, approve: recordAuthentication };
const maxAgeLogin: AuthorizationLoginExtension = { requiresFreshLogin: loginOlderThanMaxAge };
const idTokens: TokenResponseExtension = { extend: addIdToken };

export default defineFeature({
  id: 'oidc',
  doc: 'OpenID Connect Core for the code flow: ID tokens, UserInfo, discovery, nonce, max_age, RP-initiated logout.',
  depends: [authorizationCodeGrant, jwks],
  values,
  methods,
  hooks: ['beforeLogout', 'afterLogout'],
  routes: [
    // Discovery §4: the issuer with `/.well-known/openid-configuration` appended, so under the mount path.
    { name: 'openid_configuration', path: '.well-known/openid-configuration', method: 'get', query: false, cors: 'document', handler: discoveryRoute },
    { name: 'userinfo', method: 'get', query: false, cors: 'endpoint', handler: userinfoRoute, renderError: renderUserinfoError },
    { name: 'userinfo', method: 'post', cors: 'endpoint', handler: userinfoRoute, renderError: renderUserinfoError },
    { name: 'end_session', method: 'get', handler: endSessionRoute, renderError: renderErrorPage },
    { name: 'end_session', method: 'post', handler: endSessionRoute, renderError: renderErrorPage },
  ],
  metadata: {
    userinfo_endpoint: (ctx) => ctx.routeUrl('userinfo'),
    end_session_endpoint: (ctx) => ctx.routeUrl('end_session'),
    scopes_supported: (ctx) => ['openid', ...Object.keys(ctx.values.oidcScopeClaims)],
    response_types_supported: () => ['code'],
    subject_types_supported: (ctx) => (ctx.values.oidcPairwiseSalt ? ['public', 'pairwise'] : ['public']),
    // The algorithm ID tokens are signed with (Discovery §3 wants RS256: lib/id_token.ts prefers an RS256 key of oauthJwtKeys).
    id_token_signing_alg_values_supported: (ctx) => [idTokenSigningKey(ctx).alg],
    claims_supported: (ctx) => claimsSupported(ctx),
    claim_types_supported: () => ['normal'],
    claims_parameter_supported: () => true,
    claims_locales_supported: (ctx) => ctx.values.oidcClaimsLocalesSupported,
    acr_values_supported: (ctx) => ctx.values.oidcAcrValuesSupported,
    // Core §6: request objects are refused (request_not_supported), and Discovery's default for request_uri is true.
    request_parameter_supported: () => false,
    request_uri_parameter_supported: () => false,
  },
  extend: { authorizationRequest: authenticationRequest, authorizationLogin: maxAgeLogin, tokenResponse: idTokens, translations: TRANSLATIONS },
  validate: validateOptions,
});

// ─── Authentication request (Core §3.1.2.1) ─────────────────────────────────────────────────

/** Longest `nonce` stored (the column holds 255 characters). */
const MAX_NONCE_LENGTH = 255;

function invalidParameter(ctx: OAuthContext, parameter: string): OAuthError {
  return new OAuthError('invalid_request', ctx.values.oidcInvalidParameterMessage.replace('{parameter}', () => parameter), { reason: 'malformed_parameter' });
}

/**
 * After the client and redirect URI are verified, so errors go to the client: request objects
 * refused (§6), and for a request granting `openid`: `nonce` (required when the client must send
 * one), `max_age`, `claims` (§5.5) and `claims_locales`, stored on the grant.
 */
function validateAuthenticationRequest(ctx: OAuthContext, app: Application, scopes: readonly string[]): AuthorizationRequestFields {
  const p = ctx.params;
  if (p.request !== undefined) throw new OAuthError('request_not_supported', ctx.values.oidcRequestNotSupportedMessage, { reason: 'malformed_parameter' });
  if (p.request_uri !== undefined) throw new OAuthError('request_uri_not_supported', ctx.values.oidcRequestNotSupportedMessage, { reason: 'malformed_parameter' });
  // §8.1: a pairwise client needs one sector; refused here rather than at the code exchange.
  if (effectiveSubjectType(ctx, app) === 'pairwise' && redirectHosts(app.redirectUris).length !== 1) throw ambiguousSector(ctx);
  if (!scopes.includes('openid')) return {};
  openIdRequests.add(ctx);
  if (p.nonce === undefined && ctx.values.oidcRequireNonce) throw new OAuthError('invalid_request', ctx.values.oidcNonceRequiredMessage, { reason: 'missing_parameter' });
  if (p.nonce !== undefined && p.nonce.length > MAX_NONCE_LENGTH) throw invalidParameter(ctx, 'nonce');
  maxAge(ctx);
  let claims: ClaimsRequest = {};
  if (p.claims !== undefined) {
    const parsed = parseClaimsParameter(p.claims);
    if (typeof parsed === 'string') throw invalidParameter(ctx, 'claims');
    // §5.5: a claim the server does not support is ignored; the others are shown on the consent page (lib/consent.ts).
    claims = supportedClaimsRequest(parsed, new Set(claimsSupported(ctx)));
  }
  const locales = localeList(p.claims_locales);
  return { nonce: p.nonce ?? null, claims: serializeClaimsRequest(claims), claimsLocales: locales.length > 0 ? locales : null };
}

/** `max_age` in seconds (a non-negative integer, §3.1.2.1), undefined when absent; invalid_request otherwise. */
function maxAge(ctx: OAuthContext): number | undefined {
  const raw = ctx.params.max_age;
  if (raw === undefined) return undefined;
  const n = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) throw invalidParameter(ctx, 'max_age');
  return n;
}

/** BCP 47 tags of a space-separated list (claims_locales), the well-formed ones, at most 10. */
function localeList(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  return raw.split(' ').filter((t) => /^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$/.test(t)).slice(0, 10);
}

/** The requests validated above as OpenID Connect ones (granting `openid`), for the login check that follows. */
const openIdRequests = new WeakSet<OAuthContext>();

/**
 * `authorizationLogin` (lib/prompt.ts): with `max_age`, a login older than that many seconds,
 * or of an unknown time, needs a fresh one (§3.1.2.1); the user then goes through `loginRoute`.
 * Without a session too, so the first login already carries the fresh-login marker (one login).
 */
async function loginOlderThanMaxAge(ctx: OAuthContext, accountId: string | null): Promise<boolean> {
  if (!openIdRequests.has(ctx)) return false;
  const seconds = maxAge(ctx);
  if (seconds === undefined) return false;
  if (accountId === null) return true;
  const at = await ctx.methods.accountAuthenticatedAt();
  return at === null || ctx.now().getTime() - at.getTime() > seconds * 1000;
}

/**
 * On approval: when the end user authenticated and how (`auth_time`, `acr`, `amr`), kept on the
 * grant for its ID tokens. `auth_time` is the host's `accountAuthenticatedAt`; when the host
 * cannot say, the fresh-login round trip this request proved (lib/prompt.ts: `max_age` or
 * `prompt=login`) dates it at the time the user was sent to log in, the login came after; else
 * none. Never made up.
 */
async function recordAuthentication(ctx: OAuthContext, _app: Application, scopes: readonly string[]): Promise<AuthorizationRequestFields> {
  if (!scopes.includes('openid')) return {};
  const authTime = (await ctx.methods.accountAuthenticatedAt()) ?? freshLoginAt(ctx);
  const context = await ctx.methods.accountAuthenticationContext();
  const acr = typeof context?.acr === 'string' && context.acr !== '' ? context.acr : null;
  const amr = Array.isArray(context?.amr) ? context.amr.filter((m): m is string => typeof m === 'string' && /^\S+$/.test(m)) : [];
  return { authTime, acr, amr: amr.length > 0 ? amr : null };
}

// ─── ID tokens (Core §2, §3.1.3.3, §12.2) ──────────────────────────────────────────────────

/**
 * `tokenResponse`: an `id_token` when the response grants `openid` to a resource owner's
 * authorization code grant, at the code exchange and at every refresh (§12.2: same `sub` and
 * `auth_time`, no `nonce`).
 */
async function addIdToken(ctx: TokenContext, body: TokenResponse): Promise<void> {
  const grant = ctx.grant;
  if (!grant || grant.accountId === null || grant.type !== 'authorization_code') return;
  if (ctx.grantType !== 'authorization_code' && ctx.grantType !== 'refresh_token') return;
  if (!body.scope.split(' ').includes('openid')) return;
  body.id_token = await idToken(ctx, grant, body);
}

async function idToken(ctx: TokenContext, grant: Grant, body: TokenResponse): Promise<string> {
  const app = ctx.application;
  const key = idTokenSigningKey(ctx);
  const iat = Math.floor(ctx.now().getTime() / 1000);
  const request = storedClaimsRequest(grant.claims);
  const claims: JWTPayload = {
    iss: ctx.issuer,
    sub: await subjectFor(ctx, app, grant.accountId!),
    aud: app.clientId,
    exp: iat + ctx.values.oidcIdTokenExpiresIn,
    iat,
    // Required with max_age or an essential auth_time request; given whenever known.
    ...(grant.authTime && { auth_time: Math.floor(grant.authTime.getTime() / 1000) }),
    // §3.1.3.6 / §12.2: the nonce of the authentication request, in the code exchange's ID token only.
    ...(ctx.grantType === 'authorization_code' && grant.nonce && { nonce: grant.nonce }),
    ...(grant.acr && { acr: grant.acr }),
    ...(grant.amr && grant.amr.length > 0 && { amr: grant.amr }),
    at_hash: tokenHash(body.access_token, key),
  };
  // §5.4: scope claims go in the ID token only when no access token is issued (never in this flow).
  const scopes = body.scope.split(' ');
  const names = requestedClaimNames(scopeClaimNames(scopes, ctx.values.oidcScopeClaims), request, 'id_token', body.access_token === undefined);
  const extra = names.length > 0 ? await accountClaimsFor(ctx, grant, names, 'id_token', app.clientId) : {};
  const payload = await ctx.methods.idTokenClaims({ ...extra, ...claims, ...azp(claims) });
  return signIdToken(ctx, payload);
}

/** §2: `azp` when the ID token has several audiences (then it names the client). */
function azp(claims: JWTPayload): { azp?: string } {
  return Array.isArray(claims.aud) && claims.aud.length > 1 ? { azp: claims.aud[0] } : {};
}

async function accountClaimsFor(ctx: OAuthContext, grant: Grant, names: string[], target: 'userinfo' | 'id_token', clientId: string): Promise<Record<string, unknown>> {
  const provided = await ctx.methods.accountClaims(grant.accountId!, names, { locales: grant.claimsLocales ?? [], target, clientId });
  return pickClaims(provided, names);
}

// ─── Subject identifiers (Core §8) ─────────────────────────────────────────────────────────

/** Default `sectorIdentifier`: the one host of the client's redirect URIs (§8.1). */
async function sectorIdentifier(ctx: OAuthContext, app: Application): Promise<string> {
  const hosts = redirectHosts(app.redirectUris);
  if (hosts.length !== 1) throw ambiguousSector(ctx);
  return hosts[0]!;
}

/** Every claim an ID token or UserInfo answer may carry (Discovery §3 `claims_supported`). */
function claimsSupported(ctx: OAuthContext): string[] {
  const fromScopes = Object.values(ctx.values.oidcScopeClaims).flat();
  return [...new Set([...PROTOCOL_CLAIMS, ...fromScopes])].filter((c) => c !== 'c_hash' && c !== 'sid');
}

// ─── Discovery (Discovery 1.0 §4) ──────────────────────────────────────────────────────────

/** GET /.well-known/openid-configuration: the RFC 8414 document, which the OIDC keys above complete. */
async function discoveryRoute(ctx: OAuthContext): Promise<void> {
  sendMetadata(ctx);
}

// ─── UserInfo (Core §5.3) ──────────────────────────────────────────────────────────────────

const userinfoChecks = new WeakMap<object, BearerCheck>();

/**
 * GET/POST /userinfo: a bearer token (RFC 6750) granting `openid` (else 403 insufficient_scope),
 * whose grant is live and still holds this token; answers `sub` and the claims of its scopes and
 * of the `claims` request's `userinfo` member (§5.3.2), from `accountClaims`.
 */
async function userinfoRoute(ctx: OAuthContext): Promise<void> {
  setNoCache(ctx.res);
  let check = userinfoChecks.get(ctx.runtime);
  if (!check) userinfoChecks.set(ctx.runtime, (check = bearerCheck(ctx.runtime as Runtime, 'userinfo', ['openid'])));
  const auth = await checkBearer(ctx as ContextImpl, check);
  const invalid = (reason: 'unknown_token' | 'revoked_token') => new OAuthError('invalid_token', ctx.values.oauthInvalidTokenMessage, { reason });
  // rodauth-oauth 1.6.4: the grant must still exist, and (JWT access tokens) the token be its current one.
  const grant = await ctx.store.grants.findById(auth.grantId);
  if (!grant || grant.accountId === null || grant.tokenHash !== ctx.methods.generateTokenHash(auth.token)) throw invalid('unknown_token');
  if (grant.revokedAt) throw invalid('revoked_token');
  const app = await ctx.store.applications.findById(grant.oauthApplicationId);
  if (!app) throw invalid('unknown_token');
  const request = storedClaimsRequest(grant.claims);
  const names = requestedClaimNames(scopeClaimNames(auth.scopes, ctx.values.oidcScopeClaims), request, 'userinfo', true);
  const claims = names.length > 0 ? await accountClaimsFor(ctx, grant, names, 'userinfo', app.clientId) : {};
  ctx.res.status(200).json({ ...claims, sub: await subjectFor(ctx, app, grant.accountId) });
}

/** RFC 6750 §3 errors with the `WWW-Authenticate: Bearer` challenge (Core §5.3.3). */
function renderUserinfoError(ctx: OAuthContext, err: OAuthError): void {
  renderBearerError(ctx.res, err, ctx.values.oauthRealm);
}

// ─── RP-Initiated Logout 1.0 ───────────────────────────────────────────────────────────────

interface LogoutRequest {
  application: Application | undefined;
  /** A registered post_logout_redirect_uri of the client, or undefined (our own page then). */
  redirectUri: string | undefined;
}

/**
 * GET/POST /end-session (§2): checks the request, then asks the logged-in user to confirm
 * (a CSRF-protected form); the confirmed POST runs `logoutAccount` between the `beforeLogout`
 * and `afterLogout` hooks. Then back to the client's post_logout_redirect_uri with `state`, or
 * our page saying so. Nobody logged in: straight to the end.
 */
async function endSessionRoute(ctx: OAuthContext): Promise<void> {
  const request = await checkLogoutRequest(ctx);
  const accountId = ctx.methods.currentAccountId();
  if (accountId === null) return finishLogout(ctx, request);
  const decision = ctx.req.method === 'POST' ? ctx.params.decision : undefined;
  if (decision === undefined) return renderConfirmation(ctx, request, accountId);
  if (!verifyCsrfToken(ctx.req, csrfOptions(ctx, accountId), ctx.params.csrf_token)) {
    throw new OAuthError('invalid_request', ctx.values.oauthInvalidCsrfTokenMessage, { reason: 'csrf_mismatch' });
  }
  if (decision === 'logout') {
    await ctx.hook('beforeLogout');
    await ctx.methods.logoutAccount();
    await ctx.hook('afterLogout');
  }
  finishLogout(ctx, request);
}

/**
 * §2 / §3: an `id_token_hint` must be an ID token we issued (expired allowed) naming the
 * `client_id` if one is given; a `post_logout_redirect_uri` must be registered by the client,
 * known from `client_id` or the hint. Anything else is shown on the error page, never redirected.
 */
async function checkLogoutRequest(ctx: OAuthContext): Promise<LogoutRequest> {
  const p = ctx.params;
  const invalid = (reason: 'invalid_id_token_hint' | 'client_id_mismatch' | 'unknown_client' | 'redirect_uri_mismatch' | 'missing_parameter') =>
    new OAuthError('invalid_request', ctx.values.oidcInvalidLogoutRequestMessage, { reason });
  let clientId = p.client_id;
  if (p.id_token_hint !== undefined) {
    const hint = await verifyIdTokenHint(ctx, p.id_token_hint);
    if (!hint) throw invalid('invalid_id_token_hint');
    const auds = audiences(hint);
    if (clientId !== undefined && !auds.includes(clientId)) throw invalid('client_id_mismatch');
    clientId ??= typeof hint.azp === 'string' ? hint.azp : auds[0];
  }
  const application = clientId === undefined ? undefined : await ctx.store.applications.findByClientId(clientId);
  if (clientId !== undefined && !application) throw invalid('unknown_client');
  const redirectUri = p.post_logout_redirect_uri;
  if (redirectUri !== undefined) {
    if (!application) throw invalid('missing_parameter');
    if (!application.postLogoutRedirectUris.includes(redirectUri)) throw invalid('redirect_uri_mismatch');
  }
  return { application, redirectUri };
}

function csrfOptions(ctx: OAuthContext, accountId: string): CsrfOptions {
  return {
    secret: ctx.values.oauthCsrfSecret,
    cookieName: ctx.values.oauthCsrfCookieName,
    cookiePath: ctx.routePath('end_session'),
    binding: `end_session\0${accountId}`,
    httpsIssuer: /^https:\/\//i.test(ctx.issuer),
  };
}

/** The parameters the confirmation form carries to its POST. */
const LOGOUT_PARAMETERS = ['id_token_hint', 'client_id', 'post_logout_redirect_uri', 'state', 'ui_locales'] as const;

function renderConfirmation(ctx: OAuthContext, request: LogoutRequest, accountId: string): void {
  const t = (key: string, vars?: Record<string, string>) => ctx.methods.translate(key, vars);
  const fields: { name: string; value: string }[] = LOGOUT_PARAMETERS.filter((n) => ctx.params[n] !== undefined).map((name) => ({ name, value: ctx.params[name]! }));
  fields.push({ name: 'csrf_token', value: issueCsrfToken(ctx.req, ctx.res, csrfOptions(ctx, accountId)) });
  renderPage(ctx, 'end_session', {
    lang: ctx.methods.locale(),
    title: t('endSession.title'),
    confirm: true,
    lead: request.application ? t('endSession.questionFor', { name: request.application.name }) : t('endSession.question'),
    action: ctx.routePath('end_session'),
    fields,
    confirmButton: t('endSession.confirm'),
    cancelButton: t('endSession.cancel'),
    link: null,
  });
}

/** §3: to the registered post_logout_redirect_uri with `state`, else our page. */
function finishLogout(ctx: OAuthContext, request: LogoutRequest): void {
  if (request.redirectUri !== undefined) {
    const state = ctx.params.state;
    const url = state === undefined ? request.redirectUri : `${request.redirectUri}${request.redirectUri.includes('?') ? '&' : '?'}${new URLSearchParams({ state }).toString()}`;
    setNoCache(ctx.res);
    ctx.res.setHeader('Referrer-Policy', 'no-referrer');
    ctx.res.redirect(302, url);
    return;
  }
  const t = (key: string, vars?: Record<string, string>) => ctx.methods.translate(key, vars);
  const home = request.application?.homepageUrl;
  renderPage(ctx, 'end_session', {
    lang: ctx.methods.locale(),
    title: t('endSession.title'),
    confirm: false,
    lead: t('endSession.done'),
    action: null,
    fields: [],
    confirmButton: null,
    cancelButton: null,
    link: isWebUrl(home) ? { href: home, label: t('endSession.continue', { name: request.application!.name }) } : null,
  });
}

/** Default `logoutAccount`: Passport's `req.logout` (0.6+: with a callback), else the session destroyed. */
async function logoutAccount(ctx: OAuthContext): Promise<void> {
  const req = ctx.req as OAuthContext['req'] & {
    logout?: (done: (err?: unknown) => void) => void;
    session?: { destroy?: (done: (err?: unknown) => void) => void };
  };
  if (typeof req.logout === 'function') {
    await new Promise<void>((resolve, reject) => req.logout!((err) => (err ? reject(err) : resolve())));
    return;
  }
  if (req.session && typeof req.session.destroy === 'function') {
    await new Promise<void>((resolve, reject) => req.session!.destroy!((err) => (err ? reject(err) : resolve())));
    return;
  }
  throw new Error("oidc: no Passport req.logout() and no session to destroy; override the 'logoutAccount' method");
}

// ─── Start-up checks ───────────────────────────────────────────────────────────────────────

function validateOptions(v: Record<string, unknown>, instance: ValidationContext): void {
  // Discovery §3: RS256 MUST be among the ID token algorithms; it is only when a key can sign it.
  const keys = v.oauthJwtKeys;
  if (Array.isArray(keys) && !keys.some((k) => (k as { alg?: unknown } | null)?.alg === DEFAULT_ID_TOKEN_ALG)) {
    instance.logger.warn(
      `oidc: no ${DEFAULT_ID_TOKEN_ALG} key in 'oauthJwtKeys': ID tokens are signed with ${String((keys[0] as { alg?: unknown } | undefined)?.alg)}, and clients that registered no id_token_signed_response_alg expect ${DEFAULT_ID_TOKEN_ALG} (OpenID Connect Discovery §3 requires it). Add an RS256 key to oauthJwtKeys (README: OpenID Connect).`,
    );
  }
  const salt = v.oidcPairwiseSalt;
  if (typeof salt === 'string' && salt.length < 32) throw new OAuthConfigurationError("oauth(): option 'oidcPairwiseSalt' must be at least 32 characters (it keys the pairwise sub HMAC).");
  if (v.oidcSubjectType === 'pairwise' && !salt) throw new OAuthConfigurationError("oauth(): option 'oidcSubjectType' 'pairwise' needs 'oidcPairwiseSalt'.");
  if (v.oidcSubjectType !== undefined && typeof v.oidcSubjectType === 'string' && v.oidcSubjectType !== 'public' && v.oidcSubjectType !== 'pairwise') {
    throw new OAuthConfigurationError(`oauth(): option 'oidcSubjectType' must be 'public' or 'pairwise' (got '${v.oidcSubjectType}').`);
  }
  const lifetime = v.oidcIdTokenExpiresIn;
  if (typeof lifetime === 'number' && !(Number.isSafeInteger(lifetime) && lifetime > 0)) throw new OAuthConfigurationError("oauth(): option 'oidcIdTokenExpiresIn' must be a whole number of seconds above 0.");
  const claims = v.oidcScopeClaims;
  if (claims !== undefined && typeof claims === 'object' && claims !== null) {
    for (const [scope, names] of Object.entries(claims)) {
      if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) throw new OAuthConfigurationError(`oauth(): option 'oidcScopeClaims': '${scope}' must map to an array of claim names.`);
    }
  }
}
