import { OAuthError } from '../../lib';
import { closeAll } from '../support/build_app';
import { expectError } from '../support/expect_oauth_error';
import { formFields } from '../authorization_code_grant/flow';
import { apiMe, authorize, csrfOf, grantsOf, jsonList, listedApplications, newBrowser, page, REDIRECT, refresh, revoke, setup, textOf, type GrantsApp, type Tokens } from './support';

afterAll(closeAll);

const INVALID_TOKEN = { error: 'invalid_token', error_description: 'Invalid access token' };

interface Scene {
  t: GrantsApp;
  books: { clientId: string; clientSecret: string; id: number };
  photos: { clientId: string; clientSecret: string; id: number };
  alice: Tokens[];
  alicePhotos: Tokens;
  bob: Tokens;
}

/** Alice authorized Books twice and Photos once; Bob authorized Books. */
async function scene(options: Record<string, unknown> = {}): Promise<Scene> {
  const t = await setup(options);
  const books = await t.client('Books app');
  const photos = await t.client('Photos app');
  const alice = [await authorize(t, books, 'alice', 'books.read'), await authorize(t, books, 'alice', 'books.read books.write')];
  const alicePhotos = await authorize(t, photos, 'alice', 'books.read');
  const bob = await authorize(t, books, 'bob', 'books.read');
  return { t, books, photos, alice, alicePhotos, bob };
}

/** Nothing of the scene was revoked: every token still works, every grant is live. */
async function expectUntouched(s: Scene): Promise<void> {
  for (const tokens of [...s.alice, s.alicePhotos, s.bob]) expect((await apiMe(s.t, tokens.access_token)).status).toBe(200);
  expect(await grantsOf(s.t, s.books.id)).toEqual([
    { account: 'alice', revoked: false },
    { account: 'alice', revoked: false },
    { account: 'bob', revoked: false },
  ]);
}

