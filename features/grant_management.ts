/**
 * The signed-in user's own page of the applications they have authorized (rodauth-oauth's
 * `oauth_grant_management`; Google's and GitHub's "authorized apps"): `GET /oauth-grants` lists
 * them (name, logo, scopes with their descriptions, when first granted, when last used), one
 * entry per application combining its live grants; a CSRF-protected Revoke (`POST`, or `DELETE`
 * from a script) revokes every grant of this account with that application, and so all their
 * codes, access and refresh tokens (the grant row carries them, RFC 7009 §2.1), in one UPDATE.
 * A JSON variant serves single-page apps. "Last used" is when a grant last issued tokens (code
 * exchange, refresh), written by the statement that issues them: protected requests, the hot
 * path, write nothing.
 */
import type { Request } from 'express';
import type { OAuthContext } from '../lib/context';
import { defineFeature, method, value, type MethodsOf, type ValuesOf } from '../lib/feature';
import { asciiDescription, OAuthError } from '../lib/errors';
import { issueCsrfToken, verifyCsrfToken, type CsrfOptions } from '../lib/csrf';
import { setNoCache } from '../lib/http/no_cache';
import { isSafeLink, isWebUrl, renderErrorPage, renderPage } from '../lib/http/redirect';
import { challenge } from '../lib/http/www_authenticate';
import type { AccountApplicationGrants, Application } from '../lib/store';
import type { TranslationTable, TranslationVars } from '../lib/translate';
import authorizationCodeGrant from './authorization_code_grant';
import tokenRevocation from './token_revocation';

/** The English texts of the page, by `translate` key (contributed to the `translations` point). */
const TRANSLATIONS: TranslationTable = {
  'grants.title': 'Your authorized applications',
  'grants.lead': 'These applications can access your account. Revoke access for any you no longer use or trust.',
  'grants.signedInAs': 'Signed in as {account}',
  'grants.empty': 'You have not authorized any application.',
  'grants.scopesLabel': 'Access',
  'grants.noScopes': 'Only knowing that you approved',
  'grants.grantedAt': 'Authorized',
  'grants.lastUsedAt': 'Last used',
  'grants.neverUsed': 'Not used yet',
  'grants.homepage': 'Homepage',
  'grants.revoke': 'Revoke access',
  'grants.revokeLabel': 'Revoke access for {name}',
  'grants.revoked': 'You revoked the access of {name}. It can no longer use your account unless you authorize it again.',
  'grants.error.csrf_mismatch': 'This form has expired or was not sent from this page. Nothing was revoked; please try again.',
  'grants.error.unknown_grant': 'This application is not among the applications you have authorized (its access may already be revoked). Nothing was changed.',
  'grants.error.missing_parameter': 'No application was named. Nothing was changed.',
  'grants.error': 'The request could not be completed. Nothing was changed.',
  'grants.home': 'Back to the home page',
};

const values = {
  // (b) lifetimes and limits
  oauthGrantsPageLimit: value(1000, 'The most applications the grants page lists (each combines all of its grants with the account).'),
  // (c) policy
  oauthGrantsPageHomeUrl: value<string | null>('/', 'Where the grants page links back to ("Back to the home page", translate key `grants.home`): an http(s) URL or a path of this site; null: no link.', 'nullable-string'),
  // (d) messages
  oauthGrantsUnknownApplicationMessage: value(
    'This account has authorized no application with this client_id',
    'error_description (JSON) of a revoke naming an unknown client_id, or an application this account has no live grant with (another account\'s grants are never touched).',
  ),
};

const methods = {
  formatGrantDate: method(
    (ctx: OAuthContext, date: Date): string => {
      const options: Intl.DateTimeFormatOptions = { year: 'numeric', month: 'long', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZone: 'UTC', timeZoneName: 'short' };
      try {
        return new Intl.DateTimeFormat(ctx.methods.locale(), options).format(date);
      } catch {
        // A locale tag Intl does not take: the default language's format.
        return new Intl.DateTimeFormat('en', options).format(date);
      }
    },
    'How the grants page writes a date ("Authorized", "Last used"): the `locale` language, UTC. Override to show the account\'s own time zone.',
  ),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
  interface OAuthMethods extends MethodsOf<typeof methods> {}
}

