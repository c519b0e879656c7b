/**
 * Review fixes of `oidc`: a failing ID token leaves the code unused (the exchange rolls back),
 * pairwise clients on several hosts get an OAuth error instead of a 500, JWT access tokens and
 * introspection say the ID token's `sub` (never the local account id of a pairwise client), and
 * ID tokens are signed with an RS256 key when one is configured (Discovery §3).
 */
import { createHmac } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { basic, closeAll } from '../support/build_app';
import { authParams, codeFlow, ISSUER, locationParams, obtainCode, oidcApp, REDIRECT_URI, tokenRequest } from './support';
import { query } from '../authorization_code_grant/flow';

afterAll(closeAll);

const SALT = 'pairwise-salt-of-at-least-32-characters!';
const TWO_HOSTS = ['https://client.example/cb', 'https://other.example/cb'];

async function grantRow(t: Awaited<ReturnType<typeof oidcApp>>): Promise<{ code_redeemed_at: unknown; token: unknown; refresh_token: unknown; revoked_at: unknown }> {
  const [row] = await t.db('oauth_grants').select('code_redeemed_at', 'token', 'refresh_token', 'revoked_at');
  return row as never;
}

describe('oidc: the code exchange is all or nothing', () => {
  it('a host method failing while the ID token is built writes nothing; the same code then works', async () => {
    let fail = true;
    const t = await oidcApp({
      accountSubject: async (_ctx: unknown, id: string) => {
        if (fail) {
          fail = false;
          throw new Error('directory unavailable');
        }
        return id;
      },
    });
    const code = await obtainCode(t, authParams(t));
    const first = await tokenRequest(t, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
    expect(first.status).toBe(500);
    expect(first.headers['content-type']).toMatch(/^application\/json/);
    expect(first.body.error).toBe('server_error');
    expect(first.body.access_token).toBeUndefined();
    expect(await grantRow(t)).toMatchObject({ code_redeemed_at: null, token: null, refresh_token: null, revoked_at: null });

    const retry = await tokenRequest(t, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
    expect(retry.status).toBe(200);
    expect(decodeJwt(retry.body.id_token).sub).toBe('alice');
    expect((await grantRow(t)).code_redeemed_at).not.toBeNull();
  });
});

describe('oidc: pairwise clients need one sector (Core §8.1)', () => {
  it('createApplication and applications.update refuse redirect URIs on several hosts for a pairwise client, its own type or the server’s', async () => {
    const global = await oidcApp({ oidcPairwiseSalt: SALT, oidcSubjectType: 'pairwise' });
    await expect(global.createClient({ redirectUri: TWO_HOSTS })).rejects.toThrow(TypeError);
    await expect(global.createClient({ redirectUri: TWO_HOSTS })).rejects.toThrow('must all be on one host');
    await expect(global.auth.applications.update(global.client.clientId, { redirectUri: TWO_HOSTS })).rejects.toThrow('must all be on one host');
    // A public client of a pairwise server may span hosts.
    const publicClient = await global.createClient({ redirectUri: TWO_HOSTS, subjectType: 'public' });
    await expect(global.auth.applications.update(publicClient.clientId, { subjectType: null })).rejects.toThrow('must all be on one host');

    const own = await oidcApp({ oidcPairwiseSalt: SALT }, { subjectType: 'pairwise' });
    await expect(own.auth.applications.update(own.client.clientId, { redirectUri: TWO_HOSTS })).rejects.toThrow('must all be on one host');
    const spread = await own.createClient({ redirectUri: TWO_HOSTS });
    await expect(own.auth.applications.update(spread.clientId, { subjectType: 'pairwise' })).rejects.toThrow('must all be on one host');
    expect((await own.auth.applications.get(own.client.clientId)).redirectUris).toEqual([REDIRECT_URI]);
    // One host: fine.
    await own.auth.applications.update(own.client.clientId, { redirectUri: [REDIRECT_URI, 'https://client.example/cb2'] });
  });

  it('a server-wide pairwise type decided per request: /authorize answers unauthorized_client, /token too, and the code stays usable', async () => {
    let type: 'public' | 'pairwise' = 'public';
    const t = await oidcApp({ oidcPairwiseSalt: SALT, oidcSubjectType: () => type }, { redirectUri: TWO_HOSTS });
    const code = await obtainCode(t, authParams(t));
    type = 'pairwise';
    const refused = await t.agent.get(`${t.path('/authorize')}?${query(authParams(t))}`).set('X-Test-User', 'alice');
    expect(refused.status).toBe(302);
    expect(locationParams(refused.headers.location)).toEqual({
      error: 'unauthorized_client',
      error_description: 'The client cannot be given a pairwise subject: its redirect URIs are on several hosts',
      state: 'xyz',
      iss: ISSUER,
    });
    const exchange = await tokenRequest(t, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
    expect(exchange.status).toBe(400);
    expect(exchange.headers['cache-control']).toBe('no-store');
    expect(exchange.body).toEqual({ error: 'unauthorized_client', error_description: 'The client cannot be given a pairwise subject: its redirect URIs are on several hosts' });
    expect(await grantRow(t)).toMatchObject({ code_redeemed_at: null, token: null, revoked_at: null });
    type = 'public';
    const retry = await tokenRequest(t, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
    expect(retry.status).toBe(200);
  });
});

describe('oidc: one sub for the client everywhere', () => {
  it('a pairwise client’s JWT access token and introspection carry the ID token’s sub; requireOauthAuthorization still knows the account', async () => {
    const t = await oidcApp(
      { oidcPairwiseSalt: SALT, enable: ['jwt_access_tokens', 'token_introspection'] },
      { subjectType: 'pairwise', accessTokenFormat: 'jwt' },
    );
    const res = await codeFlow(t);
    expect(res.status).toBe(200);
    const pairwise = createHmac('sha256', SALT).update('client.example\0alice').digest('base64url');
    expect(decodeJwt(res.body.id_token).sub).toBe(pairwise);
    const claims = decodeJwt(res.body.access_token);
    expect(claims.sub).toBe(pairwise);
    expect(JSON.stringify(claims)).not.toContain('alice');

    const me = await t.agent.get('/api/me').set('Authorization', `Bearer ${res.body.access_token}`);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ accountId: 'alice', clientId: t.client.clientId });
    // Again, from the verified-token cache.
    expect((await t.agent.get('/api/me').set('Authorization', `Bearer ${res.body.access_token}`)).body.accountId).toBe('alice');

    const introspect = (token: string) => t.agent.post(t.path('/introspect')).type('form').set('Authorization', basic(t.client.clientId, t.client.clientSecret)).send({ token });
    const access = await introspect(res.body.access_token);
    expect(access.status).toBe(200);
    expect(access.body).toMatchObject({ active: true, sub: pairwise, client_id: t.client.clientId });
    expect((await introspect(res.body.refresh_token)).body.sub).toBe(pairwise);

    // A refreshed JWT keeps the sub.
    const refreshed = await tokenRequest(t, { grant_type: 'refresh_token', refresh_token: res.body.refresh_token });
    expect(decodeJwt(refreshed.body.access_token).sub).toBe(pairwise);
  });

  it('a custom accountSubject is the sub of JWT access tokens and introspection too', async () => {
    const t = await oidcApp({ accountSubject: async (_ctx: unknown, id: string) => `user-${id}`, enable: ['jwt_access_tokens', 'token_introspection'] }, { accessTokenFormat: 'jwt' });
    const res = await codeFlow(t, { scope: 'profile' });
    expect(res.status).toBe(200);
    expect(decodeJwt(res.body.access_token).sub).toBe('user-alice');
    const me = await t.agent.get('/api/me').set('Authorization', `Bearer ${res.body.access_token}`);
    expect(me.body.accountId).toBe('alice');
    const access = await t.agent.post(t.path('/introspect')).type('form').set('Authorization', basic(t.client.clientId, t.client.clientSecret)).send({ token: res.body.access_token });
    expect(access.body.sub).toBe('user-alice');
  });
});

describe('oidc: ID token algorithm (Discovery §3: RS256 must be supported)', () => {
  it('signs ID tokens with the RS256 key of oauthJwtKeys and advertises RS256; other tokens keep the first key', async () => {
    const { privateKey: ec } = await generateKeyPair('ES256', { extractable: true });
    const { privateKey: rsa } = await generateKeyPair('RS256', { extractable: true });
    const t = await oidcApp(
      {
        oauthJwtKeys: [
          { key: await exportJWK(ec), alg: 'ES256', kid: 'k1' },
          { key: await exportJWK(rsa), alg: 'RS256', kid: 'rs' },
        ],
        enable: ['jwt_access_tokens'],
      },
      { accessTokenFormat: 'jwt' },
    );
    const discovery = await t.agent.get(t.path('/.well-known/openid-configuration'));
    expect(discovery.body.id_token_signing_alg_values_supported).toEqual(['RS256']);
    expect(t.logger.lines.filter((l) => l.includes('no RS256 key'))).toEqual([]);
    const res = await codeFlow(t);
    expect(decodeProtectedHeader(res.body.id_token)).toEqual({ alg: 'RS256', kid: 'rs', typ: 'JWT' });
    const jwks = createLocalJWKSet((await t.agent.get(t.path('/jwks'))).body);
    const { payload } = await jwtVerify(res.body.id_token, jwks, { issuer: ISSUER, audience: t.client.clientId, algorithms: ['RS256'] });
    const digest = (await import('node:crypto')).createHash('sha256').update(res.body.access_token).digest();
    expect(payload.at_hash).toBe(digest.subarray(0, 16).toString('base64url'));
    expect(decodeProtectedHeader(res.body.access_token).kid).toBe('k1');
  });

  it('without an RS256 key: the first key signs, and one start-up warning says how to add one', async () => {
    const t = await oidcApp();
    expect((await t.agent.get(t.path('/.well-known/openid-configuration'))).body.id_token_signing_alg_values_supported).toEqual(['ES256']);
    const warnings = t.logger.lines.filter((l) => l.includes('no RS256 key'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^warn oidc: no RS256 key in 'oauthJwtKeys'.*Add an RS256 key to oauthJwtKeys/);
    expect(decodeProtectedHeader((await codeFlow(t)).body.id_token).alg).toBe('ES256');
  });
});
