import request from 'supertest';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import {
  claims,
  clientAssertionForm,
  Clock,
  ENCRYPTION_KEY,
  INVALID_CLIENT,
  ISSUER,
  keyPair,
  sign,
  signHmac,
  signWith,
  TOKEN_URL,
  unsigned,
  type KeyPair,
} from './support';

afterAll(closeAll);

const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

let rsa: KeyPair;
let ec: KeyPair;
let ps: KeyPair;
let ed: KeyPair;
let stranger: KeyPair;

beforeAll(async () => {
  [rsa, ec, ps, ed, stranger] = await Promise.all([keyPair('RS256'), keyPair('ES256'), keyPair('PS256'), keyPair('EdDSA', undefined, { crv: 'Ed25519' }), keyPair('RS256')]);
});

async function setup(options: Record<string, unknown> = {}) {
  const clock = new Clock();
  const t = await buildApp({ enable: ['jwt_bearer', 'client_credentials_grant'], issuer: ISSUER, now: clock.now, oauthClientSecretEncryptionKey: ENCRYPTION_KEY, ...options });
  const client = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [rsa.publicJwk, ec.publicJwk, ps.publicJwk, ed.publicJwk] } });
  return { t, clock, client };
}

function token(t: TestApp, form: Record<string, string>, auth?: string) {
  const r = request(t.app).post(t.path('/token')).type('form');
  if (auth) r.set('Authorization', auth);
  return r.send({ grant_type: 'client_credentials', ...form });
}

function expectInvalidClient(res: request.Response, t?: TestApp, why?: string): void {
  expect(res.status).toBe(401);
  expect(res.headers).toMatchObject({ ...NO_STORE, 'www-authenticate': 'Basic realm="oauth"' });
  expect(res.body).toEqual(INVALID_CLIENT);
  // The internal reason (and jose's error code) reach the log, never the body.
  if (t && why) expect(t.logger.lines[t.logger.lines.length - 1]).toContain(why);
}

