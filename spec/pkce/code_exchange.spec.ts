import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { ISSUER, obtainCode, pkcePair, testLogin } from '../authorization_code_grant/flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';
const BAD_VERIFIER = { error: 'invalid_grant', error_description: 'Invalid code verifier' };

async function setup(options: Record<string, unknown> = {}, client: Record<string, unknown> = {}) {
  const t = await buildApp({ enable: ['pkce'], issuer: ISSUER, ...options }, { setup: testLogin });
  const { clientId, clientSecret } = await t.createClient({ redirectUri: [REDIRECT], ...client });
  return { t, clientId, clientSecret };
}

function codeFor(t: TestApp, clientId: string, extra: Record<string, string | undefined>): Promise<string> {
  return obtainCode(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', ...extra });
}

function exchange(t: TestApp, body: Record<string, string | undefined>, auth?: { clientId: string; clientSecret: string }) {
  const req = t.agent.post(t.path('/token')).type('form');
  if (auth) req.set('Authorization', basic(auth.clientId, auth.clientSecret));
  const entries = Object.entries({ grant_type: 'authorization_code', redirect_uri: REDIRECT, ...body }).filter((e): e is [string, string] => e[1] !== undefined);
  return req.send(Object.fromEntries(entries));
}

describe('pkce › code exchange', () => {
  it('redeems a code with the S256 verifier (RFC 7636 §4.6)', async () => {
    const { t, clientId, clientSecret } = await setup();
    const { verifier, challenge } = pkcePair();
    const code = await codeFor(t, clientId, { code_challenge: challenge, code_challenge_method: 'S256' });
    const res = await exchange(t, { code, code_verifier: verifier }, { clientId, clientSecret });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read' });
    t.logger.assertNoSecrets([verifier, code, res.body.access_token]);
  });

  it.each([
    ['a missing verifier', undefined],
    ['a wrong verifier', pkcePair().verifier],
    ['the challenge itself as verifier', 'CHALLENGE'],
    ['a malformed verifier', 'short'],
  ])('answers invalid_grant for %s, and the code stays unredeemed', async (_label, verifier) => {
    const { t, clientId, clientSecret } = await setup();
    const pair = pkcePair();
    const code = await codeFor(t, clientId, { code_challenge: pair.challenge, code_challenge_method: 'S256' });
    const res = await exchange(t, { code, code_verifier: verifier === 'CHALLENGE' ? pair.challenge : verifier }, { clientId, clientSecret });
    expect(res.status).toBe(400);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual(BAD_VERIFIER);
    const ok = await exchange(t, { code, code_verifier: pair.verifier }, { clientId, clientSecret });
    expect(ok.status).toBe(200);
  });

  it('verifies a plain challenge only while plain is allowed', async () => {
    const plain = await setup({ oauthPkceAllowPlainMethod: true });
    const { verifier } = pkcePair();
    const code = await codeFor(plain.t, plain.clientId, { code_challenge: verifier, code_challenge_method: 'plain' });
    const ok = await exchange(plain.t, { code, code_verifier: verifier }, plain);
    expect(ok.status).toBe(200);
    const code2 = await codeFor(plain.t, plain.clientId, { code_challenge: verifier, code_challenge_method: 'plain' });
    const wrong = await exchange(plain.t, { code: code2, code_verifier: pkcePair().verifier }, plain);
    expect(wrong.status).toBe(400);
    expect(wrong.body).toEqual(BAD_VERIFIER);
  });

  it('rejects a verifier for a code issued without a challenge (RFC 9700 §2.1.1 downgrade)', async () => {
    const { t, clientId, clientSecret } = await setup({ oauthRequirePkce: false });
    const code = await codeFor(t, clientId, {});
    const res = await exchange(t, { code, code_verifier: pkcePair().verifier }, { clientId, clientSecret });
    expect(res.status).toBe(400);
    expect(res.body).toEqual(BAD_VERIFIER);
    const ok = await exchange(t, { code }, { clientId, clientSecret });
    expect(ok.status).toBe(200);
  });

  describe('public clients (token_endpoint_auth_method none)', () => {
    it('redeem a code with PKCE and client_id alone', async () => {
      const { t, clientId } = await setup({}, { tokenEndpointAuthMethod: 'none' });
      const { verifier, challenge } = pkcePair();
      const code = await codeFor(t, clientId, { code_challenge: challenge, code_challenge_method: 'S256' });
      const res = await exchange(t, { code, code_verifier: verifier, client_id: clientId });
      expect(res.status).toBe(200);
      const me = await t.agent.get('/api/me').set('Authorization', `Bearer ${res.body.access_token}`);
      expect(me.status).toBe(200);
      expect(me.body.clientId).toBe(clientId);
    });

    it('cannot redeem a code issued without a challenge, even with PKCE optional', async () => {
      const { t, clientId } = await setup({ oauthRequirePkce: false }, { tokenEndpointAuthMethod: 'none' });
      const code = await codeFor(t, clientId, {});
      const res = await exchange(t, { code, client_id: clientId });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: 'invalid_grant', error_description: 'Invalid grant' });
    });
  });

  describe('a verifier is never a client credential (rodauth-oauth §7.2 item 1)', () => {
    it('does not let a confidential client redeem its code with a verifier instead of its secret', async () => {
      const { t, clientId } = await setup();
      const { verifier, challenge } = pkcePair();
      const code = await codeFor(t, clientId, { code_challenge: challenge, code_challenge_method: 'S256' });
      const res = await exchange(t, { code, code_verifier: verifier, client_id: clientId });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
    });

    it('does not authenticate a client_credentials request that carries a verifier', async () => {
      const t = await buildApp({ enable: ['pkce', 'client_credentials_grant'], issuer: ISSUER });
      const { clientId } = await t.createClient();
      const res = await t.agent.post(t.path('/token')).type('form').send({ grant_type: 'client_credentials', client_id: clientId, code_verifier: pkcePair().verifier });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
    });

    it('does not authenticate a refresh_token request that carries a verifier', async () => {
      const { t, clientId, clientSecret } = await setup({ enable: ['pkce', 'refresh'] });
      const { verifier, challenge } = pkcePair();
      const code = await codeFor(t, clientId, { code_challenge: challenge, code_challenge_method: 'S256' });
      const tokens = await exchange(t, { code, code_verifier: verifier }, { clientId, clientSecret });
      expect(tokens.status).toBe(200);
      const res = await t.agent.post(t.path('/token')).type('form').send({ grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token, client_id: clientId, code_verifier: verifier });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
    });
  });
});

describe('pkce › oauthInvalidCodeVerifierMessage', () => {
  it('is the description of a failed verification', async () => {
    const { t, clientId, clientSecret } = await setup({ oauthInvalidCodeVerifierMessage: 'Verifier mismatch' });
    const code = await codeFor(t, clientId, { code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
    const res = await exchange(t, { code, code_verifier: pkcePair().verifier }, { clientId, clientSecret });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_grant', error_description: 'Verifier mismatch' });
  });
});
