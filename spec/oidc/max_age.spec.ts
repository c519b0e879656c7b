/**
 * `max_age` and `auth_time` (Core §3.1.2.1, §2) through the fresh-login round trip of
 * lib/prompt.ts: one login for a logged-out user, a marker that cannot be typed in, the POST
 * checked again, and `auth_time` never made up.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { closeAll } from '../support/build_app';
import { formFields, grantCount, query } from '../authorization_code_grant/flow';
import { authParams, ISSUER, locationParams, oidcApp, REDIRECT_URI, tokenRequest, verifyIdToken, type OidcApp } from './support';

afterAll(closeAll);

const T0 = Date.parse('2030-01-01T00:00:00Z');
const LOGIN_REQUIRED = { error: 'login_required', error_description: 'Login required', state: 'xyz', iss: ISSUER };

interface Clocked {
  t: OidcApp;
  clock: { now: number };
}

async function app(options: Record<string, unknown> = {}): Promise<Clocked> {
  const clock = { now: T0 };
  const t = await oidcApp({ now: () => new Date(clock.now), ...options });
  return { t, clock };
}

function authorize(t: OidcApp, params: Record<string, string | undefined>, user: string | null = 'alice') {
  const req = t.agent.get(`${t.path('/authorize')}?${query(authParams(t, params))}`);
  return user === null ? req : req.set('X-Test-User', user);
}

function post(t: OidcApp, fields: Record<string, string>) {
  return t.agent.post(t.path('/authorize')).set('X-Test-User', 'alice').type('form').send({ ...fields, decision: 'approve' });
}

/** The return_to of a login redirect. */
function returnTo(location: string | undefined): string {
  expect(location).toMatch(/^\/login\?/);
  return locationParams(location).return_to!;
}

async function idTokenOf(t: OidcApp, location: string | undefined): Promise<Record<string, unknown>> {
  const token = await tokenRequest(t, { grant_type: 'authorization_code', code: locationParams(location).code!, redirect_uri: REDIRECT_URI });
  expect(token.status).toBe(200);
  return verifyIdToken(t, token.body.id_token, { currentDate: new Date(T0 + 60_000) });
}

describe('oidc › max_age and auth_time', () => {
  it('a logged-out user logs in once (the first login redirect carries the marker); auth_time is when it was sent', async () => {
    const { t, clock } = await app();
    const first = await authorize(t, { max_age: '0' }, null);
    expect(first.status).toBe(302);
    expect(locationParams(first.headers.location).prompt).toBe('login');
    const back = returnTo(first.headers.location);
    expect(new URL(back, 'http://x').searchParams.get('login_requested_at')).toMatch(new RegExp(`^${T0 / 1000}\\.[A-Za-z0-9_-]{43}$`));
    clock.now = T0 + 20_000;
    const page = await t.agent.get(back).set('X-Test-User', 'alice');
    expect(page.status).toBe(200);
    expect(page.text).toContain('id="approve"');
    const code = await post(t, formFields(page.text));
    expect(code.status).toBe(302);
    // The host cannot say when the login happened: after the marker was issued, so auth_time is that time.
    expect((await idTokenOf(t, code.headers.location)).auth_time).toBe(T0 / 1000);
  });

  it('max_age with a marker typed into the URL is login_required: no ID token with a made-up auth_time', async () => {
    const { t } = await app();
    const res = await authorize(t, { max_age: '0', login_requested_at: String(T0 / 1000) });
    expect(res.status).toBe(302);
    expect(locationParams(res.headers.location)).toEqual(LOGIN_REQUIRED);
    expect(await grantCount(t)).toBe(0);
  });

  it('a host reporting a login a day ago: max_age=60 with login_requested_at=0 is login_required', async () => {
    const { t } = await app({ accountAuthenticatedAt: () => new Date(T0 - 86_400_000) });
    const res = await authorize(t, { max_age: '60', login_requested_at: '0' });
    expect(locationParams(res.headers.location)).toEqual(LOGIN_REQUIRED);
  });

  it('without max_age and with a host that cannot say, the ID token has no auth_time', async () => {
    const { t } = await app();
    const page = await authorize(t, {});
    expect(page.status).toBe(200);
    const code = await post(t, formFields(page.text));
    expect(await idTokenOf(t, code.headers.location)).not.toHaveProperty('auth_time');
  });

  it('POST /authorize with max_age=0 added to a consent form without it is login_required and writes nothing', async () => {
    const { t } = await app();
    const page = await authorize(t, {});
    expect(page.status).toBe(200);
    const res = await post(t, { ...formFields(page.text), max_age: '0' });
    expect(res.status).toBe(302);
    expect(locationParams(res.headers.location)).toEqual(LOGIN_REQUIRED);
    expect(await grantCount(t)).toBe(0);
  });

  it('POST /authorize with a host login older than max_age is login_required', async () => {
    let loggedInAt = new Date(T0 - 10_000);
    const { t } = await app({ accountAuthenticatedAt: () => loggedInAt });
    const page = await authorize(t, { max_age: '60' });
    expect(page.status).toBe(200);
    loggedInAt = new Date(T0 - 3_600_000);
    const res = await post(t, formFields(page.text));
    expect(locationParams(res.headers.location)).toEqual(LOGIN_REQUIRED);
  });
});
