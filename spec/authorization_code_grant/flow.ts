/**
 * Helpers of the authorization code specs: a test login (the `X-Test-User` header sets
 * `req.user`, as Passport would), the consent round trip, and PKCE pairs.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Express, NextFunction, Request, Response } from 'express';
import type { TestApp } from '../support/build_app';

/** buildApp `setup`: a stand-in for Passport that logs in whoever `X-Test-User` names. */
export function testLogin(app: Express): void {
  app.use(function testUser(req: Request, _res: Response, next: NextFunction) {
    const id = req.get('x-test-user');
    if (id) (req as Request & { user?: { id: string } }).user = { id };
    next();
  });
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function query(params: Record<string, string | undefined>): string {
  const entries = Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined);
  return new URLSearchParams(entries).toString();
}

/** The hidden fields of the consent form, by name. */
export function formFields(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) out[unescapeHtml(m[1]!)] = unescapeHtml(m[2]!);
  return out;
}

export function unescapeHtml(s: string): string {
  return s.replace(/&#34;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** The query parameters of a redirect's Location. */
export function locationParams(location: string | undefined): Record<string, string> {
  if (!location) throw new Error('no Location header');
  return Object.fromEntries(new URL(location, 'http://placeholder').searchParams.entries());
}

/** GET the consent page as `user`, then POST its form with `decision`; returns the POST response (or the GET's redirect when consent is remembered). */
export async function consent(t: TestApp, params: Record<string, string | undefined>, opts: { user?: string; decision?: string; agent?: TestApp['agent'] } = {}) {
  const agent = opts.agent ?? t.agent;
  const user = opts.user ?? 'alice';
  const page = await agent.get(`${t.path('/authorize')}?${query(params)}`).set('X-Test-User', user);
  // Remembered consent (oauthRememberConsent): the account already granted these scopes, so the code comes at once.
  if (page.status === 302 && (opts.decision ?? 'approve') === 'approve' && locationParams(page.headers.location).code) return page;
  if (page.status !== 200) throw new Error(`consent page: ${page.status} ${page.text}`);
  const fields = formFields(page.text);
  return agent
    .post(t.path('/authorize'))
    .set('X-Test-User', user)
    .type('form')
    .send({ ...fields, decision: opts.decision ?? 'approve' });
}

/** A code for `params` (approved by `user`). */
export async function obtainCode(t: TestApp, params: Record<string, string | undefined>, opts: { user?: string; agent?: TestApp['agent'] } = {}): Promise<string> {
  const res = await consent(t, params, opts);
  const code = locationParams(res.headers.location).code;
  if (res.status !== 302 || !code) throw new Error(`no code: ${res.status} ${res.headers.location} ${res.text}`);
  return code;
}

/** What the error page says: its error code and description. */
export function errorPage(html: string): { error: string | undefined; description: string | undefined } {
  const error = /<p class="error"><code>([^<]*)<\/code><\/p>/.exec(html)?.[1];
  const description = /<p class="error-description">([^<]*)<\/p>/.exec(html)?.[1];
  return { error: error === undefined ? undefined : unescapeHtml(error), description: description === undefined ? undefined : unescapeHtml(description) };
}

export const ISSUER = 'https://auth.example.com';
export const PAGE_HEADERS = {
  'x-frame-options': 'DENY',
  'content-security-policy': "frame-ancestors 'none'",
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'content-type': 'text/html; charset=utf-8',
};

/** The headers of a response that `PAGE_HEADERS` names. */
export function pageHeaders(headers: Record<string, string>): Record<string, string | undefined> {
  return Object.fromEntries(Object.keys(PAGE_HEADERS).map((k) => [k, headers[k]]));
}

/** The number of rows in the grants table. */
export async function grantCount(t: TestApp): Promise<number> {
  const [row] = await t.db('oauth_grants').count({ n: '*' });
  return Number((row as { n: unknown }).n);
}
