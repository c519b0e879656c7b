/**
 * A minimal authorization server for resourceServer() specs, listening on 127.0.0.1: RFC 8414
 * metadata, a JWK Set, an RFC 7662 introspection endpoint, each with a hit counter and a
 * replaceable behaviour, and `at+jwt` tokens minted with jose. It does not depend on the
 * package's own `jwks` / `jwt_access_tokens` features.
 */
import express, { type Request, type Response } from 'express';
import { createServer } from 'node:http';
import { LoopbackServer } from '../support/loopback_server';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type KeyLike } from 'jose';
import request from 'supertest';
import { Clock } from '../jwt_bearer/support';
import { resourceServer, type OAuthLogger, type ResourceServerOptions } from '../../lib';

export const AUDIENCE = 'https://api.example';
export const INTROSPECTION = { clientId: 'rs-client', clientSecret: 'rs secret:1' };

/** The movable clock of the jwt_bearer specs. */
export { Clock };

export interface KeyPair {
  alg: string;
  kid: string;
  privateKey: KeyLike;
  publicJwk: JWK;
}

export async function keyPair(alg = 'ES256', kid = `key-${alg}`): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

type Handler = (req: Request, res: Response) => void;

/** One endpoint's behaviour and how often it was asked. */
class Endpoint {
  hits = 0;
  constructor(public handler: Handler) {}
}

export class FakeAuthorizationServer {
  readonly metadata = new Endpoint((req, res) => res.json(this.metadataDocument()));
  readonly jwks = new Endpoint((_req, res) => res.json({ keys: this.keys.map((k) => k.publicJwk) }));
  readonly introspection = new Endpoint((req, res) => this.introspect(req, res));
  /** Path of the issuer ('' for an origin). */
  path = '';
  origin = '';
  keys: KeyPair[] = [];
  /** Members added to (or, when undefined, removed from) the metadata document. */
  metadataOverrides: Record<string, unknown> = {};
  /** Introspection answers by token; any other token is inactive. */
  readonly tokens = new Map<string, Record<string, unknown>>();
  /** The Authorization headers the introspection endpoint received. */
  readonly introspectionAuth: string[] = [];
  private server?: LoopbackServer;

  get issuer(): string {
    return `${this.origin}${this.path}`;
  }

  async start(path = ''): Promise<this> {
    this.path = path;
    const app = express();
    const wellKnown = '/.well-known/oauth-authorization-server';
    app.get(path === '' ? wellKnown : [`${wellKnown}${path}`, `${path}${wellKnown}`], (req, res) => {
      this.metadata.hits++;
      this.metadata.handler(req, res);
    });
    app.get('/jwks', (req, res) => {
      this.jwks.hits++;
      this.jwks.handler(req, res);
    });
    app.post('/introspect', express.urlencoded({ extended: false }), (req, res) => {
      this.introspection.hits++;
      this.introspection.handler(req, res);
    });
    this.server = new LoopbackServer(createServer(app));
    this.origin = await this.server.listen();
    return this;
  }

  metadataDocument(): Record<string, unknown> {
    const doc: Record<string, unknown> = {
      issuer: this.issuer,
      token_endpoint: `${this.issuer}/token`,
      jwks_uri: `${this.origin}/jwks`,
      introspection_endpoint: `${this.origin}/introspect`,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic'],
    };
    for (const [k, v] of Object.entries(this.metadataOverrides)) {
      if (v === undefined) delete doc[k];
      else doc[k] = v;
    }
    return doc;
  }

  /** RFC 7662 with client_secret_basic, as this package's own endpoint does it. */
  private introspect(req: Request, res: Response): void {
    this.introspectionAuth.push(req.headers.authorization ?? '');
    const expected = `Basic ${Buffer.from(`${encodeURIComponent(INTROSPECTION.clientId)}:${encodeURIComponent(INTROSPECTION.clientSecret).replace(/%20/g, '+')}`).toString('base64')}`;
    if (req.headers.authorization !== expected) {
      res.status(401).json({ error: 'invalid_client' });
      return;
    }
    const token = (req.body as { token?: string }).token ?? '';
    res.json(this.tokens.get(token) ?? { active: false });
  }

  /** Stops answering: every request hangs until the server closes. */
  hang(endpoint: Endpoint): void {
    endpoint.handler = () => undefined;
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}

/** RFC 9068 §2.2 claims of a user's token, valid now on `clock`. */
export function claims(as: FakeAuthorizationServer, clock: Clock, extra: JWTPayload = {}): JWTPayload {
  return {
    iss: as.issuer,
    sub: 'user-1',
    aud: AUDIENCE,
    exp: clock.seconds + 300,
    iat: clock.seconds,
    jti: `jti-${Math.random()}`,
    client_id: 'client-1',
    scope: 'books.read books.write',
    ...extra,
  };
}

/** An at+jwt signed with `key` (header overrides allowed, e.g. another typ or kid). */
export function mint(key: KeyPair, payload: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header }).sign(key.privateKey);
}

/** A logger that keeps its lines. */
export function memoryLogger(): OAuthLogger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (message: string, meta?: Record<string, unknown>) => lines.push(`${message} ${JSON.stringify(meta ?? {})}`);
  return { lines, error: keep, warn: keep, info: keep };
}

/** An API protected by resourceServer(): GET /books needs books.read and answers req.oauth; GET /admin needs admin. */
export function protectedApi(options: ResourceServerOptions) {
  const rs = resourceServer(options);
  const app = express();
  app.get('/books', rs.require('books.read'), (req, res) => res.json(req.oauth));
  app.get('/admin', rs.require('admin', 'books.read'), (req, res) => res.json(req.oauth));
  const get = (token?: string, path = '/books') => {
    const r = request(app).get(path);
    return token === undefined ? r : r.set('Authorization', `Bearer ${token}`);
  };
  return { rs, app, get };
}

export const INVALID_TOKEN_CHALLENGE = 'Bearer realm="oauth", error="invalid_token", error_description="Invalid access token"';

/** 401 invalid_token with its RFC 6750 challenge and JSON body. */
export function expectInvalidToken(res: request.Response): void {
  expect(res.status).toBe(401);
  expect(res.headers['www-authenticate']).toBe(INVALID_TOKEN_CHALLENGE);
  expect(res.body).toEqual({ error: 'invalid_token', error_description: 'Invalid access token' });
}

/** 503 temporarily_unavailable with Retry-After and no challenge. */
export function expectUnavailable(res: request.Response): void {
  expect(res.status).toBe(503);
  expect(res.body.error).toBe('temporarily_unavailable');
  expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  expect(res.headers['www-authenticate']).toBeUndefined();
}
