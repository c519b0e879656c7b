import request from 'supertest';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { clientCredentialsToken } from '../support/token_fixtures';
import { claims, Clock, GRANT_TYPE, INVALID_CLIENT, ISSUER, JwksServer, keyPair, signWith, type KeyPair } from './support';
import { until } from '../support/until';

// One connection on PostgreSQL as on SQLite: a transaction left open while the grant waits would
// hold the only connection, and every other request would wait behind it.
const POOL = { poolMax: 1 };

const servers: JwksServer[] = [];
afterEach(async () => {
  while (servers.length) await servers.pop()!.close();
});
afterAll(closeAll);

let key: KeyPair;
beforeAll(async () => {
  key = await keyPair('ES256', 'k1');
});

/** Resolves with the promise's value, or fails the spec with `what` once `ms` have passed. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** Other traffic keeps being served: a protected route (a read) and a token request (a write). */
async function expectOthersServed(t: TestApp, other: { clientId: string; clientSecret: string }, token: string): Promise<void> {
  const me = await within(request(t.app).get('/api/me').set('Authorization', `Bearer ${token}`), 3000, 'the protected route');
  expect(me.status).toBe(200);
  expect(me.body).toMatchObject({ clientId: other.clientId, scopes: ['books.read'] });
  const issued = await within(
    request(t.app).post(t.path('/token')).auth(other.clientId, other.clientSecret).type('form').send({ grant_type: 'client_credentials', scope: 'books.read' }),
    3000,
    'a client_credentials token request',
  );
  expect(issued.status).toBe(200);
  expect(issued.headers['cache-control']).toBe('no-store');
  expect(issued.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read' });
}

describe('jwt_bearer › no slow work inside the token transaction', () => {
  it('serves reads and writes while a jwt-bearer grant waits on a hanging jwks_uri (the fetch runs before any transaction)', async () => {
    const server = await new JwksServer().start();
    servers.push(server);
    const held: (() => void)[] = [];
    server.handler = (_req, res) => {
      held.push(() => {
        res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
        res.end(JSON.stringify({ keys: [key.publicJwk] }));
      });
    };
    const clock = new Clock();
    const t = await buildApp(
      { enable: ['jwt_bearer', 'client_credentials_grant'], issuer: ISSUER, now: clock.now, oauthJwksAllowLoopbackHttp: true, oauthJwksFetchTimeout: 20000 },
      POOL,
    );
    const signer = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', grantTypes: [GRANT_TYPE], jwksUri: server.uri });
    const other = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_basic', grantTypes: ['client_credentials'] });
    const token = await clientCredentialsToken(t, other, 'books.read');

    const assertion = await signWith(key, claims(clock, signer.clientId, { sub: 'alice' }));
    const pending = request(t.app).post(t.path('/token')).type('form').send({ grant_type: GRANT_TYPE, assertion, scope: 'books.read' }).then((r) => r);
    await until(() => held.length === 1, 'the jwks_uri fetch');

    await expectOthersServed(t, other, token);

    held[0]!();
    const granted = await pending;
    expect(granted.status).toBe(200);
    expect(granted.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read' });
    expect(server.hits).toBe(1);
  });

  it("serves reads and writes while a client's secret is being checked for a jwt-bearer grant (client authentication runs before any transaction)", async () => {
    const gates: (() => void)[] = [];
    const clock = new Clock();
    const t = await buildApp(
      {
        enable: ['jwt_bearer', 'client_credentials_grant'],
        issuer: ISSUER,
        now: clock.now,
        // A slow secret check (bcrypt under a flood) that the spec releases by hand.
        secretMatches: async (ctx: { super: { secretMatches(app: unknown, secret: string): Promise<boolean> } }, app: unknown, secret: string) => {
          if (secret === 'wrong') await new Promise<void>((resolve) => gates.push(resolve));
          return ctx.super.secretMatches(app, secret);
        },
      },
      POOL,
    );
    const signer = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_basic', grantTypes: [GRANT_TYPE] });
    const other = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_basic', grantTypes: ['client_credentials'] });
    const token = await clientCredentialsToken(t, other, 'books.read');

    // A junk assertion naming a known client, with that client's id and a wrong secret: no key is needed.
    const junk = await signWith(await keyPair('ES256', 'junk'), claims(clock, signer.clientId));
    const pending = request(t.app).post(t.path('/token')).auth(signer.clientId, 'wrong').type('form').send({ grant_type: GRANT_TYPE, assertion: junk }).then((r) => r);
    await until(() => gates.length === 1, 'the secret check');

    await expectOthersServed(t, other, token);

    gates[0]!();
    const refused = await pending;
    expect(refused.status).toBe(401);
    expect(refused.headers).toMatchObject({ 'cache-control': 'no-store', 'www-authenticate': 'Basic realm="oauth"' });
    expect(refused.body).toEqual(INVALID_CLIENT);
  });

  it('spends the jti of a verified assertion even when a beforeToken hook then refuses the grant (single use, RFC 7523 §3 item 7)', async () => {
    const clock = new Clock();
    let refuse = true;
    const t = await buildApp({
      enable: ['jwt_bearer'],
      issuer: ISSUER,
      now: clock.now,
      beforeToken: async (ctx: { application?: { clientId: string }; accountId?: string | null }) => {
        // The verified client and account are known to the hook.
        expect(ctx.application?.clientId).toEqual(expect.any(String));
        expect(ctx.accountId).toBe('alice');
        if (refuse) {
          const { OAuthError } = await import('../../lib');
          throw new OAuthError('access_denied', 'Not now');
        }
      },
    });
    const signer = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', grantTypes: [GRANT_TYPE], jwks: { keys: [key.publicJwk] } });
    const assertion = await signWith(key, claims(clock, signer.clientId, { sub: 'alice' }));
    const send = () => request(t.app).post(t.path('/token')).type('form').send({ grant_type: GRANT_TYPE, assertion });

    const denied = await send();
    expect(denied.status).toBe(400);
    expect(denied.body).toEqual({ error: 'access_denied', error_description: 'Not now' });
    refuse = false;
    const replayed = await send();
    expect(replayed.status).toBe(400);
    expect(replayed.body).toEqual({ error: 'invalid_grant', error_description: 'Invalid grant' });
    const [{ n }] = (await t.db('oauth_grants').count({ n: '*' })) as { n: number | string }[];
    expect(Number(n)).toBe(0);
  });
});
