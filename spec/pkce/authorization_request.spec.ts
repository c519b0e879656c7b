import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { consent, formFields, grantCount, ISSUER, pkcePair, query, testLogin } from '../authorization_code_grant/flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';
const ISS = encodeURIComponent(ISSUER);

async function setup(options: Record<string, unknown> = {}): Promise<{ t: TestApp; clientId: string }> {
  const t = await buildApp({ enable: ['pkce'], issuer: ISSUER, ...options }, { setup: testLogin });
  const { clientId } = await t.createClient({ redirectUri: [REDIRECT] });
  return { t, clientId };
}

function authorize(t: TestApp, params: Record<string, string | undefined>) {
  return t.agent.get(`${t.path('/authorize')}?${query(params)}`).set('X-Test-User', 'alice');
}

const base = (clientId: string) => ({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: 'st' });
const back = (error: string, description: string) => `${REDIRECT}?error=${error}&error_description=${description}&state=st&iss=${ISS}`;

describe('pkce › authorization request', () => {
  it('requires a code_challenge from every client by default (RFC 9700 §2.1.1, RFC 7636 §4.4.1)', async () => {
    const { t, clientId } = await setup();
    const res = await authorize(t, base(clientId));
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(back('invalid_request', 'Code+challenge+required'));
  });

  it.each([
    ['plain, while plain is not allowed', 'plain', pkcePair().verifier],
    ['no method (which means plain, RFC 7636 §4.3)', undefined, pkcePair().verifier],
    ['an unknown method', 'S512', pkcePair().challenge],
  ])('answers invalid_request for %s', async (_label, method, challenge) => {
    const { t, clientId } = await setup();
    const res = await authorize(t, { ...base(clientId), code_challenge: challenge, code_challenge_method: method });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(back('invalid_request', 'Transform+algorithm+not+supported'));
  });

  it.each([
    ['too short', 'a'.repeat(42)],
    ['too long', 'a'.repeat(129)],
    ['with characters outside the unreserved set', `${'a'.repeat(42)}+`],
  ])('answers invalid_request for a code_challenge %s (RFC 7636 §4.2)', async (_label, challenge) => {
    const { t, clientId } = await setup();
    const res = await authorize(t, { ...base(clientId), code_challenge: challenge, code_challenge_method: 'S256' });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(back('invalid_request', 'Invalid+code+challenge'));
  });

  it('answers invalid_request for a code_challenge_method without a code_challenge', async () => {
    const { t, clientId } = await setup({ oauthRequirePkce: false });
    const res = await authorize(t, { ...base(clientId), code_challenge_method: 'S256' });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(back('invalid_request', 'Code+challenge+required'));
  });

  it('never redirects a PKCE error before client_id and redirect_uri are validated (rodauth-oauth §7.2 item 2)', async () => {
    const { t, clientId } = await setup();
    const res = await authorize(t, { ...base(clientId), redirect_uri: 'https://evil.example/cb', code_challenge_method: 'plain' });
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
  });

  it('carries the challenge through the consent form and stores it on the grant', async () => {
    const { t, clientId } = await setup();
    const { challenge } = pkcePair();
    const page = await authorize(t, { ...base(clientId), code_challenge: challenge, code_challenge_method: 'S256' });
    expect(page.status).toBe(200);
    expect(formFields(page.text)).toEqual({ ...base(clientId), code_challenge: challenge, code_challenge_method: 'S256', csrf_token: expect.any(String) });
    const res = await consent(t, { ...base(clientId), code_challenge: challenge, code_challenge_method: 'S256' });
    expect(res.status).toBe(302);
    expect(await t.db('oauth_grants').select('code_challenge', 'code_challenge_method')).toEqual([{ code_challenge: challenge, code_challenge_method: 'S256' }]);
  });

  it('checks the challenge again on POST: one removed from the form gives no grant', async () => {
    const { t, clientId } = await setup();
    const page = await authorize(t, { ...base(clientId), code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
    const { code_challenge: _c, code_challenge_method: _m, ...fields } = formFields(page.text);
    const res = await t.agent.post(t.path('/authorize')).set('X-Test-User', 'alice').type('form').send({ ...fields, decision: 'approve' });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(back('invalid_request', 'Code+challenge+required'));
    expect(await grantCount(t)).toBe(0);
  });

  it('accepts plain only with oauthPkceAllowPlainMethod, and a missing method then means plain', async () => {
    const { t, clientId } = await setup({ oauthPkceAllowPlainMethod: true });
    const verifier = pkcePair().verifier;
    const res = await consent(t, { ...base(clientId), code_challenge: verifier });
    expect(res.status).toBe(302);
    expect(await t.db('oauth_grants').select('code_challenge', 'code_challenge_method')).toEqual([{ code_challenge: verifier, code_challenge_method: 'plain' }]);
  });

  it('lets a request without a challenge through when oauthRequirePkce is off', async () => {
    const { t, clientId } = await setup({ oauthRequirePkce: false });
    const res = await consent(t, base(clientId));
    expect(res.status).toBe(302);
    expect(await t.db('oauth_grants').select('code_challenge')).toEqual([{ code_challenge: null }]);
  });

  it('advertises code_challenge_methods_supported (RFC 8414 §2)', async () => {
    const { t } = await setup();
    const res = await t.agent.get(t.path('/.well-known/oauth-authorization-server'));
    expect(res.body.code_challenge_methods_supported).toEqual(['S256']);
    const plain = await setup({ oauthPkceAllowPlainMethod: true });
    const res2 = await plain.t.agent.get(plain.t.path('/.well-known/oauth-authorization-server'));
    expect(res2.body.code_challenge_methods_supported).toEqual(['S256', 'plain']);
  });
});

describe('pkce › messages', () => {
  it('takes its error descriptions from values', async () => {
    const { t, clientId } = await setup({
      oauthCodeChallengeRequiredMessage: 'PKCE please',
      oauthUnsupportedTransformAlgorithmMessage: 'S256 only',
      oauthInvalidCodeChallengeMessage: 'Bad challenge',
    });
    const missing = await authorize(t, base(clientId));
    expect(missing.headers.location).toBe(back('invalid_request', 'PKCE+please'));
    const plain = await authorize(t, { ...base(clientId), code_challenge: pkcePair().challenge, code_challenge_method: 'plain' });
    expect(plain.headers.location).toBe(back('invalid_request', 'S256+only'));
    const bad = await authorize(t, { ...base(clientId), code_challenge: 'x', code_challenge_method: 'S256' });
    expect(bad.headers.location).toBe(back('invalid_request', 'Bad+challenge'));
  });
});
