/**
 * Helpers of the grant_management specs: an app with the grants page, test logins (the
 * `X-Test-User` header), a moveable clock, the code flow up to tokens, and readers of the page.
 */
import request from 'supertest';
import { basic, browseAsHttps, buildApp, type TestApp } from '../support/build_app';
import { formFields, ISSUER, locationParams, query, testLogin, unescapeHtml } from '../authorization_code_grant/flow';

export { ISSUER };
export const REDIRECT = 'https://client.example/cb';

export const SCOPE_DESCRIPTIONS = { 'books.read': 'Read your books', 'books.write': 'Add and change your books' };

export interface Clock {
  now: () => Date;
  advance(seconds: number): void;
}

export function testClock(start = Date.UTC(2026, 0, 15, 9, 30)): Clock {
  let t = start;
  return { now: () => new Date(t), advance: (s) => void (t += s * 1000) };
}

export interface GrantsApp extends TestApp {
  clock: Clock;
  /** Registers a confidential client for the code flow and refresh. */
  client(name: string, extra?: Record<string, unknown>): Promise<{ clientId: string; clientSecret: string; id: number }>;
}

export async function setup(options: Record<string, unknown> = {}): Promise<GrantsApp> {
  const clock = testClock();
  const t = await buildApp({ enable: ['grant_management', 'refresh'], issuer: ISSUER, oauthScopeDescriptions: SCOPE_DESCRIPTIONS, now: clock.now, ...options }, { setup: testLogin });
  return Object.assign(t, {
    clock,
    client: (name: string, extra: Record<string, unknown> = {}) => t.createClient({ name, redirectUri: [REDIRECT], ...extra }),
  });
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  scope: string;
}

/** `user` authorizes the client for `scope` (consent page, code, token exchange) in a browser of its own. */
export async function authorize(t: TestApp, client: { clientId: string; clientSecret: string }, user: string, scope = 'books.read'): Promise<Tokens> {
  const code = await authorizationCode(t, client.clientId, user, scope);
  const res = await request(t.app)
    .post(t.path('/token'))
    .set('Authorization', basic(client.clientId, client.clientSecret))
    .type('form')
    .send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${res.text}`);
  return res.body as Tokens;
}

/**
 * A code for `user`: the consent page approved, or straight away when the server remembers the
 * consent (a browser of its own, so the page's CSRF cookie is this user's).
 */
export async function authorizationCode(t: TestApp, clientId: string, user: string, scope: string): Promise<string> {
  const browser = newBrowser(t);
  const params = { response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope, state: 's' };
  let res = await browser.get(`${t.path('/authorize')}?${query(params)}`).set('X-Test-User', user);
  if (res.status === 200) res = await browser.post(t.path('/authorize')).set('X-Test-User', user).type('form').send({ ...formFields(res.text), decision: 'approve' });
  const code = res.status === 302 ? locationParams(res.headers.location).code : undefined;
  if (!code) throw new Error(`no code: ${res.status} ${res.headers.location} ${res.text}`);
  return code;
}

/** Another browser (its own cookies), reaching the https issuer through its TLS-ending proxy. */
export function newBrowser(t: TestApp): TestApp['agent'] {
  const agent = request.agent(t.app);
  browseAsHttps(agent);
  return agent;
}

export function refresh(t: TestApp, client: { clientId: string; clientSecret: string }, refreshToken: string) {
  return request(t.app).post(t.path('/token')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ grant_type: 'refresh_token', refresh_token: refreshToken });
}

export function apiMe(t: TestApp, accessToken: string) {
  return request(t.app).get('/api/me').set('Authorization', `Bearer ${accessToken}`);
}

/** The grants page as `user` in `agent`'s browser. */
export function page(t: TestApp, user: string, agent = t.agent, query = '') {
  return agent.get(`${t.path('/oauth-grants')}${query}`).set('X-Test-User', user);
}

/** The JSON list as `user`. */
export function jsonList(t: TestApp, user: string, agent = t.agent) {
  return agent.get(t.path('/oauth-grants')).set('X-Test-User', user).set('Accept', 'application/json');
}

/** One application of the page, as the template renders it. */
export interface PageApplication {
  clientId: string;
  name: string;
  scopes: string[];
  grantedAt: string | null;
  lastUsedAt: string | null;
  revokeLabel: string;
}

/** The applications the page lists, read from its markup (unescaped text). */
export function listedApplications(html: string): PageApplication[] {
  return [...html.matchAll(/<li class="application"[^>]*data-client-id="([^"]*)">([\s\S]*?)<\/form>\s*<\/li>/g)].map((m) => {
    const body = m[2]!;
    const scopes = [...(/<ul class="scopes">([\s\S]*?)<\/ul>/.exec(body)?.[1] ?? '').matchAll(/<li>([\s\S]*?)<\/li>/g)].map((s) => unescapeHtml(s[1]!.replace(/<[^>]*>/g, '')));
    return {
      clientId: unescapeHtml(m[1]!),
      name: unescapeHtml(/<h2 id="[^"]*">([^<]*)<\/h2>/.exec(body)?.[1] ?? ''),
      scopes,
      grantedAt: /<time class="granted-at" datetime="([^"]*)">/.exec(body)?.[1] ?? null,
      lastUsedAt: /<time class="last-used-at" datetime="([^"]*)">/.exec(body)?.[1] ?? null,
      revokeLabel: unescapeHtml(/aria-label="([^"]*)"/.exec(body)?.[1] ?? ''),
    };
  });
}

/** The CSRF token of the page's revoke forms. */
export function csrfOf(html: string): string {
  const token = /name="csrf_token" value="([^"]*)"/.exec(html)?.[1];
  if (!token) throw new Error('no CSRF token on the page');
  return unescapeHtml(token);
}

/** The text of the element with this id, unescaped. */
export function textOf(html: string, id: string): string | undefined {
  const m = new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(html);
  return m ? unescapeHtml(m[1]!) : undefined;
}

/** POSTs the page's revoke form for `clientId` as `user`. */
export function revoke(t: TestApp, user: string, clientId: string, csrfToken: string | undefined, agent = t.agent) {
  const form: Record<string, string> = { client_id: clientId };
  if (csrfToken !== undefined) form.csrf_token = csrfToken;
  return agent.post(t.path('/oauth-grants')).set('X-Test-User', user).type('form').send(form);
}

/** The grants of a client as stored: account and whether revoked. */
export async function grantsOf(t: TestApp, applicationId: number): Promise<{ account: string | null; revoked: boolean }[]> {
  const rows = (await t.db('oauth_grants').where({ oauth_application_id: applicationId }).orderBy('id')) as Record<string, unknown>[];
  return rows.map((r) => ({ account: r.account_id === null ? null : String(r.account_id), revoked: r.revoked_at !== null }));
}
