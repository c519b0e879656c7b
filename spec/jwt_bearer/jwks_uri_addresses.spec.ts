import request from 'supertest';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { buildApp, closeAll, basic, type TestApp } from '../support/build_app';
import { claims, clientAssertionForm, Clock, GRANT_TYPE, INVALID_CLIENT, INVALID_GRANT, ISSUER, keyPair, signWith, type KeyPair } from './support';

/** A TCP listener counting the connections made to it: a jwks_uri the server must never reach. */
class Listener {
  connections = 0;
  port = 0;
  private server?: Server;

  async start(host: string): Promise<this> {
    this.server = createServer((socket) => {
      this.connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => this.server!.listen(0, host, resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

const listeners: Listener[] = [];
async function listen(host: string): Promise<Listener> {
  const l = await new Listener().start(host);
  listeners.push(l);
  return l;
}
afterEach(async () => {
  while (listeners.length) await listeners.pop()!.close();
});
afterAll(closeAll);

let key: KeyPair;
beforeAll(async () => {
  key = await keyPair('ES256', 'one');
});

const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

async function setup(jwksUri: string, options: Record<string, unknown> = {}) {
  const clock = new Clock();
  const t = await buildApp({ enable: ['jwt_bearer', 'client_credentials_grant'], issuer: ISSUER, now: clock.now, oauthJwksFetchTimeout: 1000, ...options });
  const client = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', grantTypes: ['client_credentials', GRANT_TYPE], jwksUri });
  return { t, clock, client };
}

async function clientAuth(t: TestApp, clock: Clock, clientId: string) {
  return request(t.app)
    .post(t.path('/token'))
    .type('form')
    .send({ grant_type: 'client_credentials', ...clientAssertionForm(await signWith(key, claims(clock, clientId))) });
}

function lastLog(t: TestApp): string {
  return t.logger.lines[t.logger.lines.length - 1] ?? '';
}

function expectInvalidClient(res: request.Response, t: TestApp, why: string): void {
  expect(res.status).toBe(401);
  expect(res.headers).toMatchObject({ ...NO_STORE, 'www-authenticate': 'Basic realm="oauth"' });
  expect(res.body).toEqual(INVALID_CLIENT);
  expect(lastLog(t)).toContain(why);
}

function expectInvalidGrant(res: request.Response, t: TestApp, why: string): void {
  expect(res.status).toBe(400);
  expect(res.headers).toMatchObject(NO_STORE);
  expect(res.body).toEqual(INVALID_GRANT);
  expect(lastLog(t)).toContain(why);
}

describe('jwt_bearer › jwks_uri addresses (no SSRF)', () => {
  it.each([
    ['127.0.0.1', (port: number) => `https://127.0.0.1:${port}/jwks`],
    ['127.0.0.1', (port: number) => `https://localhost:${port}/jwks`],
    ['127.0.0.1', (port: number) => `https://[::ffff:127.0.0.1]:${port}/jwks`],
    ['::1', (port: number) => `https://[::1]:${port}/jwks`],
  ])('refuses a jwks_uri on a loopback address (listening on %s) without connecting: %#', async (host, uri) => {
    const l = await listen(host);
    const { t, clock, client } = await setup(uri(l.port));
    expectInvalidClient(await clientAuth(t, clock, client.clientId), t, 'jwks_address_not_allowed');
    expect(l.connections).toBe(0);
  });

  it.each(['https://10.0.0.1/jwks', 'https://169.254.169.254/latest/meta-data', 'https://[::ffff:169.254.169.254]/jwks', 'https://[fd00::1]/jwks', 'https://100.64.0.1/jwks'])(
    'refuses %s as a client jwks_uri (invalid_client), even with oauthJwksAllowLoopbackHttp',
    async (uri) => {
      const { t, clock, client } = await setup(uri, { oauthJwksAllowLoopbackHttp: true });
      expectInvalidClient(await clientAuth(t, clock, client.clientId), t, 'jwks_address_not_allowed');
    },
  );

  it('refuses a private jwks_uri for the grant (invalid_grant), of a client issuer and of a trusted issuer', async () => {
    const l = await listen('127.0.0.1');
    const { t, clock, client } = await setup(`https://127.0.0.1:${l.port}/jwks`);
    const own = await request(t.app).post(t.path('/token')).type('form').send({ grant_type: GRANT_TYPE, assertion: await signWith(key, claims(clock, client.clientId)) });
    expectInvalidGrant(own, t, 'jwks_address_not_allowed');

    const idp = 'https://idp.example';
    const trusted = await buildApp({
      enable: ['jwt_bearer'],
      issuer: ISSUER,
      now: clock.now,
      oauthJwtBearerTrustedIssuers: [{ issuer: idp, jwksUri: `https://localhost:${l.port}/jwks`, subjects: '*', scopes: ['books.read'] }],
    });
    const presenter = await trusted.createClient({ tokenEndpointAuthMethod: 'client_secret_basic', grantTypes: [GRANT_TYPE] });
    const res = await request(trusted.app)
      .post(trusted.path('/token'))
      .type('form')
      .set('Authorization', basic(presenter.clientId, presenter.clientSecret))
      .send({ grant_type: GRANT_TYPE, assertion: await signWith(key, claims(clock, idp, { sub: 'bob' })) });
    expectInvalidGrant(res, trusted, 'jwks_address_not_allowed');
    expect(l.connections).toBe(0);
  });

  it('connects to a private address with oauthFetchAllowPrivateAddresses (development)', async () => {
    const l = await listen('127.0.0.1');
    const { t, clock, client } = await setup(`https://127.0.0.1:${l.port}/jwks`, { oauthFetchAllowPrivateAddresses: true });
    // The listener speaks no TLS: the server connected, and the handshake failed.
    expectInvalidClient(await clientAuth(t, clock, client.clientId), t, 'jwks_unreachable');
    expect(l.connections).toBe(1);
  });

  it('connects to a loopback address over https with oauthJwksAllowLoopbackHttp (development)', async () => {
    const l = await listen('127.0.0.1');
    const { t, clock, client } = await setup(`https://localhost:${l.port}/jwks`, { oauthJwksAllowLoopbackHttp: true });
    expectInvalidClient(await clientAuth(t, clock, client.clientId), t, 'jwks_unreachable');
    expect(l.connections).toBe(1);
  });
});
