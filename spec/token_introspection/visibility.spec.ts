import request from 'supertest';
import type { Application, Grant, OAuthContext } from '../../lib';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { bcryptHash } from '../../lib/crypto';
import { insertGrant, storeOf } from '../support/token_fixtures';

afterAll(closeAll);

type Client = { clientId: string; clientSecret: string; id: number };

const ISSUER = 'https://auth.example.com';
const T0 = new Date('2030-01-01T00:00:00Z');
const s = (d: Date) => Math.floor(d.getTime() / 1000);

function introspect(t: TestApp, client: Client, token: string): request.Test {
  return request(t.app).post(t.path('/introspect')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ token });
}

/** A confidential client with a chosen client id, inserted through the store. */
async function insertClient(t: TestApp, clientId: string, clientSecret: string): Promise<Client> {
  const app = await storeOf(t).applications.insert({
    accountId: null, name: clientId, description: null, homepageUrl: null, redirectUris: [], clientId,
    clientSecretHash: await bcryptHash(clientSecret, 4), clientSecretEncrypted: null, scopes: [], tokenEndpointAuthMethods: null,
    grantTypes: null, responseTypes: null, responseModes: null, jwks: null, jwksUri: null, logoUri: null, tosUri: null,
    policyUri: null, contacts: null, softwareId: null, softwareVersion: null, createdAt: T0,
  });
  return { clientId, clientSecret, id: app.id };
}

function expectBody(res: request.Response, body: Record<string, unknown>): void {
  expect(res.status).toBe(200);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.body).toEqual(body);
}

/** The active description of a fixture grant of `owner` for account 42. */
function activeBody(owner: Client): Record<string, unknown> {
  return { active: true, scope: 'books.read', client_id: owner.clientId, token_type: 'Bearer', exp: s(T0) + 3600, iat: s(T0), sub: '42', aud: ISSUER, iss: ISSUER };
}

