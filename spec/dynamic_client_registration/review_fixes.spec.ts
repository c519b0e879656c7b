import request from 'supertest';
import { buildApp, closeAll, MOUNT, type TestApp } from '../support/build_app';
import { expectError } from '../support/expect_oauth_error';

afterAll(closeAll);

const ISSUER = 'https://auth.example';
const FEATURES = ['dynamic_client_registration', 'authorization_code_grant', 'refresh'];
const CB = ['https://client.example/cb'];
const INVALID = { error: 'invalid_token', error_description: 'Invalid registration access token' };
const NO_SCOPES = { error: 'invalid_client_metadata', error_description: 'scope: this server lists no scopes a client may register (oauthApplicationScopes)' };

async function countApps(t: TestApp): Promise<number> {
  const [{ n }] = (await t.db('oauth_applications').count({ n: '*' })) as [{ n: number | string }];
  return Number(n);
}

describe('dynamic_client_registration › scopes a client may register', () => {
  it('without oauthApplicationScopes, refuses a registration naming scopes (400) and gives none to one naming none', async () => {
    const t = await buildApp({ enable: FEATURES, issuer: `${ISSUER}${MOUNT}` });
    const before = await countApps(t);
    const res = await request(t.app).post(t.path('/register')).send({ redirect_uris: CB, token_endpoint_auth_method: 'none', scope: 'admin payments:write' });
    expectError(res, 400, NO_SCOPES);
    expect(await countApps(t)).toBe(before);

    const ok = await request(t.app).post(t.path('/register')).send({ redirect_uris: CB, token_endpoint_auth_method: 'none' });
    expect(ok.status).toBe(201);
    expect(ok.body.scope).toBeUndefined();
    expect((await t.auth.applications.get(ok.body.client_id))?.scopes).toEqual([]);
  });

  it('with oauthRegistrationDefaultScopes only: those may be registered, and are the default', async () => {
    const t = await buildApp({ enable: FEATURES, issuer: `${ISSUER}${MOUNT}`, oauthRegistrationDefaultScopes: ['profile'] });
    const bad = await request(t.app).post(t.path('/register')).send({ redirect_uris: CB, token_endpoint_auth_method: 'none', scope: 'profile admin' });
    expectError(bad, 400, { error: 'invalid_client_metadata', error_description: "scope: 'admin' is not supported" });
    const named = await request(t.app).post(t.path('/register')).send({ redirect_uris: CB, token_endpoint_auth_method: 'none', scope: 'profile' });
    expect(named.status).toBe(201);
    expect(named.body.scope).toBe('profile');
    const unnamed = await request(t.app).post(t.path('/register')).send({ redirect_uris: CB, token_endpoint_auth_method: 'none' });
    expect(unnamed.status).toBe(201);
    expect(unnamed.body.scope).toBe('profile');
  });

  it('with oauthApplicationScopes: a scope outside them is refused', async () => {
    const t = await buildApp({ enable: FEATURES, issuer: `${ISSUER}${MOUNT}`, oauthApplicationScopes: ['books.read'] });
    const res = await request(t.app).post(t.path('/register')).send({ redirect_uris: CB, token_endpoint_auth_method: 'none', scope: 'books.read admin' });
    expectError(res, 400, { error: 'invalid_client_metadata', error_description: "scope: 'admin' is not supported" });
  });
});

