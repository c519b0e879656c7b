import request from 'supertest';
import { oauth, UnknownApplicationError, type OAuthRouter } from '../../lib';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { ApplicationStore } from '../../lib/store/applications';
import { insertGrant, reloadGrant } from '../support/token_fixtures';
import { claims, clientAssertionForm, Clock, ENCRYPTION_KEY, INVALID_CLIENT, ISSUER, signHmac } from '../jwt_bearer/support';

afterEach(closeAll);

interface Setup {
  t: TestApp;
  clock: Clock;
}

async function setup(options: Record<string, unknown> = {}): Promise<Setup> {
  const clock = new Clock();
  const t = await buildApp({ enable: ['refresh', 'client_credentials_grant', 'jwt_bearer'], issuer: ISSUER, oauthClientSecretEncryptionKey: ENCRYPTION_KEY, now: clock.now, ...options });
  return { t, clock };
}

function ccToken(t: TestApp, clientId: string, secret: string, app = t.app) {
  return request(app).post(t.path('/token')).set('Authorization', basic(clientId, secret)).type('form').send({ grant_type: 'client_credentials' });
}

function expectInvalidClient(res: request.Response): void {
  expect(res.status).toBe(401);
  expect(res.body).toEqual(INVALID_CLIENT);
}

async function count(t: TestApp, table: string, where: Record<string, unknown> = {}): Promise<number> {
  const [row] = await t.db(table).where(where).count({ n: '*' });
  return Number((row as { n: unknown }).n);
}

describe('oauth_base › applications › list and get', () => {
  it('pages through the clients in registration order with a next cursor, never showing a secret', async () => {
    const { t } = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await t.createClient({ name: `App ${i}` })).clientId);

    const first = await t.auth.applications.list({ limit: 2 });
    expect(first.applications.map((a) => a.clientId)).toEqual(ids.slice(0, 2));
    expect(first.next).toEqual(expect.any(String));
    const second = await t.auth.applications.list({ limit: 2, after: first.next! });
    expect(second.applications.map((a) => a.clientId)).toEqual(ids.slice(2, 4));
    const last = await t.auth.applications.list({ limit: 2, after: second.next! });
    expect(last).toEqual({ applications: [expect.objectContaining({ clientId: ids[4], name: 'App 4' })], next: null });
    expect((await t.auth.applications.list()).applications).toHaveLength(5);

    for (const app of first.applications) {
      expect(Object.keys(app)).not.toEqual(expect.arrayContaining(['clientSecretHash']));
      expect(app).not.toHaveProperty('clientSecretHash');
      expect(app).not.toHaveProperty('clientSecretEncrypted');
      expect(app).not.toHaveProperty('previousClientSecretHash');
      expect(app.hasSecret).toBe(true);
    }
  });

  it('gives an empty page with no cursor when there is no client', async () => {
    const { t } = await setup();
    expect(await t.auth.applications.list({ limit: 10 })).toEqual({ applications: [], next: null });
  });

  it.each([
    ['a limit of 0', { limit: 0 }, 'applications.list(): limit must be an integer from 1 to 1000 (got 0)'],
    ['a limit above 1000', { limit: 1001 }, 'applications.list(): limit must be an integer from 1 to 1000 (got 1001)'],
    ['a fractional limit', { limit: 2.5 }, 'applications.list(): limit must be an integer from 1 to 1000 (got 2.5)'],
    ['a cursor it never gave', { after: 'abc' }, `applications.list(): after must be the 'next' cursor of a previous page (got "abc")`],
  ])('refuses %s', async (_label, options, message) => {
    const { t } = await setup();
    await expect(t.auth.applications.list(options as never)).rejects.toThrow(new TypeError(message));
  });

  it('gets one client by its id, and says which id is unknown', async () => {
    const { t } = await setup();
    const { clientId } = await t.createClient({ name: 'Books', scopes: ['books.read'] });
    const pub = await t.auth.createApplication({ name: 'SPA', tokenEndpointAuthMethod: 'none', grantTypes: ['refresh_token'] });
    expect(await t.auth.applications.get(clientId)).toMatchObject({ clientId, name: 'Books', scopes: ['books.read'], hasSecret: true, previousSecretExpiresAt: null });
    expect(await t.auth.applications.get(pub.clientId)).toMatchObject({ hasSecret: false, tokenEndpointAuthMethods: ['none'] });

    const err = await t.auth.applications.get('nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownApplicationError);
    expect(err).toMatchObject({ code: 'unknown_client_id', clientId: 'nope', message: 'applications.get(): unknown client id "nope"' });
  });
});

