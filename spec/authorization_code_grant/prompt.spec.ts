import type { Request } from 'express';
import { defineFeature } from '../../lib/feature';
import { FEATURES } from '../../lib/features';
import authorizationCodeGrant from '../../features/authorization_code_grant';
import type { OAuthContext } from '../../lib/context';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { consent, errorPage, formFields, grantCount, ISSUER, locationParams, query, testLogin } from './flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';
const ISS = encodeURIComponent(ISSUER);
const T0 = Date.parse('2030-01-01T00:00:00Z');

/** A feature contributing to `authorizationLogin`: a fresh login when the request says `needs_fresh=1`. */
const freshLoginFeature = defineFeature({
  id: 'spec_fresh_login',
  doc: 'Spec: asks for a fresh login through authorizationLogin.',
  depends: [authorizationCodeGrant],
  extend: {
    authorizationRequest: { parameters: ['needs_fresh'], validate: () => ({}) },
    authorizationLogin: { requiresFreshLogin: (ctx: OAuthContext) => ctx.params.needs_fresh === '1' },
  },
});
(FEATURES as unknown as Record<string, unknown>).spec_fresh_login = freshLoginFeature;

interface Setup {
  t: TestApp;
  clientId: string;
  clock: { now: number };
}

/** `X-Auth-Time` (ms) stands for the host's record of when the account logged in. */
async function setup(options: Record<string, unknown> = {}): Promise<Setup> {
  const clock = { now: T0 };
  const t = await buildApp(
    {
      enable: ['authorization_code_grant', 'spec_fresh_login'],
      issuer: ISSUER,
      now: () => new Date(clock.now),
      accountAuthenticatedAt: (ctx: { req: Request }) => {
        const at = ctx.req.get('x-auth-time');
        return at === undefined ? null : new Date(Number(at));
      },
      ...options,
    },
    { setup: testLogin },
  );
  const { clientId } = await t.createClient({ redirectUri: [REDIRECT] });
  return { t, clientId, clock };
}

function authorize(s: Setup, params: Record<string, string | undefined>, user: string | null = 'alice') {
  const req = s.t.agent.get(`${s.t.path('/authorize')}?${query({ client_id: s.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: 'st', ...params })}`);
  return user ? req.set('X-Test-User', user) : req;
}

