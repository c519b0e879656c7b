import request from 'supertest';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { claims, clientAssertionForm, Clock, ENCRYPTION_KEY, INVALID_CLIENT, ISSUER, keyPair, signHmac, signWith, type KeyPair } from './support';

afterAll(closeAll);

let key: KeyPair;
beforeAll(async () => {
  key = await keyPair('ES256');
});

async function setup() {
  const clock = new Clock();
  const t = await buildApp({
    enable: ['jwt_bearer', 'client_credentials_grant', 'token_revocation', 'token_introspection'],
    issuer: ISSUER,
    now: clock.now,
    oauthClientSecretEncryptionKey: ENCRYPTION_KEY,
  });
  const client = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [key.publicJwk] } });
  const assertion = () => signWith(key, claims(clock, client.clientId));
  const post = async (path: string, form: Record<string, string>) => request(t.app).post(t.path(path)).type('form').send(form);
  const issued = await post('/token', { grant_type: 'client_credentials', ...clientAssertionForm(await assertion()) });
  expect(issued.status).toBe(200);
  return { t, clock, client, assertion, post, accessToken: issued.body.access_token as string };
}

function expectInvalidClient(res: request.Response, t: TestApp, why: string): void {
  expect(res.status).toBe(401);
  expect(res.headers).toMatchObject({ 'cache-control': 'no-store', pragma: 'no-cache', 'www-authenticate': 'Basic realm="oauth"' });
  expect(res.body).toEqual(INVALID_CLIENT);
  expect(t.logger.lines[t.logger.lines.length - 1]).toContain(why);
}

describe('jwt_bearer › other endpoints', () => {
  it('authenticates private_key_jwt at /introspect and /revoke, with the token endpoint as audience (RFC 7523 §2.2)', async () => {
    const { t, client, assertion, post, accessToken } = await setup();
    const active = await post('/introspect', { token: accessToken, ...clientAssertionForm(await assertion()) });
    expect(active.status).toBe(200);
    expect(active.body).toEqual({
      active: true,
      scope: 'books.read books.write',
      client_id: client.clientId,
      username: 'Test client',
      token_type: 'Bearer',
      exp: expect.any(Number),
      iat: expect.any(Number),
      sub: client.clientId,
      aud: ISSUER,
      iss: ISSUER,
    });
    const revoked = await post('/revoke', { token: accessToken, ...clientAssertionForm(await assertion()) });
    expect(revoked.status).toBe(200);
    expect(revoked.text).toBe('');
    const inactive = await post('/introspect', { token: accessToken, ...clientAssertionForm(await assertion()) });
    expect(inactive.status).toBe(200);
    expect(inactive.body).toEqual({ active: false });
    t.logger.assertNoSecrets([accessToken]);
  });

  it('authenticates client_secret_jwt at /introspect', async () => {
    const { t, clock, post, accessToken } = await setup();
    const secretClient = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_jwt' });
    const hmac = async () => clientAssertionForm(await signHmac(secretClient.clientSecret, claims(clock, secretClient.clientId)));
    const own = await post('/token', { grant_type: 'client_credentials', ...(await hmac()) });
    expect(own.status).toBe(200);
    const res = await post('/introspect', { token: own.body.access_token, ...(await hmac()) });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ active: true, client_id: secretClient.clientId });
    // Another client's token is not the caller's to see.
    const foreign = await post('/introspect', { token: accessToken, ...(await hmac()) });
    expect(foreign.status).toBe(200);
    expect(foreign.body).toEqual({ active: false });
  });

  it('answers 401 invalid_client for a replayed or badly signed assertion at /revoke and /introspect', async () => {
    const { t, clock, client, post, accessToken } = await setup();
    const once = await signWith(key, claims(clock, client.clientId));
    expect((await post('/introspect', { token: accessToken, ...clientAssertionForm(once) })).status).toBe(200);
    expectInvalidClient(await post('/revoke', { token: accessToken, ...clientAssertionForm(once) }), t, '(assertion_replayed)');
    const other = await keyPair('ES256', key.kid);
    expectInvalidClient(await post('/introspect', { token: accessToken, ...clientAssertionForm(await signWith(other, claims(clock, client.clientId))) }), t, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    // The token was not revoked by the refused request.
    const me = await request(t.app).get('/api/me').set('Authorization', `Bearer ${accessToken}`);
    expect(me.status).toBe(200);
  });
});
