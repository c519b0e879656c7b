import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { calculateJwkThumbprint } from 'jose';
import { buildApp, closeAll, MOUNT, type TestApp } from '../support/build_app';
import { ISSUER, jwksApp, newKey, PRIVATE_MEMBERS, type TestKey } from './support';

afterAll(closeAll);

describe('jwks › GET /jwks', () => {
  let es: TestKey, rsa: TestKey, ed: TestKey, retired: TestKey;
  let t: TestApp;
  beforeAll(async () => {
    [es, rsa, ed, retired] = await Promise.all([newKey('ES256'), newKey('RS256'), newKey('EdDSA'), newKey('ES256')]);
    t = await buildApp({
      issuer: ISSUER,
      enable: ['jwks'],
      oauthJwtKeys: [
        { key: es.privateJwk, alg: 'ES256', kid: 'es-1' },
        { key: rsa.privatePem, alg: 'RS256' },
        { key: ed.privateJwk, alg: 'EdDSA' },
      ],
      oauthJwtPublicKeysToPublish: [{ key: retired.publicJwk, alg: 'ES256', kid: 'es-0' }],
    });
  });

  it('publishes every key, the retired ones too, with public members only, kid, alg and use (RFC 7517 §5)', async () => {
    const res = await t.agent.get(t.path('/jwks'));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/jwk-set+json; charset=utf-8');
    const { keys } = JSON.parse(res.text) as { keys: Record<string, unknown>[] };
    expect(keys).toEqual([
      { kty: 'EC', crv: 'P-256', x: es.publicJwk.x, y: es.publicJwk.y, kid: 'es-1', alg: 'ES256', use: 'sig' },
      { kty: 'RSA', n: rsa.publicJwk.n, e: rsa.publicJwk.e, kid: await calculateJwkThumbprint(rsa.publicJwk), alg: 'RS256', use: 'sig' },
      { kty: 'OKP', crv: 'Ed25519', x: ed.publicJwk.x, kid: await calculateJwkThumbprint(ed.publicJwk), alg: 'EdDSA', use: 'sig' },
      { kty: 'EC', crv: 'P-256', x: retired.publicJwk.x, y: retired.publicJwk.y, kid: 'es-0', alg: 'ES256', use: 'sig' },
    ]);
    for (const key of keys) for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
  });

  it('is cacheable by anyone for oauthJwtKeysCacheExpiresIn, with a strong ETag that revalidates to 304 (RFC 9110 §13.1.2)', async () => {
    const first = await t.agent.get(t.path('/jwks'));
    expect(first.headers['cache-control']).toBe('public, max-age=600');
    const etag = first.headers.etag!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{43}"$/);
    const again = await t.agent.get(t.path('/jwks'));
    expect(again.headers.etag).toBe(etag);

    const revalidated = await t.agent.get(t.path('/jwks')).set('If-None-Match', etag);
    expect(revalidated.status).toBe(304);
    expect(revalidated.text).toBe('');
    expect(revalidated.headers.etag).toBe(etag);
    expect(revalidated.headers['cache-control']).toBe('public, max-age=600');
    // If-None-Match compares weakly: W/"…" matches the same tag; another tag gets the body.
    expect((await t.agent.get(t.path('/jwks')).set('If-None-Match', `"other", W/${etag}`)).status).toBe(304);
    expect((await t.agent.get(t.path('/jwks')).set('If-None-Match', '"other"')).status).toBe(200);
  });

  it('takes the cache lifetime from oauthJwtKeysCacheExpiresIn, and the ETag follows the keys', async () => {
    const other = await buildApp({ issuer: ISSUER, enable: ['jwks'], oauthJwtKeys: [{ key: es.privateJwk, alg: 'ES256', kid: 'es-1' }], oauthJwtKeysCacheExpiresIn: 60 });
    const res = await other.agent.get(other.path('/jwks'));
    expect(res.headers['cache-control']).toBe('public, max-age=60');
    const full = await t.agent.get(t.path('/jwks'));
    expect(res.headers.etag).not.toBe(full.headers.etag);
  });

  it('answers HEAD with the headers, ignores the query string, and refuses POST with 405', async () => {
    const head = await t.agent.head(t.path('/jwks'));
    expect(head.status).toBe(200);
    expect(head.headers['cache-control']).toBe('public, max-age=600');
    expect((await t.agent.get(t.path('/jwks?cb=1&cb=2'))).status).toBe(200);
    const post = await t.agent.post(t.path('/jwks'));
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('can be moved with jwksRoute, and jwks_uri follows it and the mount path (RFC 8414 §2)', async () => {
    const meta = await t.agent.get(t.path('/.well-known/oauth-authorization-server'));
    expect(meta.body.jwks_uri).toBe(`${ISSUER}/jwks`);

    const key = await newKey('ES256');
    const derived = await buildApp({ enable: ['jwks'], oauthJwtKeys: [{ key: key.privateJwk, alg: 'ES256' }], jwksRoute: 'keys.json' });
    const doc = await derived.agent.get(derived.path('/.well-known/oauth-authorization-server')).set('Host', 'auth.example');
    expect(doc.body.jwks_uri).toBe(`http://auth.example${MOUNT}/keys.json`);
    expect((await derived.agent.get(derived.path('/keys.json'))).status).toBe(200);
    expect((await derived.agent.get(derived.path('/jwks'))).status).toBe(404);
  });

  it('leaves jwks_uri out, and /jwks unrouted, when the feature is not enabled', async () => {
    const plain = await buildApp({ issuer: ISSUER });
    const meta = await plain.agent.get(plain.path('/.well-known/oauth-authorization-server'));
    expect(meta.body).not.toHaveProperty('jwks_uri');
    expect((await plain.agent.get(plain.path('/jwks'))).status).toBe(404);
  });
});

describe('jwks › kid', () => {
  it.each(['ES256', 'RS256', 'PS256', 'EdDSA'])('defaults to the RFC 7638 thumbprint of the %s key, from a JWK or a PEM', async (alg) => {
    const key = await newKey(alg);
    const t = await jwksApp({ oauthJwtKeys: [{ key: key.privateJwk, alg }, { key: key.privatePem, alg, kid: 'pem' }] });
    const keys = await t.keys();
    const thumbprint = await calculateJwkThumbprint(key.publicJwk);
    expect(keys.signing.kid).toBe(thumbprint);
    expect(keys.published[1]!.kid).toBe('pem');
    expect(keys.published[1]!.publicJwk).toEqual({ ...keys.published[0]!.publicJwk, kid: 'pem' });
  });

  it("takes the entry's kid, else the JWK's own", async () => {
    const [a, b] = await Promise.all([newKey('ES256'), newKey('ES256')]);
    const t = await jwksApp({ oauthJwtKeys: [{ key: { ...a.privateJwk, kid: 'from-jwk' }, alg: 'ES256' }, { key: { ...b.privateJwk, kid: 'ignored' }, alg: 'ES256', kid: 'from-entry' }] });
    expect((await t.keys()).published.map((k) => k.kid)).toEqual(['from-jwk', 'from-entry']);
  });
});
