import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import request from 'supertest';
import { oauth, OAuthConfigurationError, type OAuthContext } from '../../lib';
import { basic, buildApp, closeAll, MOUNT, type TestApp } from '../support/build_app';
import { createTestDb } from '../support/db';
import { newKey } from '../jwks/support';

afterAll(closeAll);

const APP = 'https://app.example';
const OTHER = 'https://evil.example';
const ALLOW_HEADERS = 'Authorization, Content-Type, MCP-Protocol-Version';

/** A browser's preflight before a cross-origin request with non-safelisted headers (Fetch §3.2.2). */
function preflight(t: TestApp, path: string, origin: string, method = 'POST') {
  return request(t.app).options(t.path(path)).set('Origin', origin).set('Access-Control-Request-Method', method).set('Access-Control-Request-Headers', 'authorization, content-type');
}

async function corsApp(options: Record<string, unknown> = {}): Promise<TestApp> {
  const key = await newKey('ES256');
  return buildApp({
    issuer: 'https://auth.example.com',
    enable: ['client_credentials_grant', 'token_revocation', 'token_introspection', 'authorization_code_grant', 'jwks'],
    oauthJwtKeys: [{ key: key.privateJwk, alg: 'ES256' }],
    ...options,
  });
}

describe('cors › public documents (metadata, JWKS): any origin by default', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await corsApp();
  });

  it.each(['/.well-known/oauth-authorization-server', '/jwks'])('answers a preflight to %s with * , GET and HEAD, the headers and Max-Age, without credentials', async (path) => {
    const res = await preflight(t, path, APP, 'GET');
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(res.headers.allow).toBe('GET, HEAD');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['access-control-allow-methods']).toBe('GET, HEAD');
    expect(res.headers['access-control-allow-headers']).toBe(ALLOW_HEADERS);
    expect(res.headers['access-control-max-age']).toBe('600');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers.vary).toBeUndefined();
  });

  it('lets any origin read the metadata document (Access-Control-Allow-Origin: *, no Vary: Origin)', async () => {
    const res = await request(t.app).get(t.path('/.well-known/oauth-authorization-server')).set('Origin', APP);
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers.vary).toBeUndefined();
    expect(res.body.issuer).toBe('https://auth.example.com');
  });

  it('lets any origin read the JWK Set', async () => {
    const res = await request(t.app).get(t.path('/jwks')).set('Origin', APP);
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.body.keys).toHaveLength(1);
  });

  it('carries Access-Control-Allow-Origin on an error of a public document too (405 with Allow)', async () => {
    const res = await request(t.app).delete(t.path('/jwks')).set('Origin', APP);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Method not allowed' });
  });

  it('answers a plain OPTIONS (no Access-Control-Request-Method) as before: 204 with Allow, no preflight headers', async () => {
    const res = await request(t.app).options(t.path('/jwks')).set('Origin', APP);
    expect(res.status).toBe(204);
    expect(res.headers.allow).toBe('GET, HEAD');
    expect(res.headers['access-control-allow-methods']).toBeUndefined();
    expect(res.headers['access-control-allow-headers']).toBeUndefined();
    expect(res.headers['access-control-max-age']).toBeUndefined();
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });
});

describe('cors › token, revocation: no origin unless configured', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await corsApp();
  });

  it.each(['/token', '/revoke'])('answers a preflight to %s without any CORS header (the browser refuses the request)', async (path) => {
    const res = await preflight(t, path, APP);
    expect(res.status).toBe(204);
    expect(res.headers.allow).toBe('POST');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers['access-control-allow-methods']).toBeUndefined();
    expect(res.headers['access-control-allow-headers']).toBeUndefined();
    // The answer depends on the Origin only if some origin could be allowed; none can.
  });

  it('answers a cross-origin token request without Access-Control-Allow-Origin', async () => {
    const client = await t.createClient({ grantTypes: ['client_credentials'] });
    const res = await request(t.app).post(t.path('/token')).set('Origin', APP).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ grant_type: 'client_credentials' });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.body.token_type).toBe('Bearer');
  });
});

