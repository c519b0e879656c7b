import { afterAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { NextFunction, Request, Response } from 'express';
import { buildApp, closeAll } from '../support/build_app';
import { errorPage, formFields, query } from '../authorization_code_grant/flow';
import { codeFlow, ISSUER, oidcApp, type OidcApp } from './support';

afterAll(closeAll);

const LOGGED_OUT = 'https://client.example/logged-out';

async function appWithLogout(options: Record<string, unknown> = {}): Promise<OidcApp & { logouts: string[] }> {
  const logouts: string[] = [];
  const t = await oidcApp({ logoutAccount: async (ctx: { accountId?: unknown; req: Request }) => void logouts.push((ctx.req as Request & { user: { id: string } }).user.id), ...options });
  return Object.assign(t, { logouts });
}

function endSession(t: OidcApp, params: Record<string, string | undefined>, user: string | null = 'alice') {
  const req = t.agent.get(`${t.path('/end-session')}?${query(params)}`);
  return user === null ? req : req.set('X-Test-User', user);
}

async function confirm(t: OidcApp, params: Record<string, string | undefined>, decision = 'logout') {
  const page = await endSession(t, params);
  expect(page.status).toBe(200);
  return t.agent.post(t.path('/end-session')).set('X-Test-User', 'alice').type('form').send({ ...formFields(page.text), decision });
}

function expectLogoutErrorPage(res: { status: number; headers: Record<string, string>; text: string }): void {
  expect(res.status).toBe(400);
  expect(res.headers.location).toBeUndefined();
  expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: 'This sign-out request is not valid' });
}