export default defineFeature({
  id: 'grant_management',
  doc: "The signed-in user's authorized applications, with revoke (GET/POST/DELETE /oauth-grants).",
  depends: [authorizationCodeGrant, tokenRevocation],
  values,
  methods,
  hooks: ['beforeRevokeGrants', 'afterRevokeGrants'],
  routes: [
    { name: 'oauth_grants', method: 'get', handler: grantsRoute, renderError: renderGrantsError },
    { name: 'oauth_grants', method: 'post', handler: revokeGrantsRoute, renderError: renderGrantsError },
    // A script's revoke: `DELETE /oauth-grants?client_id=…` with the X-CSRF-Token header.
    { name: 'oauth_grants', method: 'delete', body: false, query: true, handler: revokeGrantsRoute, renderError: renderGrantsError },
  ],
  extend: { translations: TRANSLATIONS },
});

/** The header a script sends the CSRF token of the JSON list in. */
const CSRF_HEADER = 'x-csrf-token';

/** One application on the page (template variable `applications`), and in the JSON list. */
interface ListedApplication {
  clientId: string;
  name: string;
  description: string | null;
  /** Only http(s) URLs, so a `javascript:` URL never becomes a link or an image. */
  logoUri: string | null;
  homepageUrl: string | null;
  /** `description`: the scope's text (`translate('scope.<scope>')`), null when it has none. */
  scopes: { scope: string; description: string | null }[];
  grantedAt: { iso: string; text: string } | null;
  lastUsedAt: { iso: string; text: string } | null;
}

/**
 * GET: login (as /authorize) → the account's applications → the page, or the JSON list with
 * the CSRF token a script sends back to revoke.
 */
async function grantsRoute(ctx: OAuthContext): Promise<void> {
  const accountId = await ctx.methods.requireAuthorizableAccount();
  if (accountId === null) return;
  ctx.accountId = accountId;
  const listed = await listApplications(ctx, accountId);
  const csrfToken = issueCsrfToken(ctx.req, ctx.res, csrfOptions(ctx, accountId));
  if (wantsJson(ctx.req)) {
    setNoCache(ctx.res);
    ctx.res.status(200).json({ applications: listed.map(toJson), csrf_token: csrfToken });
    return;
  }
  const notice = await revokedNotice(ctx, accountId, listed);
  renderGrantsPage(ctx, listed, csrfToken, { notice, accountName: await accountName(ctx, accountId) });
}

/**
 * POST (the page's form, or JSON) and DELETE (scripts): login → CSRF token bound to the account
 * → the named application → transaction(beforeRevokeGrants, revoke every live grant of this
 * account with it, afterRevokeGrants) → 303 back to the page with a notice, or JSON.
 */
async function revokeGrantsRoute(ctx: OAuthContext): Promise<void> {
  const accountId = ctx.methods.currentAccountId();
  if (accountId === null) return loginFirst(ctx);
  ctx.accountId = accountId;
  // A script sends the token in a header (DELETE: only there, never in a URL that logs keep); the form, as a field.
  const presented = ctx.req.get(CSRF_HEADER) ?? (ctx.req.method === 'DELETE' ? undefined : ctx.params.csrf_token);
  if (!verifyCsrfToken(ctx.req, csrfOptions(ctx, accountId), presented)) {
    // A forged or stale form: 403, whatever it names (so it learns nothing about the account).
    throw new OAuthError('access_denied', ctx.values.oauthInvalidCsrfTokenMessage, { status: 403, reason: 'csrf_mismatch' });
  }
  const clientId = ctx.params.client_id;
  if (clientId === undefined) throw new OAuthError('invalid_request', "Missing 'client_id'", { reason: 'missing_parameter' });
  const application = await ctx.store.applications.findByClientId(clientId);
  const unknown = () => new OAuthError('invalid_request', ctx.values.oauthGrantsUnknownApplicationMessage, { reason: 'unknown_grant' });
  if (!application) throw unknown();
  ctx.application = application;
  const revoked = await ctx.transaction(async () => {
    await ctx.hook('beforeRevokeGrants');
    // One UPDATE of this account's unrevoked grants with the application: their codes, access and
    // refresh tokens die together. Another account's grants cannot match.
    const count = await ctx.store.grants.revokeMatching({ applicationId: application.id, accountId }, ctx.now());
    // Nothing of this account's to revoke (never authorized, or already revoked): an error, and nothing changed.
    if (count === 0) throw unknown();
    await ctx.hook('afterRevokeGrants');
    return count;
  });
  setNoCache(ctx.res);
  if (answersJson(ctx)) {
    ctx.res.status(200).json({ client_id: application.clientId, revoked_grants: revoked });
    return;
  }
  // RFC 9110 §15.4.4: 303 makes the browser GET the page, so a reload does not post again. The
  // notice is signed for this browser and account: a crafted link cannot show one.
  const notice = issueCsrfToken(ctx.req, ctx.res, noticeOptions(ctx, accountId, application.clientId));
  ctx.res.redirect(303, `${ctx.routePath('oauth_grants')}?revoked=${encodeURIComponent(application.clientId)}&notice=${notice}`);
}

