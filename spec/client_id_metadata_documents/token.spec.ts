import request from 'supertest';
import { buildApp, basic, type TestApp } from '../support/build_app';
import { expectError, INVALID_CLIENT } from '../support/expect_oauth_error';
import { obtainCode, pkcePair, testLogin, ISSUER } from '../authorization_code_grant/flow';
import { Clock, LOOPBACK_FETCH, REDIRECT_URI, useDocumentServer } from './support';

const docs = useDocumentServer();

function setup(options: Record<string, unknown> = {}): Promise<TestApp> {
  return buildApp({ enable: ['client_id_metadata_documents', 'refresh'], issuer: ISSUER, oauthApplicationScopes: ['books.read', 'books.write'], ...LOOPBACK_FETCH, ...options }, { setup: testLogin });
}

function redeem(t: TestApp, clientId: string, code: string, verifier: string) {
  return request(t.app).post(t.path('/token')).type('form').send({ grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: REDIRECT_URI, code_verifier: verifier });
}

async function codeFor(t: TestApp, clientId: string, scope = 'books.read') {
  const { verifier, challenge } = pkcePair();
  const code = await obtainCode(t, { client_id: clientId, redirect_uri: REDIRECT_URI, response_type: 'code', scope, state: 's', code_challenge: challenge, code_challenge_method: 'S256' });
  return { code, verifier };
}

describe('client_id_metadata_documents › token endpoint', () => {
  it('redeems the code of a URL client as a public client with PKCE, then refreshes, fetching the document once', async () => {
    const t = await setup();
    const path = '/flow/client.json';
    const clientId = docs.client(path, { grant_types: ['authorization_code', 'refresh_token'] });
    const { code, verifier } = await codeFor(t, clientId);
    const res = await redeem(t, clientId, code, verifier);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, refresh_token: expect.any(String), scope: 'books.read' });
    const me = await request(t.app).get('/api/me').set('Authorization', `Bearer ${res.body.access_token}`);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ accountId: 'alice', clientId, scopes: ['books.read'] });
    const refreshed = await request(t.app).post(t.path('/token')).type('form').send({ grant_type: 'refresh_token', client_id: clientId, refresh_token: res.body.refresh_token });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body).toMatchObject({ token_type: 'Bearer', scope: 'books.read', refresh_token: expect.any(String) });
    // The consent page (GET), the approval (POST), the code exchange and the refresh: one fetch.
    expect(docs.count(path)).toBe(1);
  });

  it('refuses the code exchange without the verifier (the client is public)', async () => {
    const t = await setup();
    const clientId = docs.client('/no-verifier/client.json');
    const { code } = await codeFor(t, clientId);
    const res = await request(t.app).post(t.path('/token')).type('form').send({ grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: REDIRECT_URI });
    expectError(res, 400, { error: 'invalid_grant', error_description: 'Invalid code verifier' });
  });

  it('refuses a secret presented for a URL client (invalid_client): such clients have none', async () => {
    const t = await setup();
    const clientId = docs.client('/secret/client.json');
    const { code, verifier } = await codeFor(t, clientId);
    const res = await request(t.app).post(t.path('/token')).set('Authorization', basic(clientId, 'guess')).type('form').send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier });
    expectError(res, 401, INVALID_CLIENT);
    expect(res.headers['www-authenticate']).toMatch(/^Basic /);
  });

  it('issues no refresh token to a client whose document does not list the refresh_token grant', async () => {
    const t = await setup();
    const clientId = docs.client('/no-refresh/client.json');
    const { code, verifier } = await codeFor(t, clientId);
    const res = await redeem(t, clientId, code, verifier);
    expect(res.status).toBe(200);
    expect(res.body.refresh_token).toBeUndefined();
  });

  it('resolves URL clients the same way at the revocation endpoint (RFC 7009): its own token revoked, a bad document invalid_client', async () => {
    const t = await setup({ enable: ['client_id_metadata_documents', 'token_revocation'] });
    const clientId = docs.client('/revoke/client.json');
    const { code, verifier } = await codeFor(t, clientId);
    const { access_token } = (await redeem(t, clientId, code, verifier)).body as { access_token: string };
    const revoked = await request(t.app).post(t.path('/revoke')).type('form').send({ client_id: clientId, token: access_token });
    expect(revoked.status).toBe(200);
    expect((await request(t.app).get('/api/me').set('Authorization', `Bearer ${access_token}`)).status).toBe(401);
    const bad = docs.serve('/revoke/bad.json', { body: 'not json' });
    expectError(await request(t.app).post(t.path('/revoke')).type('form').send({ client_id: bad, token: access_token }), 401, INVALID_CLIENT);
  });

  it('answers invalid_client at /token once the document stops validating, on its next fetch', async () => {
    const clock = new Clock();
    const t = await setup({ now: clock.now });
    const path = '/broken-later/client.json';
    const clientId = docs.client(path, {}, { headers: { 'cache-control': 'max-age=120' } });
    const { code, verifier } = await codeFor(t, clientId);
    docs.serve(path, { body: { client_id: `${clientId}x`, redirect_uris: [REDIRECT_URI] } });
    clock.advance(121);
    expectError(await redeem(t, clientId, code, verifier), 401, INVALID_CLIENT);
    expect(t.logger.lines.some((l) => l.includes('(invalid_client_metadata_document)'))).toBe(true);
  });
});
