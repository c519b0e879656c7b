/**
 * The demo host's login page (the page `requireAuthorizableAccount` sends visitors to): it
 * follows `return_to` only to a path on this server, checks its CSRF token and escapes what it
 * echoes. Driven with supertest, so it needs no browser; the browser flow is in
 * spec/browser/demo_flow.spec.ts.
 */
import request from 'supertest';
import { createDemoApp, safeReturnTo, type Demo } from '../../examples/server';
import { createTestDb, type TestDb } from '../support/db';

let testDb: TestDb;
let demo: Demo;

beforeAll(async () => {
  testDb = await createTestDb();
  demo = await createDemoApp({ db: testDb.db });
});

afterAll(async () => {
  await demo?.close();
  await testDb?.destroy();
});

/** A fresh browser session: GET /login, and the CSRF token of its form. */
async function loginPage(query = '') {
  const agent = request.agent(demo.app);
  const page = await agent.get(`/login${query}`);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1];
  if (!csrf) throw new Error(`no CSRF token in ${page.text}`);
  return { agent, page, csrf };
}

describe('demo › login', () => {
  it.each([
    ['/authorize?response_type=code&client_id=x', '/authorize?response_type=code&client_id=x'],
    ['/', '/'],
    ['//evil.example/', undefined],
    ['/\\evil.example/', undefined],
    ['https://evil.example/', undefined],
    ['javascript:alert(1)', undefined],
    ['/ok\r\nSet-Cookie: x=1', undefined],
    ['', undefined],
    [['/a', '/b'], undefined],
  ])('safeReturnTo(%j) is %j: only paths on this server (no open redirect)', (input, expected) => {
    expect(safeReturnTo(input)).toBe(expected);
  });

  it('logs in and follows a relative return_to back to the authorization request', async () => {
    const returnTo = '/authorize?response_type=code&client_id=abc&state=%22%3E';
    const { agent, csrf } = await loginPage(`?return_to=${encodeURIComponent(returnTo)}`);
    const res = await agent.post('/login').type('form').send({ _csrf: csrf, username: 'demo', password: 'demo', return_to: returnTo });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(returnTo);
  });

  it.each(['//evil.example/path', 'https://evil.example/', '/\\evil.example'])('ignores return_to=%s and goes home instead (no open redirect)', async (returnTo) => {
    const { agent, csrf } = await loginPage();
    const res = await agent.post('/login').type('form').send({ _csrf: csrf, username: 'demo', password: 'demo', return_to: returnTo });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/');
  });

  it('does not put an unsafe return_to into the form, and escapes what it echoes', async () => {
    const { page } = await loginPage(`?return_to=${encodeURIComponent('//evil.example')}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('<input type="hidden" name="return_to" value="">');

    const hostile = '/x"><script>alert(1)</script>';
    const { page: escaped } = await loginPage(`?return_to=${encodeURIComponent(hostile)}`);
    expect(escaped.text).not.toContain('<script>alert(1)</script>');
    expect(escaped.text).toContain('value="/x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
  });

  it('answers 401 with the form again for a wrong password, and escapes the echoed username', async () => {
    const { agent, csrf } = await loginPage();
    const res = await agent.post('/login').type('form').send({ _csrf: csrf, username: '"><img src=x>', password: 'nope', return_to: '/client' });
    expect(res.status).toBe(401);
    expect(res.text).toContain('<p class="error" role="alert">Invalid username or password.</p>');
    expect(res.text).toContain('value="&#34;&gt;&lt;img src=x&gt;"');
    expect(res.text).not.toContain('<img src=x>');
  });

  it('rejects a login without the session CSRF token with 403', async () => {
    const { agent } = await loginPage();
    const res = await agent.post('/login').type('form').send({ _csrf: 'forged', username: 'demo', password: 'demo' });
    expect(res.status).toBe(403);
    expect(res.text).toBe('Invalid or missing CSRF token. Reload the page and try again.');
    const fresh = await request(demo.app).post('/login').type('form').send({ username: 'demo', password: 'demo' });
    expect(fresh.status).toBe(403);
  });

  it('serves /api/me only with a bearer token carrying the profile scope (RFC 6750 §3.1)', async () => {
    const res = await request(demo.app).get('/api/me');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(res.body).toEqual({ error: 'invalid_token', error_description: 'An access token is required' });
  });

  it('answers the client credentials grant for the seeded client, whose token reaches /api/me without a user', async () => {
    const basic = `Basic ${Buffer.from(`${demo.client.clientId}:${demo.client.clientSecret}`).toString('base64')}`;
    const token = await request(demo.app).post('/token').set('Authorization', basic).type('form').send({ grant_type: 'client_credentials', scope: 'profile' });
    expect(token.status).toBe(200);
    expect(token.body).toEqual({ access_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), token_type: 'Bearer', expires_in: 3600, scope: 'profile' });
    const me = await request(demo.app).get('/api/me').set('Authorization', `Bearer ${token.body.access_token}`);
    expect(me.status).toBe(200);
    expect(me.body).toEqual({
      accountId: null,
      clientId: demo.client.clientId,
      applicationId: 1,
      scopes: ['profile'],
      grantId: expect.any(Number),
      expiresAt: expect.any(String),
      user: null,
    });
  });
});
