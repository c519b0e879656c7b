/**
 * The two response channels of `/authorize` (style.md §7.7): back to the client's redirect URI
 * (RFC 6749 §4.1.2 query, or the OAuth 2.0 Form Post Response Mode page), and the HTML pages
 * shown when there is no validated redirect URI to go back to, or for the consent itself.
 * Only call `redirectToClient` with a redirect URI that was matched against the registration.
 */
import { randomBytes } from 'node:crypto';
import type { OAuthContext } from '../context';
import { asciiDescription, type OAuthError } from '../errors';
import { render } from '../templates';
import type { TranslationVars } from '../translate';
import { setRetryAfter } from './error_handler';
import { setNoCache } from './no_cache';

/** Where an authorization response goes: a registered redirect URI and the response mode. */
export interface ClientRedirect {
  redirectUri: string;
  responseMode: 'query' | 'form_post';
}

interface PageValues {
  oauthTemplatesDir: string | null;
  oauthErrorPageHomeUrl: string | null;
}

/** Headers of every page: never cached, never framed (clickjacking, RFC 6749 §10.13). */
export function setPageHeaders(ctx: OAuthContext, csp = "frame-ancestors 'none'"): void {
  setNoCache(ctx.res);
  ctx.res.setHeader('X-Frame-Options', 'DENY');
  ctx.res.setHeader('Content-Security-Policy', csp);
  ctx.res.setHeader('Referrer-Policy', 'no-referrer');
}

/** Renders a view from `templates/` (or the host's `oauthTemplatesDir`) as the response. */
export function renderPage(ctx: OAuthContext, view: string, locals: Record<string, unknown>, status = 200, csp?: string): void {
  const html = render(view, locals, (ctx.values as unknown as PageValues).oauthTemplatesDir);
  setPageHeaders(ctx, csp);
  ctx.res.status(status).type('html').send(html);
}

/**
 * Sends parameters back to the client: a 302 with them appended to the redirect URI's query
 * (RFC 6749 §4.1.2, keeping the URI's own query), or the auto-submitting form_post page.
 */
export function redirectToClient(ctx: OAuthContext, target: ClientRedirect, params: Record<string, string | undefined>): void {
  const entries = Object.entries(params)
    .filter((e): e is [string, string] => e[1] !== undefined)
    // RFC 6749 §4.1.2.1: error_description is limited to the §5.2 characters, in either response mode.
    .map(([name, value]): [string, string] => [name, name === 'error_description' ? asciiDescription(value) : value]);
  if (target.responseMode === 'form_post') {
    const nonce = randomBytes(16).toString('base64');
    const fields = entries.map(([name, value]) => ({ name, value }));
    const t = (key: string, vars?: TranslationVars): string => ctx.methods.translate(key, vars);
    renderPage(ctx, 'form_post', { lang: ctx.methods.locale(), title: t('formPost.title'), action: target.redirectUri, fields, button: t('formPost.button'), nonce }, 200, `default-src 'none'; script-src 'nonce-${nonce}'; frame-ancestors 'none'`);
    return;
  }
  const query = new URLSearchParams(entries).toString();
  const sep = target.redirectUri.includes('?') ? '&' : '?';
  setNoCache(ctx.res);
  ctx.res.setHeader('Referrer-Policy', 'no-referrer');
  ctx.res.redirect(302, `${target.redirectUri}${sep}${query}`);
}

/**
 * The error page of `/authorize`, for errors that must not (or cannot) go back to the client:
 * the problem in plain words and what the user can do (translated by the error's reason, then
 * its code), the error code and description as sent today, and a link to `oauthErrorPageHomeUrl`.
 * It never links or redirects to the request's redirect URI, which may not be verified.
 */
export function renderErrorPage(ctx: OAuthContext, err: OAuthError): void {
  if (ctx.res.headersSent) return;
  const t = (key: string, vars?: TranslationVars): string => ctx.methods.translate(key, vars);
  // A 503 page says when to come back. The redirect channel sends none: on a 302, Retry-After
  // would ask the browser to wait before following it (RFC 9110 §10.2.3), not the client to retry.
  setRetryAfter(ctx.res, err);
  const homeUrl = (ctx.values as unknown as PageValues).oauthErrorPageHomeUrl;
  renderPage(
    ctx,
    'authorize_error',
    {
      lang: ctx.methods.locale(),
      title: t('errorPage.title'),
      problem: specificText(ctx, 'errorPage.problem', err),
      action: specificText(ctx, 'errorPage.action', err),
      codeLabel: t('errorPage.codeLabel'),
      error: err.code,
      description: err.description ?? '',
      homeUrl: homeUrl !== null && isSafeLink(homeUrl) ? homeUrl : null,
      homeLabel: t('errorPage.home'),
    },
    err.status,
  );
}

/** `<prefix>.<reason>`, else `<prefix>.<code>`, else `<prefix>`: the first key `translate` knows (an unknown key comes back as is). */
function specificText(ctx: OAuthContext, prefix: string, err: OAuthError): string {
  for (const suffix of [err.reason, err.code]) {
    if (suffix === undefined) continue;
    const key = `${prefix}.${suffix}`;
    const text = ctx.methods.translate(key);
    if (text !== key) return text;
  }
  return ctx.methods.translate(prefix);
}

/** A link target that cannot run script: http(s) or a path on this site (not `//host`). */
export function isSafeLink(u: string): boolean {
  return /^https?:\/\//i.test(u) || /^\/(?![/\\])/.test(u);
}

/** Only http(s) URLs of a client become links or images: a `javascript:` homepage must not run on our origin. */
export function isWebUrl(u: string | null | undefined): u is string {
  return typeof u === 'string' && /^https?:\/\//i.test(u);
}
