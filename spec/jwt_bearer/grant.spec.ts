import request from 'supertest';
import { exportSPKI } from 'jose';
import { OAuthError, oauth } from '../../lib';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import {
  claims,
  clientAssertionForm,
  Clock,
  ENCRYPTION_KEY,
  GRANT_TYPE,
  INVALID_GRANT,
  ISSUER,
  JwksServer,
  keyPair,
  signHmac,
  signWith,
  unsigned,
  type KeyPair,
} from './support';

const servers: JwksServer[] = [];
afterEach(async () => {
  while (servers.length) await servers.pop()!.close();
});
afterAll(closeAll);

const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };
const IDP = 'https://idp.example';

let rsa: KeyPair;
let idpKey: KeyPair;

beforeAll(async () => {
  [rsa, idpKey] = await Promise.all([keyPair('RS256'), keyPair('ES256', 'idp-1')]);
});

async function setup(options: Record<string, unknown> = {}, clientInput: Record<string, unknown> = {}) {
  const clock = new Clock();
  const t = await buildApp({ enable: ['jwt_bearer'], issuer: ISSUER, now: clock.now, oauthClientSecretEncryptionKey: ENCRYPTION_KEY, ...options });
  const client = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', grantTypes: [GRANT_TYPE], jwks: { keys: [rsa.publicJwk] }, ...clientInput });
  return { t, clock, client };
}

function grant(t: TestApp, form: Record<string, string>, auth?: string) {
  const r = request(t.app).post(t.path('/token')).type('form');
  if (auth) r.set('Authorization', auth);
  return r.send({ grant_type: GRANT_TYPE, ...form });
}

/** An assertion by a client about a user: iss = the client, sub = the account. */
function userClaims(clock: Clock, iss: string, sub = 'alice', overrides: Record<string, unknown> = {}) {
  return claims(clock, iss, { sub, ...overrides });
}

function expectInvalidGrant(res: request.Response, t: TestApp, why: string): void {
  expect(res.status).toBe(400);
  expect(res.headers).toMatchObject(NO_STORE);
  expect(res.headers['www-authenticate']).toBeUndefined();
  expect(res.body).toEqual(INVALID_GRANT);
  expect(t.logger.lines[t.logger.lines.length - 1]).toContain(why);
}