describe('oauth_base › applications › update', () => {
  it('changes names, redirect URIs, scopes, grant types, auth methods and jwks, and the token endpoint follows', async () => {
    const { t } = await setup();
    const { clientId, clientSecret, id } = await t.createClient({ grantTypes: ['refresh_token'] });
    expect((await ccToken(t, clientId, clientSecret)).status).toBe(400); // not registered for client_credentials

    const updated = await t.auth.applications.update(clientId, {
      name: 'Renamed',
      redirectUri: ['https://new.example/cb', 'http://127.0.0.1/cb'],
      scopes: ['books.read'],
      grantTypes: ['client_credentials'],
      tokenEndpointAuthMethod: ['client_secret_basic'],
      jwks: { keys: [{ kty: 'oct', k: 'AAAA' }] },
      jwksUri: null,
    });
    expect(updated).toMatchObject({ clientId, id, name: 'Renamed', redirectUris: ['https://new.example/cb', 'http://127.0.0.1/cb'], scopes: ['books.read'], grantTypes: ['client_credentials'], tokenEndpointAuthMethods: ['client_secret_basic'], jwks: '{"keys":[{"kty":"oct","k":"AAAA"}]}', jwksUri: null });
    const row = await t.db('oauth_applications').where('client_id', clientId).first();
    expect(row).toMatchObject({ name: 'Renamed', redirect_uri: 'https://new.example/cb http://127.0.0.1/cb', scopes: 'books.read', grant_types: 'client_credentials', token_endpoint_auth_method: 'client_secret_basic' });

    const res = await ccToken(t, clientId, clientSecret);
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('books.read');
    // The secret is untouched.
    expect(await t.auth.applications.get(clientId)).toMatchObject({ hasSecret: true });
  });

  it('leaves the fields it is not given as they were, and clears the auth methods back to the default with null', async () => {
    const { t } = await setup();
    const { clientId } = await t.createClient({ description: 'kept', tokenEndpointAuthMethod: 'client_secret_post' });
    const updated = await t.auth.applications.update(clientId, { tokenEndpointAuthMethod: null });
    expect(updated).toMatchObject({ description: 'kept', tokenEndpointAuthMethods: null, scopes: ['books.read', 'books.write'] });
  });

  it.each([
    ['an http redirect URI outside loopback', { redirectUri: ['http://app.example/cb'] }, "applications.update(): redirect URI 'http://app.example/cb' uses http outside loopback: use https (RFC 9700 §2.1; plain http only for 127.0.0.1, [::1] or localhost, RFC 8252 §7.3)"],
    ['a relative redirect URI', { redirectUri: '/cb' }, "applications.update(): redirect URI '/cb' is not an absolute URI (RFC 3986 §4.3)"],
    ['an unknown grant type', { grantTypes: ['password'] }, "applications.update(): grant type 'password' is not provided by the enabled features (refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:jwt-bearer)"],
    ['grantTypes that is not an array', { grantTypes: 'client_credentials' }, 'applications.update(): grantTypes must be an array of grant types'],
    ['a jwks that is not a JWK Set', { jwks: { kty: 'RSA' } }, 'applications.update(): jwks must be a JWK Set ({ keys: [...] })'],
    ['a jwks whose key has no kty', { jwks: { keys: [{ n: 'x' }] } }, 'applications.update(): jwks must be a JWK Set ({ keys: [...] }): keys[0] is not a JWK (no kty, RFC 7517 §4.1)'],
    ['a jwks string that is not JSON', { jwks: '{keys' }, 'applications.update(): jwks must be a JWK Set ({ keys: [...] }): it is not JSON'],
    ['an unknown auth method', { tokenEndpointAuthMethod: 'tls_client_auth' }, "applications.update(): client authentication method 'tls_client_auth' is not provided by the enabled features"],
    ['an invalid scope', { scopes: ['a"b'] }, `applications.update(): 'a"b' is not a valid scope (RFC 6749 §3.3)`],
    ['an empty name', { name: ' ' }, 'applications.update(): name is required'],
    ['a name longer than its column', { name: 'n'.repeat(256) }, 'applications.update(): name must be at most 255 characters (got 256)'],
    ['a field that cannot be changed', { clientSecret: 'x' }, "applications.update(): 'clientSecret' cannot be changed (fields: name, description,"],
  ])('refuses %s with a TypeError and writes nothing', async (_label, changes, message) => {
    const { t } = await setup();
    const { clientId } = await t.createClient({ name: 'Before' });
    const before = await t.db('oauth_applications').where('client_id', clientId).first();
    const err = await t.auth.applications.update(clientId, { name: 'After', ...changes } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toContain(message);
    expect(await t.db('oauth_applications').where('client_id', clientId).first()).toEqual(before);
  });

  it('refuses an unknown client id', async () => {
    const { t } = await setup();
    await expect(t.auth.applications.update('nope', { name: 'x' })).rejects.toThrow(new UnknownApplicationError('nope', 'applications.update()'));
  });

  it('createApplication shares the validation: it refuses an http redirect URI outside loopback too', async () => {
    const { t } = await setup();
    await expect(t.auth.createApplication({ name: 'x', redirectUri: 'http://app.example/cb', grantTypes: ['client_credentials'] })).rejects.toThrow(
      "createApplication(): redirect URI 'http://app.example/cb' uses http outside loopback",
    );
    await expect(t.auth.createApplication({ name: 'x', redirectUri: ['http://localhost:8080/cb', 'http://[::1]/cb', 'com.example.app:/cb'], grantTypes: ['client_credentials'] })).resolves.toBeDefined();
  });
});

describe('oauth_base › applications › rotateSecret', () => {
  it('returns the new secret once; the old one keeps working until the grace ends on the ctx clock, in every process, then gets 401', async () => {
    const { t, clock } = await setup();
    const { clientId, clientSecret: old } = await t.createClient();
    // Another process on the same database, with its own verified-secret cache.
    const other = oauth({ db: t.db, enable: ['refresh', 'client_credentials_grant', 'jwt_bearer'], issuer: ISSUER, oauthClientSecretEncryptionKey: ENCRYPTION_KEY, now: clock.now, oauthClientSecretHashCost: 4, logger: t.logger } as never) as OAuthRouter;
    const otherApp = (await import('express')).default().use(t.path(''), other);
    // This process's cache holds the old secret from before the rotation; the other one first
    // verifies it during the grace (against the previous hash).
    expect((await ccToken(t, clientId, old)).status).toBe(200);

    const rotated = await t.auth.applications.rotateSecret(clientId, { graceSeconds: 3600 });
    expect(rotated).toEqual({ clientId, clientSecret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), previousSecretExpiresAt: new Date(clock.ms + 3600 * 1000) });
    expect(rotated.clientSecret).not.toBe(old);
    const row = await t.db('oauth_applications').where('client_id', clientId).first();
    expect(row.client_secret).not.toContain(rotated.clientSecret);
    expect(row.client_secret_previous).toMatch(/^\$2[aby]\$/);
    expect(await t.auth.applications.get(clientId)).toMatchObject({ previousSecretExpiresAt: new Date(clock.ms + 3600 * 1000) });

    clock.advance(3599);
    for (const app of [t.app, otherApp]) {
      expect((await ccToken(t, clientId, old, app)).status).toBe(200);
      expect((await ccToken(t, clientId, rotated.clientSecret, app)).status).toBe(200);
    }

    clock.advance(1);
    for (const app of [t.app, otherApp]) {
      expectInvalidClient(await ccToken(t, clientId, old, app));
      expect((await ccToken(t, clientId, rotated.clientSecret, app)).status).toBe(200);
    }
    expect(await t.auth.applications.get(clientId)).toMatchObject({ previousSecretExpiresAt: null });
    t.logger.assertNoSecrets([old, rotated.clientSecret]);
  });

  it('without a grace period, the old secret stops at once, even where it was cached', async () => {
    const { t } = await setup();
    const { clientId, clientSecret: old } = await t.createClient();
    expect((await ccToken(t, clientId, old)).status).toBe(200);
    const { clientSecret, previousSecretExpiresAt } = await t.auth.applications.rotateSecret(clientId);
    expect(previousSecretExpiresAt).toBeNull();
    expectInvalidClient(await ccToken(t, clientId, old));
    expect((await ccToken(t, clientId, clientSecret)).status).toBe(200);
  });

  it('a second rotation ends the grace of the first secret', async () => {
    const { t } = await setup();
    const { clientId, clientSecret: first } = await t.createClient();
    const second = await t.auth.applications.rotateSecret(clientId, { graceSeconds: 3600 });
    const third = await t.auth.applications.rotateSecret(clientId, { graceSeconds: 3600 });
    expectInvalidClient(await ccToken(t, clientId, first));
    expect((await ccToken(t, clientId, second.clientSecret)).status).toBe(200);
    expect((await ccToken(t, clientId, third.clientSecret)).status).toBe(200);
  });

  it('rotates the encrypted secret of a client_secret_jwt client, and refuses it a grace period', async () => {
    const { t, clock } = await setup();
    const { clientId, clientSecret: old } = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_jwt' });
    await expect(t.auth.applications.rotateSecret(clientId, { graceSeconds: 60 })).rejects.toThrow(
      new TypeError(`applications.rotateSecret(): client "${clientId}" uses client_secret_jwt, whose secret cannot have a grace period (the server keeps one secret to check its JWTs); rotate with graceSeconds 0`),
    );
    const { clientSecret } = await t.auth.applications.rotateSecret(clientId);
    const assertion = async (secret: string) => clientAssertionForm(await signHmac(secret, claims(clock, clientId)));
    const token = async (secret: string) => request(t.app).post(t.path('/token')).type('form').send({ grant_type: 'client_credentials', ...(await assertion(secret)) });
    expect((await token(clientSecret)).status).toBe(200);
    expectInvalidClient(await token(old));
  });

  it.each([
    ['a negative grace', { graceSeconds: -1 }, 'applications.rotateSecret(): graceSeconds must be a number of seconds from 0 to 31536000 (one year; got -1)'],
    ['a grace in milliseconds', { graceSeconds: 86400000 }, 'applications.rotateSecret(): graceSeconds must be a number of seconds from 0 to 31536000 (one year; got 86400000)'],
  ])('refuses %s', async (_label, options, message) => {
    const { t } = await setup();
    const { clientId } = await t.createClient();
    const before = await t.db('oauth_applications').where('client_id', clientId).first();
    await expect(t.auth.applications.rotateSecret(clientId, options)).rejects.toThrow(new TypeError(message));
    expect(await t.db('oauth_applications').where('client_id', clientId).first()).toEqual(before);
  });

  it('refuses a public client, which has no secret, and an unknown client id', async () => {
    const { t } = await setup();
    const pub = await t.auth.createApplication({ name: 'SPA', tokenEndpointAuthMethod: 'none', grantTypes: ['refresh_token'] });
    await expect(t.auth.applications.rotateSecret(pub.clientId)).rejects.toThrow(`client "${pub.clientId}" is a public client (token_endpoint_auth_method none): it has no secret to rotate`);
    await expect(t.auth.applications.rotateSecret('nope')).rejects.toBeInstanceOf(UnknownApplicationError);
  });
});