describe('dynamic_client_registration › fields within their columns, bad ids, concurrent token use', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildApp({ enable: FEATURES, issuer: `${ISSUER}${MOUNT}`, oauthApplicationScopes: ['books.read'] });
  });
  const register = async (): Promise<{ client_id: string; registration_access_token: string }> => {
    const res = await request(t.app).post(t.path('/register')).send({ redirect_uris: CB, token_endpoint_auth_method: 'none', client_name: 'Race' });
    expect(res.status).toBe(201);
    return res.body;
  };
  const uri = (id: string) => t.path(`/register/${encodeURIComponent(id)}`);

  it('refuses a client_uri longer than its column (255) with 400, not a 500, and writes nothing', async () => {
    const before = await countApps(t);
    const long = `https://client.example/${'a'.repeat(256 - 'https://client.example/'.length)}`;
    const res = await request(t.app).post(t.path('/register')).send({ redirect_uris: CB, token_endpoint_auth_method: 'none', client_uri: long });
    expectError(res, 400, { error: 'invalid_client_metadata', error_description: 'client_uri must be 1 to 255 characters' });
    expect(await countApps(t)).toBe(before);
    const fits = await request(t.app).post(t.path('/register')).send({ redirect_uris: CB, token_endpoint_auth_method: 'none', client_uri: long.slice(0, 255) });
    expect(fits.status).toBe(201);
    expect(fits.body.client_uri).toBe(long.slice(0, 255));
  });

  it('stores a software_id and a software_version of 200 characters, refuses 201', async () => {
    const ok = await request(t.app).post(t.path('/register')).send({ redirect_uris: CB, token_endpoint_auth_method: 'none', software_id: 'i'.repeat(200), software_version: 'v'.repeat(200) });
    expect(ok.status).toBe(201);
    const bad = await request(t.app).post(t.path('/register')).send({ redirect_uris: CB, token_endpoint_auth_method: 'none', software_version: 'v'.repeat(201) });
    expectError(bad, 400, { error: 'invalid_client_metadata', error_description: 'software_version must be 1 to 200 characters' });
  });

  it.each([
    ['a NUL byte', '%00'],
    ['a NUL byte inside an id', 'abc%00def'],
    ['an id longer than the column', 'x'.repeat(256)],
  ])('answers a client id with %s by 401 invalid_token (GET, PUT, DELETE), not a 500', async (_label, segment) => {
    const path = t.path(`/register/${segment}`);
    expectError(await request(t.app).get(path).set('Authorization', 'Bearer x'), 401, INVALID);
    expectError(await request(t.app).put(path).set('Authorization', 'Bearer x').send({ client_id: 'x' }), 401, INVALID);
    expectError(await request(t.app).delete(path).set('Authorization', 'Bearer x'), 401, INVALID);
  });

  it('two concurrent PUTs with the same registration access token: exactly one succeeds, and its new token is the one that works', async () => {
    const r = await register();
    const put = (name: string) =>
      request(t.app).put(uri(r.client_id)).set('Authorization', `Bearer ${r.registration_access_token}`).send({ client_id: r.client_id, redirect_uris: CB, token_endpoint_auth_method: 'none', client_name: name });
    const results = await Promise.all([put('First'), put('Second')]);
    const ok = results.filter((res) => res.status === 200);
    const refused = results.filter((res) => res.status !== 200);
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expectError(refused[0]!, 401, INVALID);
    const winner = ok[0]!.body as { client_name: string; registration_access_token: string };
    expect(winner.registration_access_token).toEqual(expect.any(String));
    const read = await request(t.app).get(uri(r.client_id)).set('Authorization', `Bearer ${winner.registration_access_token}`);
    expect(read.status).toBe(200);
    expect(read.body.client_name).toBe(winner.client_name);
    expect((await t.auth.applications.get(r.client_id))?.name).toBe(winner.client_name);
    expectError(await request(t.app).get(uri(r.client_id)).set('Authorization', `Bearer ${r.registration_access_token}`), 401, INVALID);
  });

  it('a PUT and a DELETE with the same token: exactly one succeeds', async () => {
    const r = await register();
    const auth = `Bearer ${r.registration_access_token}`;
    const [updated, deleted] = await Promise.all([
      request(t.app).put(uri(r.client_id)).set('Authorization', auth).send({ client_id: r.client_id, redirect_uris: CB, token_endpoint_auth_method: 'none' }),
      request(t.app).delete(uri(r.client_id)).set('Authorization', auth),
    ]);
    expect([updated.status, deleted.status].sort()).toEqual(updated.status === 200 ? [200, 401] : [204, 401]);
    // applications.get() throws for an unknown client id: the row exists exactly when the PUT won.
    const row = await t.db('oauth_applications').where({ client_id: r.client_id }).first();
    if (deleted.status === 204) expect(row).toBeUndefined();
    else expect(row).toBeDefined();
  });
});