describe('token_introspection › visibility', () => {
  it("answers {\"active\": false} for an active token of another client: a client sees only its own tokens (RFC 7662 §4)", async () => {
    const t = await buildApp({ enable: ['token_introspection'], issuer: ISSUER, now: () => T0 });
    const owner = await t.createClient({ name: 'Owner' });
    const snooper = await t.createClient({ name: 'Snooper' });
    const { accessToken, refreshToken } = await insertGrant(t, { applicationId: owner.id, accountId: '42', createdAt: T0 });
    expectBody(await introspect(t, snooper, accessToken!), { active: false });
    expectBody(await introspect(t, snooper, refreshToken!), { active: false });
    expectBody(await introspect(t, owner, accessToken!), activeBody(owner));
  });

  it("lets a client listed in oauthIntrospectionAllowedClients see any token, reporting the token's client, not the caller (RFC 7662 §2.2 client_id)", async () => {
    const t = await buildApp({ enable: ['token_introspection'], issuer: ISSUER, now: () => T0, oauthIntrospectionAllowedClients: ['resource-server'] });
    const owner = await t.createClient({ name: 'Owner' });
    const unlisted = await t.createClient({ name: 'Unlisted' });
    const rs = await insertClient(t, 'resource-server', 'rs-secret');
    const { accessToken } = await insertGrant(t, { applicationId: owner.id, accountId: '42', createdAt: T0 });
    expectBody(await introspect(t, rs, accessToken!), activeBody(owner));
    expectBody(await introspect(t, unlisted, accessToken!), { active: false });
  });

  it('reads oauthIntrospectionAllowedClients per request when it is a function', async () => {
    const t = await buildApp({ enable: ['token_introspection'], issuer: ISSUER, now: () => T0, oauthIntrospectionAllowedClients: (ctx: OAuthContext) => [String(ctx.req.headers['x-rs'] ?? '')] });
    const owner = await t.createClient({ name: 'Owner' });
    const rs = await t.createClient({ name: 'Resource server' });
    const { accessToken } = await insertGrant(t, { applicationId: owner.id, accountId: '42', createdAt: T0 });
    expectBody(await introspect(t, rs, accessToken!).set('X-RS', rs.clientId), activeBody(owner));
    expectBody(await introspect(t, rs, accessToken!).set('X-RS', 'someone-else'), { active: false });
  });

  it('reports the owner client of a refresh token seen by an allowed client', async () => {
    let allowed = '';
    const t = await buildApp({ enable: ['token_introspection'], issuer: ISSUER, now: () => T0, oauthIntrospectionAllowedClients: () => [allowed] });
    const owner = await t.createClient({ name: 'Owner' });
    const rs = await t.createClient({ name: 'Resource server' });
    allowed = rs.clientId;
    const { refreshToken } = await insertGrant(t, { applicationId: owner.id, accountId: null, type: 'client_credentials', createdAt: T0, refreshTokenExpiresIn: new Date(T0.getTime() + 86400_000) });
    expectBody(await introspect(t, rs, refreshToken!), {
      active: true,
      scope: 'books.read',
      client_id: owner.clientId,
      username: 'Owner',
      exp: s(T0) + 86400,
      iat: s(T0),
      sub: owner.clientId,
      aud: ISSUER,
      iss: ISSUER,
    });
  });

  it('lets canIntrospect widen what a caller sees, calling the default through ctx.super', async () => {
    const t = await buildApp({
      enable: ['token_introspection'],
      issuer: ISSUER,
      now: () => T0,
      canIntrospect: async (ctx: OAuthContext, grant: Grant) => (await ctx.super.canIntrospect(grant)) || ctx.application?.name === 'Gateway',
    });
    const owner = await t.createClient({ name: 'Owner' });
    const gateway = await t.createClient({ name: 'Gateway' });
    const snooper = await t.createClient({ name: 'Snooper' });
    const { accessToken } = await insertGrant(t, { applicationId: owner.id, accountId: '42', createdAt: T0 });
    expectBody(await introspect(t, gateway, accessToken!), activeBody(owner));
    expectBody(await introspect(t, owner, accessToken!), activeBody(owner));
    expectBody(await introspect(t, snooper, accessToken!), { active: false });
  });

  it('lets canIntrospect narrow what a caller sees, even its own tokens', async () => {
    const t = await buildApp({ enable: ['token_introspection'], issuer: ISSUER, now: () => T0, canIntrospect: async (_ctx: OAuthContext, grant: Grant) => grant.accountId !== '42' });
    const owner = await t.createClient({ name: 'Owner' });
    const { accessToken } = await insertGrant(t, { applicationId: owner.id, accountId: '42', createdAt: T0 });
    expectBody(await introspect(t, owner, accessToken!), { active: false });
  });

  it('reports the username given by an introspectionUsername override (RFC 7662 §2.2 username)', async () => {
    const t = await buildApp({
      enable: ['token_introspection'],
      issuer: ISSUER,
      now: () => T0,
      introspectionUsername: async (ctx: OAuthContext, grant: Grant, app: Application) =>
        grant.accountId === null ? ctx.super.introspectionUsername(grant, app) : `user${grant.accountId}@example.com`,
    });
    const owner = await t.createClient({ name: 'Owner' });
    const account = await insertGrant(t, { applicationId: owner.id, accountId: '42', createdAt: T0 });
    expectBody(await introspect(t, owner, account.accessToken!), { ...activeBody(owner), username: 'user42@example.com' });
    const machine = await insertGrant(t, { applicationId: owner.id, accountId: null, type: 'client_credentials', createdAt: T0 });
    expectBody(await introspect(t, owner, machine.accessToken!), { ...activeBody(owner), username: 'Owner', sub: owner.clientId });
  });

  it('rejects a public client with 401 invalid_client, even for its own token (RFC 7662 §2.1, §4: the endpoint requires authorization)', async () => {
    const t = await buildApp({ enable: ['token_introspection'], issuer: ISSUER, now: () => T0 });
    const pub = await t.createClient({ name: 'SPA', tokenEndpointAuthMethod: 'none' });
    const { accessToken } = await insertGrant(t, { applicationId: pub.id, accountId: '42', createdAt: T0 });
    const res = await request(t.app).post(t.path('/introspect')).type('form').send({ client_id: pub.clientId, token: accessToken });
    expect(res.status).toBe(401);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['www-authenticate']).toBe('Basic realm="oauth"');
    expect(res.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
  });
});