describe('authorization_code_grant › prompt', () => {
  it('prompt=none without a logged-in account redirects login_required to the client, with state and iss', async () => {
    const s = await setup();
    const res = await authorize(s, { prompt: 'none' }, null);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${REDIRECT}?error=login_required&error_description=Login+required&state=st&iss=${ISS}`);
  });

  it('prompt=none with an account that has not consented redirects consent_required and writes nothing', async () => {
    const s = await setup();
    const res = await authorize(s, { prompt: 'none' });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${REDIRECT}?error=consent_required&error_description=Consent+required&state=st&iss=${ISS}`);
    expect(await grantCount(s.t)).toBe(0);
  });

  it('prompt=none with remembered consent issues a code without any page', async () => {
    const s = await setup();
    await consent(s.t, { client_id: s.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read books.write' });
    const res = await authorize(s, { prompt: 'none', scope: 'books.read' });
    expect(res.status).toBe(302);
    const p = locationParams(res.headers.location);
    expect(p).toEqual({ code: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), state: 'st', iss: ISSUER });
    expect(await grantCount(s.t)).toBe(2);
  });

  it('prompt=consent shows the page although consent is remembered', async () => {
    const s = await setup();
    await consent(s.t, { client_id: s.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
    expect((await authorize(s, {})).status).toBe(302);
    const res = await authorize(s, { prompt: 'consent' });
    expect(res.status).toBe(200);
    expect(res.text).toContain('id="approve"');
  });

  it.each([['bogus'], ['none login'], ['consent none'], ['login bogus']])('prompt=%p is invalid_request, sent to the verified redirect URI', async (prompt) => {
    const s = await setup();
    const res = await authorize(s, { prompt });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${REDIRECT}?error=invalid_request&error_description=Unsupported+or+invalid+%27prompt%27&state=st&iss=${ISS}`);
  });

  it('a bad prompt with an unknown redirect URI shows the error page, never redirecting', async () => {
    const s = await setup();
    const res = await authorize(s, { prompt: 'bogus', redirect_uri: 'https://evil.example/cb' });
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(errorPage(res.text).error).toBe('invalid_request');
  });

  it('accepts several known values, and none alone', async () => {
    const s = await setup();
    expect((await authorize(s, { prompt: 'consent' })).status).toBe(200);
    const res = await authorize(s, { prompt: 'login consent' });
    expect(res.status).toBe(302);
    expect(res.headers.location).toMatch(/^\/login\?return_to=/);
  });
});

describe('authorization_code_grant › prompt=login', () => {
  /** The return_to of a login redirect, and the other login parameters. */
  function loginRedirect(location: string | undefined): { returnTo: string; params: Record<string, string> } {
    expect(location).toMatch(/^\/login\?/);
    const params = locationParams(location);
    return { returnTo: params.return_to!, params };
  }

  it('sends a signed-in user to loginRoute with return_to marked with the time, prompt and login_hint', async () => {
    const s = await setup();
    const res = await authorize(s, { prompt: 'login', login_hint: 'alice@example.com' });
    expect(res.status).toBe(302);
    expect(res.headers['cache-control']).toBe('no-store');
    const { returnTo, params } = loginRedirect(res.headers.location);
    expect(params.prompt).toBe('login');
    expect(params.login_hint).toBe('alice@example.com');
    const back = new URL(returnTo, 'http://x');
    expect(back.pathname).toBe(s.t.path('/authorize'));
    expect(back.searchParams.get('prompt')).toBe('login');
    // The time it was sent, and an HMAC over it and the request (lib/prompt.ts): it cannot be typed in.
    expect(back.searchParams.getAll('login_requested_at')).toEqual([expect.stringMatching(new RegExp(`^${T0 / 1000}\\.[A-Za-z0-9_-]{43}$`))]);
  });

  it('coming back within oauthFreshLoginWindow shows the consent page (the host cannot tell the login time)', async () => {
    const s = await setup();
    const { returnTo } = loginRedirect((await authorize(s, { prompt: 'login' })).headers.location);
    s.clock.now = T0 + 30_000;
    const back = await s.t.agent.get(returnTo).set('X-Test-User', 'alice');
    expect(back.status).toBe(200);
    expect(back.text).toContain('id="approve"');
  });

  it('coming back after the window, or with a marker from the future, is login_required (no second trip)', async () => {
    const s = await setup();
    const { returnTo } = loginRedirect((await authorize(s, { prompt: 'login' })).headers.location);
    s.clock.now = T0 + 601_000;
    const late = await s.t.agent.get(returnTo).set('X-Test-User', 'alice');
    expect(late.status).toBe(302);
    expect(late.headers.location).toBe(`${REDIRECT}?error=login_required&error_description=Login+required&state=st&iss=${ISS}`);
    s.clock.now = T0;
    const future = await authorize(s, { prompt: 'login', login_requested_at: String(T0 / 1000 + 3600) });
    expect(locationParams(future.headers.location).error).toBe('login_required');
    const garbage = await authorize(s, { prompt: 'login', login_requested_at: 'yesterday' });
    expect(locationParams(garbage.headers.location).error).toBe('login_required');
  });

  it('with accountAuthenticatedAt: a login after the marker passes, a session older than it is login_required (no loop)', async () => {
    const s = await setup();
    const { returnTo } = loginRedirect((await authorize(s, { prompt: 'login' }).set('X-Auth-Time', String(T0 - 3_600_000))).headers.location);
    const stale = await s.t.agent.get(returnTo).set('X-Test-User', 'alice').set('X-Auth-Time', String(T0 - 3_600_000));
    expect(stale.status).toBe(302);
    expect(locationParams(stale.headers.location).error).toBe('login_required');
    const fresh = await s.t.agent.get(returnTo).set('X-Test-User', 'alice').set('X-Auth-Time', String(T0 + 5_000));
    expect(fresh.status).toBe(200);
    // The window holds with the host's record too: an hour later the marker is spent.
    s.clock.now = T0 + 3_600_000;
    const replayed = await s.t.agent.get(returnTo).set('X-Test-User', 'alice').set('X-Auth-Time', String(T0 + 5_000));
    expect(replayed.headers.location).toBe(`${REDIRECT}?error=login_required&error_description=Login+required&state=st&iss=${ISS}`);
  });

  it('without a session, the login redirect carries the marker too, so one login is enough', async () => {
    const s = await setup();
    const res = await authorize(s, { prompt: 'login' }, null);
    const { returnTo } = loginRedirect(res.headers.location);
    expect(new URL(returnTo, 'http://x').searchParams.get('login_requested_at')).toMatch(new RegExp(`^${T0 / 1000}\\.[A-Za-z0-9_-]{43}$`));
    const back = await s.t.agent.get(returnTo).set('X-Test-User', 'alice');
    expect(back.status).toBe(200);
    // The consent form carries prompt and the marker, and the POST checks them again: the code.
    expect(formFields(back.text)).toMatchObject({ prompt: 'login', login_requested_at: new URL(returnTo, 'http://x').searchParams.get('login_requested_at') });
    const post = await s.t.agent.post(s.t.path('/authorize')).set('X-Test-User', 'alice').type('form').send({ ...formFields(back.text), decision: 'approve' });
    expect(post.status).toBe(302);
    expect(locationParams(post.headers.location)).toEqual({ code: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), state: 'st', iss: ISSUER });
  });

  it('a remembered consent still needs the fresh login, then issues the code', async () => {
    const s = await setup();
    await consent(s.t, { client_id: s.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
    const { returnTo } = loginRedirect((await authorize(s, { prompt: 'login' })).headers.location);
    const back = await s.t.agent.get(returnTo).set('X-Test-User', 'alice');
    expect(back.status).toBe(302);
    expect(locationParams(back.headers.location).code).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('prompt=select_account goes to the login with prompt=select_account', async () => {
    const s = await setup();
    const res = await authorize(s, { prompt: 'select_account' });
    const { returnTo, params } = loginRedirect(res.headers.location);
    expect(params.prompt).toBe('select_account');
    expect((await s.t.agent.get(returnTo).set('X-Test-User', 'bob')).status).toBe(200);
  });

  it('a JSON request gets 401 with the login URL in the challenge', async () => {
    const s = await setup();
    const res = await authorize(s, { prompt: 'login' }).set('Accept', 'application/json');
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'access_denied', error_description: 'Login required' });
    expect(res.headers['www-authenticate']).toMatch(/^Login realm="[^"]*", login_uri="\/login\?return_to=[^"]*login_requested_at[^"]*&prompt=login"$/);
  });

  it('requireFreshLogin can be overridden (the host forces re-authentication its own way)', async () => {
    const reasons: string[] = [];
    const s = await setup({
      requireFreshLogin: (ctx: { res: { status(n: number): { send(b: string): void } } }, reason: string) => {
        reasons.push(reason);
        ctx.res.status(403).send('step up');
      },
    });
    const res = await authorize(s, { prompt: 'login' });
    expect(res.status).toBe(403);
    expect(res.text).toBe('step up');
    expect(reasons).toEqual(['login']);
  });
});

describe('authorization_code_grant › the fresh-login marker cannot be forged or replayed', () => {
  const LOGIN_REQUIRED = `${REDIRECT}?error=login_required&error_description=Login+required&state=st&iss=${ISS}`;

  it('a marker typed into the URL (the time, no signature) is login_required, never the consent page', async () => {
    const s = await setup();
    const res = await authorize(s, { prompt: 'login', login_requested_at: String(T0 / 1000) });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(LOGIN_REQUIRED);
    const extension = await authorize(s, { needs_fresh: '1', login_requested_at: String(T0 / 1000) });
    expect(extension.headers.location).toBe(LOGIN_REQUIRED);
  });

  it('a marker of 0 with a host that reports a login a day ago is login_required', async () => {
    const s = await setup();
    const res = await authorize(s, { prompt: 'login', login_requested_at: '0' }).set('X-Auth-Time', String(T0 - 86_400_000));
    expect(res.headers.location).toBe(LOGIN_REQUIRED);
  });

  it('a signed marker with its time or signature altered is login_required', async () => {
    const s = await setup();
    const marker = new URL(locationParams((await authorize(s, { prompt: 'login' })).headers.location).return_to!, 'http://x').searchParams.get('login_requested_at')!;
    const [time, mac] = marker.split('.');
    const earlier = await authorize(s, { prompt: 'login', login_requested_at: `${Number(time) - 86_400}.${mac}` }).set('X-Auth-Time', String(T0 - 3_600_000));
    expect(earlier.headers.location).toBe(LOGIN_REQUIRED);
    const flipped = `${time}.${mac!.startsWith('A') ? 'B' : 'A'}${mac!.slice(1)}`;
    expect((await authorize(s, { prompt: 'login', login_requested_at: flipped })).headers.location).toBe(LOGIN_REQUIRED);
    // Unaltered, the same marker passes: the refusals above are the signature's.
    expect((await authorize(s, { prompt: 'login', login_requested_at: marker })).status).toBe(200);
  });

  it('a marker older than the host\'s login time is login_required', async () => {
    const s = await setup();
    const { return_to: returnTo } = locationParams((await authorize(s, { prompt: 'login' })).headers.location);
    s.clock.now = T0 + 10_000;
    const res = await s.t.agent.get(returnTo!).set('X-Test-User', 'alice').set('X-Auth-Time', String(T0 - 1_000));
    expect(res.headers.location).toBe(LOGIN_REQUIRED);
  });

  it('a marker signed for another request is login_required', async () => {
    const s = await setup();
    const marker = new URL(locationParams((await authorize(s, { prompt: 'login', scope: 'books.read' })).headers.location).return_to!, 'http://x').searchParams.get('login_requested_at')!;
    const other = await authorize(s, { prompt: 'login', scope: 'books.write', login_requested_at: marker });
    expect(other.headers.location).toBe(LOGIN_REQUIRED);
  });

  it('a marker replayed beyond oauthFreshLoginWindow is login_required (default host)', async () => {
    const s = await setup({ oauthFreshLoginWindow: 60 });
    const { return_to: returnTo } = locationParams((await authorize(s, { prompt: 'login' })).headers.location);
    s.clock.now = T0 + 59_000;
    expect((await s.t.agent.get(returnTo!).set('X-Test-User', 'alice')).status).toBe(200);
    s.clock.now = T0 + 61_000;
    expect((await s.t.agent.get(returnTo!).set('X-Test-User', 'alice')).headers.location).toBe(LOGIN_REQUIRED);
  });

  it('POST /authorize with prompt=login added to a consent form is login_required and writes nothing', async () => {
    const s = await setup();
    const page = await authorize(s, {});
    expect(page.status).toBe(200);
    const fields = formFields(page.text);
    for (const extra of [{ prompt: 'login' }, { needs_fresh: '1' }, { prompt: 'login', login_requested_at: String(T0 / 1000) }]) {
      const post = await s.t.agent.post(s.t.path('/authorize')).set('X-Test-User', 'alice').type('form').send({ ...fields, ...extra, decision: 'approve' });
      expect(post.status).toBe(302);
      expect(post.headers.location).toBe(LOGIN_REQUIRED);
    }
    expect(await grantCount(s.t)).toBe(0);
  });

  it('POST /authorize after the window has passed since the fresh login is login_required', async () => {
    const s = await setup();
    const { return_to: returnTo } = locationParams((await authorize(s, { prompt: 'login' })).headers.location);
    const back = await s.t.agent.get(returnTo!).set('X-Test-User', 'alice');
    expect(back.status).toBe(200);
    s.clock.now = T0 + 601_000;
    const post = await s.t.agent.post(s.t.path('/authorize')).set('X-Test-User', 'alice').type('form').send({ ...formFields(back.text), decision: 'approve' });
    expect(post.headers.location).toBe(LOGIN_REQUIRED);
    expect(await grantCount(s.t)).toBe(0);
  });
});

describe('authorization_code_grant › authorizationLogin extension point', () => {
  it('a contribution asking for a fresh login behaves as prompt=login', async () => {
    const s = await setup();
    const res = await authorize(s, { needs_fresh: '1' });
    expect(res.status).toBe(302);
    const params = locationParams(res.headers.location);
    expect(params.prompt).toBe('login');
    const back = await s.t.agent.get(params.return_to!).set('X-Test-User', 'alice');
    expect(back.status).toBe(200);
  });

  it('with prompt=none it answers login_required', async () => {
    const s = await setup();
    const res = await authorize(s, { needs_fresh: '1', prompt: 'none' });
    expect(res.headers.location).toBe(`${REDIRECT}?error=login_required&error_description=Login+required&state=st&iss=${ISS}`);
  });

  it('no contribution asking: the session is enough', async () => {
    const s = await setup();
    expect((await authorize(s, { needs_fresh: '0' })).status).toBe(200);
  });
});
