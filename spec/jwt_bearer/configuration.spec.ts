import request from 'supertest';
import knex from 'knex';
import { oauth } from '../../lib';
import { aeadDecrypt, aeadEncrypt, parseAeadKey } from '../../lib/crypto/aead';
import { buildApp, closeAll } from '../support/build_app';
import { claims, Clock, ENCRYPTION_KEY, GRANT_TYPE, ISSUER, keyPair, signWith, TOKEN_URL } from './support';

afterAll(closeAll);

const db = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
afterAll(() => db.destroy());

const HMAC = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

describe('jwt_bearer › metadata', () => {
  it('advertises the grant type, both JWT methods and their signing algorithms (RFC 8414 §2)', async () => {
    const t = await buildApp({ enable: ['jwt_bearer'], issuer: ISSUER, oauthClientSecretEncryptionKey: ENCRYPTION_KEY });
    const res = await request(t.app).get(t.path('/.well-known/oauth-authorization-server'));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      issuer: ISSUER,
      token_endpoint: TOKEN_URL,
      response_types_supported: [],
      grant_types_supported: [GRANT_TYPE],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none', 'client_secret_jwt', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: [...HMAC, ...ASYMMETRIC],
    });
  });

  it('lists no HMAC algorithm without an encryption key, and follows oauthTokenEndpointAuthMethodsSupported', async () => {
    const noKey = await buildApp({ enable: ['jwt_bearer'], issuer: ISSUER });
    const a = await request(noKey.app).get(noKey.path('/.well-known/oauth-authorization-server'));
    expect(a.status).toBe(200);
    expect(a.body.token_endpoint_auth_signing_alg_values_supported).toEqual(ASYMMETRIC);
    // Without the key, client_secret_jwt cannot work, so it is neither advertised nor accepted.
    expect(a.body.token_endpoint_auth_methods_supported).toEqual(['client_secret_basic', 'client_secret_post', 'none', 'private_key_jwt']);
    expect(a.body.revocation_endpoint_auth_methods_supported).toBeUndefined();
    const basicOnly = await buildApp({ enable: ['jwt_bearer'], issuer: ISSUER, oauthTokenEndpointAuthMethodsSupported: ['client_secret_basic'] });
    const b = await request(basicOnly.app).get(basicOnly.path('/.well-known/oauth-authorization-server'));
    expect(b.body.token_endpoint_auth_methods_supported).toEqual(['client_secret_basic']);
    expect(b.body).not.toHaveProperty('token_endpoint_auth_signing_alg_values_supported');
    const es = await buildApp({ enable: ['jwt_bearer'], issuer: ISSUER, oauthJwtBearerPrivateKeyJwtAlgorithms: ['ES256'] });
    const c = await request(es.app).get(es.path('/.well-known/oauth-authorization-server'));
    expect(c.body.token_endpoint_auth_signing_alg_values_supported).toEqual(['ES256']);
  });
});

