/**
 * resourceServer() against a real oauth() server listening on 127.0.0.1 (in-memory SQLite):
 * its RFC 8414 metadata and `GET /jwks` (`jwks`), its `/introspect`, and its RFC 9068 JWT
 * access tokens (`jwt_access_tokens`), checked from the published keys alone.
 */
import express from 'express';
import knex, { type Knex } from 'knex';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { oauth, resourceServer, type OAuthRouter } from '../../lib';
import { es256 } from '../jwt_access_tokens/support';
import { memoryLogger } from './support';

interface Credentials {
  clientId: string;
  clientSecret: string;
}

/** A real authorization server on a free loopback port, counting the requests to `/introspect` and `/jwks`. */
interface Issuer {
  server: Server;
  issuer: string;
  auth: OAuthRouter;
  /** A client-credentials client with the scope books.read. */
  client: Credentials;
  /** The resource server's client, allowed to introspect every client's tokens (RFC 7662 §4). */
  rsClient: Credentials;
  introspections: number;
  jwksFetches: number;
  close(): Promise<void>;
}

async function startIssuer(options: Record<string, unknown>): Promise<Issuer> {
  const db: Knex = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
  const app = express();
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { option } = await es256();
  const t = { server, issuer } as Issuer;
  t.introspections = 0;
  t.jwksFetches = 0;
  app.use((req, _res, next) => {
    if (req.path === '/introspect') t.introspections++;
    if (req.path === '/jwks') t.jwksFetches++;
    next();
  });
  t.auth = oauth({
    db,
    issuer,
    oauthJwtKeys: option,
    oauthIntrospectionAllowedClients: () => [t.rsClient.clientId],
    oauthClientSecretHashCost: 4,
    logger: memoryLogger(),
    ...options,
  } as never) as OAuthRouter;
  await t.auth.migrate();
  const created = await t.auth.createApplication({ name: 'Client', redirectUri: ['https://client.example/cb'], scopes: ['books.read'], grantTypes: ['client_credentials'] });
  t.client = { clientId: created.clientId, clientSecret: created.clientSecret! };
  const rs = await t.auth.createApplication({ name: 'Books API', redirectUri: ['https://api.example/cb'], scopes: [], grantTypes: ['client_credentials'] });
  t.rsClient = { clientId: rs.clientId, clientSecret: rs.clientSecret! };
  app.use(t.auth);
  t.close = async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await db.destroy();
  };
  return t;
}

async function tokenFrom(t: Issuer, scope = 'books.read'): Promise<string> {
  const res = await request(t.server).post('/token').auth(t.client.clientId, t.client.clientSecret).type('form').send({ grant_type: 'client_credentials', scope });
  expect(res.status).toBe(200);
  return res.body.access_token as string;
}

/** An API protected by resourceServer() for `t`, with introspection credentials (so that falling back to /introspect would succeed). */
function apiOf(t: Issuer, options: Record<string, unknown> = {}) {
  const rs = resourceServer({ issuer: t.issuer, audience: t.issuer, introspection: t.rsClient, logger: memoryLogger(), ...options });
  const app = express();
  app.get('/books', rs.require('books.read'), (req, res) => res.json(req.oauth));
  return { rs, get: (token: string) => request(app).get('/books').set('Authorization', `Bearer ${token}`) };
}

describe('resourceServer › against a real oauth() server', () => {
  let as: Issuer;
  beforeAll(async () => {
    as = await startIssuer({ enable: ['jwks', 'token_introspection', 'token_revocation', 'client_credentials_grant'] });
  });
  afterAll(() => as.close());
  const token = (scope?: string) => tokenFrom(as, scope);
  const api = (options?: Record<string, unknown>) => apiOf(as, options);

  it('discovers the metadata and fetches the published keys (ready)', async () => {
    const before = as.jwksFetches;
    await api().rs.ready();
    expect(as.jwksFetches).toBe(before + 1);
  });

  it('accepts its opaque tokens through /introspect with the allowed client, caching the answer', async () => {
    const { get } = api();
    const t = await token();
    const before = as.introspections;
    const res = await get(t);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accountId: null, clientId: as.client.clientId, applicationId: null, grantId: null, scopes: ['books.read'], token: t });
    expect((await get(t)).status).toBe(200);
    expect(as.introspections).toBe(before + 1);
  });

  it('refuses a revoked token at once with introspectionCacheSeconds: 0', async () => {
    const { get } = api({ introspectionCacheSeconds: 0 });
    const t = await token();
    expect((await get(t)).status).toBe(200);
    expect((await request(as.server).post('/revoke').auth(as.client.clientId, as.client.clientSecret).type('form').send({ token: t })).status).toBe(200);
    const res = await get(t);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_token');
  });
});

