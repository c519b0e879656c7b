import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { consent, errorPage, formFields, ISSUER, query, testLogin } from './flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';
const ISS = encodeURIComponent(ISSUER);

async function setup(options: Record<string, unknown>, client: Record<string, unknown> = {}): Promise<{ t: TestApp; clientId: string }> {
  const t = await buildApp({ enable: ['authorization_code_grant', 'client_credentials_grant'], issuer: ISSUER, ...options }, { setup: testLogin });
  const { clientId } = await t.createClient({ redirectUri: [REDIRECT], ...client });
  return { t, clientId };
}

function authorize(t: TestApp, params: Record<string, string | undefined>, user: string | null = 'alice') {
  const req = t.agent.get(`${t.path('/authorize')}?${query(params)}`);
  return user ? req.set('X-Test-User', user) : req;
}

describe('authorization_code_grant › overridable values', () => {
  it.each([
    ['oauthUnsupportedResponseTypeMessage', { response_type: 'token' }, {}, 'unsupported_response_type'],
    ['oauthInvalidResponseModeMessage', { response_mode: 'fragment' }, {}, 'invalid_request'],
    ['oauthUnauthorizedClientMessage', {}, { grantTypes: ['client_credentials'] }, 'unauthorized_client'],
  ])('%s sets the error_description sent back to the client', async (name, extra, client, code) => {
    const { t, clientId } = await setup({ [name]: 'Custom words' }, client);
    const res = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', ...extra });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${REDIRECT}?error=${code}&error_description=Custom+words&iss=${ISS}`);
  });

  it('oauthAccessDeniedMessage sets the description of a denial', async () => {
    const { t, clientId } = await setup({ oauthAccessDeniedMessage: (ctx: { accountId?: string | null }) => `Denied by ${ctx.accountId}` });
    const res = await consent(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' }, { decision: 'deny' });
    expect(res.headers.location).toBe(`${REDIRECT}?error=access_denied&error_description=Denied+by+alice&iss=${ISS}`);
  });

  it('oauthAuthorizeParameterRequiredMessage and authorizeErrorPageTitle shape the error page', async () => {
    const { t } = await setup({ oauthAuthorizeParameterRequiredMessage: 'Bad {parameter}!', authorizeErrorPageTitle: 'Oops' });
    const res = await authorize(t, { client_id: 'nope' });
    expect(res.status).toBe(400);
    expect(/<title>([^<]*)<\/title>/.exec(res.text)?.[1]).toBe('Oops');
    expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: 'Bad client_id!' });
  });

  it('oauthInvalidCsrfTokenMessage is the text of the CSRF error page', async () => {
    const { t, clientId } = await setup({ oauthInvalidCsrfTokenMessage: 'Reload the page' });
    const page = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
    const res = await t.agent.post(t.path('/authorize')).set('X-Test-User', 'alice').type('form').send({ ...formFields(page.text), csrf_token: 'x', decision: 'approve' });
    expect(res.status).toBe(400);
    expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: 'Reload the page' });
  });

  it('oauthCsrfCookieName names the CSRF cookie', async () => {
    const { t, clientId } = await setup({ oauthCsrfCookieName: 'consent_csrf' });
    const page = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
    expect(String(page.headers['set-cookie'])).toMatch(/^consent_csrf=[A-Za-z0-9_-]{43}; /);
  });

  it('oauthLoginRequiredMessage is the description of the 401 JSON answer', async () => {
    const { t, clientId } = await setup({ oauthLoginRequiredMessage: 'Sign in first' });
    const res = await authorize(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' }, null).set('Accept', 'application/json');
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'access_denied', error_description: 'Sign in first' });
  });

  it('the link labels, authorizeFormPostPageTitle and oauthAuthorizePostButton label the pages', async () => {
    const { t, clientId } = await setup(
      {
        oauthApplicationsHomepageUrlLabel: 'Site',
        oauthApplicationsPolicyUriLabel: 'Privacy',
        oauthApplicationsTosUriLabel: 'Terms',
        authorizeFormPostPageTitle: 'Returning…',
        oauthAuthorizePostButton: 'Continue',
      },
      { homepageUrl: 'https://a.example/', policyUri: 'https://a.example/p', tosUri: 'https://a.example/t' },
    );
    const params = { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', response_mode: 'form_post' };
    const page = await authorize(t, params);
    expect([...page.text.matchAll(/target="_blank">([^<]*)<\/a>/g)].map((m) => m[1])).toEqual(['Site', 'Privacy', 'Terms']);
    const res = await consent(t, params);
    expect(res.status).toBe(200);
    expect(/<title>([^<]*)<\/title>/.exec(res.text)?.[1]).toBe('Returning…');
    expect(res.text).toContain('<noscript><button type="submit">Continue</button></noscript>');
  });

  it('rejects an unknown oauthResponseMode at start-up', async () => {
    await expect(buildApp({ enable: ['authorization_code_grant'], oauthResponseMode: 'fragment' })).rejects.toThrow("oauth(): option 'oauthResponseMode' must be one of query, form_post.");
  });
});
