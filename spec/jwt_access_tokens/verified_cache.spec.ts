import { afterAll, afterEach, describe, expect, it, jest } from '@jest/globals';
import { ServerKeys } from '../../lib/keys';
import { authorizationFor, ExpiryDate, VerifiedTokenCache } from '../../lib/verified_tokens';
import { closeAll } from '../support/build_app';
import { testClock } from '../refresh/helpers';
import { bearer, clientCredentials, countQueries, expectInvalidToken, jwtApp } from './support';

afterAll(closeAll);

// Every full verification looks the header's kid up in the key set: one call per signature check.
let lookups: ReturnType<typeof jest.spyOn> | undefined;
let queries: ReturnType<typeof countQueries> | undefined;
afterEach(() => {
  lookups?.mockRestore();
  queries?.restore();
});

describe('jwt_access_tokens › verified-token cache (oauthJwtAccessTokenCacheSize)', () => {
  it('checks the signature of a token once: the same token again is accepted without a signature check or a query', async () => {
    const t = await jwtApp();
    const client = await t.createClient();
    const token = await clientCredentials(t, client);
    lookups = jest.spyOn(ServerKeys.prototype, 'find');
    queries = countQueries();
    const first = await bearer(t, token);
    const second = await bearer(t, token);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(lookups).toHaveBeenCalledTimes(1);
    expect(queries.count()).toBe(0);
  });

  it('with oauthJwtAccessTokenCacheSize 0 checks the signature on every request', async () => {
    const t = await jwtApp({ oauthJwtAccessTokenCacheSize: 0 });
    const client = await t.createClient();
    const token = await clientCredentials(t, client);
    lookups = jest.spyOn(ServerKeys.prototype, 'find');
    expect((await bearer(t, token)).status).toBe(200);
    expect((await bearer(t, token)).status).toBe(200);
    expect(lookups).toHaveBeenCalledTimes(2);
  });

  it('still refuses a remembered token once it expires (exp is checked on every request, with the leeway)', async () => {
    const clock = testClock();
    const t = await jwtApp({ now: clock.now, oauthJwtAccessTokenLeeway: 10 });
    const client = await t.createClient();
    const token = await clientCredentials(t, client);
    expect((await bearer(t, token)).status).toBe(200);
    clock.advance(3600 + 5);
    expect((await bearer(t, token)).status).toBe(200);
    clock.advance(10);
    expectInvalidToken(await bearer(t, token));
  });

  it('still looks the grant up for a remembered token with oauthJwtAccessTokenCheckRevocation: a revoked token fails at once', async () => {
    const t = await jwtApp({ oauthJwtAccessTokenCheckRevocation: true });
    const client = await t.createClient();
    const token = await clientCredentials(t, client);
    expect((await bearer(t, token)).status).toBe(200);
    const revoked = await t.agent.post(t.path('/revoke')).type('form').auth(client.clientId, client.clientSecret).send({ token });
    expect(revoked.status).toBe(200);
    expectInvalidToken(await bearer(t, token));
  });

  it('does not carry a token verified for one audience to a request that expects another (oauthJwtAudience per request)', async () => {
    // The audience a route expects may depend on the request; the token is minted at /token, for audience B.
    const t = await jwtApp({ oauthJwtAudience: (ctx: { req: { path: string } }) => (ctx.req.path.startsWith('/api/books') ? 'https://a.example' : 'https://b.example') });
    const client = await t.createClient();
    const token = await clientCredentials(t, client, 'books.read');
    expect((await bearer(t, token, '/api/me')).status).toBe(200);
    expectInvalidToken(await bearer(t, token, '/api/books'));
  });

  it('answers 403 insufficient_scope for a remembered token that lacks a scope, as for a fresh one (RFC 6750 §3.1)', async () => {
    const t = await jwtApp();
    const client = await t.createClient();
    const token = await clientCredentials(t, client, 'books.write');
    expect((await bearer(t, token)).status).toBe(200); // verified and remembered
    lookups = jest.spyOn(ServerKeys.prototype, 'find');
    const res = await bearer(t, token, '/api/books');
    expect(lookups).not.toHaveBeenCalled();
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="insufficient_scope", error_description="Insufficient scope", scope="books.read"');
    expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'Insufficient scope' });
  });

  it('answers a remembered token in any form RFC 6750 allows, and refuses every malformed form of it as before (400 invalid_request)', async () => {
    const t = await jwtApp();
    const client = await t.createClient();
    const token = await clientCredentials(t, client);
    const first = await bearer(t, token);
    expect(first.status).toBe(200);
    lookups = jest.spyOn(ServerKeys.prototype, 'find');
    for (const header of [`Bearer ${token}`, `bearer ${token}`, `BEARER  ${token}`, `Bearer ${token}  `]) {
      const res = await t.agent.get('/api/me').set('Authorization', header);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.body).toEqual(first.body);
    }
    expect(lookups).not.toHaveBeenCalled(); // all four from the cache
    for (const header of [`Bearer ${token} x`, `Bearer ${token}!`, `Bearer ${token}\u00e9`, `Bearer ${token}==x`, `Bearer ${token.replace('.', '$')}`, `Bearer ${token}${'A'.repeat(9000)} junk`]) {
      const res = await t.agent.get('/api/me').set('Authorization', header);
      expect(res.status).toBe(400);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="invalid_request", error_description="Malformed Authorization header"');
      expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Malformed Authorization header' });
    }
  });

  it('answers a malformed header 400 even when a value read for the remembered-token lookup fails on that request', async () => {
    const t = await jwtApp({
      oauthJwtAccessTokenLeeway: (ctx: { req: { headers: Record<string, string | undefined> } }) => {
        if (ctx.req.headers['x-fail'] !== undefined) throw new Error('leeway unavailable');
        return 10;
      },
    });
    const client = await t.createClient();
    const token = await clientCredentials(t, client);
    expect((await bearer(t, token)).status).toBe(200);
    const malformed = await t.agent.get('/api/me').set('Authorization', `Bearer ${token}!`).set('X-Fail', '1');
    expect(malformed.status).toBe(400);
    expect(malformed.headers['www-authenticate']).toBe('Bearer realm="oauth", error="invalid_request", error_description="Malformed Authorization header"');
    expect(malformed.body).toEqual({ error: 'invalid_request', error_description: 'Malformed Authorization header' });
    // A well-formed one meets the failure on the full path, as it always did: a server error, not an answer.
    const failed = await t.agent.get('/api/me').set('Authorization', `Bearer ${token}`).set('X-Fail', '1');
    expect(failed.status).toBe(500);
    expect(failed.body).toEqual({ error: 'server_error', error_description: 'An unexpected error occurred' });
  });

  it('with fetchAccessToken overridden, reads every token through it: a remembered token elsewhere in the request is not enough', async () => {
    const t = await jwtApp({ fetchAccessToken: (ctx: { req: { headers: Record<string, string | undefined> } }) => ctx.req.headers['x-access-token'] });
    const client = await t.createClient();
    const token = await clientCredentials(t, client);
    expect((await t.agent.get('/api/me').set('X-Access-Token', token)).status).toBe(200);
    const res = await t.agent.get('/api/me').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth"');
    expect(res.body).toEqual({ error: 'invalid_token', error_description: 'An access token is required' });
  });

  it('gives each request its own req.oauth: a route that changes it changes nothing for the next request', async () => {
    const t = await jwtApp({}, {
      setup: (app, auth) => {
        app.get('/api/mutate', auth.requireOauthAuthorization(), (req, res) => {
          req.oauth!.scopes.push('admin');
          req.oauth!.expiresAt.setTime(0);
          res.json({ ok: true });
        });
      },
    });
    const client = await t.createClient();
    const token = await clientCredentials(t, client, 'books.read');
    const before = await bearer(t, token);
    expect((await bearer(t, token, '/api/mutate')).status).toBe(200);
    const after = await bearer(t, token);
    expect(after.body.scopes).toEqual(['books.read']);
    expect(after.body).toEqual(before.body);
  });
});