describe('resourceServer › JWT access tokens of a real oauth() server', () => {
  const AUDIENCE = 'https://books.example';
  let as: Issuer;
  beforeAll(async () => {
    as = await startIssuer({ enable: ['jwt_access_tokens', 'token_introspection', 'client_credentials_grant'], oauthJwtAudience: AUDIENCE });
  });
  afterAll(() => as.close());

  it('accepts the JWT from the published keys, without calling /introspect', async () => {
    const { get } = apiOf(as, { audience: AUDIENCE });
    const t = await tokenFrom(as);
    expect(t.split('.')).toHaveLength(3);
    const before = as.introspections;
    for (let i = 0; i < 3; i++) {
      const res = await get(t);
      expect(res.status).toBe(200);
      // RFC 9068 §2.2: a client-credentials token's `sub` is the client, so no account.
      expect(res.body).toMatchObject({ accountId: null, clientId: as.client.clientId, applicationId: null, grantId: null, scopes: ['books.read'], token: t });
    }
    expect(as.introspections).toBe(before);
  });

  it('rejects a JWT for another audience with 401 invalid_token, without calling /introspect', async () => {
    const { get } = apiOf(as, { audience: 'https://other.example' });
    const t = await tokenFrom(as);
    const before = as.introspections;
    const res = await get(t);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_token');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer .*error="invalid_token"/);
    expect(as.introspections).toBe(before);
  });
});

describe('resourceServer › opaque tokens bound to a resource (RFC 8707) of a real oauth() server', () => {
  const A = 'https://a.example/mcp';
  const B = 'https://b.example/api';
  let as: Issuer;
  beforeAll(async () => {
    as = await startIssuer({ enable: ['jwks', 'token_introspection', 'client_credentials_grant', 'resource_indicators'], oauthResourceIndicators: [A, B] });
  });
  afterAll(() => as.close());

  async function tokenFor(resource?: string): Promise<string> {
    const res = await request(as.server)
      .post('/token')
      .auth(as.client.clientId, as.client.clientSecret)
      .type('form')
      .send({ grant_type: 'client_credentials', scope: 'books.read', ...(resource && { resource }) });
    expect(res.status).toBe(200);
    return res.body.access_token as string;
  }

  it('accepts a token for its own resource: introspection reports the resource as aud (RFC 7662 §2.2)', async () => {
    const t = await tokenFor(A);
    const seen = await request(as.server).post('/introspect').auth(as.rsClient.clientId, as.rsClient.clientSecret).type('form').send({ token: t });
    expect(seen.body).toMatchObject({ active: true, aud: A });
    const res = await apiOf(as, { audience: A }).get(t);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ clientId: as.client.clientId, scopes: ['books.read'] });
  });

  it('refuses a token bound to another resource with 401 invalid_token (audience_mismatch)', async () => {
    const t = await tokenFor(A);
    const logger = memoryLogger();
    const res = await apiOf(as, { audience: B, logger }).get(t);
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'invalid_token', error_description: expect.any(String) });
    expect(res.headers['www-authenticate']).toMatch(/^Bearer .*error="invalid_token"/);
    expect(logger.lines.join("\n")).toContain('audience_mismatch');
  });

  it('refuses a token that named no resource at a resource server of one, and accepts it with the issuer as audience', async () => {
    const t = await tokenFor();
    expect((await apiOf(as, { audience: A }).get(t)).status).toBe(401);
    expect((await apiOf(as, { audience: as.issuer }).get(t)).status).toBe(200);
  });
});