describe('oidc › end_session (RP-Initiated Logout 1.0)', () => {
  it('asks the logged-in user to confirm, then logs out and returns to the registered post_logout_redirect_uri with state', async () => {
    const t = await appWithLogout();
    const idToken = (await codeFlow(t)).body.id_token;
    const params = { id_token_hint: idToken, post_logout_redirect_uri: LOGGED_OUT, state: 'st-1' };
    const page = await endSession(t, params);
    expect(page.status).toBe(200);
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.text).toContain('Test client asks you to sign out of this site.');
    expect(formFields(page.text)).toEqual({ ...params, csrf_token: expect.any(String) });
    expect(t.logouts).toEqual([]);
    const res = await t.agent.post(t.path('/end-session')).set('X-Test-User', 'alice').type('form').send({ ...formFields(page.text), decision: 'logout' });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${LOGGED_OUT}?state=st-1`);
    expect(t.logouts).toEqual(['alice']);
  });

  it('identifies the client by client_id too, and accepts an expired id_token_hint', async () => {
    const t = await appWithLogout({ oidcIdTokenExpiresIn: 1, now: () => new Date(Date.now() - 3600_000) });
    const idToken = (await codeFlow(t)).body.id_token;
    const res = await confirm(t, { id_token_hint: idToken, client_id: t.client.clientId, post_logout_redirect_uri: LOGGED_OUT });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(LOGGED_OUT);
    const byClientId = await confirm(t, { client_id: t.client.clientId, post_logout_redirect_uri: LOGGED_OUT, state: 's' });
    expect(byClientId.headers.location).toBe(`${LOGGED_OUT}?state=s`);
    expect(t.logouts).toEqual(['alice', 'alice']);
  });

  it('"stay signed in" returns to the client without logging out', async () => {
    const t = await appWithLogout();
    const res = await confirm(t, { client_id: t.client.clientId, post_logout_redirect_uri: LOGGED_OUT, state: 's' }, 'stay');
    expect(res.headers.location).toBe(`${LOGGED_OUT}?state=s`);
    expect(t.logouts).toEqual([]);
  });

  it('without post_logout_redirect_uri, ends on our signed-out page', async () => {
    const t = await appWithLogout();
    const res = await confirm(t, {});
    expect(res.status).toBe(200);
    expect(res.text).toContain('You have been signed out.');
    expect(t.logouts).toEqual(['alice']);
  });

  it('with nobody logged in, goes straight to the post_logout_redirect_uri', async () => {
    const t = await appWithLogout();
    const res = await endSession(t, { client_id: t.client.clientId, post_logout_redirect_uri: LOGGED_OUT, state: 's' }, null);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${LOGGED_OUT}?state=s`);
    expect(t.logouts).toEqual([]);
  });

  it('a forged id_token_hint (signed by another key): error page, no redirect, no logout', async () => {
    const t = await appWithLogout();
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ sub: 'alice', aud: t.client.clientId }).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' }).setIssuer(ISSUER).setIssuedAt().sign(privateKey);
    const page = await endSession(t, { id_token_hint: forged, post_logout_redirect_uri: LOGGED_OUT });
    expectLogoutErrorPage(page);
    expect(page.text).toContain('This sign-out request could not be verified.');
    expect(page.text).not.toContain('client.example');
    expectLogoutErrorPage(await endSession(t, { id_token_hint: 'not.a.jwt', post_logout_redirect_uri: LOGGED_OUT }));
    // Our own JWT access token is no ID token.
    const jwtApp = await appWithLogout({ enable: ['jwt_access_tokens'] });
    const { access_token } = (await codeFlow(jwtApp)).body;
    expectLogoutErrorPage(await endSession(jwtApp, { id_token_hint: access_token }));
    expect(t.logouts).toEqual([]);
  });

  it('an id_token_hint issued to another client than client_id: error page', async () => {
    const t = await appWithLogout();
    const other = await t.createClient({ postLogoutRedirectUris: ['https://other.example/bye'] });
    const idToken = (await codeFlow(t)).body.id_token;
    expectLogoutErrorPage(await endSession(t, { id_token_hint: idToken, client_id: other.clientId, post_logout_redirect_uri: 'https://other.example/bye' }));
  });

  it('a post_logout_redirect_uri the client did not register, or without a client: error page', async () => {
    const t = await appWithLogout();
    expectLogoutErrorPage(await endSession(t, { client_id: t.client.clientId, post_logout_redirect_uri: 'https://attacker.example/' }));
    expectLogoutErrorPage(await endSession(t, { post_logout_redirect_uri: LOGGED_OUT }));
    expectLogoutErrorPage(await endSession(t, { client_id: 'unknown-client', post_logout_redirect_uri: LOGGED_OUT }));
  });

  it('a confirmation without the CSRF token of the page: error page, no logout', async () => {
    const t = await appWithLogout();
    const res = await t.agent.post(t.path('/end-session')).set('X-Test-User', 'alice').type('form').send({ client_id: t.client.clientId, post_logout_redirect_uri: LOGGED_OUT, decision: 'logout', csrf_token: 'forged' });
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(t.logouts).toEqual([]);
  });

  it("logoutAccount's default calls Passport's req.logout", async () => {
    const calls: string[] = [];
    const t = await buildApp(
      { enable: ['oidc'], oauthJwtKeys: (await oidcKeys()).option },
      {
        setup: (app) =>
          app.use(function passportLike(req: Request, _res: Response, next: NextFunction) {
            Object.assign(req, { user: { id: 'bob' }, logout: (done: (err?: unknown) => void) => (calls.push('logout'), done()) });
            next();
          }),
      },
    );
    const page = await t.agent.get(t.path('/end-session'));
    const res = await t.agent.post(t.path('/end-session')).type('form').send({ ...formFields(page.text), decision: 'logout' });
    expect(res.status).toBe(200);
    expect(calls).toEqual(['logout']);
  });

  it('createApplication checks postLogoutRedirectUris like redirect URIs, and applications.update changes them', async () => {
    const t = await appWithLogout();
    await expect(t.createClient({ postLogoutRedirectUris: ['http://client.example/bye'] })).rejects.toThrow("post-logout redirect URI 'http://client.example/bye' uses http outside loopback");
    await expect(t.createClient({ postLogoutRedirectUris: ['https://client.example/bye#x'] })).rejects.toThrow('must not have a fragment');
    await t.auth.applications.update(t.client.clientId, { postLogoutRedirectUris: ['https://client.example/bye'] });
    expect((await t.auth.applications.get(t.client.clientId)).postLogoutRedirectUris).toEqual(['https://client.example/bye']);
    expectLogoutErrorPage(await endSession(t, { client_id: t.client.clientId, post_logout_redirect_uri: LOGGED_OUT }));
  });
});

async function oidcKeys() {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { option: [{ key: await exportJWK(privateKey), alg: 'ES256' }] };
}
