import { jest } from '@jest/globals';
import { VerifiedTokenCache } from '../../lib/verified_tokens';
import { AUDIENCE, Clock, claims, expectInvalidToken, FakeAuthorizationServer, keyPair, memoryLogger, mint, protectedApi, type KeyPair } from './support';

let as: FakeAuthorizationServer;
let key1: KeyPair;
let key2: KeyPair;
let clock: Clock;
let verifications: ReturnType<typeof jest.spyOn> | undefined;
beforeAll(async () => {
  [key1, key2] = await Promise.all([keyPair('ES256', 'one'), keyPair('ES256', 'two')]);
});
beforeEach(async () => {
  as = await new FakeAuthorizationServer().start();
  as.keys = [key1];
  clock = new Clock();
  // Each full verification that succeeds is remembered: one `set` per signature checked.
  verifications = jest.spyOn(VerifiedTokenCache.prototype, 'set');
});
afterEach(async () => {
  verifications?.mockRestore();
  await as.close();
});

function api(options: Record<string, unknown> = {}) {
  return protectedApi({ issuer: as.issuer, audience: AUDIENCE, now: clock.now, logger: memoryLogger(), minCacheSeconds: 0, ...options });
}

describe('resourceServer › verified-token cache (verifiedTokenCacheSize)', () => {
  it('checks the signature of a token once while the key set is current, and each request gets its own req.oauth', async () => {
    const { get } = api();
    const token = await mint(key1, claims(as, clock));
    const first = await get(token);
    const second = await get(token);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(verifications).toHaveBeenCalledTimes(1);
  });

  it('with verifiedTokenCacheSize 0 checks the signature on every request', async () => {
    const { get } = api({ verifiedTokenCacheSize: 0 });
    const token = await mint(key1, claims(as, clock));
    expect((await get(token)).status).toBe(200);
    expect((await get(token)).status).toBe(200);
    expect(VerifiedTokenCache.prototype.set).toHaveBeenCalledTimes(2);
  });

  it('still refuses a remembered token once it expires', async () => {
    const { get } = api({ leewaySeconds: 0 });
    const token = await mint(key1, claims(as, clock, { exp: clock.seconds + 60 }));
    expect((await get(token)).status).toBe(200);
    clock.advance(61);
    expectInvalidToken(await get(token));
  });

  it('refuses a remembered token once the key set is refetched without its key (rotation past the overlap)', async () => {
    as.jwks.handler = (_req, res) => res.set('cache-control', 'max-age=60').json({ keys: as.keys.map((k) => k.publicJwk) });
    const { get } = api();
    const token = await mint(key1, claims(as, clock, { exp: clock.seconds + 3600 }));
    expect((await get(token)).status).toBe(200);
    as.keys = [key2];
    clock.advance(61);
    expectInvalidToken(await get(token));
    expect(as.jwks.hits).toBeGreaterThanOrEqual(2);
  });
});