describe('cors › token, revocation with oauthCorsOrigins', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await corsApp({ oauthCorsOrigins: [APP], oauthCorsMaxAge: 7200 });
  });

  it.each(['/token', '/revoke'])('answers a preflight to %s from a listed origin with that origin, POST, the headers, Max-Age and Vary: Origin', async (path) => {
    const res = await preflight(t, path, APP);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(res.headers.allow).toBe('POST');
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(res.headers['access-control-allow-methods']).toBe('POST');
    expect(res.headers['access-control-allow-headers']).toBe(ALLOW_HEADERS);
    expect(res.headers['access-control-max-age']).toBe('7200');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers.vary).toBe('Origin');
  });

  it('refuses a preflight from an origin not listed: no CORS header, Vary: Origin', async () => {
    const res = await preflight(t, '/token', OTHER);
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers['access-control-allow-methods']).toBeUndefined();
    expect(res.headers.vary).toBe('Origin');
  });

  it('lets a listed origin read a token response, exposing WWW-Authenticate and Retry-After', async () => {
    const client = await t.createClient({ grantTypes: ['client_credentials'] });
    const res = await request(t.app).post(t.path('/token')).set('Origin', APP).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ grant_type: 'client_credentials' });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(res.headers['access-control-expose-headers']).toBe('WWW-Authenticate, Retry-After');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers.vary).toBe('Origin');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body.token_type).toBe('Bearer');
  });

  it('carries Access-Control-Allow-Origin on token errors, so the client can read them (401 invalid_client with its challenge)', async () => {
    const res = await request(t.app).post(t.path('/token')).set('Origin', APP).set('Authorization', basic('nobody', 'wrong')).type('form').send({ grant_type: 'client_credentials' });
    expect(res.status).toBe(401);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(res.headers['www-authenticate']).toBe('Basic realm="oauth"');
    expect(res.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
  });

  it('carries it on revocation answers', async () => {
    const client = await t.createClient({ grantTypes: ['client_credentials'] });
    const res = await request(t.app).post(t.path('/revoke')).set('Origin', APP).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ token: 'unknown' });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
  });

  it('answers an unlisted origin without Access-Control-Allow-Origin, with Vary: Origin', async () => {
    const res = await request(t.app).post(t.path('/token')).set('Origin', OTHER).type('form').send({ grant_type: 'client_credentials' });
    expect(res.status).toBe(401);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers.vary).toBe('Origin');
  });

  it('sends Vary: Origin on a same-origin request too, so a cache keeps the answers apart', async () => {
    const res = await request(t.app).post(t.path('/token')).type('form').send({ grant_type: 'client_credentials' });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers.vary).toBe('Origin');
  });

  it('never answers CORS at the introspection endpoint (server-to-server, RFC 7662 §2.1)', async () => {
    const pre = await preflight(t, '/introspect', APP);
    expect(pre.status).toBe(204);
    expect(pre.headers.allow).toBe('POST');
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    const res = await request(t.app).post(t.path('/introspect')).set('Origin', APP).type('form').send({ token: 'x' });
    expect(res.status).toBe(401);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers.vary).toBeUndefined();
  });

  it('never answers CORS at the authorization endpoint, whatever is configured (a navigation, RFC 6749 §3.1)', async () => {
    const wide = await corsApp({ oauthCorsOrigins: ['*'], oauthCorsDocumentOrigins: ['*'] });
    for (const method of ['GET', 'POST']) {
      const pre = await preflight(wide, '/authorize', APP, method);
      expect(pre.status).toBe(204);
      expect(pre.headers.allow).toBe('GET, HEAD, POST');
      expect(pre.headers['access-control-allow-origin']).toBeUndefined();
      expect(pre.headers['access-control-allow-methods']).toBeUndefined();
    }
    const res = await request(wide.app).get(wide.path('/authorize')).set('Origin', APP).query({ client_id: 'unknown', response_type: 'code' });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const post = await request(wide.app).post(wide.path('/authorize')).set('Origin', APP).type('form').send({ client_id: 'unknown', response_type: 'code' });
    expect(post.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('cors › origins as values', () => {
  it("takes '*' for the token endpoint when configured: no Vary, no credentials", async () => {
    const t = await corsApp({ oauthCorsOrigins: ['*'] });
    const res = await preflight(t, '/token', APP);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers.vary).toBeUndefined();
  });

  it('restricts the public documents to a list (oauthCorsDocumentOrigins), with Vary: Origin', async () => {
    const t = await corsApp({ oauthCorsDocumentOrigins: [APP] });
    const ok = await request(t.app).get(t.path('/jwks')).set('Origin', APP);
    expect(ok.headers['access-control-allow-origin']).toBe(APP);
    expect(ok.headers.vary).toBe('Origin');
    const refused = await request(t.app).get(t.path('/.well-known/oauth-authorization-server')).set('Origin', OTHER);
    expect(refused.status).toBe(200);
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
    expect(refused.headers.vary).toBe('Origin');
  });

  it('turns the documents off with []', async () => {
    const t = await corsApp({ oauthCorsDocumentOrigins: [] });
    const res = await preflight(t, '/jwks', APP, 'GET');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('asks a function of the request context, which reads the Origin (e.g. per tenant)', async () => {
    const seen: (string | undefined)[] = [];
    const t = await corsApp({
      oauthCorsOrigins: (ctx: OAuthContext) => {
        seen.push(ctx.req.get('Origin'));
        return ctx.req.get('Origin')?.endsWith('.app.example') ? [ctx.req.get('Origin')!] : [];
      },
    });
    const ok = await preflight(t, '/token', 'https://tenant1.app.example');
    expect(ok.headers['access-control-allow-origin']).toBe('https://tenant1.app.example');
    expect(ok.headers.vary).toBe('Origin');
    const no = await preflight(t, '/token', OTHER);
    expect(no.headers['access-control-allow-origin']).toBeUndefined();
    expect(no.headers.vary).toBe('Origin');
    expect(seen).toEqual(['https://tenant1.app.example', OTHER]);
  });

  it('answers a function that throws with a JSON server_error, never CORS headers or a crash', async () => {
    const t = await corsApp({
      oauthCorsOrigins: () => {
        throw new Error('tenant lookup failed');
      },
    });
    const res = await request(t.app).post(t.path('/token')).set('Origin', APP).type('form').send({ grant_type: 'client_credentials' });
    expect(res.status).toBe(500);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.body).toEqual({ error: 'server_error', error_description: 'An unexpected error occurred' });
  });

  it.each([
    ['oauthCorsOrigins', 'https://app.example', "option 'oauthCorsOrigins' must be an array"],
    ['oauthCorsOrigins', ['https://app.example/'], "option 'oauthCorsOrigins' has \"https://app.example/\", which is not an origin"],
    ['oauthCorsOrigins', ['app.example'], "option 'oauthCorsOrigins' has \"app.example\", which is not an origin"],
    ['oauthCorsDocumentOrigins', ['https://App.example'], "option 'oauthCorsDocumentOrigins' has \"https://App.example\", which is not an origin"],
    ['oauthCorsDocumentOrigins', ['ftp://app.example'], "option 'oauthCorsDocumentOrigins' has \"ftp://app.example\", which is not an origin"],
    ['oauthCorsDocumentOrigins', [42], "option 'oauthCorsDocumentOrigins' has a non-string entry 42"],
  ])('refuses %s = %j at start-up', async (name, given, message) => {
    const { db, destroy } = await createTestDb();
    try {
      expect(() => oauth({ db, issuer: 'https://auth.example.com', [name]: given } as never)).toThrow(OAuthConfigurationError);
      expect(() => oauth({ db, issuer: 'https://auth.example.com', [name]: given } as never)).toThrow(message);
    } finally {
      await destroy();
    }
  });
});

describe('cors › the path-inserted metadata of wellKnown()', () => {
  const PREFIX = MOUNT || '/oauth';
  it('answers preflights and GETs like the router’s own metadata route', async () => {
    const t = await buildApp({ issuer: `https://auth.example.com${PREFIX}`, enable: ['client_credentials_grant'] });
    const app = express();
    app.use(PREFIX, t.auth);
    app.use(t.auth.wellKnown());
    const path = `/.well-known/oauth-authorization-server${PREFIX}`;
    const pre = await request(app).options(path).set('Origin', APP).set('Access-Control-Request-Method', 'GET').set('Access-Control-Request-Headers', 'mcp-protocol-version');
    expect(pre.status).toBe(204);
    expect(pre.headers.allow).toBe('GET, HEAD');
    expect(pre.headers['access-control-allow-origin']).toBe('*');
    expect(pre.headers['access-control-allow-methods']).toBe('GET, HEAD');
    expect(pre.headers['access-control-allow-headers']).toBe(ALLOW_HEADERS);
    const res = await request(app).get(path).set('Origin', APP);
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.body.issuer).toBe(`https://auth.example.com${PREFIX}`);
    const post = await request(app).post(path).set('Origin', APP);
    expect(post.status).toBe(405);
    expect(post.headers['access-control-allow-origin']).toBe('*');
  });
});

describe('cors › registration (RFC 7591, RFC 7592) with oauthCorsOrigins', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildApp({ issuer: 'https://auth.example.com', enable: ['dynamic_client_registration', 'authorization_code_grant'], oauthCorsOrigins: [APP] });
  });

  it('answers a preflight to the registration endpoint from a listed origin (JSON needs Content-Type)', async () => {
    const res = await request(t.app).options(t.path('/register')).set('Origin', APP).set('Access-Control-Request-Method', 'POST').set('Access-Control-Request-Headers', 'content-type');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(res.headers['access-control-allow-methods']).toBe('POST');
    expect(res.headers['access-control-allow-headers']).toBe(ALLOW_HEADERS);
    expect(res.headers.vary).toBe('Origin');
  });

  it('answers a preflight to a client configuration endpoint with its methods (RFC 7592 §2)', async () => {
    const res = await request(t.app).options(t.path('/register/some-client')).set('Origin', APP).set('Access-Control-Request-Method', 'PUT').set('Access-Control-Request-Headers', 'authorization, content-type');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(res.headers['access-control-allow-methods']).toBe('GET, HEAD, PUT, DELETE');
  });

  it('lets the listed origin read the registration response, and its errors', async () => {
    const ok = await request(t.app).post(t.path('/register')).set('Origin', APP).send({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none' });
    expect(ok.status).toBe(201);
    expect(ok.headers['access-control-allow-origin']).toBe(APP);
    expect(ok.body.client_id).toEqual(expect.any(String));
    const bad = await request(t.app).post(t.path('/register')).set('Origin', APP).send({ redirect_uris: ['https://app.example/cb#fragment'] });
    expect(bad.status).toBe(400);
    expect(bad.headers['access-control-allow-origin']).toBe(APP);
    expect(bad.body.error).toBe('invalid_redirect_uri');
    const other = await request(t.app).get(t.path(`/register/${ok.body.client_id}`)).set('Origin', OTHER);
    expect(other.status).toBe(401);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers no CORS at registration by default', async () => {
    const plain = await buildApp({ issuer: 'https://auth.example.com', enable: ['dynamic_client_registration', 'authorization_code_grant'] });
    const res = await request(plain.app).options(plain.path('/register')).set('Origin', APP).set('Access-Control-Request-Method', 'POST');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});
