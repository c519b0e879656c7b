import { afterAll, describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet, type KeyLike } from 'jose';
import { closeAll } from '../support/build_app';
import { jwksApp, newKey } from './support';

afterAll(closeAll);

describe('jwks › signing with serverKeys()', () => {
  it.each([
    ['ES256', {}],
    ['RS256', {}],
    ['PS256', {}],
    ['EdDSA', {}],
    ['EdDSA', { crv: 'Ed448' }],
  ])('a %s key %j signs tokens that jwtVerify accepts with the published JWK Set', async (alg, options) => {
    const key = await newKey(alg, options);
    const t = await jwksApp({ oauthJwtKeys: [{ key: key.privatePem, alg }] });
    const keys = await t.keys();
    const token = await keys.sign({ sub: 'alice', iss: 'https://auth.example.com' }, { typ: 'at+jwt' });

    const header = decodeProtectedHeader(token);
    expect(header).toEqual({ alg, kid: keys.signing.kid, typ: 'at+jwt' });
    const jwks = JSON.parse((await t.agent.get(t.path('/jwks'))).text) as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { typ: 'at+jwt', algorithms: [alg] });
    expect(payload).toEqual({ sub: 'alice', iss: 'https://auth.example.com' });
    expect(protectedHeader.kid).toBe(keys.signing.kid);
    // What a module of this server verifies with: the published key by kid and alg, its cached key object.
    const found = keys.find(header.kid, alg)!;
    expect(found).toBe(keys.signing);
    await expect(jwtVerify(token, found.publicKey as KeyLike)).resolves.toBeDefined();
  });

  it('signs with the first key of oauthJwtKeys and publishes the others', async () => {
    const [first, second] = await Promise.all([newKey('ES256'), newKey('RS256')]);
    const t = await jwksApp({ oauthJwtKeys: [{ key: first.privateJwk, alg: 'ES256', kid: 'first' }, { key: second.privateJwk, alg: 'RS256', kid: 'second' }] });
    const keys = await t.keys();
    expect(keys.signing.kid).toBe('first');
    expect(decodeProtectedHeader(await keys.sign({}, { typ: 'JWT' })).kid).toBe('first');
    expect(keys.published.map((k) => [k.kid, k.alg, Boolean(k.privateKey)])).toEqual([
      ['first', 'ES256', true],
      ['second', 'RS256', true],
    ]);
  });

  it('imports the keys once per instance: every request gets the same key objects', async () => {
    const key = await newKey('ES256');
    const t = await jwksApp({ oauthJwtKeys: [{ key: key.privateJwk, alg: 'ES256' }] });
    const a = await t.keys();
    const b = await t.keys();
    expect(b).toBe(a);
    expect(b.signing.privateKey).toBe(a.signing.privateKey);
    const other = await jwksApp({ oauthJwtKeys: [{ key: key.privateJwk, alg: 'ES256' }] });
    expect(await other.keys()).not.toBe(a);
  });

  it('find() wants the kid and the alg of a published key', async () => {
    const [es, rsa] = await Promise.all([newKey('ES256'), newKey('RS256')]);
    const t = await jwksApp({ oauthJwtKeys: [{ key: es.privateJwk, alg: 'ES256', kid: 'es' }, { key: rsa.privateJwk, alg: 'RS256', kid: 'rsa' }] });
    const keys = await t.keys();
    expect(keys.find('es', 'ES256')?.kid).toBe('es');
    expect(keys.find('es', 'RS256')).toBeUndefined();
    expect(keys.find('es', 'HS256')).toBeUndefined();
    expect(keys.find('es', 'none')).toBeUndefined();
    expect(keys.find('unknown', 'ES256')).toBeUndefined();
    // No kid (RFC 7515 §4.1.4 makes it optional): the only key of the algorithm.
    expect(keys.find(undefined, 'RS256')?.kid).toBe('rsa');
    expect(keys.find(undefined, 'PS256')).toBeUndefined();
  });

  it('find() without a kid is ambiguous, so undefined, when two keys share the algorithm', async () => {
    const [a, b] = await Promise.all([newKey('ES256'), newKey('ES256')]);
    const t = await jwksApp({ oauthJwtKeys: [{ key: a.privateJwk, alg: 'ES256' }, { key: b.privateJwk, alg: 'ES256' }] });
    expect((await t.keys()).find(undefined, 'ES256')).toBeUndefined();
  });

  it('jwks() carries public members only', async () => {
    const key = await newKey('RS256');
    const t = await jwksApp({ oauthJwtKeys: [{ key: key.privateJwk, alg: 'RS256', kid: 'r' }] });
    expect((await t.keys()).jwks()).toEqual({ keys: [{ kty: 'RSA', n: key.publicJwk.n, e: key.publicJwk.e, kid: 'r', alg: 'RS256', use: 'sig' }] });
  });
});
