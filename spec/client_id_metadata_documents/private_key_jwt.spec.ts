import request from 'supertest';
import { buildApp } from '../support/build_app';
import { expectError, INVALID_CLIENT } from '../support/expect_oauth_error';
import { obtainCode, pkcePair, testLogin, ISSUER } from '../authorization_code_grant/flow';
import { claims, clientAssertionForm, Clock, keyPair, signWith, type KeyPair } from '../jwt_bearer/support';
import { LOOPBACK_FETCH, REDIRECT_URI, useDocumentServer } from './support';

const docs = useDocumentServer();
let key: KeyPair;
beforeAll(async () => {
  key = await keyPair('ES256');
});

describe('client_id_metadata_documents › private_key_jwt', () => {
  it('authenticates a URL client with private_key_jwt against the keys at its jwks_uri, PKCE still required', async () => {
    const clock = new Clock();
    const t = await buildApp({ enable: ['client_id_metadata_documents', 'jwt_bearer'], issuer: ISSUER, now: clock.now, oauthApplicationScopes: ['books.read'], ...LOOPBACK_FETCH }, { setup: testLogin });
    docs.serve('/pkjwt/jwks.json', { body: { keys: [key.publicJwk] } });
    const clientId = docs.client('/pkjwt/client.json', { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: docs.url('/pkjwt/jwks.json') });
    const { verifier, challenge } = pkcePair();
    const code = await obtainCode(t, { client_id: clientId, redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'books.read', code_challenge: challenge, code_challenge_method: 'S256' });
    expect((await t.auth.applications.get(clientId)).tokenEndpointAuthMethods).toEqual(['private_key_jwt']);

    // Without an assertion, as a public client: not the method the document registers.
    const asPublic = await request(t.app).post(t.path('/token')).type('form').send({ grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: REDIRECT_URI, code_verifier: verifier });
    expectError(asPublic, 401, INVALID_CLIENT);

    const res = await request(t.app)
      .post(t.path('/token'))
      .type('form')
      .send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier, ...clientAssertionForm(await signWith(key, claims(clock, clientId, { aud: ISSUER }))) });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'Bearer', scope: 'books.read' });
    expect(docs.count('/pkjwt/jwks.json')).toBe(1);
  });
});
