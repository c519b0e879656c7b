/**
 * RFC 6749 §4.1 authorization code grant: `GET /authorize` (validation and the consent page),
 * `POST /authorize` (CSRF-checked approval, single-use hashed code) and the code exchange at
 * the token endpoint, with RFC 9207 `iss`, the RFC 8252 §7.3 loopback rule and RFC 9700 §2.1.
 * Other features add checks through the `authorizationRequest` and `codeExchange` points.
 */
import type { Request } from 'express';
import type { OAuthContext, TokenContext } from '../lib/context';
import { defineFeature, grantType, method, value, type MethodsOf, type TokenResponse, type ValuesOf } from '../lib/feature';
import { asciiDescription, OAuthError, type OAuthErrorReason } from '../lib/errors';
import { issueCsrfToken, verifyCsrfToken, type CsrfOptions } from '../lib/csrf';
import { findClient, type ClientRefusal } from '../lib/client_auth';
import { paramValues, requireParam } from '../lib/http/params';
import { OAuthConfigurationError } from '../lib/options';
import { setNoCache } from '../lib/http/no_cache';
import { challenge } from '../lib/http/www_authenticate';
import { isWebUrl, redirectToClient, renderErrorPage, renderPage, type ClientRedirect } from '../lib/http/redirect';
import { grantableScopes } from '../lib/scopes';
import { authorizingAccount, confirmAuthorizingAccount, LOGIN_MARKER, parsePrompt, requireFreshLogin } from '../lib/prompt';
import { consentPageLocals, consentRemembered, type ConsentRequest } from '../lib/consent';
import type { TranslationVars } from '../lib/translate';
import type { Application, Grant, NewGrant } from '../lib/store';
import { narrowedResources, newAccessToken, newRefreshToken, tokenResources, tokenResponse } from '../lib/tokens';
import oauthBase from './oauth_base';

/** Grant fields an `authorizationRequest` contribution may set. */
export type AuthorizationRequestFields = Partial<
  Pick<NewGrant, 'codeChallenge' | 'codeChallengeMethod' | 'resources' | 'nonce' | 'authTime' | 'acr' | 'amr' | 'claims' | 'claimsLocales'>
>;

/** Extension point `authorizationRequest`: extra parameters of `/authorize`, checked after the client and redirect URI. */
export interface AuthorizationRequestExtension {
  /** Parameters the consent form carries over to the POST. */
  readonly parameters: readonly string[];
  /** Throws an OAuthError (sent back to the client) or returns fields to store on the grant; `scopes`: what the request would be granted. */
  validate(ctx: OAuthContext, application: Application, scopes: readonly string[]): AuthorizationRequestFields;
  /** On approval, after the checks, before the grant is written (may wait on host methods): more fields to store. */
  approve?(ctx: OAuthContext, application: Application, scopes: readonly string[]): Promise<AuthorizationRequestFields>;
}

/** Extension point `codeExchange`: checks of a code redemption, before the code is consumed. */
export interface CodeExchangeExtension {
  /** Throws `invalid_grant` when the request may not redeem this grant's code. */
  verify(ctx: TokenContext, grant: Grant): void;
}

export const RESPONSE_MODES = ['query', 'form_post'] as const;
export type ResponseMode = (typeof RESPONSE_MODES)[number];

