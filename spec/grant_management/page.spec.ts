import request from 'supertest';
import { buildApp, closeAll, MOUNT } from '../support/build_app';
import { insertGrant } from '../support/token_fixtures';
import { PAGE_HEADERS, pageHeaders, testLogin } from '../authorization_code_grant/flow';
import { authorize, csrfOf, ISSUER, jsonList, listedApplications, page, setup, textOf } from './support';

afterAll(closeAll);

describe('grant_management › the grants page', () => {
  it('sends a visitor who is not signed in to the login page and back (as /authorize does); a script gets 401 with the login URL', async () => {
    const t = await setup();
    const res = await request(t.app).get(t.path('/oauth-grants'));
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`/login?return_to=${encodeURIComponent(t.path('/oauth-grants'))}`);

    const json = await request(t.app).get(t.path('/oauth-grants')).set('Accept', 'application/json');
    expect(json.status).toBe(401);
    expect(json.headers['cache-control']).toBe('no-store');
    expect(json.headers['www-authenticate']).toBe(`Login realm="oauth", login_uri="/login?return_to=${encodeURIComponent(t.path('/oauth-grants'))}"`);
    expect(json.body).toEqual({ error: 'access_denied', error_description: 'Login required' });
  });

  it('lists each application the account authorized once, combining its grants: name, logo, scopes with their descriptions, first granted, last used', async () => {
    const t = await setup();
    const books = await t.client('Books app', { logoUri: 'https://books.example/logo.png', homepageUrl: 'https://books.example/', description: 'Your reading list' });
    const photos = await t.client('Another app', { scopes: ['photos'] });
    const firstAt = t.clock.now();
    await authorize(t, books, 'alice', 'books.read');
    t.clock.advance(3600);
    const lastAt = t.clock.now();
    await authorize(t, books, 'alice', 'books.read books.write');
    t.clock.advance(60);
    await authorize(t, photos, 'alice', 'photos');
    // Bob's grants with the same client are not Alice's business.
    await authorize(t, books, 'bob', 'books.write');

    const res = await page(t, 'alice');
    expect(res.status).toBe(200);
    expect(pageHeaders(res.headers)).toEqual(PAGE_HEADERS);
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(/<title>([^<]*)<\/title>/.exec(res.text)?.[1]).toBe('Your authorized applications');
    expect(/<html lang="([^"]*)">/.exec(res.text)?.[1]).toBe('en');
    expect(res.text).toContain('<p class="account">Signed in as alice</p>');
    // By name; one entry per application.
    expect(listedApplications(res.text)).toEqual([
      {
        clientId: photos.clientId,
        name: 'Another app',
        scopes: ['photos'], // no description: the scope itself, shown once
        grantedAt: new Date(firstAt.getTime() + 3660_000).toISOString(),
        lastUsedAt: new Date(firstAt.getTime() + 3660_000).toISOString(),
        revokeLabel: 'Revoke access for Another app',
      },
      {
        clientId: books.clientId,
        name: 'Books app',
        scopes: ['Read your books (books.read)', 'Add and change your books (books.write)'],
        grantedAt: firstAt.toISOString(),
        lastUsedAt: lastAt.toISOString(),
        revokeLabel: 'Revoke access for Books app',
      },
    ]);
    expect(res.text).toContain('<img class="logo" src="https://books.example/logo.png" alt="">');
    expect(res.text).toContain('<p class="description">Your reading list</p>');
    expect(res.text).toContain('<a href="https://books.example/" rel="noopener noreferrer" target="_blank">Homepage</a>');
    expect(res.text).toContain(`<time class="granted-at" datetime="${firstAt.toISOString()}">January 15, 2026 at 9:30 AM UTC</time>`);
    // Each form posts to the page's own route with the account's CSRF token.
    expect(res.text.match(new RegExp(`<form class="revoke" method="post" action="${t.path('/oauth-grants')}">`, 'g'))).toHaveLength(2);
    expect(csrfOf(res.text)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('answers the JSON list (Accept: application/json) with the CSRF token a script sends back, never cached', async () => {
    const t = await setup();
    const books = await t.client('Books app', { logoUri: 'https://books.example/logo.png' });
    const at = t.clock.now();
    await authorize(t, books, 'alice', 'books.read');
    const res = await jsonList(t, 'alice');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.body).toEqual({
      applications: [
        {
          client_id: books.clientId,
          name: 'Books app',
          description: null,
          logo_uri: 'https://books.example/logo.png',
          homepage_url: null,
          scopes: [{ scope: 'books.read', description: 'Read your books' }],
          granted_at: at.toISOString(),
          last_used_at: at.toISOString(),
        },
      ],
      csrf_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    // The page and the list of one browser carry the same token.
    const html = await page(t, 'alice');
    expect(csrfOf(html.text)).toBe(res.body.csrf_token);
  });

  it('a scope without a description: null in JSON, the raw scope alone on the page', async () => {
    const t = await setup();
    const photos = await t.client('Photos app', { scopes: ['photos', 'books.read'] });
    await authorize(t, photos, 'alice', 'photos books.read');
    expect((await jsonList(t, 'alice')).body.applications[0].scopes).toEqual([
      { scope: 'photos', description: null },
      { scope: 'books.read', description: 'Read your books' },
    ]);
    const html = (await page(t, 'alice')).text;
    expect(html).toContain('<li><code class="scope-name">photos</code></li>');
    expect(html).toContain('<li><span class="scope-description">Read your books</span> <code class="scope-name">(books.read)</code></li>');
  });

  it("never shows another account's applications, nor revoked grants", async () => {
    const t = await setup();
    const books = await t.client('Books app');
    const other = await t.client('Bob only');
    await authorize(t, other, 'bob', 'books.read');
    const revoked = await insertGrant(t, { applicationId: books.id, accountId: 'alice', createdAt: t.clock.now() });
    await t.db('oauth_grants').where({ id: revoked.grant.id }).update({ revoked_at: t.clock.now() });

    const res = await page(t, 'alice');
    expect(res.status).toBe(200);
    expect(listedApplications(res.text)).toEqual([]);
    expect(textOf(res.text, 'empty')).toBe('You have not authorized any application.');
    expect(res.text).not.toContain('Bob only');
    expect((await jsonList(t, 'alice')).body.applications).toEqual([]);
    expect((await jsonList(t, 'bob')).body.applications.map((a: { name: string }) => a.name)).toEqual(['Bob only']);
  });

  it('renders hostile names, descriptions, logos and scope descriptions as inert text', async () => {
    const XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>';
    const long = 'W'.repeat(180); // the name column holds 255 characters; the description is text
    const essay = `${'Lorem ipsum '.repeat(400)}<iframe src="https://evil.example"></iframe>`;
    const t = await setup({ oauthScopeDescriptions: { 'books.read': `<b>bold</b>${XSS}` } });
    const hostile = await t.client(`${XSS}${long}`, { description: essay, logoUri: 'javascript:alert(3)', homepageUrl: 'javascript:alert(4)' });
    await insertGrant(t, { applicationId: hostile.id, accountId: 'alice', createdAt: t.clock.now() });

    const res = await page(t, 'alice');
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('<script>alert');
    expect(res.text).not.toContain('<iframe');
    expect(res.text).not.toContain('<b>bold');
    expect(res.text).not.toContain('javascript:');
    expect(res.text).not.toContain('class="logo"');
    expect(res.text).not.toContain('class="links"');
    expect(res.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    const [listed] = listedApplications(res.text);
    expect(listed!.name).toBe(`${XSS}${long}`);
    expect(listed!.scopes).toEqual([`<b>bold</b>${XSS} (books.read)`]);
    expect(listed!.revokeLabel).toBe(`Revoke access for ${XSS}${long}`);
    // The JSON list carries the same text, and no script-capable URL.
    const json = (await jsonList(t, 'alice')).body.applications[0];
    expect(json).toMatchObject({ name: `${XSS}${long}`, logo_uri: null, homepage_url: null });
  });

  it('follows the route value and the mount path, and a host translation', async () => {
    const t = await buildApp(
      {
        enable: ['grant_management'],
        issuer: ISSUER,
        oauthGrantsRoute: 'account/apps',
        translate: (ctx: { super: { translate(k: string, v?: object): string } }, key: string, vars?: object) => (key === 'grants.title' ? 'Vos applications' : ctx.super.translate(key, vars)),
      },
      { setup: testLogin },
    );
    const res = await request(t.app).get(`${MOUNT}/account/apps`).set('X-Test-User', 'alice');
    expect(res.status).toBe(200);
    expect(/<h1>([^<]*)<\/h1>/.exec(res.text)?.[1]).toBe('Vos applications');
    expect(res.headers['set-cookie']?.[0]).toMatch(new RegExp(`^oauth_csrf=[A-Za-z0-9_-]{43}; Path=${MOUNT}/account/apps; HttpOnly; Secure; SameSite=Lax$`));
    expect((await request(t.app).get(`${MOUNT}/oauth-grants`).set('X-Test-User', 'alice')).status).toBe(404);
  });

  it('links back to oauthGrantsPageHomeUrl (the site root by default); null or a script URL: no link', async () => {
    const link = (html: string) => /<a class="home" href="([^"]*)">([^<]*)<\/a>/.exec(html)?.slice(1);
    expect(link((await page(await setup(), 'alice')).text)).toEqual(['/', 'Back to the home page']);
    expect(link((await page(await setup({ oauthGrantsPageHomeUrl: 'https://books.example/account' }), 'alice')).text)).toEqual(['https://books.example/account', 'Back to the home page']);
    expect(link((await page(await setup({ oauthGrantsPageHomeUrl: null }), 'alice')).text)).toBeUndefined();
    expect((await page(await setup({ oauthGrantsPageHomeUrl: 'javascript:alert(1)' }), 'alice')).text).not.toContain('javascript:');
  });

  it('greets the account by an async accountDisplayName, as the consent page does', async () => {
    const t = await setup({ accountDisplayName: async (_ctx: unknown, id: string) => `${id[0]!.toUpperCase()}${id.slice(1)} Liddell` });
    const res = await page(t, 'alice');
    expect(res.status).toBe(200);
    expect(res.text).toContain('<p class="account">Signed in as Alice Liddell</p>');
  });

  it('answers a malformed query with the error page, not a 500', async () => {
    const t = await setup();
    const res = await page(t, 'alice', t.agent, '?revoked=a&revoked=b');
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.text).toContain('invalid_request');
  });
});