const SUCCESS = { access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read books.write' };

describe('jwt_bearer › client_auth (private_key_jwt)', () => {
  it('authenticates a client with an RS256 assertion from its jwks and issues a working token (RFC 7523 §2.2)', async () => {
    const { t, clock, client } = await setup();
    const assertion = await signWith(rsa, claims(clock, client.clientId));
    const res = await token(t, clientAssertionForm(assertion));
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject(NO_STORE);
    expect(res.body).toEqual(SUCCESS);
    const me = await request(t.app).get('/api/me').set('Authorization', `Bearer ${res.body.access_token}`);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ clientId: client.clientId, accountId: null, scopes: ['books.read', 'books.write'] });
    t.logger.assertNoSecrets([assertion, res.body.access_token]);
  });

  it.each([['ES256'], ['PS256'], ['EdDSA']])('accepts %s assertions (RFC 7518 §3.1)', async (alg) => {
    const { t, clock, client } = await setup();
    const key = { ES256: ec, PS256: ps, EdDSA: ed }[alg]!;
    const res = await token(t, clientAssertionForm(await signWith(key, claims(clock, client.clientId))));
    expect(res.status).toBe(200);
    expect(res.body).toEqual(SUCCESS);
  });

  it('accepts the issuer as audience and an aud array holding the token endpoint (RFC 7523 §3 item 3)', async () => {
    const { t, clock, client } = await setup();
    const a = await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId, { aud: ISSUER }))));
    expect(a.status).toBe(200);
    expect(a.body).toEqual(SUCCESS);
    const b = await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId, { aud: ['https://other.example', TOKEN_URL] }))));
    expect(b.status).toBe(200);
    expect(b.body).toEqual(SUCCESS);
  });

  it('accepts a matching client_id parameter beside the assertion (RFC 7521 §4.2)', async () => {
    const { t, clock, client } = await setup();
    const res = await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId)), { client_id: client.clientId }));
    expect(res.status).toBe(200);
    expect(res.body).toEqual(SUCCESS);
  });

  it('rejects a replayed assertion: each jti is single use (RFC 7523 §3 item 7)', async () => {
    const { t, clock, client } = await setup();
    const assertion = await signWith(rsa, claims(clock, client.clientId));
    expect((await token(t, clientAssertionForm(assertion))).status).toBe(200);
    expectInvalidClient(await token(t, clientAssertionForm(assertion)), t, '(assertion_replayed)');
    const reused = await signWith(rsa, claims(clock, client.clientId, { jti: 'same' }));
    expect((await token(t, clientAssertionForm(reused))).status).toBe(200);
    expectInvalidClient(await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId, { jti: 'same', exp: clock.seconds + 90 })))), t, '(assertion_replayed)');
  });

  const bad: [string, (c: Clock) => Record<string, unknown>, string][] = [
    ['a wrong audience (§3 item 3)', () => ({ aud: 'https://evil.example/token' }), 'unexpected \\"aud\\" claim value'],
    ['no audience (§3 item 3)', () => ({ aud: undefined }), 'missing required \\"aud\\"'],
    ['an expired exp beyond the leeway (§3 item 4)', (c) => ({ exp: c.seconds - 31, iat: c.seconds - 90 }), 'ERR_JWT_EXPIRED'],
    ['no exp (§3 item 4)', () => ({ exp: undefined }), 'missing required \\"exp\\"'],
    ['a non-numeric exp (§3 item 4)', (c) => ({ exp: String(c.seconds + 60) }), 'exp\\" claim must be a number'],
    ['an exp further away than oauthJwtBearerMaxAssertionLifetime (3600 s) plus leeway (§3 item 4)', (c) => ({ exp: c.seconds + 3601 + 30 }), 'exp_too_far'],
    ['an exp more than oauthJwtBearerMaxAssertionLifetime after iat (§3 items 4, 6)', (c) => ({ iat: c.seconds - 1000, exp: c.seconds + 2601 }), 'lifetime_too_long'],
    ['an nbf in the future (§3 item 5)', (c) => ({ nbf: c.seconds + 31 }), 'nbf'],
    ['an iat in the future (§3 item 6)', (c) => ({ iat: c.seconds + 31 }), 'iat_in_future'],
    ['no jti (§3 item 7)', () => ({ jti: undefined }), 'missing required \\"jti\\"'],
    ['a non-string jti (§3 item 7)', () => ({ jti: 42 }), 'invalid_jti'],
    ['an iss other than sub (§3 items 1–2)', () => ({ iss: 'someone-else' }), 'iss_sub_mismatch'],
    ['no sub (§3 item 2)', () => ({ sub: undefined }), 'iss_sub_mismatch'],
    ['an unknown client as iss and sub (§3 item 1)', () => ({ iss: 'nobody', sub: 'nobody' }), '(unknown_client)'],
    ['a NUL in iss and sub', () => ({ iss: 'a\u0000', sub: 'a\u0000' }), 'malformed_iss'],
    ['an iss and sub longer than 255 characters', () => ({ iss: 'y'.repeat(300), sub: 'y'.repeat(300) }), 'malformed_iss'],
  ];
  it.each(bad)('rejects an assertion with %s with 401 invalid_client', async (_name, override, why) => {
    const { t, clock, client } = await setup();
    expectInvalidClient(await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId, override(clock))))), t, why);
  });

  it('allows oauthJwtBearerLeeway of clock skew on exp and iat, and no more', async () => {
    const { t, clock, client } = await setup();
    const skewed = await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId, { exp: clock.seconds - 20, iat: clock.seconds + 20 }))));
    expect(skewed.status).toBe(200);
    expect(skewed.body).toEqual(SUCCESS);
    const strict = await setup({ oauthJwtBearerLeeway: 0 });
    expectInvalidClient(await token(strict.t, clientAssertionForm(await signWith(rsa, claims(strict.clock, strict.client.clientId, { iat: strict.clock.seconds + 5 })))));
  });

  it('accepts by default an assertion valid for one hour, exp = iat + 3600, as Google service accounts send (RFC 7523 §3 item 4)', async () => {
    const { t, clock, client } = await setup();
    const res = await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId, { iat: clock.seconds, exp: clock.seconds + 3600 }))));
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject(NO_STORE);
    expect(res.body).toEqual(SUCCESS);
    // Without iat, exp is measured from now, with the leeway.
    const noIat = await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId, { iat: undefined, exp: clock.seconds + 3600 + 30 }))));
    expect(noIat.status).toBe(200);
    expect(noIat.body).toEqual(SUCCESS);
  });

  it('keeps the jti of a one-hour assertion until its exp: a replay is refused until then, and the row is purged after (RFC 7523 §3 item 7)', async () => {
    const { t, clock, client } = await setup();
    const assertion = await signWith(rsa, claims(clock, client.clientId, { iat: clock.seconds, exp: clock.seconds + 3600 }));
    expect((await token(t, clientAssertionForm(assertion))).status).toBe(200);
    clock.advance(3500);
    expectInvalidClient(await token(t, clientAssertionForm(assertion)), t, '(assertion_replayed)');
    expect(Number((await t.db('oauth_jwt_jtis').count({ n: '*' }).first())!.n)).toBe(1);
    clock.advance(3600);
    expect((await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId))))).status).toBe(200);
    expect(Number((await t.db('oauth_jwt_jtis').count({ n: '*' }).first())!.n)).toBe(1);
  });

  it('takes oauthJwtBearerMaxAssertionLifetime from the configuration, or a function of the request', async () => {
    const { t, clock, client } = await setup({ oauthJwtBearerMaxAssertionLifetime: 7200 });
    const long = await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId, { exp: clock.seconds + 7000 }))));
    expect(long.status).toBe(200);
    const fn = await setup({ oauthJwtBearerMaxAssertionLifetime: () => 10 });
    expectInvalidClient(await token(fn.t, clientAssertionForm(await signWith(rsa, claims(fn.clock, fn.client.clientId, { exp: fn.clock.seconds + 60 })))));
  });

  it('rejects a client_id parameter naming another client (RFC 7521 §4.2)', async () => {
    const { t, clock, client } = await setup();
    const other = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [rsa.publicJwk] } });
    expectInvalidClient(await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId)), { client_id: other.clientId })));
  });

  it('rejects alg none (RFC 7518 §3.6)', async () => {
    const { t, clock, client } = await setup();
    expectInvalidClient(await token(t, clientAssertionForm(unsigned(claims(clock, client.clientId)))), t, 'unsigned_assertion');
  });

  it('rejects an assertion signed by a key the client has not registered', async () => {
    const { t, clock, client } = await setup();
    expectInvalidClient(await token(t, clientAssertionForm(await signWith(stranger, claims(clock, client.clientId), { kid: rsa.kid }))), t, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    expectInvalidClient(await token(t, clientAssertionForm(await signWith(stranger, claims(clock, client.clientId)))), t, 'ERR_JWKS_NO_MATCHING_KEY');
  });

  it('rejects an HMAC assertion keyed with the RSA public key (algorithm confusion)', async () => {
    const { t, clock, client } = await setup();
    const both = await t.createClient({ tokenEndpointAuthMethod: ['private_key_jwt', 'client_secret_jwt'], jwks: { keys: [rsa.publicJwk] } });
    const pem = String(await import('jose').then((j) => j.exportSPKI(rsa.publicKey)));
    // Registered for private_key_jwt only: an HMAC assertion is not even considered.
    expectInvalidClient(await token(t, clientAssertionForm(await signHmac(pem, claims(clock, client.clientId)))), t, '(auth_method_not_allowed)');
    // Registered for both: the HMAC key is the client's secret, never its public key.
    expectInvalidClient(await token(t, clientAssertionForm(await signHmac(pem, claims(clock, both.clientId)))), t, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    const jwkAsSecret = new TextEncoder().encode(JSON.stringify(rsa.publicJwk));
    expectInvalidClient(await token(t, clientAssertionForm(await sign(claims(clock, both.clientId), jwkAsSecret, { alg: 'HS256', kid: rsa.kid }))), t, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it('rejects an algorithm outside oauthJwtBearerPrivateKeyJwtAlgorithms', async () => {
    const { t, clock, client } = await setup({ oauthJwtBearerPrivateKeyJwtAlgorithms: ['ES256'] });
    expectInvalidClient(await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId)))), t, 'ERR_JOSE_ALG_NOT_ALLOWED');
    expect((await token(t, clientAssertionForm(await signWith(ec, claims(clock, client.clientId))))).status).toBe(200);
  });

  it.each([
    ['truncated', (a: string) => a.slice(0, a.length - 20), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
    ['missing its signature', (a: string) => a.split('.').slice(0, 2).join('.'), '(invalid_assertion)'],
    ['non-JSON', () => `${Buffer.from('not json').toString('base64url')}.${Buffer.from('{}').toString('base64url')}.c2ln`, '(invalid_assertion)'],
    ['a non-JSON payload', (a: string) => `${a.split('.')[0]}.${Buffer.from('[1,').toString('base64url')}.${a.split('.')[2]}`, '(invalid_assertion)'],
    ['not a JWT at all', () => 'hello', '(invalid_assertion)'],
    ['oversized', (a: string) => `${a.split('.')[0]}.${Buffer.from(JSON.stringify({ pad: 'x'.repeat(9000) })).toString('base64url')}.${a.split('.')[2]}`, 'assertion_too_large'],
  ])('rejects an assertion that is %s with 401, not a 500', async (_n, mangle, why) => {
    const { t, clock, client } = await setup();
    const res = await token(t, clientAssertionForm(mangle(await signWith(rsa, claims(clock, client.clientId)))));
    expectInvalidClient(res, t, why);
    expect(t.logger.lines.some((l) => l.startsWith('error'))).toBe(false);
  });

  it('rejects a typ other than JWT, and accepts typ JWT (RFC 7519 §5.1)', async () => {
    const { t, clock, client } = await setup();
    expectInvalidClient(await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId), { typ: 'at+jwt' }))), t, 'unexpected_typ');
    const ok = await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId), { typ: 'JWT' })));
    expect(ok.status).toBe(200);
  });

  it('rejects a wrong or missing client_assertion_type (RFC 7521 §4.2)', async () => {
    const { t, clock, client } = await setup();
    const assertion = await signWith(rsa, claims(clock, client.clientId));
    expectInvalidClient(await token(t, { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer', client_assertion: assertion }));
    expectInvalidClient(await token(t, { client_assertion: assertion }));
    expectInvalidClient(await token(t, { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }));
  });

  it('refuses private_key_jwt to a client not registered for it (design.md §4.4)', async () => {
    const { t, clock } = await setup();
    const basicOnly = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_basic', jwks: { keys: [rsa.publicJwk] } });
    const defaults = await t.createClient({ jwks: { keys: [rsa.publicJwk] } });
    expectInvalidClient(await token(t, clientAssertionForm(await signWith(rsa, claims(clock, basicOnly.clientId)))));
    expectInvalidClient(await token(t, clientAssertionForm(await signWith(rsa, claims(clock, defaults.clientId)))));
  });

  it('refuses a private_key_jwt client that has neither jwks nor jwks_uri', async () => {
    const { t, clock } = await setup();
    const keyless = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt' });
    expectInvalidClient(await token(t, clientAssertionForm(await signWith(rsa, claims(clock, keyless.clientId)))));
  });

  it('rejects a stored jwks with more keys than oauthJwksMaxKeys', async () => {
    const { t, clock } = await setup({ oauthJwksMaxKeys: 2 });
    const many = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [ec.publicJwk, ps.publicJwk, rsa.publicJwk] } });
    expectInvalidClient(await token(t, clientAssertionForm(await signWith(rsa, claims(clock, many.clientId)))));
  });

  it('tries each key when several match an assertion without kid', async () => {
    const { t, clock } = await setup();
    const other = await keyPair('RS256');
    const noKids = [other.publicJwk, rsa.publicJwk].map(({ kid: _kid, ...jwk }) => jwk);
    const client = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: noKids } });
    const res = await token(t, clientAssertionForm(await sign(claims(clock, client.clientId), rsa.privateKey, { alg: 'RS256' })));
    expect(res.status).toBe(200);
    expect(res.body).toEqual(SUCCESS);
    expectInvalidClient(await token(t, clientAssertionForm(await sign(claims(clock, client.clientId), stranger.privateKey, { alg: 'RS256' }))));
  });

  it('answers invalid_request when an assertion comes with a client secret too (RFC 6749 §2.3)', async () => {
    const { t, clock, client } = await setup();
    const res = await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId)), { client_id: client.clientId, client_secret: 'x' }));
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Use exactly one client authentication method' });
    const both = await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId))), basic(client.clientId, 'x'));
    expect(both.status).toBe(400);
    expect(both.body).toEqual({ error: 'invalid_request', error_description: 'Use exactly one client authentication method' });
  });

  it('purges expired jtis after oauthJwtBearerJtiPurgeInterval', async () => {
    const { t, clock, client } = await setup();
    expect((await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId))))).status).toBe(200);
    expect(Number((await t.db('oauth_jwt_jtis').count({ n: '*' }).first())!.n)).toBe(1);
    clock.advance(120);
    expect((await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId))))).status).toBe(200);
    expect(Number((await t.db('oauth_jwt_jtis').count({ n: '*' }).first())!.n)).toBe(1);
  });
});