const values = {
  // (b) lifetimes and limits
  oauthGrantExpiresIn: value(300, 'Authorization code lifetime, in seconds (RFC 6749 §4.1.2: short-lived).'),
  // (c) policy
  oauthResponseMode: value<ResponseMode>('query', 'Response mode when the request names none: `query` or `form_post`.'),
  loginRoute: value('/login', "The host's login page, where `requireAuthorizableAccount` sends a visitor, with `return_to` set to the authorization URL."),
  oauthTemplatesDir: value<string | null>(null, 'A directory (absolute, or relative to the working directory) with the host’s own `authorize.html`, `authorize_error.html` and `form_post.html` (EJS, use `<%= %>`); missing files fall back to the built-in ones.', 'nullable-string'),
  oauthCsrfSecret: value<string | null>(null, 'HMAC key of CSRF tokens and of the fresh-login marker `login_requested_at`. Null: a random key per process, so set it when several processes serve /authorize.', 'nullable-string'),
  oauthCsrfCookieName: value('oauth_csrf', 'Cookie holding the CSRF nonce when the host has no session.'),
  oauthRememberConsent: value(true, 'Skip the consent page when the account has already granted every requested scope to the client and not revoked it (issue the code at once); `prompt=consent` still shows it.'),
  logoutRoute: value<string | null>(null, 'The host\'s logout URL: when set, the consent page offers "Not you?" linking to it with `return_to` set to the authorization URL.', 'nullable-string'),
  oauthFreshLoginWindow: value(600, 'Seconds after being sent to the login for `prompt=login` (or `authorizationLogin`, e.g. `max_age`) within which the returning request, and its consent POST, count as freshly logged in: always required, besides a login time from `accountAuthenticatedAt` at or after the signed `login_requested_at` marker when the host can tell.'),
  // labels of the pages: the default `translate` reads them for their keys (lib/translate.ts LABEL_VALUES)
  authorizePageTitle: value('Authorize', 'Title of the consent page (translate key `consent.title`).'),
  authorizePageLead: value('The application {name} would like to access your data', 'Lead of the consent page; `{name}` is the application name (translate key `consent.lead`).'),
  authorizeErrorPageTitle: value('Authorize Error', 'Title of the authorization error page (translate key `errorPage.title`).'),
  authorizeFormPostPageTitle: value('Redirecting', 'Title of the form_post response page (translate key `formPost.title`).'),
  oauthGrantsScopesLabel: value('Scopes', 'Heading of the requested scopes on the consent page (translate key `consent.scopesLabel`).'),
  oauthApplicationsHomepageUrlLabel: value('Homepage', 'Link label of the application homepage (translate key `consent.homepage`).'),
  oauthApplicationsPolicyUriLabel: value('Policy URL', 'Link label of the application privacy policy (translate key `consent.policy`).'),
  oauthApplicationsTosUriLabel: value('Terms of service URL', 'Link label of the application terms of service (translate key `consent.tos`).'),
  oauthAuthorizeButton: value('Allow', 'Approve (primary) button of the consent page (translate key `consent.allow`).'),
  oauthDenyButton: value('Deny', 'Deny (secondary) button of the consent page (translate key `consent.deny`).'),
  oauthAuthorizePostButton: value('Back to Client Application', 'Button of the form_post page when scripts are off (translate key `formPost.button`).'),
  oauthErrorPageHomeUrl: value<string | null>('/', 'Where the error page of /authorize links back to ("Go back to the home page"): an http(s) URL or a path of this site; null: no link. Never the request\'s redirect URI.', 'nullable-string'),
  // (d) messages
  oauthAuthorizeParameterRequiredMessage: value("Invalid or missing '{parameter}'", 'Error page text for a bad client_id or redirect_uri, and error_description of a missing response_type; `{parameter}` is its name.'),
  oauthUnsupportedResponseTypeMessage: value('Unsupported response type', 'error_description of unsupported_response_type.'),
  oauthUnauthorizedClientMessage: value('The client is not allowed to use this grant', 'error_description of unauthorized_client at /authorize.'),
  oauthInvalidResponseModeMessage: value('Unsupported response mode', 'error_description of an unknown or disallowed response_mode.'),
  oauthAccessDeniedMessage: value('The resource owner or authorization server denied the request', 'error_description of access_denied (RFC 6749 §4.1.2.1).'),
  oauthInvalidCsrfTokenMessage: value('The form has expired or was not sent by this site; please try again', 'Error page text for a missing or wrong CSRF token.'),
  oauthConsentRequiredMessage: value('Consent required', 'error_description of consent_required: `prompt=none` and the account has not already granted the requested scopes (OpenID Connect Core §3.1.2.6).'),
  oauthInvalidPromptMessage: value("Unsupported or invalid 'prompt'", "error_description of an unknown `prompt` value, or `none` with another one."),
  oauthLoginRequiredMessage: value('Login required', 'error_description of the 401 answer to a JSON request without a logged-in account.'),
};