describe('jwt_bearer › configuration', () => {
  it('rejects a malformed oauthClientSecretEncryptionKey at start-up', () => {
    expect(() => oauth({ db, issuer: ISSUER, enable: ['jwt_bearer'], oauthClientSecretEncryptionKey: 'too-short' })).toThrow(
      "oauth(): option 'oauthClientSecretEncryptionKey': an AES-256-GCM key must be 32 bytes, given as 64 hex digits or 43/44 base64 characters.",
    );
  });

  it('requires the key at start-up when client_secret_jwt is explicitly supported', () => {
    expect(() => oauth({ db, issuer: ISSUER, enable: ['jwt_bearer'], oauthTokenEndpointAuthMethodsSupported: ['client_secret_jwt'] })).toThrow(
      "oauth(): client_secret_jwt is in oauthTokenEndpointAuthMethodsSupported but option 'oauthClientSecretEncryptionKey' is not set (a 32-byte AES-256-GCM key, hex or base64).",
    );
  });

  it('refuses to register a client_secret_jwt application without the key, and writes nothing', async () => {
    const t = await buildApp({ enable: ['jwt_bearer'], issuer: ISSUER });
    await expect(t.auth.createApplication({ name: 'x', tokenEndpointAuthMethod: 'client_secret_jwt', grantTypes: [GRANT_TYPE] })).rejects.toThrow(
      'createApplication(): client_secret_jwt needs the oauthClientSecretEncryptionKey option (a 32-byte AES-256-GCM key, hex or base64), so that the secret is kept encrypted rather than in plaintext',
    );
    expect(Number((await t.db('oauth_applications').count({ n: '*' }).first())!.n)).toBe(0);
  });

  it.each([
    ['an algorithm outside the HMAC family for client_secret_jwt', { oauthJwtBearerClientSecretJwtAlgorithms: ['RS256'] }, "oauth(): option 'oauthJwtBearerClientSecretJwtAlgorithms' may hold only HS256, HS384, HS512; got 'RS256'."],
    ['none for private_key_jwt', { oauthJwtBearerPrivateKeyJwtAlgorithms: ['none'] }, "oauth(): option 'oauthJwtBearerPrivateKeyJwtAlgorithms' may hold only RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA; got 'none'."],
    ['HMAC for private_key_jwt', { oauthJwtBearerPrivateKeyJwtAlgorithms: ['HS256'] }, "got 'HS256'."],
    ['a trusted issuer without keys', { oauthJwtBearerTrustedIssuers: [{ issuer: 'https://idp', subjects: '*', scopes: [] }] }, 'oauth(): oauthJwtBearerTrustedIssuers[0] needs exactly one of jwks and jwksUri.'],
    [
      'a trusted issuer with both jwks and jwksUri',
      { oauthJwtBearerTrustedIssuers: [{ issuer: 'https://idp', jwks: { keys: [] }, jwksUri: 'https://idp/jwks', subjects: '*', scopes: [] }] },
      'oauth(): oauthJwtBearerTrustedIssuers[0] needs exactly one of jwks and jwksUri.',
    ],
    ['a trusted issuer with an http jwksUri', { oauthJwtBearerTrustedIssuers: [{ issuer: 'https://idp', jwksUri: 'http://idp/jwks', subjects: '*', scopes: [] }] }, 'oauth(): oauthJwtBearerTrustedIssuers[0].jwksUri: the jwks_uri must use https.'],
    ['a trusted issuer with a malformed jwks', { oauthJwtBearerTrustedIssuers: [{ issuer: 'https://idp', jwks: { nokeys: true }, subjects: '*', scopes: [] }] }, 'oauth(): oauthJwtBearerTrustedIssuers[0].jwks: the JWK Set has no keys array.'],
    ['a trusted issuer without subjects', { oauthJwtBearerTrustedIssuers: [{ issuer: 'https://idp', jwks: { keys: [] }, scopes: [] }] }, "oauth(): oauthJwtBearerTrustedIssuers[0].subjects must be an array of strings or '*'."],
    ['a trusted issuer without scopes', { oauthJwtBearerTrustedIssuers: [{ issuer: 'https://idp', jwks: { keys: [] }, subjects: '*' }] }, 'oauth(): oauthJwtBearerTrustedIssuers[0].scopes must be an array of strings.'],
    ['a trusted issuer without issuer', { oauthJwtBearerTrustedIssuers: [{ jwks: { keys: [] }, subjects: '*', scopes: [] }] }, 'oauth(): oauthJwtBearerTrustedIssuers[0].issuer must be a non-empty string of at most 255 characters.'],
  ])('rejects %s at start-up', (_n, options, message) => {
    expect(() => oauth({ db, issuer: ISSUER, enable: ['jwt_bearer'], ...(options as object) })).toThrow(message);
  });

  it.each([
    ['oauthJwtBearerMaxAssertionLifetime', 0],
    ['oauthJwksFetchTimeout', -1],
    ['oauthJwksMaxSize', 0],
  ])('rejects a non-positive %s at start-up', (name, n) => {
    expect(() => oauth({ db, issuer: ISSUER, enable: ['jwt_bearer'], [name]: n })).toThrow(`oauth(): option '${name}' must be a positive number.`);
  });

  it('rejects an oauthJwksFetchTimeout longer than a Node timer takes at start-up', () => {
    expect(() => oauth({ db, issuer: ISSUER, enable: ['jwt_bearer'], oauthJwksFetchTimeout: 3_000_000_000 })).toThrow(
      "oauth(): option 'oauthJwksFetchTimeout' must be at most 2147483647 (the longest delay a Node timer takes); got 3000000000.",
    );
  });

  it('rejects a negative oauthJwtBearerLeeway at start-up', () => {
    expect(() => oauth({ db, issuer: ISSUER, enable: ['jwt_bearer'], oauthJwtBearerLeeway: -5 })).toThrow("oauth(): option 'oauthJwtBearerLeeway' must not be negative.");
  });

  it('accepts a loopback http jwksUri for a trusted issuer with oauthJwksAllowLoopbackHttp', () => {
    expect(() =>
      oauth({ db, issuer: ISSUER, enable: ['jwt_bearer'], oauthJwksAllowLoopbackHttp: true, oauthJwtBearerTrustedIssuers: [{ issuer: 'https://idp', jwksUri: 'http://127.0.0.1:9/jwks', subjects: '*', scopes: [] }] }),
    ).not.toThrow();
  });

  it('rejects jwt_bearer options when the feature is not enabled', () => {
    expect(() => oauth({ db, oauthJwtBearerLeeway: 5 } as never)).toThrow("oauth(): option 'oauthJwtBearerLeeway' belongs to feature 'jwt_bearer', which is not enabled.");
  });

  it('keeps used jtis in the table named by oauthJwtJtisTable', async () => {
    const clock = new Clock();
    const t = await buildApp({ enable: ['jwt_bearer'], issuer: ISSUER, now: clock.now, oauthJwtJtisTable: 'used_assertions', oauthJwtJtisJtiColumn: 'assertion_id' });
    const key = await keyPair('ES256');
    const client = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', grantTypes: [GRANT_TYPE], jwks: { keys: [key.publicJwk] } });
    const assertion = await signWith(key, claims(clock, client.clientId, { sub: 'alice' }));
    const send = () => request(t.app).post(t.path('/token')).type('form').send({ grant_type: GRANT_TYPE, assertion });
    expect((await send()).status).toBe(200);
    expect((await send()).status).toBe(400);
    const rows = await t.db('used_assertions').select('assertion_id', 'issuer');
    expect(rows).toEqual([{ assertion_id: expect.stringMatching(/^[\w-]{43}$/), issuer: client.clientId }]);
  });
});

