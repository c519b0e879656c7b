import request from 'supertest';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { claims, clientAssertionForm, Clock, INVALID_CLIENT, ISSUER, JwksServer, keyPair, signWith, type KeyPair } from './support';

const servers: JwksServer[] = [];
afterEach(async () => {
  while (servers.length) await servers.pop()!.close();
});
afterAll(closeAll);

let key1: KeyPair;
let key2: KeyPair;
let key3: KeyPair;

beforeAll(async () => {
  [key1, key2, key3] = await Promise.all([keyPair('ES256', 'one'), keyPair('ES256', 'two'), keyPair('ES256', 'three')]);
});

const SUCCESS = { access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read books.write' };

async function setup(options: Record<string, unknown> = {}) {
  const server = await new JwksServer().start();
  servers.push(server);
  const clock = new Clock();
  const t = await buildApp({ enable: ['jwt_bearer', 'client_credentials_grant'], issuer: ISSUER, now: clock.now, oauthJwksAllowLoopbackHttp: true, ...options });
  const client = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: server.uri });
  return { t, clock, client, server };
}

async function auth(t: TestApp, clock: Clock, clientId: string, key: KeyPair) {
  return request(t.app)
    .post(t.path('/token'))
    .type('form')
    .send({ grant_type: 'client_credentials', ...clientAssertionForm(await signWith(key, claims(clock, clientId))) });
}

function expectInvalidClient(res: request.Response, t: TestApp, why: string): void {
  expect(res.status).toBe(401);
  expect(res.headers).toMatchObject({ 'cache-control': 'no-store', pragma: 'no-cache', 'www-authenticate': 'Basic realm="oauth"' });
  expect(res.body).toEqual(INVALID_CLIENT);
  expect(t.logger.lines[t.logger.lines.length - 1]).toContain(why);
}

