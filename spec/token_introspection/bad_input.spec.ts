import request from 'supertest';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { expectError, INVALID_CLIENT } from '../support/expect_oauth_error';
import { insertGrant } from '../support/token_fixtures';

afterAll(closeAll);

type Client = { clientId: string; clientSecret: string; id: number };


describe('token_introspection › bad_input', () => {
  let t: TestApp;
  let client: Client;

  beforeAll(async () => {
    t = await buildApp({ enable: ['token_introspection'] });
    client = await t.createClient();
  });

  const post = () => request(t.app).post(t.path('/introspect'));
  const authed = () => post().set('Authorization', basic(client.clientId, client.clientSecret));

  it('rejects a request without token with invalid_request (RFC 7662 §2.1: token is REQUIRED)', async () => {
    expectError(await authed().type('form').send({ token_type_hint: 'access_token' }), 400, { error: 'invalid_request', error_description: "Missing parameter 'token'" });
  });

  it('rejects a repeated token with invalid_request (RFC 6749 §3.1)', async () => {
    const a = await insertGrant(t, { applicationId: client.id });
    const res = await authed().type('form').send(`token=${a.accessToken}&token=${a.refreshToken}`);
    expectError(res, 400, { error: 'invalid_request', error_description: "Parameter 'token' must not be repeated" });
  });

  it('rejects a token that is not a string in a JSON body with invalid_request', async () => {
    expectError(await authed().send({ token: ['a', 'b'] }), 400, { error: 'invalid_request', error_description: "Parameter 'token' must not be repeated" });
    expectError(await authed().send({ token: { a: 1 } }), 400, { error: 'invalid_request', error_description: "Parameter 'token' must be a string" });
  });

  it('rejects an oversized token with invalid_request, never a 500', async () => {
    expectError(await authed().type('form').send({ token: 'a'.repeat(16 * 1024 + 1) }), 400, { error: 'invalid_request', error_description: "Parameter 'token' is too long" });
  });

  it('answers a long but acceptable unknown token with {"active": false}', async () => {
    const res = await authed().type('form').send({ token: 'a'.repeat(16 * 1024) });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ active: false });
  });

  it('rejects a request without client authentication with 401 invalid_client and a Basic challenge (RFC 7662 §2.1)', async () => {
    const { accessToken } = await insertGrant(t, { applicationId: client.id });
    const res = await post().type('form').send({ token: accessToken });
    expectError(res, 401, INVALID_CLIENT);
    expect(res.headers['www-authenticate']).toBe('Basic realm="oauth"');
  });

  it('rejects a wrong client secret with 401 invalid_client', async () => {
    const { accessToken } = await insertGrant(t, { applicationId: client.id });
    const res = await post().set('Authorization', basic(client.clientId, 'wrong')).type('form').send({ token: accessToken });
    expectError(res, 401, INVALID_CLIENT);
    expect(res.headers['www-authenticate']).toBe('Basic realm="oauth"');
  });

  it('rejects an unknown client with 401 invalid_client', async () => {
    const res = await post().set('Authorization', basic('no-such-client', 'x')).type('form').send({ token: 'x' });
    expectError(res, 401, INVALID_CLIENT);
  });

  it('rejects a bearer token in place of client credentials with 401 invalid_client, never a 500 (rodauth-oauth §7.2 item 14)', async () => {
    const { accessToken } = await insertGrant(t, { applicationId: client.id });
    expectError(await post().set('Authorization', `Bearer ${accessToken}`).type('form').send({ token: accessToken }), 401, INVALID_CLIENT);
    expectError(await post().set('Authorization', 'Bearer expired-or-bogus').type('form').send({ token: accessToken }), 401, INVALID_CLIENT);
  });

  it('rejects a malformed Basic header with 401 invalid_client', async () => {
    expectError(await post().set('Authorization', 'Basic %%%').type('form').send({ token: 'x' }), 401, INVALID_CLIENT);
  });

  it('rejects two client authentication methods at once with invalid_request (RFC 6749 §2.3)', async () => {
    const res = await authed().type('form').send({ token: 'x', client_id: client.clientId, client_secret: client.clientSecret });
    expectError(res, 400, { error: 'invalid_request', error_description: 'Use exactly one client authentication method' });
  });

  it('rejects a malformed JSON body with invalid_request', async () => {
    const res = await authed().set('Content-Type', 'application/json').send('{"token":');
    expectError(res, 400, { error: 'invalid_request', error_description: 'The request body could not be parsed' });
  });
});