const SUCCESS = { access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read books.write' };

async function count(t: TestApp, table: string): Promise<number> {
  return Number((await t.db(table).count({ n: '*' }).first())!.n);
}

describe('jwt_bearer › grant (the issuer is a registered client)', () => {
  it('issues an access token for the subject, and no refresh token (RFC 7523 §2.1, RFC 6749 §4.4.3)', async () => {
    const { t, clock, client } = await setup({ enable: ['jwt_bearer', 'refresh'] });
    const assertion = await signWith(rsa, userClaims(clock, client.clientId));
    const res = await grant(t, { assertion });
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject(NO_STORE);
    expect(res.body).toEqual(SUCCESS);
    const me = await request(t.app).get('/api/me').set('Authorization', `Bearer ${res.body.access_token}`);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ accountId: 'alice', clientId: client.clientId, scopes: ['books.read', 'books.write'] });
    const row = await t.db('oauth_grants').first();
    expect(row).toMatchObject({ account_id: 'alice', type: GRANT_TYPE, refresh_token: null });
    t.logger.assertNoSecrets([assertion, res.body.access_token]);
  });

  it('grants a requested scope within the application scopes, and refuses others with invalid_scope (RFC 6749 §3.3)', async () => {
    const { t, clock, client } = await setup();
    const narrow = await grant(t, { assertion: await signWith(rsa, userClaims(clock, client.clientId)), scope: 'books.read' });
    expect(narrow.status).toBe(200);
    expect(narrow.body).toEqual({ ...SUCCESS, scope: 'books.read' });
    const wide = await grant(t, { assertion: await signWith(rsa, userClaims(clock, client.clientId)), scope: 'books.read admin' });
    expect(wide.status).toBe(400);
    expect(wide.body).toEqual({ error: 'invalid_scope', error_description: 'Invalid scope' });
  });

  it('rejects a replayed assertion with invalid_grant (RFC 7523 §3 item 7)', async () => {
    const { t, clock, client } = await setup();
    const assertion = await signWith(rsa, userClaims(clock, client.clientId));
    expect((await grant(t, { assertion })).status).toBe(200);
    expectInvalidGrant(await grant(t, { assertion }), t, '(assertion_replayed)');
    expect(await count(t, 'oauth_grants')).toBe(1);
  });

  it('accepts an assertion exactly once under concurrent requests to two servers sharing the database', async () => {
    const clock = new Clock();
    const opts = { enable: ['jwt_bearer'], issuer: ISSUER, now: clock.now } as const;
    const t = await buildApp(opts, { shared: true });
    const client = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', grantTypes: [GRANT_TYPE], jwks: { keys: [rsa.publicJwk] } });
    const second = oauth({ ...opts, db: t.db });
    const app2 = (await import('express')).default();
    app2.use(t.path('') || '/', second);
    const assertion = await signWith(rsa, userClaims(clock, client.clientId));
    const send = (app: typeof t.app) => request(app).post(t.path('/token')).type('form').send({ grant_type: GRANT_TYPE, assertion });
    const results = await Promise.all([t.app, app2, t.app, app2, t.app, app2].map(send));
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400, 400, 400, 400]);
    for (const r of results.filter((x) => x.status === 400)) expect(r.body).toEqual(INVALID_GRANT);
    expect(await count(t, 'oauth_grants')).toBe(1);
  });

  const bad: [string, (c: Clock) => Record<string, unknown>, string][] = [
    ['a wrong audience (§3 item 3)', () => ({ aud: 'https://evil.example/token' }), 'unexpected \\"aud\\" claim value'],
    ['an expired exp (§3 item 4)', (c) => ({ exp: c.seconds - 31, iat: c.seconds - 90 }), 'ERR_JWT_EXPIRED'],
    ['no exp (§3 item 4)', () => ({ exp: undefined }), 'missing required \\"exp\\"'],
    ['an exp further away than oauthJwtBearerMaxAssertionLifetime (3600 s) plus leeway (§3 item 4)', (c) => ({ exp: c.seconds + 3601 + 30 }), 'exp_too_far'],
    ['an exp more than oauthJwtBearerMaxAssertionLifetime after iat (§3 items 4, 6)', (c) => ({ iat: c.seconds - 1000, exp: c.seconds + 2601 }), 'lifetime_too_long'],
    ['an nbf in the future (§3 item 5)', (c) => ({ nbf: c.seconds + 60 }), 'nbf'],
    ['an iat in the future (§3 item 6)', (c) => ({ iat: c.seconds + 60 }), 'iat_in_future'],
    ['no jti (§3 item 7)', () => ({ jti: undefined }), 'missing required \\"jti\\"'],
    ['no sub (§3 item 2)', () => ({ sub: undefined }), 'missing required \\"sub\\"'],
    ['an empty sub (§3 item 2)', () => ({ sub: '' }), 'invalid_sub'],
    ['an unknown issuer (§3 item 1)', () => ({ iss: 'https://unknown.example' }), '(untrusted_issuer)'],
    ['no issuer (§3 item 1)', () => ({ iss: undefined }), '(untrusted_issuer)'],
    ['a NUL in the issuer', () => ({ iss: 'a\u0000b' }), 'malformed_iss'],
    ['a NUL in the subject', () => ({ sub: 'alice\u0000' }), 'malformed_sub'],
    ['a subject longer than 255 characters', () => ({ sub: 'x'.repeat(256) }), 'malformed_sub'],
  ];
  it('accepts by default an assertion valid for one hour, exp = iat + 3600, as Google service accounts send (RFC 7523 §3 item 4)', async () => {
    const { t, clock, client } = await setup();
    const res = await grant(t, { assertion: await signWith(rsa, userClaims(clock, client.clientId, 'alice', { iat: clock.seconds, exp: clock.seconds + 3600 })) });
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject(NO_STORE);
    expect(res.body).toEqual(SUCCESS);
  });

  it.each(bad)('rejects an assertion with %s with 400 invalid_grant', async (_n, override, why) => {
    const { t, clock, client } = await setup();
    expectInvalidGrant(await grant(t, { assertion: await signWith(rsa, userClaims(clock, client.clientId, 'alice', override(clock))) }), t, why);
    expect(await count(t, 'oauth_grants')).toBe(0);
  });

  it.each([
    ['alg none', (_a: string, c: Clock, id: string) => unsigned(userClaims(c, id)), 'unsigned_assertion'],
    ['truncated', (a: string) => a.slice(0, -10), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
    ['non-JSON', () => `${Buffer.from('{"alg":').toString('base64url')}.e30.c2ln`, '(invalid_assertion)'],
    ['not a JWT', () => 'not-a-jwt', '(invalid_assertion)'],
    ['oversized', (a: string) => `${a.split('.')[0]}.${Buffer.from(JSON.stringify({ pad: 'x'.repeat(9000) })).toString('base64url')}.${a.split('.')[2]}`, 'assertion_too_large'],
    ['of typ at+jwt', (_a: string, c: Clock, id: string) => signWith(rsa, userClaims(c, id), { typ: 'at+jwt' }), 'unexpected_typ'],
  ] as [string, (a: string, c: Clock, id: string) => string | Promise<string>, string][])('rejects an assertion that is %s with invalid_grant, never a 500', async (_n, mangle, why) => {
    const { t, clock, client } = await setup();
    const assertion = await mangle(await signWith(rsa, userClaims(clock, client.clientId)), clock, client.clientId);
    expectInvalidGrant(await grant(t, { assertion }), t, why);
    expect(t.logger.lines.some((l) => l.startsWith('error'))).toBe(false);
  });

  it('answers invalid_request when the assertion parameter is missing (RFC 6749 §5.2)', async () => {
    const { t } = await setup();
    const res = await grant(t, {});
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: "Missing parameter 'assertion'" });
  });

  it('rejects a client_id parameter naming another client than the issuer (RFC 7521 §4.1)', async () => {
    const { t, clock, client } = await setup();
    expectInvalidGrant(await grant(t, { assertion: await signWith(rsa, userClaims(clock, client.clientId)), client_id: 'someone-else' }), t, '(client_id_mismatch)');
    const ok = await grant(t, { assertion: await signWith(rsa, userClaims(clock, client.clientId)), client_id: client.clientId });
    expect(ok.status).toBe(200);
  });

  it('authenticates client credentials sent beside the assertion and requires them to be the issuer', async () => {
    const { t, clock, client } = await setup();
    const other = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_basic', grantTypes: [GRANT_TYPE] });
    const assertion = () => signWith(rsa, userClaims(clock, client.clientId));
    expectInvalidGrant(await grant(t, { assertion: await assertion() }, basic(other.clientId, other.clientSecret)), t, '(client_id_mismatch)');
    const wrongSecret = await grant(t, { assertion: await assertion() }, basic(other.clientId, 'wrong'));
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
    const same = await grant(t, { assertion: await assertion(), ...clientAssertionForm(await signWith(rsa, claims(clock, client.clientId))) });
    expect(same.status).toBe(200);
    expect(same.body).toEqual(SUCCESS);
  });

  it('refuses the grant to an application that does not list it explicitly in grant_types', async () => {
    const { t, clock } = await setup();
    const implicitAll = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [rsa.publicJwk] } });
    // A NULL grant_types column (a row registered before defaults were written) means every grant elsewhere.
    await t.db('oauth_applications').where('client_id', implicitAll.clientId).update({ grant_types: null });
    const res = await grant(t, { assertion: await signWith(rsa, userClaims(clock, implicitAll.clientId)) });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'unsupported_grant_type', error_description: 'Invalid grant type' });
    // The verified assertion's jti is spent before the check (single use, whatever follows).
    expect(await count(t, 'oauth_jwt_jtis')).toBe(1);
    // Only a correctly signed assertion learns that: a forged one is just an invalid grant.
    const forged = await keyPair('RS256', rsa.kid);
    expectInvalidGrant(await grant(t, { assertion: await signWith(forged, userClaims(clock, implicitAll.clientId)) }), t, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it('verifies an HMAC assertion with the secret of a client_secret_jwt client, and refuses HMAC from other clients', async () => {
    const { t, clock, client } = await setup();
    const secretClient = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_jwt', grantTypes: [GRANT_TYPE] });
    const ok = await grant(t, { assertion: await signHmac(secretClient.clientSecret, userClaims(clock, secretClient.clientId)) });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual(SUCCESS);
    // An HMAC assertion "keyed" with the RSA public key: never verified with that key.
    const pem = await exportSPKI(rsa.publicKey);
    expectInvalidGrant(await grant(t, { assertion: await signHmac(pem, userClaims(clock, client.clientId)) }), t, '(no_verification_key)');
    expectInvalidGrant(await grant(t, { assertion: await signHmac(pem, userClaims(clock, secretClient.clientId)) }), t, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it('maps the subject through accountFromJwtBearerAssertion, and refuses it when that returns null', async () => {
    const { t, clock, client } = await setup({
      accountFromJwtBearerAssertion: async (ctx: { super: { accountFromJwtBearerAssertion(c: unknown): Promise<string | null> } }, c: { sub?: string }) =>
        c.sub === 'mallory' ? null : `acct-${await ctx.super.accountFromJwtBearerAssertion(c)}`,
    });
    const ok = await grant(t, { assertion: await signWith(rsa, userClaims(clock, client.clientId, 'alice')) });
    expect(ok.status).toBe(200);
    expect((await t.db('oauth_grants').first()).account_id).toBe('acct-alice');
    expectInvalidGrant(await grant(t, { assertion: await signWith(rsa, userClaims(clock, client.clientId, 'mallory')) }), t, '(unknown_subject)');
    expect(await count(t, 'oauth_grants')).toBe(1);
  });

  it('leaves no grant behind when afterToken throws; the verified jti stays spent (it is used before the transaction)', async () => {
    const { t, clock, client } = await setup({
      afterToken: async () => {
        throw new OAuthError('access_denied', 'Not now', { reason: 'hook_denied' });
      },
    });
    const assertion = await signWith(rsa, userClaims(clock, client.clientId));
    const res = await grant(t, { assertion });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'access_denied', error_description: 'Not now' });
    expect(await count(t, 'oauth_grants')).toBe(0);
    // Single use (RFC 7523 §3 item 7) is settled before the transaction opens, so the same
    // assertion cannot be tried again once the hook lets it through.
    expect(await count(t, 'oauth_jwt_jtis')).toBe(1);
    expectInvalidGrant(await grant(t, { assertion }), t, 'assertion_replayed');
  });
});