describe('jwt_bearer › jwks_uri', () => {
  it('verifies with keys fetched from the jwks_uri and caches them for Cache-Control max-age (RFC 9111 §5.2.2.1)', async () => {
    const { t, clock, client, server } = await setup();
    server.serve([key1.publicJwk], { 'cache-control': 'public, max-age=120' });
    const first = await auth(t, clock, client.clientId, key1);
    expect(first.status).toBe(200);
    expect(first.body).toEqual(SUCCESS);
    clock.advance(119);
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect(server.hits).toBe(1);
    clock.advance(2);
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect(server.hits).toBe(2);
  });

  it('subtracts the Age header from max-age', async () => {
    const { t, clock, client, server } = await setup({ oauthJwksMinCacheExpiresIn: 0 });
    server.serve([key1.publicJwk], { 'cache-control': 'max-age=120', age: '100' });
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    clock.advance(21);
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect(server.hits).toBe(2);
  });

  it('keeps a no-store response only for oauthJwksMinCacheExpiresIn, so a client cannot make every request cost a fetch', async () => {
    const { t, clock, client, server } = await setup();
    server.serve([key1.publicJwk], { 'cache-control': 'no-store' });
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    clock.advance(29);
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect(server.hits).toBe(1);
    clock.advance(2);
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect(server.hits).toBe(2);
  });

  it('does not cache a no-store response with oauthJwksMinCacheExpiresIn: 0', async () => {
    const { t, clock, client, server } = await setup({ oauthJwksMinCacheExpiresIn: 0 });
    server.serve([key1.publicJwk], { 'cache-control': 'no-store' });
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect(server.hits).toBe(2);
  });

  it('honours Expires relative to Date when there is no max-age', async () => {
    const { t, clock, client, server } = await setup();
    const date = new Date();
    server.serve([key1.publicJwk], { date: date.toUTCString(), expires: new Date(date.getTime() + 60_000).toUTCString() });
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    clock.advance(50);
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect(server.hits).toBe(1);
    clock.advance(15);
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect(server.hits).toBe(2);
  });

  it('caches for oauthJwksCacheExpiresIn without cache headers, and never beyond oauthJwksMaxCacheExpiresIn', async () => {
    const { t, clock, client, server } = await setup({ oauthJwksCacheExpiresIn: 30, oauthJwksMaxCacheExpiresIn: 100 });
    server.serve([key1.publicJwk]);
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    clock.advance(29);
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect(server.hits).toBe(1);
    clock.advance(2);
    server.serve([key1.publicJwk], { 'cache-control': 'max-age=86400' });
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect(server.hits).toBe(2);
    clock.advance(101);
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect(server.hits).toBe(3);
  });

  it('revalidates with If-None-Match and keeps the keys on 304 Not Modified (RFC 9110 §13.1.2)', async () => {
    const { t, clock, client, server } = await setup({ oauthJwksMinCacheExpiresIn: 0 });
    const seen: (string | undefined)[] = [];
    server.handler = (req, res) => {
      seen.push(req.headers['if-none-match']);
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=0' });
        return res.end();
      }
      res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=0', 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [key1.publicJwk] }));
    };
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    const second = await auth(t, clock, client.clientId, key1);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(SUCCESS);
    expect(seen).toEqual([undefined, '"v1"']);
  });

  it('refetches once on an unknown kid (key rotation), then rate-limits further refetches (oauthJwksRefetchInterval)', async () => {
    const { t, clock, client, server } = await setup();
    server.serve([key1.publicJwk], { 'cache-control': 'max-age=3600' });
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    clock.advance(61);
    server.serve([key2.publicJwk], { 'cache-control': 'max-age=3600' });
    const rotated = await auth(t, clock, client.clientId, key2);
    expect(rotated.status).toBe(200);
    expect(rotated.body).toEqual(SUCCESS);
    expect(server.hits).toBe(2);
    // The old key is gone from the refreshed set.
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'ERR_JWKS_NO_MATCHING_KEY');
    server.serve([key2.publicJwk, key3.publicJwk], { 'cache-control': 'max-age=3600' });
    expectInvalidClient(await auth(t, clock, client.clientId, key3), t, 'ERR_JWKS_NO_MATCHING_KEY');
    expect(server.hits).toBe(2);
    clock.advance(61);
    expect((await auth(t, clock, client.clientId, key3)).status).toBe(200);
    expect(server.hits).toBe(3);
  });

  it('shares one fetch between concurrent requests', async () => {
    const { t, clock, client, server } = await setup();
    server.serve([key1.publicJwk], { 'cache-control': 'max-age=60' });
    const results = await Promise.all([1, 2, 3, 4].map(() => auth(t, clock, client.clientId, key1)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(server.hits).toBe(1);
  });

  it('gives up on a jwks_uri that hangs after oauthJwksFetchTimeout, quickly and with invalid_client', async () => {
    const { t, clock, client, server } = await setup({ oauthJwksFetchTimeout: 300 });
    server.handler = () => undefined;
    const started = Date.now();
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'jwks_timeout');
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('gives up on a body that stalls halfway', async () => {
    const { t, clock, client, server } = await setup({ oauthJwksFetchTimeout: 300 });
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"keys":[');
    };
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'jwks_timeout');
  });

  it('does not follow redirects', async () => {
    const { t, clock, client, server } = await setup();
    let followed = 0;
    server.handler = (req, res) => {
      if (req.url === '/elsewhere') {
        followed++;
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ keys: [key1.publicJwk] }));
      }
      res.writeHead(302, { location: `${server.origin}/elsewhere` });
      res.end();
    };
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'HTTP 302');
    expect(followed).toBe(0);
  });

  it.each([
    ['an error status', 500, 'oops', 'HTTP 500'],
    ['non-JSON', 200, '<html>not a key set</html>', 'not JSON'],
    ['JSON without a keys array', 200, '{"keys":"nope"}', 'no keys array'],
    ['a keys array of non-objects', 200, '{"keys":[1,2]}', 'malformed'],
    ['a key that is not a public key', 200, JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA', kid: 'one', alg: 'ES256' }] }), 'ERR_'],
  ])('answers invalid_client for a jwks_uri that returns %s', async (_n, status, body, why) => {
    const { t, clock, client, server } = await setup();
    server.handler = (_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    };
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, why);
  });

  it('refuses a JWK Set larger than oauthJwksMaxSize, with or without Content-Length', async () => {
    const { t, clock, client, server } = await setup({ oauthJwksMaxSize: 4096 });
    const huge = JSON.stringify({ keys: [key1.publicJwk], pad: 'x'.repeat(100_000) });
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(huge)) });
      res.end(huge);
    };
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'jwks_too_large');
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      for (let i = 0; i < 50; i++) res.write(huge.slice(i * 2000, (i + 1) * 2000));
      res.end(huge.slice(100_000));
    };
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'jwks_too_large');
  });

  it('refuses a JWK Set with more keys than oauthJwksMaxKeys', async () => {
    const { t, clock, client, server } = await setup({ oauthJwksMaxKeys: 2 });
    server.serve([key1.publicJwk, key2.publicJwk, key3.publicJwk]);
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'more than 2 keys');
  });

  it('refuses an http jwks_uri unless oauthJwksAllowLoopbackHttp is set, without fetching it', async () => {
    const { t, clock, client, server } = await setup({ oauthJwksAllowLoopbackHttp: false });
    server.serve([key1.publicJwk]);
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'must use https');
    expect(server.hits).toBe(0);
  });

  it('answers invalid_client when the jwks_uri cannot be reached', async () => {
    const { t, clock, server } = await setup();
    const closed = `${server.origin}/jwks`;
    await server.close();
    const client = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: closed });
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'jwks_unreachable');
  });
});