const methods = {
  requireAuthorizableAccount: method(
    requireAuthorizableAccount,
    'The logged-in account id. Without one, answers the request (302 to `loginRoute` with `return_to`; for JSON requests 401 with `WWW-Authenticate: Login realm="…", login_uri="…"` naming the same URL) and returns null.',
  ),
  accountDisplayName: method(
    (ctx: OAuthContext, accountId: string): string | Promise<string> => {
      const user = (ctx.req as Request & { user?: { username?: unknown; name?: unknown } }).user;
      const name = user?.username ?? user?.name;
      return typeof name === 'string' && name !== '' ? name : accountId;
    },
    'How the consent page names the signed-in account: `req.user.username ?? req.user.name ?? id` by default.',
  ),
  accountAuthenticatedAt: method(
    (_ctx: OAuthContext): Date | null | Promise<Date | null> => null,
    'When the signed-in account last logged in (the session\'s login time), or null when unknown (default). `prompt=login` and `authorizationLogin` contributions (OIDC `max_age`) compare against it.',
  ),
  requireFreshLogin: method(
    requireFreshLogin,
    '`requireFreshLogin(reason)`: sends the user to log in again although a session may exist (`prompt=login`, `select_account`, or an `authorizationLogin` contribution): 302 to `loginRoute` with `return_to` (marked with the signed `login_requested_at`), `prompt` and `login_hint`; 401 for JSON. Override to force re-authentication your own way.',
  ),
  resourceOwnerParams: method(
    (_ctx: OAuthContext): Record<string, unknown> | Promise<Record<string, unknown>> => ({}),
    'Extra columns to store on a new grant (column name → value), e.g. a tenant id.',
  ),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
  interface OAuthMethods extends MethodsOf<typeof methods> {}
}

export default defineFeature({
  id: 'authorization_code_grant',
  doc: 'RFC 6749 §4.1 authorization code grant with the /authorize endpoint.',
  depends: [oauthBase],
  values,
  methods,
  hooks: ['beforeAuthorize', 'afterAuthorize'],
  routes: [
    { name: 'authorize', method: 'get', handler: authorizeRoute, renderError: renderAuthorizeError },
    { name: 'authorize', method: 'post', handler: authorizePostRoute, renderError: renderAuthorizeError },
  ],
  grantTypes: {
    authorization_code: grantType({ parameters: ['code', 'redirect_uri', 'code_verifier'], singleStatement: true, prepare: findRedeemableCode, handler: authorizationCodeGrant }),
  },
  metadata: {
    authorization_endpoint: (ctx) => ctx.routeUrl('authorize'),
    response_types_supported: () => ['code'],
    response_modes_supported: () => [...RESPONSE_MODES],
    authorization_response_iss_parameter_supported: () => true,
  },
  validate(v) {
    if (v.oauthResponseMode !== undefined && !(RESPONSE_MODES as readonly unknown[]).includes(v.oauthResponseMode)) {
      throw new OAuthConfigurationError(`oauth(): option 'oauthResponseMode' must be one of ${RESPONSE_MODES.join(', ')}.`);
    }
  },
});

/**
 * The parameters of an authorization request that the consent form carries to the POST; the
 * POST checks `prompt` and the fresh-login marker again (lib/prompt.ts).
 */
