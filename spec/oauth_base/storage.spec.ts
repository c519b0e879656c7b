import { afterAll, describe, expect, it } from '@jest/globals';
import bcrypt from 'bcrypt';
import { createHash } from 'node:crypto';
import { basic, buildApp, closeAll } from '../support/build_app';
import { isPostgres } from '../support/db';
import { failure } from '../support/failure';
import { obtainCode, ISSUER, testLogin } from '../authorization_code_grant/flow';
import { tokenBody } from './helpers';

afterAll(closeAll);

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');


describe('oauth_base › storage', () => {
  it('honours renamed tables and columns end to end: migrate, register, token, protected call', async () => {
    const renames = {
      oauthApplicationsTable: 'clients',
      oauthGrantsTable: 'tokens',
      oauthApplicationsClientIdColumn: 'identifier',
      oauthApplicationsClientSecretHashColumn: 'secret_digest',
      oauthApplicationsScopesColumn: 'allowed_scopes',
      oauthGrantsTokenHashColumn: 'access_digest',
      oauthGrantsOauthApplicationIdColumn: 'client_ref',
      oauthGrantsExpiresInColumn: 'valid_until',
    };
    const t = await buildApp({ enable: ['client_credentials_grant'], ...renames });
    expect(await t.db.schema.hasTable('oauth_applications')).toBe(false);
    expect(await t.db.schema.hasTable('oauth_grants')).toBe(false);
    for (const col of ['identifier', 'secret_digest', 'allowed_scopes']) expect(await t.db.schema.hasColumn('clients', col)).toBe(true);
    for (const col of ['access_digest', 'client_ref', 'valid_until']) expect(await t.db.schema.hasColumn('tokens', col)).toBe(true);
    expect(await t.db.schema.hasColumn('clients', 'client_id')).toBe(false);
    expect(await t.db.schema.hasColumn('tokens', 'token')).toBe(false);

    const c = await t.createClient();
    const [app] = await t.db('clients').where('identifier', c.clientId);
    expect(app.allowed_scopes).toBe('books.read books.write');
    expect(await bcrypt.compare(c.clientSecret, app.secret_digest)).toBe(true);

    const res = await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send({ grant_type: 'client_credentials', scope: 'books.read' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(tokenBody('books.read'));
    const rows = await t.db('tokens').where('access_digest', sha256(res.body.access_token));
    expect(rows).toHaveLength(1);
    expect(rows[0].client_ref).toBe(c.id);

    const api = await t.agent.get('/api/books').set('Authorization', `Bearer ${res.body.access_token}`);
    expect(api.status).toBe(200);
    expect(api.body).toEqual({ books: [], scopes: ['books.read'] });
  });

  it('refuses a table or column name given as a function of the request, at start-up', async () => {
    await expect(buildApp({ oauthGrantsTable: () => 'tokens' })).rejects.toThrow("oauth(): option 'oauthGrantsTable' must be a constant: table and column names are fixed at start-up (migrations and indexes use them).");
  });

  it('migrate() is idempotent', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const c = await t.createClient();
    await t.auth.migrate();
    await t.auth.migrate();
    const res = await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send({ grant_type: 'client_credentials' });
    expect(res.status).toBe(200);
    expect(await t.db('oauth_applications').count({ n: '*' })).toEqual([{ n: isPostgres ? '1' : 1 }]);
  });

  it('migrate() adds a missing column, with its index, to an existing table from before schema versions and keeps the rows', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const c = await t.createClient();
    await t.db.schema.dropTable('oauth_schema_versions');
    await t.db.schema.alterTable('oauth_grants', (tb) => {
      tb.dropUnique(['refresh_token'], 'oauth_grants_refresh_token_unique');
    });
    await t.db.schema.alterTable('oauth_grants', (tb) => {
      tb.dropColumn('refresh_token');
    });
    await t.db.schema.alterTable('oauth_applications', (tb) => {
      tb.dropColumn('software_version');
    });
    expect(await t.db.schema.hasColumn('oauth_grants', 'refresh_token')).toBe(false);
    await t.auth.migrate();
    expect(await t.db.schema.hasColumn('oauth_grants', 'refresh_token')).toBe(true);
    expect(await t.db.schema.hasColumn('oauth_applications', 'software_version')).toBe(true);
    const res = await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send({ grant_type: 'client_credentials' });
    expect(res.status).toBe(200);
    // The unique index came back with the column.
    const [g] = await t.db('oauth_grants').select('id');
    await t.db('oauth_grants').where('id', g.id).update({ refresh_token: 'same' });
    const row = { ...(await t.db('oauth_grants').where('id', g.id).first()) };
    delete row.id;
    row.token = 'other';
    expect(await failure(t.db('oauth_grants').insert(row))).toMatch(/unique/i);
  });

  it('enforces unique access-token hashes and client ids in the database', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const c = await t.createClient();
    const app = { ...(await t.db('oauth_applications').where('client_id', c.clientId).first()) };
    delete app.id;
    expect(await failure(t.db('oauth_applications').insert(app))).toMatch(/unique/i);
    await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send({ grant_type: 'client_credentials' });
    const grant = { ...(await t.db('oauth_grants').first()) };
    delete grant.id;
    expect(await failure(t.db('oauth_grants').insert(grant))).toMatch(/unique/i);
  });
});

