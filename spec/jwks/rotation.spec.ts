import { afterAll, describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type KeyLike } from 'jose';
import { closeAll } from '../support/build_app';
import { jwksApp, newKey } from './support';

afterAll(closeAll);

describe('jwks › rotation', () => {
  it('add the new key first, keep the old one published for the overlap, then drop it', async () => {
    const [oldKey, newer] = await Promise.all([newKey('ES256'), newKey('ES256')]);

    // Before: the old key signs.
    const before = await jwksApp({ oauthJwtKeys: [{ key: oldKey.privateJwk, alg: 'ES256', kid: 'old' }] });
    const oldToken = await (await before.keys()).sign({ sub: 'alice' }, { typ: 'at+jwt' });

    // Overlap: the new key signs, the old one (moved as it was) is only published.
    const overlap = await jwksApp({
      oauthJwtKeys: [{ key: newer.privateJwk, alg: 'ES256', kid: 'new' }],
      oauthJwtPublicKeysToPublish: [{ key: oldKey.privateJwk, alg: 'ES256', kid: 'old' }],
    });
    const keys = await overlap.keys();
    expect(keys.signing.kid).toBe('new');
    const retired = keys.find('old', 'ES256')!;
    expect(retired.privateKey).toBeUndefined();
    await expect(jwtVerify(oldToken, retired.publicKey as KeyLike)).resolves.toMatchObject({ payload: { sub: 'alice' } });
    const published = JSON.parse((await overlap.agent.get(overlap.path('/jwks'))).text) as JSONWebKeySet;
    expect(published.keys.map((k) => k.kid)).toEqual(['new', 'old']);
    expect(published.keys[1]).not.toHaveProperty('d');
    await expect(jwtVerify(oldToken, createLocalJWKSet(published))).resolves.toBeDefined();
    const newToken = await keys.sign({ sub: 'bob' }, { typ: 'at+jwt' });
    await expect(jwtVerify(newToken, createLocalJWKSet(published))).resolves.toBeDefined();

    // After: the old key is gone; its tokens no longer find a key.
    const after = await jwksApp({ oauthJwtKeys: [{ key: newer.privateJwk, alg: 'ES256', kid: 'new' }] });
    const afterKeys = await after.keys();
    expect(afterKeys.find('old', 'ES256')).toBeUndefined();
    expect(afterKeys.find('new', 'ES256')).toBeDefined();
    const final = JSON.parse((await after.agent.get(after.path('/jwks'))).text) as JSONWebKeySet;
    expect(final.keys.map((k) => k.kid)).toEqual(['new']);
    await expect(jwtVerify(oldToken, createLocalJWKSet(final))).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });

  it('a retired key may be given by its public JWK or PEM, and keeps its thumbprint kid', async () => {
    const oldKey = await newKey('RS256');
    const newer = await newKey('ES256');
    const before = await jwksApp({ oauthJwtKeys: [{ key: oldKey.privatePem, alg: 'RS256' }] });
    const beforeKeys = await before.keys();
    const token = await beforeKeys.sign({ sub: 'alice' }, { typ: 'at+jwt' });
    for (const retiredKey of [oldKey.publicJwk, oldKey.publicPem]) {
      const overlap = await jwksApp({ oauthJwtKeys: [{ key: newer.privateJwk, alg: 'ES256' }], oauthJwtPublicKeysToPublish: [{ key: retiredKey, alg: 'RS256' }] });
      const found = (await overlap.keys()).find(beforeKeys.signing.kid, 'RS256')!;
      expect(found.publicJwk).toEqual(beforeKeys.signing.publicJwk);
      await expect(jwtVerify(token, found.publicKey as KeyLike)).resolves.toBeDefined();
    }
  });
});