const REQUEST_PARAMS = ['client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'ui_locales', 'prompt', LOGIN_MARKER];
/** Set once client_id and redirect_uri are validated: from then on errors go back to the client. */
const validatedRedirects = new WeakMap<OAuthContext, ClientRedirect>();

interface AuthorizationRequest {
  application: Application;
  target: ClientRedirect;
  /** The redirect_uri parameter as sent (null when omitted), which the code exchange must repeat. */
  redirectUriParam: string | null;
  scopes: string[];
  fields: AuthorizationRequestFields;
  extensions: readonly AuthorizationRequestExtension[];
}

/** GET /authorize: validate → login → consent page. */
async function authorizeRoute(ctx: OAuthContext): Promise<void> {
  const request = await identifyClient(ctx);
  validateRequest(ctx, request);
  // OpenID Connect Core §3.1.2.1 `prompt` and the `authorizationLogin` point (lib/prompt.ts).
  const prompts = parsePrompt(ctx);
  const accountId = await authorizingAccount(ctx, prompts, carriedParams(request));
  if (accountId === null) return;
  ctx.accountId = accountId;
  if (!prompts.has('consent') && (await consentRemembered(ctx, request.application, accountId, consentRequest(request)))) return issueCode(ctx, request, accountId);
  if (prompts.has('none')) throw new OAuthError('consent_required', ctx.values.oauthConsentRequiredMessage, { reason: 'consent_required' });
  await renderConsent(ctx, request, accountId);
}

/** POST /authorize: validate → login → CSRF → validate again → deny, or transaction(beforeAuthorize, grant, afterAuthorize) → respond. */
async function authorizePostRoute(ctx: OAuthContext): Promise<void> {
  const request = await identifyClient(ctx);
  const accountId = await ctx.methods.requireAuthorizableAccount();
  if (accountId === null) return;
  ctx.accountId = accountId;
  if (!verifyCsrfToken(ctx.req, csrfOptions(ctx, accountId), ctx.params.csrf_token)) {
    throw new OAuthError('invalid_request', ctx.values.oauthInvalidCsrfTokenMessage, { reason: 'csrf_mismatch' });
  }
  validateRequest(ctx, request);
  if (ctx.params.decision !== 'approve') {
    throw new OAuthError('access_denied', ctx.values.oauthAccessDeniedMessage, { reason: 'consent_denied' });
  }
  // The same prompt / max_age decision as the GET: a form posted with other parameters, or
  // after the fresh-login window, does not skip it (login_required, lib/prompt.ts).
  await confirmAuthorizingAccount(ctx, parsePrompt(ctx), carriedParams(request), accountId);
  await issueCode(ctx, request, accountId);
}

/** An approved (or remembered, lib/consent.ts) authorization: transaction(beforeAuthorize, grant, afterAuthorize) → the code to the client. */
async function issueCode(ctx: OAuthContext, request: AuthorizationRequest, accountId: string): Promise<void> {
  const code = ctx.methods.generateToken();
  const now = ctx.now();
  // A host method may wait on anything; the transaction holds the database only for the insert.
  const extra = await ctx.methods.resourceOwnerParams();
  for (const ext of request.extensions) if (ext.approve) Object.assign(request.fields, await ext.approve(ctx, request.application, request.scopes));
  await ctx.transaction(async () => {
    await ctx.hook('beforeAuthorize');
    ctx.grant = await ctx.store.grants.insert({
      accountId,
      oauthApplicationId: request.application.id,
      type: 'authorization_code',
      codeHash: ctx.methods.generateTokenHash(code),
      tokenHash: null,
      refreshTokenHash: null,
      expiresIn: new Date(now.getTime() + ctx.values.oauthGrantExpiresIn * 1000),
      refreshTokenExpiresIn: null,
      redirectUri: request.redirectUriParam,
      scopes: request.scopes,
      accessType: 'offline',
      codeChallenge: request.fields.codeChallenge ?? null,
      codeChallengeMethod: request.fields.codeChallengeMethod ?? null,
      resources: request.fields.resources ?? null,
      // OpenID Connect (oidc): nonce, auth_time, acr, amr, the claims request, claims_locales.
      nonce: request.fields.nonce ?? null,
      authTime: request.fields.authTime ?? null,
      acr: request.fields.acr ?? null,
      amr: request.fields.amr ?? null,
      claims: request.fields.claims ?? null,
      claimsLocales: request.fields.claimsLocales ?? null,
      createdAt: now,
      extra,
    });
    await ctx.hook('afterAuthorize');
  });
  // RFC 6749 §4.1.2 and RFC 9207 §2: code, the state as sent, and the issuer.
  redirectToClient(ctx, request.target, { code, state: ctx.params.state, iss: ctx.issuer });
}

/**
 * `client_id` then `redirect_uri`: until both are known good, errors are shown on the error
 * page and never sent to the redirect URI (RFC 6749 §4.1.2.1, design.md §4.5).
 */
async function identifyClient(ctx: OAuthContext): Promise<AuthorizationRequest> {
  const clientId = ctx.params.client_id;
  const refuse: ClientRefusal = (reason, cause) => parameterError(ctx, 'client_id', reason, cause);
  const application = clientId === undefined ? undefined : await findClient(ctx, clientId, refuse);
  if (!application) throw parameterError(ctx, 'client_id', clientId === undefined ? 'missing_parameter' : 'unknown_client');
  const redirectUriParam = ctx.params.redirect_uri ?? null;
  const redirectUri = redirectUriParam === null ? soleRedirectUri(application) : matchRedirectUri(application, redirectUriParam);
  if (redirectUri === undefined) throw parameterError(ctx, 'redirect_uri', redirectUriParam === null ? 'missing_parameter' : 'redirect_uri_mismatch');
  ctx.application = application;
  // Errors from here on go back to the client, in the response mode it asked for when that is a known one.
  const asked = ctx.params.response_mode;
  const responseMode: ResponseMode = asked !== undefined && (RESPONSE_MODES as readonly string[]).includes(asked) ? (asked as ResponseMode) : ctx.values.oauthResponseMode;
  const target: ClientRedirect = { redirectUri, responseMode };
  validatedRedirects.set(ctx, target);
  return { application, target, redirectUriParam, scopes: [], fields: {}, extensions: ctx.runtime.extensions<AuthorizationRequestExtension>('authorizationRequest') };
}

function parameterError(ctx: OAuthContext, parameter: string, reason: OAuthErrorReason, cause?: unknown): OAuthError {
  return new OAuthError('invalid_request', ctx.values.oauthAuthorizeParameterRequiredMessage.replace('{parameter}', parameter), { reason, cause });
}

/** Without a redirect_uri parameter, the registration must name exactly one (RFC 6749 §3.1.2.3). */
function soleRedirectUri(app: Application): string | undefined {
  return app.redirectUris.length === 1 ? app.redirectUris[0] : undefined;
}

/**
 * Exact string match with a registered URI (RFC 9700 §2.1), except that a loopback `http`
 * URI may use any port (RFC 8252 §7.3). The comparison is textual: nothing is normalised.
 */
function matchRedirectUri(app: Application, uri: string): string | undefined {
  if (app.redirectUris.includes(uri)) return uri;
  const given = withoutLoopbackPort(uri);
  if (given === undefined) return undefined;
  return app.redirectUris.some((r) => withoutLoopbackPort(r) === given) ? uri : undefined;
}

const LOOPBACK = /^(http:\/\/(?:127\.0\.0\.1|\[::1\]|localhost))(?::(\d{1,5}))?([/?][^#]*)?$/;

function withoutLoopbackPort(uri: string): string | undefined {
  const m = LOOPBACK.exec(uri);
  if (!m || (m[2] !== undefined && Number(m[2]) > 65535)) return undefined;
  return `${m[1]}${m[3] ?? ''}`;
}

/** The checks after the client is known; their errors go to the redirect URI. */
function validateRequest(ctx: OAuthContext, request: AuthorizationRequest): void {
  const { application: app } = request;
  const p = ctx.params;
  // RFC 6749 §4.1.2.1: a missing parameter is invalid_request; only a value we do not serve is unsupported_response_type.
  if (p.response_type === undefined) throw parameterError(ctx, 'response_type', 'missing_parameter');
  if (p.response_type !== 'code') {
    throw new OAuthError('unsupported_response_type', ctx.values.oauthUnsupportedResponseTypeMessage, { reason: 'malformed_parameter' });
  }
  if ((app.grantTypes !== null && !app.grantTypes.includes('authorization_code')) || (app.responseTypes !== null && !app.responseTypes.includes('code'))) {
    throw new OAuthError('unauthorized_client', ctx.values.oauthUnauthorizedClientMessage, { reason: 'grant_type_not_allowed' });
  }
  // RFC 6749 §3.3: without `scope`, the documented default (`oauthDefaultScopes`), or invalid_scope.
  request.scopes = grantableScopes(p.scope, app.scopes, ctx.values.oauthInvalidScopeMessage, ctx.values.oauthDefaultScopes);
  const mode = p.response_mode ?? ctx.values.oauthResponseMode;
  if (!(RESPONSE_MODES as readonly string[]).includes(mode) || (app.responseModes !== null && !app.responseModes.includes(mode))) {
    throw new OAuthError('invalid_request', ctx.values.oauthInvalidResponseModeMessage, { reason: 'malformed_parameter' });
  }
  const fields: AuthorizationRequestFields = {};
  for (const ext of request.extensions) Object.assign(fields, ext.validate(ctx, app, request.scopes));
  request.fields = fields;
}

function csrfOptions(ctx: OAuthContext, accountId: string): CsrfOptions {
  return {
    secret: ctx.values.oauthCsrfSecret,
    cookieName: ctx.values.oauthCsrfCookieName,
    cookiePath: ctx.routePath('authorize'),
    binding: accountId,
    httpsIssuer: /^https:\/\//i.test(ctx.issuer),
  };
}

/** The names of the parameters the consent form carries to the POST. */
function carriedParams(request: AuthorizationRequest): string[] {
  return [...REQUEST_PARAMS, ...request.extensions.flatMap((e) => e.parameters)];
}

/** The consent page: who asks, for what, and the CSRF-protected Approve / Deny form. */
async function renderConsent(ctx: OAuthContext, request: AuthorizationRequest, accountId: string): Promise<void> {
  const t = (key: string, vars?: TranslationVars): string => ctx.methods.translate(key, vars);
  const app = request.application;
  const carried = carriedParams(request);
  // Every value of a multi-valued parameter (RFC 8707 `resource`), each as its own hidden field.
  const fields = carried.flatMap((name) => paramValues(ctx.params, name).map((value) => ({ name, value })));
  fields.push({ name: 'csrf_token', value: issueCsrfToken(ctx.req, ctx.res, csrfOptions(ctx, accountId)) });
  const links = [
    { href: app.homepageUrl, label: t('consent.homepage') },
    { href: app.policyUri, label: t('consent.policy') },
    { href: app.tosUri, label: t('consent.tos') },
  ].filter((l): l is { href: string; label: string } => isWebUrl(l.href));
  // Who is signed in, where the user will be sent, each scope described, lasting access (lib/consent.ts).
  const more = await consentPageLocals(ctx, app, consentRequest(request), accountId);
  renderPage(ctx, 'authorize', {
    ...more,
    lang: ctx.methods.locale(),
    title: t('consent.title'),
    lead: t('consent.lead', { name: app.name }),
    // client_id_metadata_documents: a client known only by its URL; its host is what the user can check.
    clientIdHost: app.metadataDocumentHash === null ? null : new URL(app.clientId).host,
    clientIdHostNotice: app.metadataDocumentHash === null ? null : t('consent.clientIdHost'),
    application: { name: app.name, description: app.description, logoUri: isWebUrl(app.logoUri) ? app.logoUri : null },
    links,
    scopesLabel: t('consent.scopesLabel'),
    scopes: request.scopes,
    action: ctx.routePath('authorize'),
    fields,
    approveButton: t('consent.allow'),
    denyButton: t('consent.deny'),
  });
}

/** What the user consents to (lib/consent.ts): scopes, where they are sent, RFC 8707 resources, the OIDC claims request. */
function consentRequest(request: AuthorizationRequest): ConsentRequest {
  return { scopes: request.scopes, redirectUri: request.target.redirectUri, resources: request.fields.resources ?? null, claims: request.fields.claims ?? null };
}

/** The channel of an /authorize error: the client's redirect URI once validated, else the error page. */
async function renderAuthorizeError(ctx: OAuthContext, err: OAuthError): Promise<void> {
  if (ctx.res.headersSent) return;
  const target = validatedRedirects.get(ctx);
  // A forged form is not the client's doing: the user sees it, the client learns nothing.
  if (target === undefined || err.reason === 'csrf_mismatch') return renderErrorPage(ctx, err);
  redirectToClient(ctx, target, { error: err.code, error_description: err.description, state: ctx.params.state, iss: ctx.issuer });
}

/**
 * Default `requireAuthorizableAccount`: the logged-in account, or to the login page and back.
 * A browser gets a 302 to `loginRoute` with `return_to`. A JSON request (`Accept:
 * application/json`) gets 401 `access_denied`, and RFC 9110 §15.5.2 wants a challenge with
 * every 401: the host's login is a page, not an HTTP authentication scheme, so the challenge
 * names it as `WWW-Authenticate: Login realm="<oauthRealm>", login_uri="<the same login URL>"`.
 */
async function requireAuthorizableAccount(ctx: OAuthContext): Promise<string | null> {
  const accountId = ctx.methods.currentAccountId();
  if (accountId !== null) return accountId;
  const login = loginUrl(ctx);
  setNoCache(ctx.res);
  if (wantsJson(ctx.req)) {
    ctx.res.setHeader('WWW-Authenticate', challenge('Login', { realm: ctx.values.oauthRealm, login_uri: login }));
    ctx.res.status(401).json({ error: 'access_denied', error_description: asciiDescription(ctx.values.oauthLoginRequiredMessage) });
    return null;
  }
  ctx.res.redirect(302, login);
  return null;
}

/** `loginRoute` with `return_to`: after a POST, the same request as a GET (the consent page is shown again). */
function loginUrl(ctx: OAuthContext): string {
  const returnTo = ctx.req.method === 'GET' ? ctx.req.originalUrl : `${ctx.routePath('authorize')}?${new URLSearchParams(requestParams(ctx)).toString()}`;
  const login = ctx.values.loginRoute;
  return `${login}${login.includes('?') ? '&' : '?'}return_to=${encodeURIComponent(returnTo)}`;
}

function requestParams(ctx: OAuthContext): [string, string][] {
  const names = [...REQUEST_PARAMS, ...ctx.runtime.extensions<AuthorizationRequestExtension>('authorizationRequest').flatMap((e) => e.parameters)];
  return names.flatMap((n) => paramValues(ctx.params, n).map((v): [string, string] => [n, v]));
}

function wantsJson(req: Request): boolean {
  return req.accepts(['html', 'json']) === 'json';
}

/**
 * grant_type=authorization_code (RFC 6749 §4.1.3), before the transaction: the code of this
 * client, not redeemed, not expired, with the same redirect_uri. It becomes `ctx.grant`, so
 * `beforeToken` sees the grant (its `extra` columns included) it is about to exchange.
 */
async function findRedeemableCode(ctx: TokenContext): Promise<Grant> {
  const code = requireParam(ctx.params, 'code');
  const now = ctx.now();
  const invalid = (reason: OAuthErrorReason) => new OAuthError('invalid_grant', ctx.values.oauthInvalidGrantMessage, { reason });
  const grant = await ctx.store.grants.findByCodeHash(ctx.application.id, ctx.methods.generateTokenHash(code));
  if (!grant || grant.type !== 'authorization_code') throw invalid('unknown_code');
  ctx.grant = grant;
  if (grant.codeRedeemedAt !== null) throw await replayed(ctx, grant, now);
  if (grant.revokedAt !== null) throw invalid('revoked_token');
  if (grant.expiresIn.getTime() <= now.getTime()) throw invalid('expired_code');
  checkRedirectUri(ctx, grant, invalid);
  // RFC 9700 §2.1.1: a public client proves possession of the code with PKCE, or not at all.
  if (ctx.clientAuthMethod === 'none' && grant.codeChallenge === null) throw invalid('pkce_required');
  const checks = ctx.runtime.extensions<CodeExchangeExtension>('codeExchange');
  // A challenge nobody can verify (PKCE disabled since) must not make the code easier to use.
  if (grant.codeChallenge !== null && checks.length === 0) throw invalid('pkce_required');
  for (const check of checks) check.verify(ctx, grant);
  return grant;
}

/**
 * Inside the token transaction: one conditional update redeems the code and writes the tokens.
 * A second redemption revokes what the first one issued (§4.1.2).
 */
async function authorizationCodeGrant(ctx: TokenContext, grant: Grant): Promise<TokenResponse> {
  const now = ctx.now();
  // RFC 8707 §2.2: the token's resources, a subset of those authorized (invalid_target before any write).
  const resources = tokenResources(ctx, grant);
  const access = await newAccessToken(ctx, { grant, scopes: grant.scopes, resources });
  const refresh = newRefreshToken(ctx);
  const redeemed = await ctx.store.grants.redeemCode(grant.id, now, {
    tokenHash: access.accessTokenHash,
    expiresIn: access.expiresIn,
    refreshTokenHash: refresh?.refreshTokenHash ?? null,
    refreshTokenExpiresIn: refresh?.refreshTokenExpiresIn ?? null,
    tokenResources: narrowedResources(grant, resources),
  });
  // Lost a race with another redemption of the same code: that is a replay too.
  if (!redeemed) throw await replayed(ctx, grant, now);
  return tokenResponse(ctx, access.accessToken, grant.scopes, refresh?.refreshToken);
}

/** §4.1.3: the redirect_uri of the authorization request, repeated exactly. */
function checkRedirectUri(ctx: TokenContext, grant: Grant, invalid: (r: OAuthErrorReason) => OAuthError): void {
  const given = ctx.params.redirect_uri;
  if (grant.redirectUri !== null) {
    if (given !== grant.redirectUri) throw invalid('redirect_uri_mismatch');
  } else if (given !== undefined && !ctx.application.redirectUris.includes(given)) {
    throw invalid('redirect_uri_mismatch');
  }
}

/** Revokes the grant (the tokens issued from the code) and keeps that write: §4.1.2, RFC 9700 §4.5. */
async function replayed(ctx: TokenContext, grant: Grant, now: Date): Promise<OAuthError> {
  await ctx.store.grants.revoke(grant.id, now);
  return new OAuthError('invalid_grant', ctx.values.oauthInvalidGrantMessage, { reason: 'code_reused', commit: true });
}