describe('oauth_base › createApplication', () => {
  it('returns the secret once and stores it bcrypt-hashed, with a generated client id', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const created = await t.auth.createApplication({ name: "Books ' OR 1=1 --", scopes: 'books.read books.write', redirectUri: 'https://books.example/cb', grantTypes: ['client_credentials'] });
    expect(created.clientId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(created.clientSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.application).toEqual(expect.objectContaining({ clientId: created.clientId, name: "Books ' OR 1=1 --", scopes: ['books.read', 'books.write'], redirectUris: ['https://books.example/cb'], tokenEndpointAuthMethods: null, grantTypes: ['client_credentials'] }));
    const row = await t.db('oauth_applications').where('client_id', created.clientId).first();
    expect(row.client_secret).toMatch(/^\$2[aby]\$04\$/);
    expect(JSON.stringify(row)).not.toContain(created.clientSecret);
    expect(await bcrypt.compare(created.clientSecret!, row.client_secret)).toBe(true);
    expect(row.token_endpoint_auth_method).toBeNull();
    expect(row.name).toBe("Books ' OR 1=1 --");

    const other = await t.auth.createApplication({ name: 'Other', grantTypes: ['client_credentials'] });
    expect(other.clientId).not.toBe(created.clientId);
    expect(other.clientSecret).not.toBe(created.clientSecret);
  });

  it('gives a public client (none) no secret', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const created = await t.auth.createApplication({ name: 'SPA', tokenEndpointAuthMethod: 'none', grantTypes: ['client_credentials'] });
    expect(created.clientSecret).toBeUndefined();
    const row = await t.db('oauth_applications').where('client_id', created.clientId).first();
    expect(row.client_secret).toBeNull();
    expect(row.token_endpoint_auth_method).toBe('none');
  });

  it('uses an overridden secretHash', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'], secretHash: async (_ctx: unknown, secret: string) => bcrypt.hash(secret, 5) });
    const created = await t.auth.createApplication({ name: 'Cost five', grantTypes: ['client_credentials'] });
    const row = await t.db('oauth_applications').where('client_id', created.clientId).first();
    expect(row.client_secret).toMatch(/^\$2[aby]\$05\$/);
  });

  it.each([
    ['a missing name', { name: '' }, 'createApplication(): name is required'],
    ['a name longer than its column (PostgreSQL would refuse the row)', { name: 'n'.repeat(256) }, 'createApplication(): name must be at most 255 characters (got 256)'],
    ['a relative redirect URI', { name: 'x', redirectUri: '/cb' }, "createApplication(): redirect URI '/cb' is not an absolute URI"],
    ['a redirect URI with a fragment', { name: 'x', redirectUri: 'https://a.example/cb#frag' }, "createApplication(): redirect URI 'https://a.example/cb#frag' must not have a fragment (RFC 6749 §3.1.2)"],
    ['an invalid scope', { name: 'x', scopes: ['books"read'] }, `createApplication(): 'books"read' is not a valid scope (RFC 6749 §3.3)`],
    ['an unknown auth method', { name: 'x', tokenEndpointAuthMethod: 'private_key_jwt' }, "createApplication(): client authentication method 'private_key_jwt' is not provided by the enabled features (client_secret_basic, client_secret_post, none)"],
    ['a grant type not enabled', { name: 'x', grantTypes: ['authorization_code'] }, "createApplication(): grant type 'authorization_code' is not provided by the enabled features (client_credentials)"],
    ['a relative jwks_uri', { name: 'x', jwksUri: 'keys.json' }, "createApplication(): jwks_uri 'keys.json' is not an absolute URI"],
    ['a jwks that is no JWK Set', { name: 'x', jwks: { kty: 'RSA' } }, 'createApplication(): jwks must be a JWK Set ({ keys: [...] })'],
    ['grantTypes that is not an array', { name: 'x', grantTypes: 'client_credentials' }, 'createApplication(): grantTypes must be an array of grant types'],
    [
      'no grantTypes on a server without the RFC 7591 §2 default (authorization_code)',
      { name: 'x', grantTypes: undefined },
      'createApplication(): grantTypes is required when authorization_code_grant is not enabled: the RFC 7591 §2 default, authorization_code, is not served here (enabled: client_credentials)',
    ],
  ])('rejects %s and writes nothing', async (_name, input, message) => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    await expect(t.auth.createApplication({ grantTypes: ['client_credentials'], ...input } as never)).rejects.toThrow(message);
    expect(await t.db('oauth_applications').count({ n: '*' })).toEqual([{ n: isPostgres ? '0' : 0 }]);
  });
});