describe('jwt_bearer › secret encryption (AES-256-GCM)', () => {
  const key = parseAeadKey(ENCRYPTION_KEY);

  it('round-trips a value and produces a fresh IV each time', () => {
    const a = aeadEncrypt(key, 'secret', 'ctx');
    const b = aeadEncrypt(key, 'secret', 'ctx');
    expect(a).not.toBe(b);
    expect(a).not.toContain('secret');
    expect(aeadDecrypt(key, a, 'ctx')).toBe('secret');
  });

  it('refuses a tampered value, another key, another context or garbage', () => {
    const sealed = aeadEncrypt(key, 'secret', 'ctx');
    const [v, iv, ct, tag] = sealed.split('.');
    const flipped = Buffer.from(ct!, 'base64url');
    flipped[0] ^= 1;
    expect(aeadDecrypt(key, [v, iv, flipped.toString('base64url'), tag].join('.'), 'ctx')).toBeNull();
    expect(aeadDecrypt(parseAeadKey('b2'.repeat(32)), sealed, 'ctx')).toBeNull();
    expect(aeadDecrypt(key, sealed, 'other')).toBeNull();
    expect(aeadDecrypt(key, 'v1.x.y.z', 'ctx')).toBeNull();
    expect(aeadDecrypt(key, 'nonsense', 'ctx')).toBeNull();
  });

  it('reads keys as hex, base64 and base64url, and nothing else', () => {
    const raw = Buffer.alloc(32, 7);
    expect(parseAeadKey(raw.toString('hex'))).toEqual(raw);
    expect(parseAeadKey(raw.toString('base64'))).toEqual(raw);
    expect(parseAeadKey(raw.toString('base64url'))).toEqual(raw);
    expect(() => parseAeadKey(Buffer.alloc(16).toString('hex'))).toThrow(TypeError);
    expect(() => parseAeadKey('correct horse battery staple')).toThrow(TypeError);
  });
});