describe('jwt_bearer › jwks_uri failures (remembered with backoff)', () => {
  async function flood(t: TestApp, clock: Clock, clientId: string, n: number, why: string): Promise<void> {
    const concurrent = await Promise.all(Array.from({ length: n / 2 }, () => auth(t, clock, clientId, key1)));
    for (const res of concurrent) expectInvalidClient(res, t, 'jwks_');
    for (let i = 0; i < n / 2; i++) expectInvalidClient(await auth(t, clock, clientId, key1), t, why);
  }

  it('fetches a failing jwks_uri once for 40 requests within oauthJwksFailureBackoff, then again after it', async () => {
    const { t, clock, client, server } = await setup();
    server.handler = (_req, res) => {
      res.writeHead(500);
      res.end('down');
    };
    await flood(t, clock, client.clientId, 40, 'HTTP 500');
    expect(server.hits).toBe(1);
    clock.advance(9);
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'a failure remembered for 1 s more');
    expect(server.hits).toBe(1);
    clock.advance(1);
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'HTTP 500');
    expect(server.hits).toBe(2);
  });

  it('opens the window when the fetch has failed, so a slow failure does not eat its own backoff', async () => {
    const { t, clock, client, server } = await setup();
    server.handler = (_req, res) => {
      clock.advance(9); // the fetch took 9 s of the context's clock before failing
      res.writeHead(500);
      res.end('down');
    };
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'HTTP 500');
    clock.advance(2);
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'a failure remembered for 8 s more');
    expect(server.hits).toBe(1);
  });

  it('doubles the window on each further failure up to oauthJwksMaxFailureBackoff, and forgets it after a success', async () => {
    const { t, clock, client, server } = await setup({ oauthJwksFailureBackoff: 5, oauthJwksMaxFailureBackoff: 15, oauthJwksMinCacheExpiresIn: 0 });
    const failing = (_req: unknown, res: import('node:http').ServerResponse) => {
      res.writeHead(503);
      res.end();
    };
    server.handler = failing;
    const windows: number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'HTTP 503');
      const before = server.hits;
      let waited = 0;
      while (server.hits === before) {
        clock.advance(1);
        waited++;
        expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'jwks_http_status');
      }
      windows.push(waited);
    }
    expect(windows).toEqual([5, 10, 15, 15]);

    clock.advance(15);
    server.serve([key1.publicJwk], { 'cache-control': 'no-store' });
    const ok = await auth(t, clock, client.clientId, key1);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual(SUCCESS);
    server.handler = failing;
    const hits = server.hits;
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'HTTP 503');
    clock.advance(5);
    expectInvalidClient(await auth(t, clock, client.clientId, key1), t, 'HTTP 503');
    expect(server.hits).toBe(hits + 2);
  });

  it('answers a refetch for an unknown kid with the remembered failure, while the cached set still verifies its own keys', async () => {
    const { t, clock, client, server } = await setup();
    server.serve([key1.publicJwk], { 'cache-control': 'max-age=3600' });
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    clock.advance(61);
    server.handler = (_req, res) => {
      res.writeHead(500);
      res.end();
    };
    expectInvalidClient(await auth(t, clock, client.clientId, key2), t, 'HTTP 500');
    expectInvalidClient(await auth(t, clock, client.clientId, key2), t, 'a failure remembered');
    expect(server.hits).toBe(2);
    // The cached set still verifies its own keys meanwhile.
    expect((await auth(t, clock, client.clientId, key1)).status).toBe(200);
    expect(server.hits).toBe(2);
  });
});
