import type { Response } from 'express';
import { SignJWT } from 'jose';
import { AUDIENCE, Clock, claims, expectInvalidToken, expectUnavailable, FakeAuthorizationServer, keyPair, memoryLogger, mint, protectedApi, type KeyPair } from './support';

let as: FakeAuthorizationServer;
let key1: KeyPair;
let key2: KeyPair;
let clock: Clock;
beforeAll(async () => {
  [key1, key2] = await Promise.all([keyPair('ES256', 'one'), keyPair('ES256', 'two')]);
});
beforeEach(async () => {
  as = await new FakeAuthorizationServer().start();
  as.keys = [key1];
  clock = new Clock();
});
afterEach(() => as.close());

function api(options: Record<string, unknown> = {}) {
  return protectedApi({ issuer: as.issuer, audience: AUDIENCE, now: clock.now, logger: memoryLogger(), minCacheSeconds: 0, ...options });
}

function serveKeys(headers: Record<string, string>): void {
  as.jwks.handler = (_req, res) => res.set(headers).json({ keys: as.keys.map((k) => k.publicJwk) });
}

describe('resourceServer › keys and metadata caching', () => {
  it('fetches metadata and keys once, then uses them for their Cache-Control max-age', async () => {
    serveKeys({ 'cache-control': 'max-age=120' });
    as.metadata.handler = (_req, res) => res.set('cache-control', 'max-age=600').json(as.metadataDocument());
    const { get } = api();
    for (let i = 0; i < 3; i++) expect((await get(await mint(key1, claims(as, clock)))).status).toBe(200);
    expect([as.metadata.hits, as.jwks.hits]).toEqual([1, 1]);
    clock.advance(121);
    expect((await get(await mint(key1, claims(as, clock)))).status).toBe(200);
    expect([as.metadata.hits, as.jwks.hits]).toEqual([1, 2]);
    clock.advance(500);
    expect((await get(await mint(key1, claims(as, clock)))).status).toBe(200);
    expect([as.metadata.hits, as.jwks.hits]).toEqual([2, 3]);
  });

  it('fetches once for many concurrent first requests', async () => {
    const { get } = api();
    const token = await mint(key1, claims(as, clock));
    const answers = await Promise.all(Array.from({ length: 10 }, () => get(token)));
    expect(answers.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect([as.metadata.hits, as.jwks.hits]).toEqual([1, 1]);
  });

  it('refetches the keys for an unknown kid (rotation), at most once per keysRefetchIntervalSeconds', async () => {
    serveKeys({ 'cache-control': 'max-age=3600' });
    const { get } = api({ keysRefetchIntervalSeconds: 60 });
    expect((await get(await mint(key1, claims(as, clock)))).status).toBe(200);
    expect(as.jwks.hits).toBe(1);

    // The server rotates to key two within the interval: a bogus kid or the new one cannot refetch yet.
    as.keys = [key1, key2];
    for (let i = 0; i < 5; i++) expectInvalidToken(await get(await mint({ ...key2, kid: `bogus-${i}` }, claims(as, clock))));
    expectInvalidToken(await get(await mint(key2, claims(as, clock))));
    expect(as.jwks.hits).toBe(1);

    clock.advance(61);
    expect((await get(await mint(key2, claims(as, clock)))).status).toBe(200);
    expect(as.jwks.hits).toBe(2);
    // Bogus kids right after: no new fetch.
    for (let i = 0; i < 5; i++) expectInvalidToken(await get(await mint({ ...key2, kid: `bogus-${i}` }, claims(as, clock))));
    expect(as.jwks.hits).toBe(2);
  });

  it('refetches the keys for a token of an algorithm the cached set has no key for (rotation ES256 → RS256), at most once per interval; never for HS256', async () => {
    const rsa = await keyPair('RS256', 'rsa-3');
    serveKeys({ 'cache-control': 'max-age=3600' });
    const logger = memoryLogger();
    const { get } = api({ keysRefetchIntervalSeconds: 60, logger });
    expect((await get(await mint(key1, claims(as, clock)))).status).toBe(200);
    expect(as.jwks.hits).toBe(1);

    as.keys = [key1, rsa];
    // Within the interval: refused, no fetch.
    expectInvalidToken(await get(await mint(rsa, claims(as, clock))));
    expect(logger.lines).toEqual([expect.stringContaining('invalid_token (unknown_signing_key)')]);
    expect(as.jwks.hits).toBe(1);
    // An HMAC token never makes the set be fetched again, whenever it comes.
    clock.advance(61);
    const hs = await new SignJWT(claims(as, clock)).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: 'rsa-3' }).sign(new TextEncoder().encode('a shared secret of 32 bytes!!!!!'));
    expectInvalidToken(await get(hs));
    expect(logger.lines[1]).toContain('invalid_token (token_signature_invalid)');
    expect(as.jwks.hits).toBe(1);
    // The RS256 token, after the interval: one refetch, then accepted.
    const res = await get(await mint(rsa, claims(as, clock)));
    expect(res.status).toBe(200);
    expect(res.body.clientId).toBe('client-1');
    expect(as.jwks.hits).toBe(2);
  });

  it('verifies a token without kid against each key of its type (RFC 7515: kid is optional), during a rotation overlap', async () => {
    as.keys = [key1, key2];
    const logger = memoryLogger();
    const { get } = api({ logger });
    for (const k of [key1, key2]) {
      const token = await new SignJWT(claims(as, clock)).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' }).sign(k.privateKey);
      const res = await get(token);
      expect(res.status).toBe(200);
      expect(res.body.clientId).toBe('client-1');
    }
    // Signed by neither: still invalid_token, a bad signature, and no fetch (a kid-less token names no key to look for).
    const other = await keyPair('ES256', 'other');
    expectInvalidToken(await get(await new SignJWT(claims(as, clock)).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' }).sign(other.privateKey)));
    expect(logger.lines).toEqual([expect.stringContaining('invalid_token (token_signature_invalid)')]);
    expect(as.jwks.hits).toBe(1);
  });

  it('checks ready(): metadata and keys are fetched before the first request', async () => {
    const { rs, get } = api();
    await rs.ready();
    expect([as.metadata.hits, as.jwks.hits]).toEqual([1, 1]);
    expect((await get(await mint(key1, claims(as, clock)))).status).toBe(200);
    expect([as.metadata.hits, as.jwks.hits]).toEqual([1, 1]);
  });
});

describe('resourceServer › an authorization server that is down or slow', () => {
  it('answers 503 temporarily_unavailable with Retry-After when the JWKS endpoint fails, remembers the failure, and recovers', async () => {
    as.jwks.handler = (_req, res) => res.status(500).end();
    const logger = memoryLogger();
    const { get } = api({ logger, failureBackoffSeconds: 5 });
    const token = await mint(key1, claims(as, clock));
    expectUnavailable(await get(token));
    expectUnavailable(await get(token));
    expect(as.jwks.hits).toBe(1); // the second request did not wait on the broken endpoint
    expect(logger.lines[0]).toContain('temporarily_unavailable (jwks_unavailable)');
    expect(logger.lines.join('\n')).not.toContain(token);

    as.jwks.handler = (_req, res) => res.json({ keys: as.keys.map((k) => k.publicJwk) });
    clock.advance(6);
    expect((await get(token)).status).toBe(200);
  });

  it('answers 503 when the authorization server is not listening at all', async () => {
    const { get } = api();
    const token = await mint(key1, claims(as, clock));
    await as.close();
    expectUnavailable(await get(token));
  });

  it('answers a request within timeoutMs when the JWKS endpoint hangs', async () => {
    as.hang(as.jwks);
    const { get } = api({ timeoutMs: 300 });
    expectUnavailable(await get(await mint(key1, claims(as, clock))));
  }, 20_000);

  it('answers a request within timeoutMs when the metadata endpoint hangs', async () => {
    as.hang(as.metadata);
    const { get } = api({ timeoutMs: 300 });
    expectUnavailable(await get(await mint(key1, claims(as, clock))));
  }, 20_000);

  it('answers within timeoutMs in all when metadata and keys are each slower than half of it; the fetch goes on for the next request', async () => {
    const slow = (next: (res: Response) => void) => (_req: unknown, res: Response) => setTimeout(() => next(res), 1000);
    as.metadata.handler = slow((res) => res.json(as.metadataDocument()));
    as.jwks.handler = slow((res) => res.json({ keys: as.keys.map((k) => k.publicJwk) }));
    const { rs, get } = api({ timeoutMs: 1500 });
    const token = await mint(key1, claims(as, clock));
    expectUnavailable(await get(token));
    await rs.ready(); // joins the fetches still in flight
    expect((await get(token)).status).toBe(200);
    expect([as.metadata.hits, as.jwks.hits]).toEqual([1, 1]);
  }, 20_000);

  it('answers 503 for a JWK Set that is not JSON, or too large', async () => {
    as.jwks.handler = (_req, res) => res.type('json').send('{not json');
    expectUnavailable(await api().get(await mint(key1, claims(as, clock))));
    as.jwks.handler = (_req, res) => res.json({ keys: as.keys.map((k) => k.publicJwk), pad: 'x'.repeat(2000) });
    expectUnavailable(await api({ maxResponseBytes: 1000 }).get(await mint(key1, claims(as, clock))));
  });
});