describe('oauth_base › applications › revokeGrants', () => {
  it('revokes the grants of a client, of an account, or of both, and counts only those it revoked', async () => {
    const { t } = await setup();
    const a = await t.createClient();
    const b = await t.createClient();
    const ga1 = await insertGrant(t, { applicationId: a.id, accountId: 'alice' });
    const ga2 = await insertGrant(t, { applicationId: a.id, accountId: 'bob' });
    const gb1 = await insertGrant(t, { applicationId: b.id, accountId: 'alice' });
    const gb2 = await insertGrant(t, { applicationId: b.id, accountId: 'bob' });

    expect(await t.auth.applications.revokeGrants({ clientId: b.clientId, accountId: 'bob' })).toBe(1);
    expect((await reloadGrant(t, gb2.grant.id)).revokedAt).not.toBeNull();
    expect(await t.auth.applications.revokeGrants({ accountId: 'alice' })).toBe(2);
    expect(await t.auth.applications.revokeGrants({ clientId: a.clientId })).toBe(1); // ga1 was already revoked
    for (const g of [ga1, ga2, gb1, gb2]) expect((await reloadGrant(t, g.grant.id)).revokedAt).not.toBeNull();
    expect(await t.auth.applications.revokeGrants({ clientId: a.clientId })).toBe(0);

    // A revoked grant's refresh token is refused.
    const res = await request(t.app).post(t.path('/token')).set('Authorization', basic(a.clientId, a.clientSecret)).type('form').send({ grant_type: 'refresh_token', refresh_token: ga2.refreshToken });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('needs a filter, and refuses an unknown client id', async () => {
    const { t } = await setup();
    await expect(t.auth.applications.revokeGrants({})).rejects.toThrow(new TypeError('applications.revokeGrants(): give clientId, accountId or both'));
    await expect(t.auth.applications.revokeGrants({ clientId: 'nope' })).rejects.toThrow(new UnknownApplicationError('nope', 'applications.revokeGrants()'));
  });
});

describe('oauth_base › applications › delete', () => {
  async function withGrants() {
    const s = await setup();
    const doomed = await s.t.createClient();
    const kept = await s.t.createClient();
    const g1 = await insertGrant(s.t, { applicationId: doomed.id });
    await insertGrant(s.t, { applicationId: doomed.id, accountId: 'bob' });
    const other = await insertGrant(s.t, { applicationId: kept.id });
    // A rotated-out refresh token of the doomed client's grant.
    await s.t.db('oauth_retired_refresh_tokens').insert({ oauth_grant_id: g1.grant.id, token: 'retired-hash', retired_at: new Date() });
    return { ...s, doomed, kept, other };
  }

  it('removes the client with its grants and their retired refresh tokens, and nothing of other clients', async () => {
    const { t, doomed, kept, other } = await withGrants();
    expect(await t.auth.applications.delete(doomed.clientId)).toEqual({ clientId: doomed.clientId, grants: 2 });
    expect(await count(t, 'oauth_applications', { client_id: doomed.clientId })).toBe(0);
    expect(await count(t, 'oauth_grants', { oauth_application_id: doomed.id })).toBe(0);
    expect(await count(t, 'oauth_retired_refresh_tokens')).toBe(0);
    expect(await count(t, 'oauth_applications', { client_id: kept.clientId })).toBe(1);
    expect((await reloadGrant(t, other.grant.id)).revokedAt).toBeNull();
    expectInvalidClient(await ccToken(t, doomed.clientId, doomed.clientSecret));
    await expect(t.auth.applications.get(doomed.clientId)).rejects.toBeInstanceOf(UnknownApplicationError);
    await expect(t.auth.applications.delete(doomed.clientId)).rejects.toThrow(new UnknownApplicationError(doomed.clientId, 'applications.delete()'));
  });

  it('leaves every row in place when the delete fails midway (after its grants are gone)', async () => {
    const { t, doomed } = await withGrants();
    // The last step (the client row) fails, after the grants and retired tokens were deleted.
    const failing = jest.spyOn(ApplicationStore.prototype, 'delete').mockRejectedValueOnce(new Error('deletes refused'));
    try {
      const before = { apps: await count(t, 'oauth_applications'), grants: await t.db('oauth_grants').orderBy('id'), retired: await count(t, 'oauth_retired_refresh_tokens') };
      await expect(t.auth.applications.delete(doomed.clientId)).rejects.toThrow('deletes refused');
      expect(failing).toHaveBeenCalledTimes(1);
      expect({ apps: await count(t, 'oauth_applications'), grants: await t.db('oauth_grants').orderBy('id'), retired: await count(t, 'oauth_retired_refresh_tokens') }).toEqual(before);
      expect(before.grants.every((g: { revoked_at: unknown }) => g.revoked_at === null)).toBe(true);
    } finally {
      failing.mockRestore();
    }
  });

  it('is a method a host can override: an override that fails after ctx.super rolls the whole delete back', async () => {
    const calls: string[] = [];
    const s = await setup({
      deleteApplication: async (ctx: { super: { deleteApplication(id: string): Promise<unknown> } }, clientId: string) => {
        calls.push(clientId);
        await ctx.super.deleteApplication(clientId);
        throw new Error('audit log unavailable');
      },
    });
    const { clientId, id } = await s.t.createClient();
    await insertGrant(s.t, { applicationId: id });
    await expect(s.t.auth.applications.delete(clientId)).rejects.toThrow('audit log unavailable');
    expect(calls).toEqual([clientId]);
    expect(await count(s.t, 'oauth_applications', { client_id: clientId })).toBe(1);
    expect(await count(s.t, 'oauth_grants', { oauth_application_id: id })).toBe(1);
  });
});