describe('jwt_bearer › client_auth (client_secret_jwt)', () => {
  async function secretClient(options: Record<string, unknown> = {}) {
    const { t, clock } = await setup(options);
    const client = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_jwt' });
    return { t, clock, client };
  }

  it.each([['HS256'], ['HS384'], ['HS512']])('authenticates a client with an %s assertion keyed with its secret (RFC 7523 §2.2)', async (alg) => {
    const { t, clock, client } = await secretClient();
    const assertion = await signHmac(client.clientSecret, claims(clock, client.clientId), alg);
    const res = await token(t, clientAssertionForm(assertion));
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject(NO_STORE);
    expect(res.body).toEqual(SUCCESS);
    t.logger.assertNoSecrets([client.clientSecret, assertion]);
  });

  it('rejects an assertion keyed with another secret', async () => {
    const { t, clock, client } = await secretClient();
    expectInvalidClient(await token(t, clientAssertionForm(await signHmac(`${client.clientSecret}x`, claims(clock, client.clientId)))));
  });

  it('rejects a replayed client_secret_jwt assertion (RFC 7523 §3 item 7)', async () => {
    const { t, clock, client } = await secretClient();
    const assertion = await signHmac(client.clientSecret, claims(clock, client.clientId));
    expect((await token(t, clientAssertionForm(assertion))).status).toBe(200);
    expectInvalidClient(await token(t, clientAssertionForm(assertion)));
  });

  it('rejects an HMAC algorithm outside oauthJwtBearerClientSecretJwtAlgorithms', async () => {
    const { t, clock, client } = await secretClient({ oauthJwtBearerClientSecretJwtAlgorithms: ['HS512'] });
    expectInvalidClient(await token(t, clientAssertionForm(await signHmac(client.clientSecret, claims(clock, client.clientId), 'HS256'))));
  });

  it('refuses client_secret_jwt to a client registered for other methods, even with the right secret', async () => {
    const { t, clock } = await setup();
    const postClient = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_post' });
    expectInvalidClient(await token(t, clientAssertionForm(await signHmac(postClient.clientSecret, claims(clock, postClient.clientId)))));
  });

  it('refuses a private_key_jwt assertion from a client registered for client_secret_jwt only', async () => {
    const { t, clock, client } = await secretClient();
    expectInvalidClient(await token(t, clientAssertionForm(await signWith(rsa, claims(clock, client.clientId)))));
  });

  it('keeps the secret unreadable at rest: bcrypt hash plus an AES-GCM copy, never plaintext', async () => {
    const { t, client } = await secretClient();
    const row = await t.db('oauth_applications').where('client_id', client.clientId).first();
    expect(row.client_secret).toMatch(/^\$2[aby]\$04\$/);
    expect(row.client_secret_encrypted).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(JSON.stringify(row)).not.toContain(client.clientSecret);
    const plain = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_basic' });
    const plainRow = await t.db('oauth_applications').where('client_id', plain.clientId).first();
    expect(plainRow.client_secret_encrypted).toBeNull();
  });

  it('fails to authenticate when the stored secret was encrypted under another key', async () => {
    const { t, clock, client } = await secretClient();
    const other = await buildApp({ enable: ['jwt_bearer', 'client_credentials_grant'], issuer: ISSUER, now: clock.now, oauthClientSecretEncryptionKey: 'b2'.repeat(32) });
    const row = await t.db('oauth_applications').where('client_id', client.clientId).first();
    const { id: _id, ...copy } = row;
    await other.db('oauth_applications').insert(copy);
    expectInvalidClient(await token(other, clientAssertionForm(await signHmac(client.clientSecret, claims(clock, client.clientId)))));
  });
});