/** The account's applications as the page and the JSON list show them. */
async function listApplications(ctx: OAuthContext, accountId: string): Promise<ListedApplication[]> {
  // Several rows: the store reads them inside a (short, read-only) transaction.
  const entries = await ctx.transaction(() => ctx.store.grants.listApplicationsOfAccount(accountId, ctx.values.oauthGrantsPageLimit));
  return entries.map((entry) => listed(ctx, entry));
}

function listed(ctx: OAuthContext, entry: AccountApplicationGrants): ListedApplication {
  const t = (key: string, vars?: TranslationVars) => ctx.methods.translate(key, vars);
  const when = (d: Date | null) => (d === null ? null : { iso: d.toISOString(), text: ctx.methods.formatGrantDate(d) });
  const app = entry.application;
  return {
    clientId: app.clientId,
    name: app.name,
    description: app.description,
    logoUri: isWebUrl(app.logoUri) ? app.logoUri : null,
    homepageUrl: isWebUrl(app.homepageUrl) ? app.homepageUrl : null,
    // `scope.<scope>`: the oauthScopeDescriptions text (or the host's translation); the default
    // answers the scope itself for a scope without one.
    scopes: entry.scopes.map((scope) => {
      const text = t(`scope.${scope}`);
      return { scope, description: text === scope ? null : text };
    }),
    grantedAt: when(entry.firstGrantedAt),
    lastUsedAt: when(entry.lastUsedAt),
  };
}

/** The JSON shape: snake_case members, RFC 3339 times. */
function toJson(a: ListedApplication): Record<string, unknown> {
  return {
    client_id: a.clientId,
    name: a.name,
    description: a.description,
    logo_uri: a.logoUri,
    homepage_url: a.homepageUrl,
    scopes: a.scopes,
    granted_at: a.grantedAt?.iso ?? null,
    last_used_at: a.lastUsedAt?.iso ?? null,
  };
}

/**
 * After a revoke, `?revoked=<client_id>&notice=<signature>` names the application. The notice is
 * shown only with the signature the revoke issued (HMAC of this browser's CSRF nonce, the account
 * and the client id: lib/csrf.ts), and only for a real application the account no longer lists,
 * so a crafted link (say to an application named "Security alert: call …") shows nothing.
 */
async function revokedNotice(ctx: OAuthContext, accountId: string, listed: ListedApplication[]): Promise<string | null> {
  const clientId = ctx.params.revoked;
  if (clientId === undefined || listed.some((a) => a.clientId === clientId)) return null;
  if (!verifyCsrfToken(ctx.req, noticeOptions(ctx, accountId, clientId), ctx.params.notice)) return null;
  const application: Application | undefined = await ctx.store.applications.findByClientId(clientId);
  return application ? ctx.methods.translate('grants.revoked', { name: application.name }) : null;
}

interface PageMessages {
  notice?: string | null;
  error?: string | null;
  /** How the page greets the account (`accountName`). */
  accountName: string;
}

function renderGrantsPage(ctx: OAuthContext, applications: ListedApplication[], csrfToken: string, messages: PageMessages, status = 200): void {
  const t = (key: string, vars?: TranslationVars) => ctx.methods.translate(key, vars);
  const homeUrl = ctx.values.oauthGrantsPageHomeUrl;
  renderPage(
    ctx,
    'oauth_grants',
    {
      lang: ctx.methods.locale(),
      title: t('grants.title'),
      lead: t('grants.lead'),
      signedInAs: t('grants.signedInAs', { account: messages.accountName }),
      notice: messages.notice ?? null,
      error: messages.error ?? null,
      emptyText: t('grants.empty'),
      labels: {
        scopes: t('grants.scopesLabel'),
        noScopes: t('grants.noScopes'),
        grantedAt: t('grants.grantedAt'),
        lastUsedAt: t('grants.lastUsedAt'),
        neverUsed: t('grants.neverUsed'),
        homepage: t('grants.homepage'),
        revoke: t('grants.revoke'),
      },
      applications: applications.map((a) => ({ ...a, revokeLabel: t('grants.revokeLabel', { name: a.name }) })),
      action: ctx.routePath('oauth_grants'),
      csrfToken,
      homeUrl: homeUrl !== null && isSafeLink(homeUrl) ? homeUrl : null,
      homeLabel: t('grants.home'),
    },
    status,
  );
}