describe('VerifiedTokenCache', () => {
  const times = { exp: 1_000, iat: 100 };

  it('returns a remembered value for the same token and context only', () => {
    const cache = new VerifiedTokenCache<string>(10);
    cache.set('token-a', 'ctx', times, 'A');
    expect(cache.get('token-a', 'ctx', 500, 0)).toBe('A');
    expect(cache.get('token-a', 'other ctx', 500, 0)).toBeUndefined();
    expect(cache.get('token-b', 'ctx', 500, 0)).toBeUndefined();
  });

  it('hits only for the same token byte for byte: the same signature under another header or other claims is a miss', () => {
    const cache = new VerifiedTokenCache<string>(10);
    cache.set('header.claims.signature', 'ctx', times, 'A');
    expect(cache.get('header.claims.signature', 'ctx', 500, 0)).toBe('A');
    expect(cache.get('header.other-claims.signature', 'ctx', 500, 0)).toBeUndefined();
    expect(cache.get('other-header.claims.signature', 'ctx', 500, 0)).toBeUndefined();
    expect(cache.get('claims.signature', 'ctx', 500, 0)).toBeUndefined();
    expect(cache.get('signature', 'ctx', 500, 0)).toBeUndefined();
    expect(cache.get('header.claims.other-signature', 'ctx', 500, 0)).toBeUndefined();
    expect(cache.get('header.claims.signature.', 'ctx', 500, 0)).toBeUndefined();
    cache.set('opaque-token', 'ctx', times, 'B'); // no dot: the whole token is the hashed part
    expect(cache.get('opaque-token', 'ctx', 500, 0)).toBe('B');
    expect(cache.get('.opaque-token', 'ctx', 500, 0)).toBeUndefined();
  });

  it('re-checks exp, nbf and a future iat against the time of each lookup, within the leeway', () => {
    const cache = new VerifiedTokenCache<string>(10);
    cache.set('t', 'c', { exp: 1_000, iat: 100, nbf: 200 }, 'v');
    expect(cache.get('t', 'c', 150, 0)).toBeUndefined(); // before nbf
    expect(cache.get('t', 'c', 195, 10)).toBe('v'); // within the leeway of nbf
    expect(cache.get('t', 'c', 999, 0)).toBe('v');
    expect(cache.get('t', 'c', 1_005, 10)).toBe('v'); // within the leeway of exp
    expect(cache.get('t', 'c', 1_010, 10)).toBeUndefined(); // exp <= now - leeway: expired
    expect(cache.size).toBe(0); // and forgotten
    cache.set('u', 'c', { exp: 1_000, iat: 300 }, 'w');
    expect(cache.get('u', 'c', 250, 10)).toBeUndefined(); // issued in the future
    expect(cache.get('u', 'c', 295, 10)).toBe('w');
  });

  it('holds at most max entries and drops the least recently used first', () => {
    const cache = new VerifiedTokenCache<string>(2);
    cache.set('a', 'c', times, 'A');
    cache.set('b', 'c', times, 'B');
    expect(cache.get('a', 'c', 500, 0)).toBe('A'); // a is now the most recent
    cache.set('c', 'c', times, 'C');
    expect(cache.size).toBe(2);
    expect(cache.get('b', 'c', 500, 0)).toBeUndefined();
    expect(cache.get('a', 'c', 500, 0)).toBe('A');
    expect(cache.get('c', 'c', 500, 0)).toBe('C');
  });

  it('moves a hit to the newest end only when a quarter of the bound has been written since its last move', () => {
    const cache = new VerifiedTokenCache<string>(8); // a quarter: 2 writes
    for (const k of 'abcdefgh') cache.set(k, 'c', times, k.toUpperCase());
    expect(cache.get('g', 'c', 500, 0)).toBe('G'); // written 1 write ago: stays where it is, before h
    expect(cache.get('b', 'c', 500, 0)).toBe('B'); // written 6 writes ago: moved to the newest end
    for (const k of 'ijklmn') cache.set(k, 'c', times, k.toUpperCase()); // drops a, c, d, e, f, g
    expect(cache.size).toBe(8);
    expect(cache.get('g', 'c', 500, 0)).toBeUndefined();
    expect(cache.get('a', 'c', 500, 0)).toBeUndefined();
    expect(cache.get('b', 'c', 500, 0)).toBe('B');
    expect(cache.get('h', 'c', 500, 0)).toBe('H');
  });

  it('remembers nothing with max 0', () => {
    const cache = new VerifiedTokenCache<string>(0);
    cache.set('a', 'c', times, 'A');
    expect(cache.get('a', 'c', 500, 0)).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});

describe('ExpiryDate and authorizationFor (req.oauth of a remembered token)', () => {
  const time = Date.UTC(2026, 11, 1, 4, 5, 6, 789);

  it('is a Date whose JSON is that of its time, and of its new time once changed', () => {
    const date = new ExpiryDate(time);
    expect(date).toBeInstanceOf(Date);
    expect(date.getTime()).toBe(time);
    expect(JSON.stringify({ at: date })).toBe('{"at":"2026-12-01T04:05:06.789Z"}');
    date.setTime(0);
    expect(JSON.stringify({ at: date })).toBe('{"at":"1970-01-01T00:00:00.000Z"}');
    date.setTime(Number.NaN);
    expect(JSON.stringify({ at: date })).toBe('{"at":null}');
  });

  it('copies: a change to one date is not seen by its copy, or by the next copy of the original', () => {
    const original = new ExpiryDate(time);
    const copy = original.copy();
    copy.setTime(0);
    expect(original.getTime()).toBe(time);
    expect(original.copy().toJSON()).toBe('2026-12-01T04:05:06.789Z');
    expect(copy.toJSON()).toBe('1970-01-01T00:00:00.000Z');
  });

  it('builds each request its own req.oauth from a remembered value', () => {
    const remembered = { accountId: 'u', clientId: 'c', applicationId: 1, scopes: ['a'], grantId: 2, expiresAt: new ExpiryDate(time) };
    const first = authorizationFor(remembered, 'tok');
    expect(JSON.parse(JSON.stringify(first))).toEqual({ accountId: 'u', clientId: 'c', applicationId: 1, scopes: ['a'], grantId: 2, expiresAt: '2026-12-01T04:05:06.789Z', token: 'tok' });
    first.scopes.push('b');
    first.expiresAt.setTime(0);
    const second = authorizationFor(remembered, 'tok');
    expect(second.scopes).toEqual(['a']);
    expect(second.expiresAt.getTime()).toBe(time);
    expect(second).not.toBe(first);
  });
});
