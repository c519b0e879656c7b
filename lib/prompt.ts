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
 * `return_to` that carries {@link LOGIN_MARKER} = `<Unix seconds it was sent>.<HMAC>`, the HMAC
 * (keyed with `oauthCsrfSecret`, else a per-process key) over that time and a digest of the
 * authorization request, so it cannot be typed in, moved to another request, or re-dated. When
 * the request comes back with it (and on the consent form's POST, which carries it), the login
 * is fresh if the marker verifies, is at most `oauthFreshLoginWindow` seconds old, and
 * `accountAuthenticatedAt`, when the host can say, is at or after the marker's time. When the
 * host cannot say (null), the verified round trip within the window is the proof, and
 * {@link freshLoginAt} dates the login at the marker's time (it happened after it): weaker, since
 * nothing shows the login page was completed; implement `accountAuthenticatedAt`. A marker that
 * does not prove a fresh login is answered `login_required` (to the client), never with another
 * trip to the login, so a login page that sends a signed-in user straight back cannot loop.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { OAuthContext } from './context';
import { constantTimeEqual } from './crypto';
import { asciiDescription, OAuthError } from './errors';
import { setNoCache } from './http/no_cache';
import { paramValues } from './http/params';
import { challenge } from './http/www_authenticate';

export const PROMPT_VALUES = ['none', 'login', 'consent', 'select_account'] as const;
export type Prompt = (typeof PROMPT_VALUES)[number];

/** The `return_to` parameter that records when the user was sent to log in afresh (signed). */
export const LOGIN_MARKER = 'login_requested_at';

/** The marker's HMAC key when `oauthCsrfSecret` is null (markers then die with the process). */
const PROCESS_KEY = randomBytes(32);
const MARKER = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/;
/** The digest of each request's authorization parameters, set by {@link authorizingAccount}. */
const requestDigests = new WeakMap<OAuthContext, string>();
/** The time of the marker a request proved a fresh login with. */
const freshLogins = new WeakMap<OAuthContext, Date>();

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
 * came back from a fresh login that did not happen. `requestParams`: the names of the
 * authorization request's parameters (those the consent form carries), which the marker signs.
 */
export async function authorizingAccount(ctx: OAuthContext, prompts: ReadonlySet<Prompt>, requestParams: readonly string[]): Promise<string | null> {
  requestDigests.set(ctx, requestDigest(ctx, requestParams));
  const current = ctx.methods.currentAccountId();
  const reason = await freshLoginReason(ctx, prompts, current);
  if (reason !== null) {
    if (ctx.params[LOGIN_MARKER] !== undefined) {
      if (current !== null && (await loginIsFresh(ctx))) return current;
      throw loginRequired(ctx);
    }
    if (prompts.has('none')) throw loginRequired(ctx);
    await ctx.methods.requireFreshLogin(reason);
    return null;
  }
  if (current === null && prompts.has('none')) throw loginRequired(ctx);
  return ctx.methods.requireAuthorizableAccount();
}

/**
 * The same decision at the consent form's POST, for `accountId` (signed in): a request that
 * needs a fresh login must carry a marker that still proves one, else `login_required` (the
 * form was for another request, or the window has passed). Never a trip to the login.
 */
export async function confirmAuthorizingAccount(ctx: OAuthContext, prompts: ReadonlySet<Prompt>, requestParams: readonly string[], accountId: string): Promise<void> {
  requestDigests.set(ctx, requestDigest(ctx, requestParams));
  if (prompts.has('none')) throw loginRequired(ctx);
  if ((await freshLoginReason(ctx, prompts, accountId)) === null) return;
  if (ctx.params[LOGIN_MARKER] === undefined || !(await loginIsFresh(ctx))) throw loginRequired(ctx);
}

/**
 * When the fresh login this request proved happened at the earliest: the time its marker was
 * issued (the login came after it). Null when the request proved none.
 */
export function freshLoginAt(ctx: OAuthContext): Date | null {
  return freshLogins.get(ctx) ?? null;
}

/** The signed {@link LOGIN_MARKER} value for this request, sent now. */
export function loginMarker(ctx: OAuthContext): string {
  const seconds = String(Math.floor(ctx.now().getTime() / 1000));
  return `${seconds}.${markerMac(ctx, seconds)}`;
}

function loginRequired(ctx: OAuthContext): OAuthError {
  return new OAuthError('login_required', ctx.values.oauthLoginRequiredMessage, { reason: 'login_required' });
}

/** SHA-256 of the named parameters' values (every value, names sorted), the marker excluded. */
function requestDigest(ctx: OAuthContext, names: readonly string[]): string {
  const sorted = [...new Set(names)].filter((n) => n !== LOGIN_MARKER && n !== 'csrf_token' && n !== 'decision').sort();
  return createHash('sha256').update(JSON.stringify(sorted.map((n) => [n, paramValues(ctx.params, n)]))).digest('base64url');
}

function markerMac(ctx: OAuthContext, seconds: string): string {
  const digest = requestDigests.get(ctx);
  if (digest === undefined) throw new Error('lib/prompt: loginMarker() outside authorizingAccount()');
  return createHmac('sha256', ctx.values.oauthCsrfSecret ?? PROCESS_KEY).update(`oauth-login-marker\0${seconds}\0${digest}`, 'utf8').digest('base64url');
}

async function freshLoginReason(ctx: OAuthContext, prompts: ReadonlySet<Prompt>, accountId: string | null): Promise<FreshLoginReason | null> {
  if (prompts.has('login')) return 'login';
  if (prompts.has('select_account')) return 'select_account';
  for (const ext of ctx.runtime.extensions<AuthorizationLoginExtension>('authorizationLogin')) {
    if (await ext.requiresFreshLogin(ctx, accountId)) return 'extension';
  }
  return null;
}

/** Whether the login the marker asked for happened (see the module comment); records its time. */
async function loginIsFresh(ctx: OAuthContext): Promise<boolean> {
  const m = MARKER.exec(ctx.params[LOGIN_MARKER] ?? '');
  if (!m || !constantTimeEqual(markerMac(ctx, m[1]!), m[2]!)) return false;
  const sentAt = Number(m[1]) * 1000;
  const now = ctx.now().getTime();
  if (sentAt > now + 60_000 || now - sentAt > ctx.values.oauthFreshLoginWindow * 1000) return false;
  const authenticatedAt = await ctx.methods.accountAuthenticatedAt();
  if (authenticatedAt !== null && authenticatedAt.getTime() < sentAt) return false;
  freshLogins.set(ctx, new Date(sentAt));
  return true;
}

/**
 * Default `requireFreshLogin`: to `loginRoute` with `return_to` (this request, marked with
 * {@link LOGIN_MARKER}, see {@link loginMarker}), `prompt` (`login` or `select_account`) and the request's `login_hint`,
 * whether or not a session exists; a JSON request gets the 401 of `requireAuthorizableAccount`.
 */
export function requireFreshLogin(ctx: OAuthContext, reason: FreshLoginReason): void {
  const original = ctx.req.originalUrl;
  const q = original.indexOf('?');
  const query = new URLSearchParams(q < 0 ? '' : original.slice(q + 1));
  query.delete(LOGIN_MARKER);
  query.append(LOGIN_MARKER, loginMarker(ctx));
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