describe('jwt_bearer › grant (the issuer is trusted by configuration)', () => {
  function trusted(extra: Record<string, unknown> = {}) {
    return { oauthJwtBearerTrustedIssuers: [{ issuer: IDP, jwks: { keys: [idpKey.publicJwk] }, subjects: ['bob', 'carol'], scopes: ['books.read'], ...extra }] };
  }

  async function trustedSetup(extra: Record<string, unknown> = {}, options: Record<string, unknown> = {}) {
    const s = await setup({ ...trusted(extra), ...options }, { tokenEndpointAuthMethod: 'client_secret_basic', jwks: undefined });
    return { ...s, auth: basic(s.client.clientId, s.client.clientSecret) };
  }

  it('issues a token to the authenticated client for an allowed subject, scoped to what both allow', async () => {
    const { t, clock, client, auth } = await trustedSetup();
    const assertion = await signWith(idpKey, claims(clock, IDP, { sub: 'bob' }));
    const res = await grant(t, { assertion }, auth);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ...SUCCESS, scope: 'books.read' });
    const me = await request(t.app).get('/api/me').set('Authorization', `Bearer ${res.body.access_token}`);
    expect(me.body).toMatchObject({ accountId: 'bob', clientId: client.clientId, scopes: ['books.read'] });
  });

  it('requires the presenting client to authenticate', async () => {
    const { t, clock } = await trustedSetup();
    const res = await grant(t, { assertion: await signWith(idpKey, claims(clock, IDP, { sub: 'bob' })) });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
  });

  it('refuses a subject the issuer may not assert, and accepts any with subjects "*"', async () => {
    const { t, clock, auth } = await trustedSetup();
    expectInvalidGrant(await grant(t, { assertion: await signWith(idpKey, claims(clock, IDP, { sub: 'alice' })) }, auth), t, 'subject_not_allowed');
    const any = await trustedSetup({ subjects: '*' });
    const res = await grant(any.t, { assertion: await signWith(idpKey, claims(any.clock, IDP, { sub: 'alice' })) }, any.auth);
    expect(res.status).toBe(200);
  });

  it('refuses a scope the issuer may not grant (invalid_scope)', async () => {
    const { t, clock, auth } = await trustedSetup();
    const res = await grant(t, { assertion: await signWith(idpKey, claims(clock, IDP, { sub: 'bob' })), scope: 'books.write' }, auth);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_scope', error_description: 'Invalid scope' });
  });

  it('refuses an assertion signed by another key, or with HMAC', async () => {
    const { t, clock, client, auth } = await trustedSetup();
    expectInvalidGrant(await grant(t, { assertion: await signWith(rsa, claims(clock, IDP, { sub: 'bob' })) }, auth), t, 'ERR_JWKS_NO_MATCHING_KEY');
    expectInvalidGrant(await grant(t, { assertion: await signHmac(client.clientSecret, claims(clock, IDP, { sub: 'bob' })) }, auth), t, 'ERR_JOSE_ALG_NOT_ALLOWED');
  });

  it('fetches the issuer keys from its jwksUri', async () => {
    const server = await new JwksServer().start();
    servers.push(server);
    server.serve([idpKey.publicJwk], { 'cache-control': 'max-age=60' });
    const { t, clock, auth } = await trustedSetup({ jwks: undefined, jwksUri: server.uri }, { oauthJwksAllowLoopbackHttp: true });
    const res = await grant(t, { assertion: await signWith(idpKey, claims(clock, IDP, { sub: 'carol' })) }, auth);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ...SUCCESS, scope: 'books.read' });
    expect(server.hits).toBe(1);
    server.handler = () => undefined;
    clock.advance(61);
    const hang = await trustedSetup({ jwks: undefined, jwksUri: server.uri }, { oauthJwksAllowLoopbackHttp: true, oauthJwksFetchTimeout: 200 });
    expectInvalidGrant(await grant(hang.t, { assertion: await signWith(idpKey, claims(hang.clock, IDP, { sub: 'carol' })) }, hang.auth), hang.t, '(jwks_unavailable)');
  });

  it('rejects a replayed trusted-issuer assertion', async () => {
    const { t, clock, auth } = await trustedSetup();
    const assertion = await signWith(idpKey, claims(clock, IDP, { sub: 'bob' }));
    expect((await grant(t, { assertion }, auth)).status).toBe(200);
    expectInvalidGrant(await grant(t, { assertion }, auth), t, '(assertion_replayed)');
  });
});
