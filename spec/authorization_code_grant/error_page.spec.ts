import { OAuthError } from '../../lib/errors';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { errorPage, formFields, ISSUER, PAGE_HEADERS, pageHeaders, query, testLogin, unescapeHtml } from './flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';

async function setup(options: Record<string, unknown> = {}): Promise<{ t: TestApp; clientId: string }> {
  const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER, ...options }, { setup: testLogin });
  const { clientId } = await t.createClient({ redirectUri: [REDIRECT] });
  return { t, clientId };
}

function texts(html: string): { problem?: string; action?: string; home?: string; homeLabel?: string } {
  const pick = (re: RegExp) => {
    const m = re.exec(html);
    return m ? unescapeHtml(m[1]!) : undefined;
  };
  return {
    problem: pick(/<p class="problem">([^<]*)<\/p>/),
    action: pick(/<p class="action">([^<]*)<\/p>/),
    home: pick(/<a class="home" href="([^"]*)">/),
    homeLabel: pick(/<a class="home" href="[^"]*">([^<]*)<\/a>/),
  };
}

describe('authorization_code_grant › error page', () => {
  it('an unknown client: the problem in plain words, what to do, a link home, and the code as before', async () => {
    const { t } = await setup();
    const res = await t.agent.get(`${t.path('/authorize')}?${query({ client_id: 'nope', redirect_uri: 'https://evil.example/cb', response_type: 'code' })}`);
    expect(res.status).toBe(400);
    expect(pageHeaders(res.headers)).toEqual(PAGE_HEADERS);
    expect(res.headers.location).toBeUndefined();
    expect(texts(res.text)).toEqual({
      problem: 'The application that sent you here is not known to this site.',
      action: 'The link you followed may be wrong or out of date. Go back to the application and try again, or contact its support.',
      home: '/',
      homeLabel: 'Go back to the home page',
    });
    expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Invalid or missing 'client_id'" });
    expect(res.text).toContain('<html lang="en">');
  });

  it('an unregistered redirect URI is named as the danger it is, and never linked or followed', async () => {
    const { t, clientId } = await setup();
    const res = await t.agent.get(`${t.path('/authorize')}?${query({ client_id: clientId, redirect_uri: 'https://evil.example/cb', response_type: 'code' })}`).set('X-Test-User', 'alice');
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(res.text).not.toContain('evil.example');
    expect(texts(res.text).problem).toBe('The application asked to send you to an address it has not registered.');
    expect(texts(res.text).action).toBe('For your safety you were not sent there. Contact the application’s support.');
  });

  it('a missing client_id and a forged form each get their own words', async () => {
    const { t, clientId } = await setup();
    const missing = await t.agent.get(t.path('/authorize'));
    expect(texts(missing.text).problem).toBe('The sign-in request is incomplete.');
    const page = await t.agent.get(`${t.path('/authorize')}?${query({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code' })}`).set('X-Test-User', 'alice');
    const forged = await t.agent.post(t.path('/authorize')).set('X-Test-User', 'alice').type('form').send({ ...formFields(page.text), csrf_token: 'x', decision: 'approve' });
    expect(forged.status).toBe(400);
    expect(texts(forged.text)).toMatchObject({ problem: 'This form has expired or was not sent from this site.', action: 'Go back to the application and start again. Nothing was shared.' });
  });

  it('oauthErrorPageHomeUrl sets the link; null removes it; a javascript: URL is never linked', async () => {
    for (const [home, expected] of [
      ['https://www.example.com/help', 'https://www.example.com/help'],
      [null, undefined],
      ['javascript:alert(1)', undefined],
      ['//evil.example/', undefined],
    ] as const) {
      const { t } = await setup({ oauthErrorPageHomeUrl: home });
      const res = await t.agent.get(`${t.path('/authorize')}?client_id=nope`);
      expect(res.status).toBe(400);
      expect(texts(res.text).home).toBe(expected);
      expect(res.text).not.toContain('javascript:');
    }
  });

  it('translate decides the texts, by reason then by code, with a generic fallback', async () => {
    const { t } = await setup({
      translate: (ctx: { super: { translate(k: string, v?: object): string } }, key: string, vars?: object) =>
        key === 'errorPage.problem.unknown_client' ? 'Application inconnue.' : key === 'errorPage.home' ? 'Accueil' : ctx.super.translate(key, vars),
    });
    const res = await t.agent.get(`${t.path('/authorize')}?client_id=nope`);
    expect(texts(res.text)).toMatchObject({ problem: 'Application inconnue.', homeLabel: 'Accueil' });
  });

  it('an error with no specific words gets the generic ones; a 503 its own', async () => {
    let error = new OAuthError('invalid_request', 'Refused by the host');
    const { t } = await setup({
      beforeAuthorizeRoute: () => {
        throw error;
      },
    });
    const res = await t.agent.get(`${t.path('/authorize')}?client_id=x`);
    expect(res.status).toBe(400);
    expect(texts(res.text)).toMatchObject({
      problem: 'This sign-in request could not be completed.',
      action: 'Go back to the application and try again. If it keeps happening, contact the application’s support.',
    });
    expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: 'Refused by the host' });
    error = new OAuthError('temporarily_unavailable', 'Busy');
    const busy = await t.agent.get(`${t.path('/authorize')}?client_id=x`);
    expect(busy.status).toBe(503);
    expect(texts(busy.text)).toMatchObject({ problem: 'This service is busy or briefly unavailable.', action: 'Please try again in a moment.' });
  });
});
