import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateSecret } from 'jose';
import type { Knex } from 'knex';
import { oauth, OAuthConfigurationError } from '../../lib';
import { createTestDb } from '../support/db';
import { ISSUER, newKey, type TestKey } from './support';

const ALGS = 'ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA';

describe('jwks › start-up checks', () => {
  let db: Knex, destroy: () => Promise<void>;
  let es256: TestKey, p384: TestKey, rsa: TestKey, ed: TestKey;
  let hmac: Record<string, unknown>;
  beforeAll(async () => {
    ({ db, destroy } = await createTestDb());
    [es256, p384, rsa, ed] = await Promise.all([newKey('ES256'), newKey('ES384'), newKey('RS256'), newKey('EdDSA')]);
    hmac = { ...(await exportJWK(await generateSecret('HS256', { extractable: true }))) };
  });
  afterAll(() => destroy());

  const start = (options: Record<string, unknown>) => () => oauth({ db, issuer: ISSUER, enable: ['jwks'], ...options } as never);

  it('accepts a private key of each algorithm, as a JWK or a PEM', () => {
    expect(
      start({
        oauthJwtKeys: [
          { key: es256.privateJwk, alg: 'ES256' },
          { key: p384.privatePem, alg: 'ES384' },
          { key: rsa.privateJwk, alg: 'RS256' },
          { key: rsa.privatePem, alg: 'PS256', kid: 'rsa-pss' },
          { key: ed.privatePem, alg: 'EdDSA' },
        ],
        oauthJwtPublicKeysToPublish: [{ key: (generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey.export({ format: 'pem', type: 'spki' }) as string), alg: 'ES512' }],
      }),
    ).not.toThrow();
  });

  it.each<[string, () => Record<string, unknown>, string | RegExp]>([
    ['an empty oauthJwtKeys', () => ({}), "oauth(): option 'oauthJwtKeys' needs at least one private key (e.g. [{ key: privateJwk, alg: 'ES256' }]): the first one signs."],
    ['a key without an algorithm', () => ({ oauthJwtKeys: [{ key: es256.privateJwk }] }), `oauth(): oauthJwtKeys[0]: the key has no algorithm; give alg, one of ${ALGS} (ES256 recommended).`],
    [
      'a retired key without an algorithm',
      () => ({ oauthJwtKeys: [{ key: es256.privateJwk, alg: 'ES256' }], oauthJwtPublicKeysToPublish: [{ key: p384.publicJwk, alg: '' }] }),
      `oauth(): oauthJwtPublicKeysToPublish[0]: the key has no algorithm; give alg, one of ${ALGS} (ES256 recommended).`,
    ],
    ['an unsupported algorithm', () => ({ oauthJwtKeys: [{ key: es256.privateJwk, alg: 'none' }] }), `oauth(): oauthJwtKeys[0]: unsupported algorithm 'none'; use one of ${ALGS} (ES256 recommended).`],
    ['ES256 with a P-384 key', () => ({ oauthJwtKeys: [{ key: p384.privateJwk, alg: 'ES256' }] }), 'oauth(): oauthJwtKeys[0]: ES256 needs an EC key on P-256, but the key is EC on P-384.'],
    ['RS256 with an EC key', () => ({ oauthJwtKeys: [{ key: es256.privatePem, alg: 'RS256' }] }), 'oauth(): oauthJwtKeys[0]: RS256 needs an RSA key, but the key is EC on P-256.'],
    ['EdDSA with an RSA key', () => ({ oauthJwtKeys: [{ key: rsa.privateJwk, alg: 'EdDSA' }] }), 'oauth(): oauthJwtKeys[0]: EdDSA needs an Ed25519 or Ed448 key, but the key is RSA.'],
    [
      'PS256 with an RSA-PSS (id-RSASSA-PSS) key, which has no JWK form',
      () => ({ oauthJwtKeys: [{ key: generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }), alg: 'PS256' }] }),
      'oauth(): oauthJwtKeys[0]: PS256 needs an RSA key, but the key is RSA-PSS. A key restricted to RSA-PSS cannot be published as a JWK; give the same key as a plain RSA key, which PS256, PS384 and PS512 sign with.',
    ],
    [
      'ES256 with an RSA-PSS key (no RSA hint for an algorithm that takes no RSA key)',
      () => ({ oauthJwtKeys: [{ key: generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }), alg: 'ES256' }] }),
      /^oauth\(\): oauthJwtKeys\[0\]: ES256 needs an EC key on P-256, but the key is RSA-PSS\.$/,
    ],
    [
      'a retired RSA-PSS public key',
      () => ({ oauthJwtKeys: [{ key: es256.privateJwk, alg: 'ES256' }], oauthJwtPublicKeysToPublish: [{ key: generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }), alg: 'PS384' }] }),
      'oauth(): oauthJwtPublicKeysToPublish[0]: PS384 needs an RSA key, but the key is RSA-PSS.',
    ],
    ['PS256 with an Ed25519 key', () => ({ oauthJwtKeys: [{ key: ed.privateJwk, alg: 'PS256' }] }), 'oauth(): oauthJwtKeys[0]: PS256 needs an RSA key, but the key is Ed25519.'],
    [
      'a retired key of another type than its algorithm',
      () => ({ oauthJwtKeys: [{ key: es256.privateJwk, alg: 'ES256' }], oauthJwtPublicKeysToPublish: [{ key: rsa.publicPem, alg: 'ES256' }] }),
      'oauth(): oauthJwtPublicKeysToPublish[0]: ES256 needs an EC key on P-256, but the key is RSA.',
    ],
    [
      'an RSA key under 2048 bits',
      () => ({ oauthJwtKeys: [{ key: generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'jwk' }), alg: 'RS256' }] }),
      'oauth(): oauthJwtKeys[0]: the RSA key has 1024 bits; RS256 needs at least 2048.',
    ],
    [
      'a JWK whose alg disagrees with the entry',
      () => ({ oauthJwtKeys: [{ key: { ...es256.privateJwk, alg: 'ES384' }, alg: 'ES256' }] }),
      "oauth(): oauthJwtKeys[0]: the JWK says alg 'ES384', the entry says 'ES256'.",
    ],
    ['an encryption JWK', () => ({ oauthJwtKeys: [{ key: { ...es256.privateJwk, use: 'enc' }, alg: 'ES256' }] }), "oauth(): oauthJwtKeys[0]: the JWK's use is 'enc'; a signing key has use 'sig' or none."],
    [
      'a public JWK as a signing key',
      () => ({ oauthJwtKeys: [{ key: es256.publicJwk, alg: 'ES256' }] }),
      'oauth(): oauthJwtKeys[0]: this is a public key; oauthJwtKeys needs the private key (a retired key that only verifies goes in oauthJwtPublicKeysToPublish).',
    ],
    [
      'a public PEM as a signing key',
      () => ({ oauthJwtKeys: [{ key: es256.privateJwk, alg: 'ES256' }, { key: rsa.publicPem, alg: 'RS256' }] }),
      'oauth(): oauthJwtKeys[1]: this is a public key; oauthJwtKeys needs the private key (a retired key that only verifies goes in oauthJwtPublicKeysToPublish).',
    ],
    [
      'a symmetric JWK',
      () => ({ oauthJwtKeys: [{ key: hmac, alg: 'ES256' }] }),
      'oauth(): oauthJwtKeys[0]: the key is symmetric (kty oct); the server signs with asymmetric keys only, so that its public keys can be published.',
    ],
    [
      'an HMAC algorithm',
      () => ({ oauthJwtKeys: [{ key: hmac, alg: 'HS256' }] }),
      'oauth(): oauthJwtKeys[0]: HS256 is a symmetric (HMAC) algorithm; the server signs with asymmetric keys only, so that its public keys can be published.',
    ],
    [
      'two keys with one kid',
      () => ({ oauthJwtKeys: [{ key: es256.privateJwk, alg: 'ES256', kid: 'k' }, { key: rsa.privateJwk, alg: 'RS256', kid: 'k' }] }),
      "oauth(): oauthJwtKeys[1]: kid 'k' is already the kid of another key; every key needs its own kid.",
    ],
    [
      'a retired key with the kid of a current one',
      () => ({ oauthJwtKeys: [{ key: es256.privateJwk, alg: 'ES256', kid: 'k' }], oauthJwtPublicKeysToPublish: [{ key: p384.publicJwk, alg: 'ES384', kid: 'k' }] }),
      "oauth(): oauthJwtPublicKeysToPublish[0]: kid 'k' is already the kid of another key; every key needs its own kid.",
    ],
    [
      'the same key twice under its thumbprint',
      () => ({ oauthJwtKeys: [{ key: es256.privateJwk, alg: 'ES256' }], oauthJwtPublicKeysToPublish: [{ key: es256.publicPem, alg: 'ES256' }] }),
      'is already the kid of another key; every key needs its own kid.',
    ],
    ['an empty kid', () => ({ oauthJwtKeys: [{ key: es256.privateJwk, alg: 'ES256', kid: '' }] }), 'oauth(): oauthJwtKeys[0]: kid must be a non-empty string.'],
    ['an entry that is a bare JWK', () => ({ oauthJwtKeys: ['ES256'] }), 'oauth(): oauthJwtKeys[0]: must be an object { key, alg, kid? } (key: a JWK or a PEM string).'],
    ['an entry without a key', () => ({ oauthJwtKeys: [{ alg: 'ES256' }] }), 'oauth(): oauthJwtKeys[0]: key must be a JWK object or a PEM string.'],
    ['a key that does not import', () => ({ oauthJwtKeys: [{ key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----', alg: 'ES256' }] }), 'oauth(): oauthJwtKeys[0]: the key cannot be imported ('],
    ['keys given as a function', () => ({ oauthJwtKeys: () => [] }), "oauth(): option 'oauthJwtKeys' must be a constant: the keys are imported once, at start-up."],
    ['retired keys given as a function', () => ({ oauthJwtKeys: [{ key: es256.privateJwk, alg: 'ES256' }], oauthJwtPublicKeysToPublish: () => [] }), "oauth(): option 'oauthJwtPublicKeysToPublish' must be a constant: the keys are imported once, at start-up."],
    ['a negative cache lifetime', () => ({ oauthJwtKeys: [{ key: es256.privateJwk, alg: 'ES256' }], oauthJwtKeysCacheExpiresIn: -1 }), "oauth(): option 'oauthJwtKeysCacheExpiresIn' must be a whole number of seconds, 0 or more."],
  ])('rejects %s', (_name, options, message) => {
    const run = start(options());
    expect(run).toThrow(OAuthConfigurationError);
    expect(run).toThrow(message);
  });

  it('needs no key while the feature is off', () => {
    expect(() => oauth({ db, issuer: ISSUER })).not.toThrow();
  });
});
