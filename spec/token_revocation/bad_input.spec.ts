import request from 'supertest';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { expectError, INVALID_CLIENT } from '../support/expect_oauth_error';
import { insertGrant, reloadGrant } from '../support/token_fixtures';

afterAll(closeAll);

type Client = { clientId: string; clientSecret: string; id: number };


describe('token_revocation › bad_input', () => {
  let t: TestApp;
  let client: Client;

  beforeAll(async () => {
    t = await buildApp({ enable: ['token_revocation'] });
    client = await t.createClient();
  });

  const post = () => request(t.app).post(t.path('/revoke'));

  it('rejects a request without token with invalid_request (RFC 7009 §2.1: token is REQUIRED)', async () => {
    const res = await post().set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ token_type_hint: 'access_token' });
    expectError(res, 400, { error: 'invalid_request', error_description: "Missing parameter 'token'" });
  });

  it('treats an empty token as missing (RFC 6749 §3.1)', async () => {
    const res = await post().set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send('token=');
    expectError(res, 400, { error: 'invalid_request', error_description: "Missing parameter 'token'" });
  });

  it('rejects a repeated token with invalid_request and revokes neither (RFC 6749 §3.1)', async () => {
    const a = await insertGrant(t, { applicationId: client.id });
    const b = await insertGrant(t, { applicationId: client.id });
    const res = await post().set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send(`token=${a.accessToken}&token=${b.accessToken}`);
    expectError(res, 400, { error: 'invalid_request', error_description: "Parameter 'token' must not be repeated" });
    expect((await reloadGrant(t, a.grant.id)).revokedAt).toBeNull();
    expect((await reloadGrant(t, b.grant.id)).revokedAt).toBeNull();
  });

  it('rejects a token that is not a string in a JSON body with invalid_request', async () => {
    const res = await post().set('Authorization', basic(client.clientId, client.clientSecret)).send({ token: 12345 });
    expectError(res, 400, { error: 'invalid_request', error_description: "Parameter 'token' must be a string" });
  });

  it('rejects an oversized token with invalid_request, never a 500', async () => {
    const res = await post().set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ token: 'a'.repeat(16 * 1024 + 1) });
    expectError(res, 400, { error: 'invalid_request', error_description: "Parameter 'token' is too long" });
  });

  it('rejects an oversized body with invalid_request, never a 500', async () => {
    const res = await post().set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ token: 'a'.repeat(70 * 1024) });
    expectError(res, 400, { error: 'invalid_request', error_description: 'The request body is too large' });
  });

  it('rejects a request without client authentication with 401 invalid_client and a Basic challenge (RFC 7009 §2.1, RFC 6749 §5.2)', async () => {
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id });
    const res = await post().type('form').send({ token: accessToken });
    expectError(res, 401, INVALID_CLIENT);
    expect(res.headers['www-authenticate']).toBe('Basic realm="oauth"');
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
  });

  it('rejects a wrong client secret with 401 invalid_client and revokes nothing (RFC 7009 §2.1)', async () => {
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id });
    const res = await post().set('Authorization', basic(client.clientId, 'wrong')).type('form').send({ token: accessToken });
    expectError(res, 401, INVALID_CLIENT);
    expect(res.headers['www-authenticate']).toBe('Basic realm="oauth"');
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
  });

  it('rejects a bearer token in place of client credentials with 401 invalid_client', async () => {
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id });
    const res = await post().set('Authorization', `Bearer ${accessToken}`).type('form').send({ token: accessToken });
    expectError(res, 401, INVALID_CLIENT);
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
  });

  it('checks client authentication before the token: no credentials and no token is 401 (RFC 7009 §2.1)', async () => {
    const res = await post().type('form').send({});
    expectError(res, 401, INVALID_CLIENT);
  });

  it('rejects two client authentication methods at once with invalid_request (RFC 6749 §2.3)', async () => {
    const res = await post()
      .set('Authorization', basic(client.clientId, client.clientSecret))
      .type('form')
      .send({ token: 'x', client_id: client.clientId, client_secret: client.clientSecret });
    expectError(res, 400, { error: 'invalid_request', error_description: 'Use exactly one client authentication method' });
  });

  it('rejects a method the client is not registered for with 401 (design.md §4.4)', async () => {
    const postOnly = await t.createClient({ name: 'Post only', tokenEndpointAuthMethod: 'client_secret_post' });
    const { grant, accessToken } = await insertGrant(t, { applicationId: postOnly.id });
    const res = await post().set('Authorization', basic(postOnly.clientId, postOnly.clientSecret)).type('form').send({ token: accessToken });
    expectError(res, 401, INVALID_CLIENT);
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
  });

  it('rejects a confidential client that sends only its client_id (no secret) with 401', async () => {
    const { grant, accessToken } = await insertGrant(t, { applicationId: client.id });
    const res = await post().type('form').send({ client_id: client.clientId, token: accessToken });
    expectError(res, 401, INVALID_CLIENT);
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
  });

  it('rejects a body that is neither form nor JSON with invalid_request', async () => {
    const res = await post().set('Authorization', basic(client.clientId, client.clientSecret)).set('Content-Type', 'text/plain').send('token=abc');
    expectError(res, 400, { error: 'invalid_request', error_description: 'The request body must be application/x-www-form-urlencoded or application/json' });
  });
});
