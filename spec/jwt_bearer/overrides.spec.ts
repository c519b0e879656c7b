import request from 'supertest';
import type { Application } from '../../lib';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { claims, clientAssertionForm, Clock, ENCRYPTION_KEY, INVALID_CLIENT, ISSUER, JwksServer, keyPair, signHmac, signWith, type KeyPair } from './support';

const servers: JwksServer[] = [];
afterEach(async () => {
  while (servers.length) await servers.pop()!.close();
});
afterAll(closeAll);

let key: KeyPair;
let rotated: KeyPair;
beforeAll(async () => {
  [key, rotated] = await Promise.all([keyPair('ES256', 'old'), keyPair('ES256', 'new')]);
});

const SUCCESS = { access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read books.write' };

async function setup(options: Record<string, unknown> = {}, clientInput: Record<string, unknown> = {}) {
  const clock = new Clock();
  const t = await buildApp({ enable: ['jwt_bearer', 'client_credentials_grant'], issuer: ISSUER, now: clock.now, oauthClientSecretEncryptionKey: ENCRYPTION_KEY, ...options });
  const client = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [key.publicJwk] }, ...clientInput });
  return { t, clock, client };
}

function token(t: TestApp, assertion: string) {
  return request(t.app)
    .post(t.path('/token'))
    .type('form')
    .send({ grant_type: 'client_credentials', ...clientAssertionForm(assertion) });
}

function expectInvalidClient(res: request.Response, t: TestApp, why: string): void {
  expect(res.status).toBe(401);
  expect(res.body).toEqual(INVALID_CLIENT);
  expect(t.logger.lines[t.logger.lines.length - 1]).toContain(why);
}

async function jtiCount(t: TestApp): Promise<number> {
  return Number((await t.db('oauth_jwt_jtis').count({ n: '*' }).first())!.n);
}

describe('jwt_bearer › overrides', () => {
  it('refuses assertions longer than oauthJwtBearerMaxAssertionSize (a constant or a function of the request)', async () => {
    const small = await setup({ oauthJwtBearerMaxAssertionSize: 200 });
    expectInvalidClient(await token(small.t, await signWith(key, claims(small.clock, small.client.clientId))), small.t, 'assertion_too_large');
    const fn = await setup({ oauthJwtBearerMaxAssertionSize: () => 100 });
    expectInvalidClient(await token(fn.t, await signWith(key, claims(fn.clock, fn.client.clientId))), fn.t, 'assertion_too_large');
  });

  it('keeps expired jtis until oauthJwtBearerJtiPurgeInterval has passed', async () => {
    const { t, clock, client } = await setup({ oauthJwtBearerJtiPurgeInterval: 3600 });
    expect((await token(t, await signWith(key, claims(clock, client.clientId)))).status).toBe(200);
    clock.advance(120);
    expect((await token(t, await signWith(key, claims(clock, client.clientId)))).status).toBe(200);
    expect(await jtiCount(t)).toBe(2);
    clock.advance(3600);
    expect((await token(t, await signWith(key, claims(clock, client.clientId)))).status).toBe(200);
    expect(await jtiCount(t)).toBe(1);
  });

  it('refetches on every unknown kid with oauthJwksRefetchInterval 0, and waits it out otherwise', async () => {
    const server = await new JwksServer().start();
    servers.push(server);
    server.serve([key.publicJwk], { 'cache-control': 'max-age=3600' });
    const eager = await setup({ oauthJwksAllowLoopbackHttp: true, oauthJwksRefetchInterval: 0 }, { jwks: undefined, jwksUri: server.uri });
    expect((await token(eager.t, await signWith(key, claims(eager.clock, eager.client.clientId)))).status).toBe(200);
    server.serve([key.publicJwk, rotated.publicJwk], { 'cache-control': 'max-age=3600' });
    const res = await token(eager.t, await signWith(rotated, claims(eager.clock, eager.client.clientId)));
    expect(res.status).toBe(200);
    expect(res.body).toEqual(SUCCESS);
    expect(server.hits).toBe(2);

    server.serve([key.publicJwk], { 'cache-control': 'max-age=3600' });
    const patient = await setup({ oauthJwksAllowLoopbackHttp: true, oauthJwksRefetchInterval: 600 }, { jwks: undefined, jwksUri: server.uri });
    expect((await token(patient.t, await signWith(key, claims(patient.clock, patient.client.clientId)))).status).toBe(200);
    server.serve([key.publicJwk, rotated.publicJwk], { 'cache-control': 'max-age=3600' });
    patient.clock.advance(300);
    expectInvalidClient(await token(patient.t, await signWith(rotated, claims(patient.clock, patient.client.clientId))), patient.t, 'ERR_JWKS_NO_MATCHING_KEY');
    patient.clock.advance(301);
    expect((await token(patient.t, await signWith(rotated, claims(patient.clock, patient.client.clientId)))).status).toBe(200);
    expect(server.hits).toBe(4);
  });

  it('refuses a stored jwks larger than oauthJwksMaxSize', async () => {
    const { t, clock, client } = await setup({ oauthJwksMaxSize: 100 });
    expectInvalidClient(await token(t, await signWith(key, claims(clock, client.clientId))), t, 'jwks_too_large');
  });

  it('lets the host replace encryptClientSecret / decryptClientSecret, reaching the defaults through ctx.super', async () => {
    type Ctx = { super: { encryptClientSecret(s: string): Promise<string | null>; decryptClientSecret(a: Application): Promise<string | null> } };
    const { t, clock } = await setup({
      encryptClientSecret: async (ctx: Ctx, secret: string) => `wrapped:${await ctx.super.encryptClientSecret(secret)}`,
      decryptClientSecret: async (ctx: Ctx, app: Application) =>
        app.clientSecretEncrypted?.startsWith('wrapped:') ? ctx.super.decryptClientSecret({ ...app, clientSecretEncrypted: app.clientSecretEncrypted.slice(8) }) : null,
    });
    const client = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_jwt' });
    const row = await t.db('oauth_applications').where('client_id', client.clientId).first();
    expect(row.client_secret_encrypted).toMatch(/^wrapped:v1\./);
    const res = await token(t, await signHmac(client.clientSecret, claims(clock, client.clientId)));
    expect(res.status).toBe(200);
    expect(res.body).toEqual(SUCCESS);
  });
});
