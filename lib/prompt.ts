/**
 * The `prompt` parameter of `/authorize` (OpenID Connect Core 1.0 §3.1.2.1), shared by the
 * plain OAuth flow and `oidc`: `none` (no page at all: `login_required` / `consent_required`),
 * `login` (a fresh login even with a session), `consent` (the page even when consent is
 * remembered), `select_account` (to the login, which may offer an account chooser).
 *
 * Other features ask for a fresh login through the extension point `authorizationLogin`
 * (e.g. `oidc`'s `max_age`): the request then behaves as with `prompt=login`, and with
 * `prompt=none` it answers `login_required`.
 *
 * How a fresh login is recognised without looping: the user is sent to `loginRoute` with a
 * `return_to` that carries {@link LOGIN_MARKER} = the time (Unix seconds) they were sent. When
 * the request comes back with it, the login is fresh if `accountAuthenticatedAt` says the
 * account logged in at or after that time; when the host cannot say (null), the marker alone
 * counts while it is younger than `oauthFreshLoginWindow`. A marker that does not prove a fresh
 * login is answered `login_required` (to the client), never with another trip to the login, so
 * a login page that sends a signed-in user straight back cannot loop. A marker forged into a
 * request only weakens that request's own `prompt=login`, which only its client could ask for.
 */
import type { OAuthContext } from './context';
import { asciiDescription, OAuthError } from './errors';
import { setNoCache } from './http/no_cache';
import { challenge } from './http/www_authenticate';

export const PROMPT_VALUES = ['none', 'login', 'consent', 'select_account'] as const;
export type Prompt = (typeof PROMPT_VALUES)[number];

/** The `return_to` parameter that records when the user was sent to log in afresh. */
export const LOGIN_MARKER = 'login_requested_at';

/** Why a fresh login is asked for: a `prompt` value, or a contribution to `authorizationLogin`. */
export type FreshLoginReason = 'login' | 'select_account' | 'extension';

/** Extension point `authorizationLogin`: a feature that needs a fresher login than the session's. */
export interface AuthorizationLoginExtension {
  /**
   * Whether this request needs the account to log in again (e.g. `max_age` exceeded, or the
   * login time is unknown). Throws an OAuthError (sent to the client) for a bad parameter.
   */
  requiresFreshLogin(ctx: OAuthContext, accountId: string | null): boolean | Promise<boolean>;
}

/**
 * The `prompt` values of the request, checked: space-separated known values, `none` alone.
 * Throws `invalid_request` (the redirect URI is verified by then, so it goes to the client).
 */
export function parsePrompt(ctx: OAuthContext): ReadonlySet<Prompt> {
  const raw = ctx.params.prompt;
  if (raw === undefined) return new Set();
  const values = raw.split(' ').filter((v) => v !== '');
  const invalid = () => new OAuthError('invalid_request', ctx.values.oauthInvalidPromptMessage, { reason: 'malformed_prompt' });
  for (const v of values) if (!(PROMPT_VALUES as readonly string[]).includes(v)) throw invalid();
  const prompts = new Set(values as Prompt[]);
  if (prompts.has('none') && prompts.size > 1) throw invalid();
  return prompts;
}

/**
 * The account the authorization proceeds with, after `prompt` and `authorizationLogin`: the
 * session's account, or null when the response is already sent (to the login). Throws
 * `login_required` for `prompt=none` without a (fresh enough) login, and for a request that
 * came back from a fresh login that did not happen.
 */
export async function authorizingAccount(ctx: OAuthContext, prompts: ReadonlySet<Prompt>): Promise<string | null> {
  const current = ctx.methods.currentAccountId();
  const reason = await freshLoginReason(ctx, prompts, current);
  const loginRequired = () => new OAuthError('login_required', ctx.values.oauthLoginRequiredMessage, { reason: 'login_required' });
  if (reason !== null) {
    if (ctx.params[LOGIN_MARKER] !== undefined) {
      if (current !== null && (await loginIsFresh(ctx))) return current;
      throw loginRequired();
    }
    if (prompts.has('none')) throw loginRequired();
    await ctx.methods.requireFreshLogin(reason);
    return null;
  }
  if (current === null && prompts.has('none')) throw loginRequired();
  return ctx.methods.requireAuthorizableAccount();
}

async function freshLoginReason(ctx: OAuthContext, prompts: ReadonlySet<Prompt>, accountId: string | null): Promise<FreshLoginReason | null> {
  if (prompts.has('login')) return 'login';
  if (prompts.has('select_account')) return 'select_account';
  for (const ext of ctx.runtime.extensions<AuthorizationLoginExtension>('authorizationLogin')) {
    if (await ext.requiresFreshLogin(ctx, accountId)) return 'extension';
  }
  return null;
}

/** Whether the login the marker asked for happened (see the module comment). */
async function loginIsFresh(ctx: OAuthContext): Promise<boolean> {
  const raw = ctx.params[LOGIN_MARKER];
  if (raw === undefined || !/^\d{1,12}$/.test(raw)) return false;
  const sentAt = Number(raw) * 1000;
  const now = ctx.now().getTime();
  if (sentAt > now + 60_000) return false;
  const authenticatedAt = await ctx.methods.accountAuthenticatedAt();
  if (authenticatedAt !== null) return authenticatedAt.getTime() >= sentAt - 1000;
  return now - sentAt <= ctx.values.oauthFreshLoginWindow * 1000;
}

/**
 * Default `requireFreshLogin`: to `loginRoute` with `return_to` (this request, marked with
 * {@link LOGIN_MARKER}), `prompt` (`login` or `select_account`) and the request's `login_hint`,
 * whether or not a session exists; a JSON request gets the 401 of `requireAuthorizableAccount`.
 */
export function requireFreshLogin(ctx: OAuthContext, reason: FreshLoginReason): void {
  const original = ctx.req.originalUrl;
  const q = original.indexOf('?');
  const query = new URLSearchParams(q < 0 ? '' : original.slice(q + 1));
  query.delete(LOGIN_MARKER);
  query.append(LOGIN_MARKER, String(Math.floor(ctx.now().getTime() / 1000)));
  const returnTo = `${q < 0 ? original : original.slice(0, q)}?${query.toString()}`;
  const params = new URLSearchParams({ return_to: returnTo, prompt: reason === 'select_account' ? 'select_account' : 'login' });
  if (ctx.params.login_hint !== undefined) params.set('login_hint', ctx.params.login_hint);
  const login = ctx.values.loginRoute;
  const url = `${login}${login.includes('?') ? '&' : '?'}${params.toString()}`;
  setNoCache(ctx.res);
  if (ctx.req.accepts(['html', 'json']) === 'json') {
    ctx.res.setHeader('WWW-Authenticate', challenge('Login', { realm: ctx.values.oauthRealm, login_uri: url }));
    ctx.res.status(401).json({ error: 'access_denied', error_description: asciiDescription(ctx.values.oauthLoginRequiredMessage) });
    return;
  }
  ctx.res.redirect(302, url);
}
