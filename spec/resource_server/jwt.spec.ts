import { SignJWT, generateKeyPair } from 'jose';
import { createHmac } from 'node:crypto';
import { AUDIENCE, Clock, claims, expectInvalidToken, FakeAuthorizationServer, keyPair, memoryLogger, mint, protectedApi, type KeyPair } from './support';

let as: FakeAuthorizationServer;
let key: KeyPair;
let clock: Clock;
beforeAll(async () => {
  key = await keyPair('ES256', 'current');
});
beforeEach(async () => {
  as = await new FakeAuthorizationServer().start();
  as.keys = [key];
  clock = new Clock();
});
afterEach(() => as.close());

function api(options: Record<string, unknown> = {}) {
  return protectedApi({ issuer: as.issuer, audience: AUDIENCE, now: clock.now, logger: memoryLogger(), ...options });
}

/** base64url of JSON, for hand-built (unsigned or forged) JWS parts. */
function b64(x: unknown): string {
  return Buffer.from(JSON.stringify(x)).toString('base64url');
}

describe('resourceServer › JWT access tokens (RFC 9068 §4)', () => {
  it('accepts a valid at+jwt and sets req.oauth as requireOauthAuthorization does', async () => {
    const { get } = api();
    const token = await mint(key, claims(as, clock));
    const res = await get(token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      accountId: 'user-1',
      clientId: 'client-1',
      applicationId: null,
      scopes: ['books.read', 'books.write'],
      grantId: null,
      expiresAt: new Date((clock.seconds + 300) * 1000).toISOString(),
      token,
    });
  });

  it('gives a client-credentials token (sub = client_id, RFC 9068 §2.2) a null accountId', async () => {
    const { get } = api();
    const res = await get(await mint(key, claims(as, clock, { sub: 'client-1' })));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accountId: null, clientId: 'client-1' });
  });

  it('accepts any one of several audiences, in a token with several', async () => {
    const { get } = api({ audience: ['https://other.example', AUDIENCE] });
    expect((await get(await mint(key, claims(as, clock, { aud: ['https://x.example', AUDIENCE] })))).status).toBe(200);
  });

  it('accepts typ application/at+jwt (RFC 9068 §2.1) and RSA keys without alg', async () => {
    const rsa = await keyPair('PS256', 'rsa');
    as.keys = [key, { ...rsa, publicJwk: { ...rsa.publicJwk, alg: undefined } }];
    const { get } = api();
    expect((await get(await mint(key, claims(as, clock), { typ: 'application/at+jwt' })))).toHaveProperty('status', 200);
    expect((await get(await mint(rsa, claims(as, clock))))).toHaveProperty('status', 200);
  });

  it('answers 403 insufficient_scope naming the required scopes', async () => {
    const { get } = api();
    const res = await get(await mint(key, claims(as, clock)), '/admin');
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="insufficient_scope", error_description="Insufficient scope", scope="admin books.read"');
    expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'Insufficient scope' });
  });

  it('answers a request without a token with a bare challenge, and a malformed header with 400', async () => {
    const { get, app } = api();
    const none = await get();
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="oauth"');
    const request = (await import('supertest')).default;
    const bad = await request(app).get('/books').set('Authorization', 'Bearer a b');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_request');
  });

  it('reads a huge malformed header in one pass: "Bearer", 150 000 spaces, two words is 400 at once, not seconds of backtracking', async () => {
    const { app } = api();
    const request = (await import('supertest')).default;
    const { createServer } = await import('node:http');
    // A host may raise Node's 16 KB header limit; the header is read in time linear in its length
    // (a quadratic reading took about 7 s here; a linear one, milliseconds).
    const server = createServer({ maxHeaderSize: 2 ** 20 }, app);
    try {
      const started = Date.now();
      const res = await request(server).get('/books').set('Authorization', `Bearer${' '.repeat(150_000)}a b`);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(res.status).toBe(400);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="invalid_request", error_description="Malformed Authorization header"');
      expect(res.body.error).toBe('invalid_request');
    } finally {
      server.close();
    }
  });

  describe('every bad token is 401 invalid_token, never a 500', () => {
    const cases: [string, string, () => Promise<string>][] = [
      ['forged (signed by another key with the same kid)', 'token_signature_invalid', async () => mint(await keyPair('ES256', 'current'), claims(as, clock))],
      ['tampered payload', 'token_signature_invalid', async () => {
        const [h, , s] = (await mint(key, claims(as, clock))).split('.');
        return `${h}.${b64(claims(as, clock, { scope: 'admin books.read' }))}.${s}`;
      }],
      ['expired', 'expired_token', () => mint(key, claims(as, clock, { exp: clock.seconds - 60 }))],
      ['not yet valid (nbf)', 'token_claim_mismatch', () => mint(key, claims(as, clock, { nbf: clock.seconds + 60 }))],
      ['issued in the future (iat)', 'token_claim_mismatch', () => mint(key, claims(as, clock, { iat: clock.seconds + 60 }))],
      ['alg none', 'token_signature_invalid', async () => `${b64({ alg: 'none', typ: 'at+jwt', kid: 'current' })}.${b64(claims(as, clock))}.`],
      ['HS256 signed with the public key', 'token_signature_invalid', async () => {
        const input = `${b64({ alg: 'HS256', typ: 'at+jwt', kid: 'current' })}.${b64(claims(as, clock))}`;
        const mac = createHmac('sha256', JSON.stringify(key.publicJwk)).update(input).digest('base64url');
        return `${input}.${mac}`;
      }],
      ['wrong typ (JWT)', 'token_claim_mismatch', () => mint(key, claims(as, clock), { typ: 'JWT' })],
      ['no typ', 'token_claim_mismatch', async () => new SignJWT(claims(as, clock)).setProtectedHeader({ alg: 'ES256', kid: 'current' }).sign(key.privateKey)],
      ['wrong iss', 'token_claim_mismatch', () => mint(key, claims(as, clock, { iss: 'https://evil.example' }))],
      ['wrong aud', 'token_claim_mismatch', () => mint(key, claims(as, clock, { aud: 'https://other.example' }))],
      ['no client_id', 'malformed_token', () => mint(key, { ...claims(as, clock), client_id: undefined })],
      ['no sub', 'malformed_token', () => mint(key, { ...claims(as, clock), sub: undefined })],
      ['no exp', 'malformed_token', () => mint(key, { ...claims(as, clock), exp: undefined })],
      ['a scope that is not a string', 'malformed_token', () => mint(key, claims(as, clock, { scope: ['books.read'] }))],
      ['unknown kid', 'unknown_signing_key', () => mint({ ...key, kid: 'nope' }, claims(as, clock))],
      ['oversized', 'malformed_token', async () => mint(key, claims(as, clock, { pad: 'x'.repeat(9000) }))],
      ['malformed (three parts of garbage)', 'malformed_token', async () => 'abc.def.ghi'],
      ['a valid token padded (RFC 7515 §2: unpadded base64url)', 'malformed_token', async () => `${await mint(key, claims(as, clock))}=`],
      ['a valid token with a "~" inside its signature', 'malformed_token', async () => {
        const [h, p, s] = (await mint(key, claims(as, clock))).split('.') as [string, string, string];
        return `${h}.${p}.${s.slice(0, 5)}~${s.slice(5)}`;
      }],
      ['a payload that is not JSON (the signature is checked first)', 'token_signature_invalid', async () => `${b64({ alg: 'ES256', typ: 'at+jwt', kid: 'current' })}.${Buffer.from('not json').toString('base64url')}.abc`],
      ['opaque, without introspection credentials', 'unknown_token', async () => 'an-opaque-token'],
    ];
    it.each(cases)('%s (%s)', async (_name, reason, make) => {
      const logger = memoryLogger();
      const { get } = api({ logger });
      const token = await make();
      const res = await get(token);
      expectInvalidToken(res);
      expect(logger.lines).toEqual([expect.stringContaining(`invalid_token (${reason})`)]);
      // The token never reaches the logs.
      expect(logger.lines.join('\n')).not.toContain(token);
    });
  });

  it('refuses an HMAC key in the JWK Set (never HS256, whatever the set holds)', async () => {
    const secret = Buffer.from('0123456789abcdef0123456789abcdef');
    as.keys = [key, { alg: 'HS256', kid: 'hmac', privateKey: undefined as never, publicJwk: { kty: 'oct', k: secret.toString('base64url'), kid: 'hmac', alg: 'HS256' } }];
    const { get } = api();
    const token = await new SignJWT(claims(as, clock)).setProtectedHeader({ alg: 'HS256', kid: 'hmac', typ: 'at+jwt' }).sign(secret);
    expectInvalidToken(await get(token));
  });

  it('refuses an RS256 token when the set only has EC keys (alg pinned to the keys)', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const { get } = api();
    expectInvalidToken(await get(await new SignJWT(claims(as, clock)).setProtectedHeader({ alg: 'RS256', kid: 'current', typ: 'at+jwt' }).sign(privateKey)));
  });
});