/** The name the page greets the account by: `accountDisplayName` (which may be async) where the consent page has one, else the id. */
async function accountName(ctx: OAuthContext, accountId: string): Promise<string> {
  const m = ctx.methods as unknown as { accountDisplayName?: (id: string) => unknown };
  const name = typeof m.accountDisplayName === 'function' ? await m.accountDisplayName(accountId) : undefined;
  return typeof name === 'string' && name !== '' ? name : accountId;
}

/**
 * A failed revoke: JSON for scripts; on the page, the list as it is (nothing changed) with the
 * problem above it and the error's status (403 for a bad CSRF token, 400 otherwise). Without a
 * signed-in account, or when the list itself cannot be read, the generic error page.
 */
async function renderGrantsError(ctx: OAuthContext, err: OAuthError): Promise<void> {
  if (ctx.res.headersSent) return;
  if (answersJson(ctx)) {
    setNoCache(ctx.res);
    ctx.res.status(err.status).json({ error: err.code, error_description: asciiDescription(err.description ?? '') });
    return;
  }
  const accountId = ctx.accountId ?? null;
  if (accountId === null || err.status >= 500) return renderErrorPage(ctx, err);
  const t = (key: string, vars?: TranslationVars) => ctx.methods.translate(key, vars);
  const key = `grants.error.${err.reason ?? ''}`;
  const message = t(key) === key ? t('grants.error') : t(key);
  let applications: ListedApplication[];
  try {
    applications = await listApplications(ctx, accountId);
  } catch {
    return renderErrorPage(ctx, err);
  }
  renderGrantsPage(ctx, applications, issueCsrfToken(ctx.req, ctx.res, csrfOptions(ctx, accountId)), { error: message, accountName: await accountName(ctx, accountId) }, err.status);
}

/** A revoke without a signed-in account: a script gets 401 (as `requireAuthorizableAccount` answers it); a browser, the page, which sends it to log in. */
function loginFirst(ctx: OAuthContext): void {
  setNoCache(ctx.res);
  const page = ctx.routePath('oauth_grants');
  if (answersJson(ctx)) {
    const login = ctx.values.loginRoute;
    const loginUri = `${login}${login.includes('?') ? '&' : '?'}return_to=${encodeURIComponent(page)}`;
    ctx.res.setHeader('WWW-Authenticate', challenge('Login', { realm: ctx.values.oauthRealm, login_uri: loginUri }));
    ctx.res.status(401).json({ error: 'access_denied', error_description: asciiDescription(ctx.values.oauthLoginRequiredMessage) });
    return;
  }
  // Nothing is revoked: after logging in the user sees the page and can revoke from there.
  ctx.res.redirect(303, page);
}

/**
 * The CSRF token of the page's forms and of the JSON list (lib/csrf.ts): bound to the session or
 * the cookie, and to the account, with a binding of its own so a consent form's token does not
 * revoke. The cookie (without a host session) is scoped to this route's path.
 */
function csrfOptions(ctx: OAuthContext, accountId: string): CsrfOptions {
  return {
    secret: ctx.values.oauthCsrfSecret,
    cookieName: ctx.values.oauthCsrfCookieName,
    cookiePath: ctx.routePath('oauth_grants'),
    binding: `oauth_grants\0${accountId}`,
    httpsIssuer: /^https:\/\//i.test(ctx.issuer),
  };
}

/** The signature of a revoke's notice: the same nonce, bound to the account and the revoked client. */
function noticeOptions(ctx: OAuthContext, accountId: string, clientId: string): CsrfOptions {
  const options = csrfOptions(ctx, accountId);
  return { ...options, binding: `oauth_grants_notice\0${accountId}\0${clientId}` };
}

function wantsJson(req: Request): boolean {
  return req.accepts(['html', 'json']) === 'json';
}

/** Whether a revoke (or its error) is answered in JSON: DELETE, a JSON body, the header token, or Accept. */
function answersJson(ctx: OAuthContext): boolean {
  const req = ctx.req;
  return req.method === 'DELETE' || req.is('application/json') === 'application/json' || req.get(CSRF_HEADER) !== undefined || wantsJson(req);
}
