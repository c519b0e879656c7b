/** Shared fixtures of the jwt_bearer specs: keys, assertions, a movable clock, a JWKS server. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { LoopbackServer } from '../support/loopback_server';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type KeyLike } from 'jose';

export const ISSUER = 'https://as.example';
export const TOKEN_URL = `${ISSUER}/token`;
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** A 32-byte AES-256-GCM key, hex. */
export const ENCRYPTION_KEY = 'a1'.repeat(32);

export const INVALID_CLIENT = { error: 'invalid_client', error_description: 'Invalid client' };
export const INVALID_GRANT = { error: 'invalid_grant', error_description: 'Invalid grant' };

/** A clock the app reads through the `now` method override. */
export class Clock {
  ms = Date.now();
  readonly now = (): Date => new Date(this.ms);
  get seconds(): number {
    return Math.floor(this.ms / 1000);
  }
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

export interface KeyPair {
  alg: string;
  kid: string;
  privateKey: KeyLike;
  publicKey: KeyLike;
  publicJwk: JWK;
}

export async function keyPair(alg: string, kid = `k-${randomBytes(4).toString('hex')}`, extra: Record<string, unknown> = {}): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...extra });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, publicJwk };
}

/** The claims of a valid assertion at `clock`: iss = sub = `issuer` unless overridden. */
export function claims(clock: Clock, issuer: string, overrides: Record<string, unknown> = {}): JWTPayload {
  return { iss: issuer, sub: issuer, aud: TOKEN_URL, jti: randomBytes(12).toString('base64url'), iat: clock.seconds, exp: clock.seconds + 60, ...overrides };
}

/** Signs claims (absent `undefined`-valued ones) with a key; header fields can be replaced. */
export async function sign(payload: JWTPayload, key: KeyLike | Uint8Array, header: Record<string, unknown>): Promise<string> {
  const clean = Object.fromEntries(Object.entries(payload).filter(([, v]) => v !== undefined));
  return new SignJWT(clean).setProtectedHeader(header as { alg: string }).sign(key);
}

/** An assertion signed with a key pair (its alg and kid in the header). */
export function signWith(k: KeyPair, payload: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return sign(payload, k.privateKey, { alg: k.alg, kid: k.kid, ...header });
}

/** An assertion signed with HMAC over a secret. */
export function signHmac(secret: string, payload: JWTPayload, alg = 'HS256', header: Record<string, unknown> = {}): Promise<string> {
  return sign(payload, new TextEncoder().encode(secret), { alg, ...header });
}

/** An unsecured JWT (`alg: none`, RFC 7519 §6). */
export function unsigned(payload: JWTPayload): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none' })}.${b64(payload)}.`;
}

/** The form body of a client-authenticated request. */
export function clientAssertionForm(assertion: string, extra: Record<string, string> = {}): Record<string, string> {
  return { client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion, ...extra };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A loopback HTTP server answering the JWKS URI with whatever the spec says, counting requests. */
export class JwksServer {
  hits = 0;
  handler: Handler = (_req, res) => res.end('{}');
  private server?: LoopbackServer;
  origin = '';

  async start(): Promise<this> {
    this.server = new LoopbackServer(
      createServer((req, res) => {
        this.hits++;
        this.handler(req, res);
      }),
    );
    this.origin = await this.server.listen();
    return this;
  }

  get uri(): string {
    return `${this.origin}/jwks`;
  }

  /** Serves a key set with the given headers. */
  serve(keys: JWK[], headers: Record<string, string> = {}): void {
    this.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/jwk-set+json', ...headers });
      res.end(JSON.stringify({ keys }));
    };
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}