describe('oauth_base › createApplication › default grant types (RFC 7591 §2)', () => {
  const REDIRECT = 'https://client.example/cb';

  it('registers authorization_code only, so the client cannot use client_credentials (a token for no user with all its scopes)', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant', 'client_credentials_grant'], issuer: ISSUER }, { setup: testLogin });
    const created = await t.auth.createApplication({ name: 'Web app', redirectUri: REDIRECT, scopes: ['books.read'] });
    expect(created.application.grantTypes).toEqual(['authorization_code']);
    const row = await t.db('oauth_applications').where('client_id', created.clientId).first();
    expect(row.grant_types).toBe('authorization_code');

    const cc = await t.agent.post(t.path('/token')).set('Authorization', basic(created.clientId, created.clientSecret!)).type('form').send({ grant_type: 'client_credentials' });
    expect(cc.status).toBe(400);
    expect(cc.headers['cache-control']).toBe('no-store');
    expect(cc.body).toEqual({ error: 'unsupported_grant_type', error_description: 'Invalid grant type' });
    expect(await t.db('oauth_grants').count({ n: '*' })).toEqual([{ n: isPostgres ? '0' : 0 }]);

    // The code flow the default is for still works end to end.
    const code = await obtainCode(t, { client_id: created.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
    const token = await t.agent.post(t.path('/token')).set('Authorization', basic(created.clientId, created.clientSecret!)).type('form').send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
    expect(token.status).toBe(200);
    expect(token.body).toEqual(tokenBody('books.read'));
  });

  it('adds refresh_token when the refresh feature is enabled', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant', 'refresh', 'client_credentials_grant'] });
    const created = await t.auth.createApplication({ name: 'Web app', redirectUri: REDIRECT });
    expect(created.application.grantTypes).toEqual(['authorization_code', 'refresh_token']);
    const row = await t.db('oauth_applications').where('client_id', created.clientId).first();
    expect(row.grant_types).toBe('authorization_code refresh_token');
  });

  it('keeps explicit grantTypes as given', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant', 'client_credentials_grant'] });
    const created = await t.auth.createApplication({ name: 'Service', grantTypes: ['client_credentials'] });
    expect(created.application.grantTypes).toEqual(['client_credentials']);
  });
});
