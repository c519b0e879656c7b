/**
 * resourceServer() against a real oauth() server listening on 127.0.0.1 (in-memory SQLite):
 * its RFC 8414 metadata and `GET /jwks` (`jwks`), and its `/introspect`.
 */
import express from 'express';
import knex, { type Knex } from 'knex';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import request from 'supertest';
import { oauth, resourceServer, type OAuthRouter } from '../../lib';
import { memoryLogger } from './support';

let db: Knex;
let server: Server;
let issuer: string;
let auth: OAuthRouter;
let client: { clientId: string; clientSecret: string };
let rsClient: { clientId: string; clientSecret: string };
let introspections = 0;
let jwksFetches = 0;

beforeAll(async () => {
  db = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
  const app = express();
  app.use((req, _res, next) => {
    if (req.path === '/introspect') introspections++;
    if (req.path === '/jwks') jwksFetches++;
    next();
  });
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  auth = oauth({
    db,
    issuer,
    enable: ['jwks', 'token_introspection', 'token_revocation', 'client_credentials_grant'],
    oauthJwtKeys: [{ key: await exportJWK(privateKey), alg: 'ES256' }],
    // RFC 7662 §4: the resource server's client may see every client's tokens.
    oauthIntrospectionAllowedClients: () => [rsClient.clientId],
    oauthClientSecretHashCost: 4,
    logger: memoryLogger(),
  }) as OAuthRouter;
  await auth.migrate();
  const created = await auth.createApplication({ name: 'Client', redirectUri: ['https://client.example/cb'], scopes: ['books.read'], grantTypes: ['client_credentials'] });
  client = { clientId: created.clientId, clientSecret: created.clientSecret! };
  const rs = await auth.createApplication({ name: 'Books API', redirectUri: ['https://api.example/cb'], scopes: [], grantTypes: ['client_credentials'] });
  rsClient = { clientId: rs.clientId, clientSecret: rs.clientSecret! };
  app.use(auth);
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await db.destroy();
});

async function token(scope = 'books.read'): Promise<string> {
  const res = await request(server).post('/token').auth(client.clientId, client.clientSecret).type('form').send({ grant_type: 'client_credentials', scope });
  expect(res.status).toBe(200);
  return res.body.access_token as string;
}

function api(options: Record<string, unknown> = {}) {
  const rs = resourceServer({ issuer, audience: issuer, introspection: rsClient, logger: memoryLogger(), ...options });
  const app = express();
  app.get('/books', rs.require('books.read'), (req, res) => res.json(req.oauth));
  return { rs, get: (t: string) => request(app).get('/books').set('Authorization', `Bearer ${t}`) };
}

describe('resourceServer › against a real oauth() server', () => {
  it('discovers the metadata and fetches the published keys (ready)', async () => {
    const before = jwksFetches;
    await api().rs.ready();
    expect(jwksFetches).toBe(before + 1);
  });

  it('accepts its opaque tokens through /introspect with the allowed client, caching the answer', async () => {
    const { get } = api();
    const t = await token();
    const before = introspections;
    const res = await get(t);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accountId: null, clientId: client.clientId, applicationId: null, grantId: null, scopes: ['books.read'], token: t });
    expect((await get(t)).status).toBe(200);
    expect(introspections).toBe(before + 1);
  });

  it('refuses a revoked token at once with introspectionCacheSeconds: 0', async () => {
    const { get } = api({ introspectionCacheSeconds: 0 });
    const t = await token();
    expect((await get(t)).status).toBe(200);
    expect((await request(server).post('/revoke').auth(client.clientId, client.clientSecret).type('form').send({ token: t })).status).toBe(200);
    const res = await get(t);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_token');
  });
});