describe('grant_management › revoke', () => {
  it("revokes every grant of the account with the application and all their tokens, in one step; then 303 to the page with a notice", async () => {
    const s = await scene();
    const { t } = s;
    const html = (await page(t, 'alice')).text;
    const res = await revoke(t, 'alice', s.books.clientId, csrfOf(html));
    expect(res.status).toBe(303);
    expect(res.headers.location).toMatch(new RegExp(`^${t.path('/oauth-grants')}\\?revoked=${s.books.clientId}&notice=[A-Za-z0-9_-]{43}$`));
    expect(res.headers['cache-control']).toBe('no-store');

    // Both of Alice's Books grants, and nothing else.
    expect(await grantsOf(t, s.books.id)).toEqual([
      { account: 'alice', revoked: true },
      { account: 'alice', revoked: true },
      { account: 'bob', revoked: false },
    ]);
    for (const tokens of s.alice) {
      expect((await apiMe(t, tokens.access_token)).body).toEqual(INVALID_TOKEN);
      expectError(await refresh(t, s.books, tokens.refresh_token), 400, { error: 'invalid_grant', error_description: 'Invalid refresh token' });
    }
    expect((await apiMe(t, s.alicePhotos.access_token)).status).toBe(200);
    expect((await apiMe(t, s.bob.access_token)).status).toBe(200);
    expect((await refresh(t, s.books, s.bob.refresh_token)).status).toBe(200);

    // The page the browser lands on: the notice, and Books no longer listed.
    const after = await page(t, 'alice', t.agent, res.headers.location!.slice(res.headers.location!.indexOf('?')));
    expect(after.status).toBe(200);
    expect(textOf(after.text, 'notice')).toBe('You revoked the access of Books app. It can no longer use your account unless you authorize it again.');
    expect(after.text).toContain('role="status"');
    expect(listedApplications(after.text).map((a) => a.name)).toEqual(['Photos app']);
  });

  it('the API answers 401 for a revoked access token at once (the grant row is checked on every request)', async () => {
    const s = await scene();
    const before = await apiMe(s.t, s.alice[1]!.access_token);
    expect(before.status).toBe(200);
    await revoke(s.t, 'alice', s.books.clientId, csrfOf((await page(s.t, 'alice')).text));
    const after = await apiMe(s.t, s.alice[1]!.access_token);
    expect(after.status).toBe(401);
    expect(after.headers['www-authenticate']).toBe('Bearer realm="oauth", error="invalid_token", error_description="Invalid access token"');
  });

  it('a crafted ?revoked= link shows no notice: the application must be real and no longer listed', async () => {
    const s = await scene();
    for (const q of [`?revoked=${s.books.clientId}`, '?revoked=nope', '?revoked=%3Cscript%3E']) {
      const res = await page(s.t, 'alice', s.t.agent, q);
      expect(res.status).toBe(200);
      expect(textOf(res.text, 'notice')).toBeUndefined();
    }
  });

  it("a crafted link naming an application the account does not list shows no notice without the revoke's signature (an app named to phish)", async () => {
    const s = await scene();
    const { t } = s;
    const phish = await t.createClient({ name: 'Security alert: call +1 555 0100 now' });
    for (const notice of ['', '&notice=x', `&notice=${'A'.repeat(43)}`]) {
      const res = await page(t, 'alice', t.agent, `?revoked=${encodeURIComponent(phish.clientId)}${notice}`);
      expect(res.status).toBe(200);
      expect(textOf(res.text, 'notice')).toBeUndefined();
      expect(res.text).not.toContain('Security alert');
    }
    // Alice's own revoke signature is bound to the client it revoked: it does not vouch for another.
    const revoked = await revoke(t, 'alice', s.books.clientId, csrfOf((await page(t, 'alice')).text));
    const signature = /notice=([A-Za-z0-9_-]+)/.exec(revoked.headers.location!)![1];
    const swapped = await page(t, 'alice', t.agent, `?revoked=${encodeURIComponent(phish.clientId)}&notice=${signature}`);
    expect(textOf(swapped.text, 'notice')).toBeUndefined();
  });

  it('JSON: DELETE ?client_id with the X-CSRF-Token of the JSON list revokes and answers JSON', async () => {
    const s = await scene();
    const { t } = s;
    const list = await jsonList(t, 'alice');
    const res = await t.agent
      .delete(`${t.path('/oauth-grants')}?client_id=${encodeURIComponent(s.books.clientId)}`)
      .set('X-Test-User', 'alice')
      .set('X-CSRF-Token', list.body.csrf_token);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ client_id: s.books.clientId, revoked_grants: 2 });
    expect((await apiMe(t, s.alice[0]!.access_token)).status).toBe(401);
    expect((await jsonList(t, 'alice')).body.applications.map((a: { name: string }) => a.name)).toEqual(['Photos app']);
  });

  it('JSON: POST with a JSON body and the header token revokes and answers JSON', async () => {
    const s = await scene();
    const { t } = s;
    const token = (await jsonList(t, 'alice')).body.csrf_token as string;
    const res = await t.agent.post(t.path('/oauth-grants')).set('X-Test-User', 'alice').set('X-CSRF-Token', token).send({ client_id: s.photos.clientId });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ client_id: s.photos.clientId, revoked_grants: 1 });
    expect((await apiMe(t, s.alicePhotos.access_token)).status).toBe(401);
    expect((await apiMe(t, s.alice[0]!.access_token)).status).toBe(200);
  });

  it('runs beforeRevokeGrants / afterRevokeGrants in the transaction: a hook that throws leaves every grant live', async () => {
    const seen: string[] = [];
    const s = await scene({
      beforeRevokeGrants: (ctx: { application?: { name: string }; accountId?: string }) => void seen.push(`before ${ctx.application?.name} ${ctx.accountId}`),
      afterRevokeGrants: (ctx: { application?: { name: string } }) => {
        seen.push(`after ${ctx.application?.name}`);
        if (ctx.application?.name === 'Books app') throw new OAuthError('access_denied', 'Not now');
      },
    });
    const token = csrfOf((await page(s.t, 'alice')).text);
    const res = await revoke(s.t, 'alice', s.books.clientId, token);
    expect(res.status).toBe(400);
    expect(textOf(res.text, 'error')).toBe('The request could not be completed. Nothing was changed.');
    await expectUntouched(s);
    expect((await revoke(s.t, 'alice', s.photos.clientId, token)).status).toBe(303);
    expect(seen).toEqual(['before Books app alice', 'after Books app', 'before Photos app alice', 'after Photos app']);
  });

  describe('forged or mistaken revokes change nothing and get an error, never a 500', () => {
    it('no CSRF token: 403, the page again with the problem', async () => {
      const s = await scene();
      await page(s.t, 'alice'); // the browser has its cookie
      const res = await revoke(s.t, 'alice', s.books.clientId, undefined);
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(textOf(res.text, 'error')).toBe('This form has expired or was not sent from this page. Nothing was revoked; please try again.');
      expect(res.text).toContain('role="alert"');
      expect(listedApplications(res.text).map((a) => a.name)).toEqual(['Books app', 'Photos app']);
      await expectUntouched(s);
    });

    it('a wrong token, a token of another browser, of another account or of the consent form: 403', async () => {
      const s = await scene();
      const { t } = s;
      const mine = csrfOf((await page(t, 'alice')).text);
      const otherBrowser = newBrowser(t);
      const theirs = csrfOf((await page(t, 'alice', otherBrowser)).text);
      const bobs = csrfOf((await page(t, 'bob')).text); // same browser (cookie), Bob's binding
      const consent = await t.agent.get(`${t.path('/authorize')}?response_type=code&client_id=${s.photos.clientId}&redirect_uri=${encodeURIComponent(REDIRECT)}&scope=books.write`).set('X-Test-User', 'alice');
      const consentToken = formFields(consent.text).csrf_token;
      for (const token of [`${mine.slice(0, -1)}A`, 'x', theirs, bobs, consentToken]) {
        if (token === mine) continue;
        const res = await revoke(t, 'alice', s.books.clientId, token);
        expect(res.status).toBe(403);
      }
      await expectUntouched(s);
      // The right token still works afterwards.
      expect((await revoke(t, 'alice', s.books.clientId, mine)).status).toBe(303);
    });

    it("an unknown client_id, another account's only application, or one already revoked: 400, nothing changed", async () => {
      const s = await scene();
      const { t } = s;
      const bobOnly = await t.client('Bob only');
      await authorize(t, bobOnly, 'bob', 'books.read');
      const token = csrfOf((await page(t, 'alice')).text);
      for (const clientId of ['unknown-client', bobOnly.clientId]) {
        const res = await revoke(t, 'alice', clientId, token);
        expect(res.status).toBe(400);
        expect(textOf(res.text, 'error')).toBe('This application is not among the applications you have authorized (its access may already be revoked). Nothing was changed.');
      }
      expect(await grantsOf(t, bobOnly.id)).toEqual([{ account: 'bob', revoked: false }]);
      await expectUntouched(s);

      expect((await revoke(t, 'alice', s.photos.clientId, token)).status).toBe(303);
      expect((await revoke(t, 'alice', s.photos.clientId, token)).status).toBe(400);
    });

    it('no client_id: 400', async () => {
      const s = await scene();
      const token = csrfOf((await page(s.t, 'alice')).text);
      const res = await s.t.agent.post(s.t.path('/oauth-grants')).set('X-Test-User', 'alice').type('form').send({ csrf_token: token });
      expect(res.status).toBe(400);
      expect(textOf(res.text, 'error')).toBe('No application was named. Nothing was changed.');
      await expectUntouched(s);
    });

    it('JSON: no or wrong header token, or the token in the DELETE query: 403 JSON; unknown client: 400 JSON', async () => {
      const s = await scene();
      const { t } = s;
      const token = (await jsonList(t, 'alice')).body.csrf_token as string;
      const del = (q: string) => t.agent.delete(`${t.path('/oauth-grants')}?${q}`).set('X-Test-User', 'alice');
      const forbidden = { error: 'access_denied', error_description: 'The form has expired or was not sent by this site; please try again' };
      expectError(await del(`client_id=${s.books.clientId}`), 403, forbidden);
      expectError(await del(`client_id=${s.books.clientId}`).set('X-CSRF-Token', 'nope'), 403, forbidden);
      expectError(await del(`client_id=${s.books.clientId}&csrf_token=${token}`), 403, forbidden);
      expectError(await t.agent.post(t.path('/oauth-grants')).set('X-Test-User', 'alice').send({ client_id: s.books.clientId }), 403, forbidden);
      expectError(await del('client_id=unknown').set('X-CSRF-Token', token), 400, { error: 'invalid_request', error_description: 'This account has authorized no application with this client_id' });
      await expectUntouched(s);
    });

    it('without a signed-in account: the browser is sent to the page (and so to log in), a script gets 401; nothing changed', async () => {
      const s = await scene();
      const { t } = s;
      const token = csrfOf((await page(t, 'alice')).text);
      const res = await t.agent.post(t.path('/oauth-grants')).type('form').send({ client_id: s.books.clientId, csrf_token: token });
      expect(res.status).toBe(303);
      expect(res.headers.location).toBe(t.path('/oauth-grants'));
      const json = await t.agent.delete(`${t.path('/oauth-grants')}?client_id=${s.books.clientId}`).set('X-CSRF-Token', token);
      expectError(json, 401, { error: 'access_denied', error_description: 'Login required' });
      expect(json.headers['www-authenticate']).toBe(`Login realm="oauth", login_uri="/login?return_to=${encodeURIComponent(t.path('/oauth-grants'))}"`);
      await expectUntouched(s);
    });

    it('a malformed body: 400, never a 500', async () => {
      const s = await scene();
      const res = await s.t.agent.post(s.t.path('/oauth-grants')).set('X-Test-User', 'alice').set('Content-Type', 'application/json').send('{"client_id": ');
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: 'invalid_request', error_description: 'The request body could not be parsed' });
      await expectUntouched(s);
    });
  });

  it('another method: 405 with Allow', async () => {
    const t = await setup();
    const res = await t.agent.put(t.path('/oauth-grants')).set('X-Test-User', 'alice');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD, POST, DELETE');
  });
});
