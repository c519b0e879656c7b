import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { errorPage, grantCount, ISSUER, PAGE_HEADERS, pageHeaders, query, testLogin } from './flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';

async function setup(options: Record<string, unknown> = {}): Promise<{ t: TestApp; clientId: string }> {
  const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER, ...options }, { setup: testLogin });
  const { clientId } = await t.createClient({ redirectUri: [REDIRECT] });
  return { t, clientId };
}

function authorize(t: TestApp, params: Record<string, string | undefined>, user: string | null = 'alice') {
  const req = t.agent.get(`${t.path('/authorize')}?${query(params)}`);
  return user ? req.set('X-Test-User', user) : req;
}

describe('authorization_code_grant › authorize request', () => {
  describe('client_id and redirect_uri: the error page, never a redirect (RFC 6749 §4.1.2.1)', () => {
    it('shows the error page for an unknown client_id', async () => {
      const { t } = await setup();
      const res = await authorize(t, { client_id: 'nope', redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: 's' });
      expect(res.status).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(pageHeaders(res.headers)).toEqual(PAGE_HEADERS);
      expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Invalid or missing 'client_id'" });
    });

    it('shows the error page when client_id is missing', async () => {
      const { t } = await setup();
      const res = await authorize(t, { redirect_uri: REDIRECT, response_type: 'code' });
      expect(res.status).toBe(400);
      expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Invalid or missing 'client_id'" });
    });

    it.each([
      ['an unregistered host', 'https://evil.example/cb'],
      ['a fragment', `${REDIRECT}#frag`],
      ['a javascript: URI', 'javascript:alert(1)'],
      ['a different port on a non-loopback host', 'https://client.example:8443/cb'],
      ['a longer path', `${REDIRECT}/../../evil`],
      ['an extra query', `${REDIRECT}?next=https://evil.example`],
      ['a prefix of the registered URI', 'https://client.example/c'],
      ['another scheme', 'http://client.example/cb'],
      ['different case', 'https://CLIENT.example/cb'],
    ])('never redirects to %s, whatever else the request says (RFC 9700 §2.1)', async (_label, uri) => {
      const { t, clientId } = await setup();
      const res = await authorize(t, { client_id: clientId, redirect_uri: uri, response_type: 'token', scope: 'nope', state: 's', response_mode: 'form_post' });
      expect(res.status).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(res.text).not.toContain('form-post');
      expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Invalid or missing 'redirect_uri'" });
    });

    it('requires redirect_uri when the client registered several (RFC 6749 §3.1.2.3)', async () => {
      const { t } = await setup();
      const { clientId } = await t.createClient({ redirectUri: [REDIRECT, 'https://client.example/other'] });
      const res = await authorize(t, { client_id: clientId, response_type: 'code', scope: 'books.read' });
      expect(res.status).toBe(400);
      expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Invalid or missing 'redirect_uri'" });
    });

    it('uses the only registered redirect URI when redirect_uri is omitted', async () => {
      const { t, clientId } = await setup();
      const res = await authorize(t, { client_id: clientId, response_type: 'token', scope: 'books.read', state: 's' });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(`${REDIRECT}?error=unsupported_response_type&error_description=Unsupported+response+type&state=s&iss=${encodeURIComponent(ISSUER)}`);
    });

    it('shows the error page for a repeated parameter (RFC 6749 §3.1)', async () => {
      const { t, clientId } = await setup();
      const res = await t.agent.get(`${t.path('/authorize')}?client_id=${clientId}&redirect_uri=${encodeURIComponent(REDIRECT)}&response_type=code&scope=books.read&state=a&state=b`).set('X-Test-User', 'alice');
      expect(res.status).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Parameter 'state' must not be repeated" });
    });

    it('shows the error page for an oversized parameter, without a 500', async () => {
      const { t, clientId } = await setup();
      const res = await t.agent
        .post(t.path('/authorize'))
        .set('X-Test-User', 'alice')
        .type('form')
        .send({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read '.repeat(2000), decision: 'approve' });
      expect(res.status).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Parameter 'scope' is too long" });
      expect(await grantCount(t)).toBe(0);
    });

    it('answers invalid_scope for a long scope of unknown names, without a 500', async () => {
      const { t, clientId } = await setup();
      const scope = Array.from({ length: 800 }, (_, i) => `s${i}`).join(' ');
      const res = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope, state: 's' });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(`${REDIRECT}?error=invalid_scope&error_description=Invalid+scope&state=s&iss=${encodeURIComponent(ISSUER)}`);
    });
  });

  describe('loopback redirect URIs (RFC 8252 §7.3)', () => {
    it.each([
      ['http://127.0.0.1/cb', 'http://127.0.0.1:53124/cb'],
      ['http://127.0.0.1:8080/cb', 'http://127.0.0.1:53124/cb'],
      ['http://[::1]/cb', 'http://[::1]:61000/cb'],
      ['http://localhost/cb', 'http://localhost:3000/cb'],
    ])('accepts any port for the registered %s', async (registered, used) => {
      const { t } = await setup();
      const { clientId } = await t.createClient({ redirectUri: [registered] });
      const res = await authorize(t, { client_id: clientId, redirect_uri: used, response_type: 'token', state: 's' });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(`${used}?error=unsupported_response_type&error_description=Unsupported+response+type&state=s&iss=${encodeURIComponent(ISSUER)}`);
    });

    it.each([
      ['another path', 'http://127.0.0.1:5000/other'],
      ['a host that starts like a loopback address', 'http://127.0.0.1.evil.example:5000/cb'],
      ['a port beyond 65535', 'http://127.0.0.1:70000/cb'],
      ['a user-info part', 'http://evil@127.0.0.1:5000/cb'],
      ['https, which is not port-relaxed here', 'https://127.0.0.1:5000/cb'],
      ['a fragment', 'http://127.0.0.1:5000/cb#x'],
    ])('still rejects %s', async (_label, used) => {
      const { t } = await setup();
      const { clientId } = await t.createClient({ redirectUri: ['http://127.0.0.1/cb'] });
      const res = await authorize(t, { client_id: clientId, redirect_uri: used, response_type: 'code', scope: 'books.read' });
      expect(res.status).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Invalid or missing 'redirect_uri'" });
    });
  });

  describe('later errors go back to the client with state and iss (RFC 6749 §4.1.2.1, RFC 9207 §2)', () => {
    const back = (params: string) => `${REDIRECT}?${params}&iss=${encodeURIComponent(ISSUER)}`;

    it.each([
      ['missing', undefined],
      ['empty (RFC 6749 §3.1: as if omitted)', ''],
    ])('answers invalid_request, not unsupported_response_type, for a %s response_type (RFC 6749 §4.1.2.1)', async (_label, responseType) => {
      const { t, clientId } = await setup();
      const res = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: responseType, scope: 'books.read', state: 'xyz' });
      expect(res.status).toBe(302);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers.location).toBe(back("error=invalid_request&error_description=Invalid+or+missing+%27response_type%27&state=xyz"));
    });

    it.each([
      ['token', 'token'],
      ['code token', 'code token'],
    ])('answers unsupported_response_type for a %s response_type', async (_label, responseType) => {
      const { t, clientId } = await setup();
      const res = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: responseType, scope: 'books.read', state: 'xyz' });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(back('error=unsupported_response_type&error_description=Unsupported+response+type&state=xyz'));
    });

    it.each([
      ['blank', '   '],
      ['outside the application’s scopes', 'books.read admin'],
      ['malformed', 'books.read "x"'],
    ])('answers invalid_scope for a %s scope (RFC 6749 §3.3)', async (_label, scope) => {
      const { t, clientId } = await setup();
      const res = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope, state: 'xyz' });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(back('error=invalid_scope&error_description=Invalid+scope&state=xyz'));
      expect(await grantCount(t)).toBe(0);
    });

    it('answers invalid_request for an unknown response_mode', async () => {
      const { t, clientId } = await setup();
      const res = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', response_mode: 'fragment', state: 'xyz' });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(back('error=invalid_request&error_description=Unsupported+response+mode&state=xyz'));
    });

    it('answers invalid_request for a response_mode the application did not register', async () => {
      const { t } = await setup();
      const { clientId } = await t.createClient({ redirectUri: [REDIRECT], responseModes: ['query'] });
      const res = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', response_mode: 'form_post', state: 'xyz' });
      expect(res.status).toBe(200);
      expect(res.text).toContain('<input type="hidden" name="error" value="invalid_request">');
      expect(res.text).toContain('<input type="hidden" name="error_description" value="Unsupported response mode">');
    });

    it('answers unauthorized_client when the application may not use the code grant (RFC 6749 §4.1.2.1)', async () => {
      const { t } = await setup({ enable: ['authorization_code_grant', 'client_credentials_grant'] });
      const { clientId } = await t.createClient({ redirectUri: [REDIRECT], grantTypes: ['client_credentials'] });
      const res = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(back('error=unauthorized_client&error_description=The+client+is+not+allowed+to+use+this+grant'));
    });

    it('omits state when the request had none, and keeps the redirect URI’s own query', async () => {
      const { t } = await setup();
      const { clientId } = await t.createClient({ redirectUri: [`${REDIRECT}?tenant=a`] });
      const res = await authorize(t, { client_id: clientId, redirect_uri: `${REDIRECT}?tenant=a`, response_type: 'token', scope: 'books.read' });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(`${REDIRECT}?tenant=a&error=unsupported_response_type&error_description=Unsupported+response+type&iss=${encodeURIComponent(ISSUER)}`);
    });

    it('delivers errors with the form_post page when the request asks for form_post', async () => {
      const { t, clientId } = await setup();
      const res = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'admin', response_mode: 'form_post', state: 'xyz' });
      expect(res.status).toBe(200);
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['cache-control']).toBe('no-store');
      const fields = [...res.text.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)].map((m) => [m[1], m[2]]);
      expect(fields).toEqual([
        ['error', 'invalid_scope'],
        ['error_description', 'Invalid scope'],
        ['state', 'xyz'],
        ['iss', ISSUER],
      ]);
      expect(res.text).toContain(`<form method="post" action="${REDIRECT}" id="form-post">`);
    });

    it('uses the issuer derived from the request when none is configured', async () => {
      const t = await buildApp({ enable: ['authorization_code_grant'] }, { setup: testLogin });
      const { clientId } = await t.createClient({ redirectUri: [REDIRECT] });
      const res = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, scope: 'books.read', state: 's' }).set('Host', 'as.example:8080');
      expect(res.status).toBe(302);
      expect(new URL(res.headers.location!).searchParams.get('iss')).toBe(`http://as.example:8080${t.path('')}`);
    });
  });

  describe('requireAuthorizableAccount', () => {
    it('sends a visitor who is not logged in to loginRoute with the authorization URL as return_to', async () => {
      const { t, clientId } = await setup();
      const qs = query({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: 's' });
      const res = await t.agent.get(`${t.path('/authorize')}?${qs}`);
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(`/login?return_to=${encodeURIComponent(`${t.path('/authorize')}?${qs}`)}`);
    });

    it('follows an overridden loginRoute (as a function of the request)', async () => {
      const { t, clientId } = await setup({ loginRoute: () => '/session/new?via=oauth' });
      const qs = query({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
      const res = await t.agent.get(`${t.path('/authorize')}?${qs}`);
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(`/session/new?via=oauth&return_to=${encodeURIComponent(`${t.path('/authorize')}?${qs}`)}`);
    });

    it('answers a JSON request without a logged-in account with 401 and a Login challenge naming the login URL (RFC 9110 §15.5.2)', async () => {
      const { t, clientId } = await setup();
      const qs = query({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
      const res = await t.agent.get(`${t.path('/authorize')}?${qs}`).set('Accept', 'application/json');
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe(`Login realm="oauth", login_uri="/login?return_to=${encodeURIComponent(`${t.path('/authorize')}?${qs}`)}"`);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({ error: 'access_denied', error_description: 'Login required' });
    });

    it('names oauthRealm and an overridden loginRoute in the challenge of a JSON POST, which returns to the request as a GET', async () => {
      const { t, clientId } = await setup({ oauthRealm: 'books', loginRoute: '/session/new?via=oauth' });
      const params = { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' };
      const res = await t.agent.post(t.path('/authorize')).set('Accept', 'application/json').type('form').send(params);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe(`Login realm="books", login_uri="/session/new?via=oauth&return_to=${encodeURIComponent(`${t.path('/authorize')}?${query(params)}`)}"`);
      expect(res.body).toEqual({ error: 'access_denied', error_description: 'Login required' });
    });

    it('can be replaced by the host, which can still call the default', async () => {
      const calls: string[] = [];
      const { t, clientId } = await setup({
        requireAuthorizableAccount: async (ctx: { req: { get(h: string): string | undefined }; super: { requireAuthorizableAccount(): Promise<string | null> } }) => {
          calls.push('override');
          if (ctx.req.get('x-api-key') === 'k') return 'api-user';
          return ctx.super.requireAuthorizableAccount();
        },
      });
      const params = { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' };
      const ok = await authorize(t, params, null).set('X-Api-Key', 'k');
      expect(ok.status).toBe(200);
      const redirected = await authorize(t, params, null);
      expect(redirected.status).toBe(302);
      expect(redirected.headers.location).toMatch(/^\/login\?return_to=/);
      expect(calls).toEqual(['override', 'override']);
    });
  });
});

describe('authorization_code_grant › bad input never gives a 500 or a grant', () => {
  const cases: [string, (clientId: string) => string][] = [
    ['a client_id of 10 000 characters', () => `client_id=${'a'.repeat(10000)}`],
    ['a client_id with a NUL byte', () => 'client_id=a%00b'],
    ['an empty client_id', () => 'client_id=&redirect_uri=x'],
    ['invalid percent-encoding', (id) => `client_id=${id}&state=%E0%A4%A`],
    ['a unicode redirect_uri', (id) => `client_id=${id}&redirect_uri=${encodeURIComponent('https://client.example/cb\u202e')}`],
    ['a unicode scope', (id) => `client_id=${id}&response_type=code&scope=${encodeURIComponent('bööks')}`],
    ['array-style parameters', (id) => `client_id=${id}&scope[]=books.read&response_type=code`],
    ['a repeated client_id', (id) => `client_id=${id}&client_id=${id}`],
  ];

  it.each(cases)('GET with %s', async (_label, qs) => {
    const t = await buildApp({ enable: ['pkce'], issuer: ISSUER }, { setup: testLogin });
    const { clientId } = await t.createClient({ redirectUri: [REDIRECT] });
    const res = await t.agent.get(`${t.path('/authorize')}?${qs(clientId)}`).set('X-Test-User', 'alice');
    expect([302, 400]).toContain(res.status);
    if (res.status === 302) expect(res.headers.location!.startsWith(`${REDIRECT}?`)).toBe(true);
    expect(await grantCount(t)).toBe(0);
  });

  it.each([
    ['a JSON body with an object parameter', 'application/json', (id: string) => JSON.stringify({ client_id: id, scope: { a: 1 } })],
    ['malformed JSON', 'application/json', () => '{"client_id":'],
    ['an unsupported content type', 'text/plain', (id: string) => `client_id=${id}`],
    ['a form without anything', 'application/x-www-form-urlencoded', () => ''],
  ])('POST with %s', async (_label, type, body) => {
    const t = await buildApp({ enable: ['pkce'], issuer: ISSUER }, { setup: testLogin });
    const { clientId } = await t.createClient({ redirectUri: [REDIRECT] });
    const res = await t.agent.post(t.path('/authorize')).set('X-Test-User', 'alice').set('Content-Type', type).send(body(clientId));
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(errorPage(res.text).error).toBe('invalid_request');
    expect(await grantCount(t)).toBe(0);
  });
});
