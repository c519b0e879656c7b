import { createHash, createHmac } from 'node:crypto';
import { afterAll, describe, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { basic, closeAll } from '../support/build_app';
import { authParams, codeFlow, ISSUER, obtainCode, oidcApp, REDIRECT_URI, tokenRequest, verifyIdToken } from './support';

afterAll(closeAll);

const leftHalf = (alg: string, token: string) => {
  const d = createHash(alg).update(token, 'ascii').digest();
  return d.subarray(0, d.length / 2).toString('base64url');
};

describe('oidc › id_token', () => {
  it('the code exchange of an openid request returns an ID token with iss, sub, aud, exp, iat, nonce and at_hash (Core §3.1.3.3)', async () => {
    const t = await oidcApp();
    const res = await codeFlow(t);
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('openid profile email');
    const claims = await verifyIdToken(t, res.body.id_token);
    expect(Object.keys(claims).sort()).toEqual(['at_hash', 'aud', 'exp', 'iat', 'iss', 'nonce', 'sub']);
    expect(claims.iss).toBe(ISSUER);
    expect(claims.sub).toBe('alice');
    expect(claims.aud).toBe(t.client.clientId);
    expect(claims.nonce).toBe('n-0S6_WzA2Mj');
    expect(claims.at_hash).toBe(leftHalf('sha256', res.body.access_token));
    expect(claims.exp! - claims.iat!).toBe(3600);
  });

  it('gives no ID token without the openid scope, nor to client credentials', async () => {
    const t = await oidcApp({ enable: ['client_credentials_grant'] });
    const res = await codeFlow(t, { scope: 'books.read' });
    expect(res.status).toBe(200);
    expect(res.body).not.toHaveProperty('id_token');
    const cc = await tokenRequest(t, { grant_type: 'client_credentials', scope: 'openid books.read' });
    expect(cc.status).toBe(200);
    expect(cc.body).not.toHaveProperty('id_token');
  });

  it('carries auth_time, acr and amr as the host reports them at approval', async () => {
    const loggedInAt = new Date(Date.now() - 120_000);
    const t = await oidcApp({
      accountAuthenticatedAt: () => loggedInAt,
      accountAuthenticationContext: async () => ({ acr: 'urn:example:loa:2', amr: ['pwd', 'otp'] }),
      oidcIdTokenExpiresIn: 600,
    });
    const claims = await verifyIdToken(t, (await codeFlow(t)).body.id_token);
    expect(claims).toMatchObject({ auth_time: Math.floor(loggedInAt.getTime() / 1000), acr: 'urn:example:loa:2', amr: ['pwd', 'otp'] });
    expect(claims.exp! - claims.iat!).toBe(600);
  });

  it('puts scope claims in the ID token only when no access token is issued (Core §5.4), but claims asked for with the claims parameter (§5.5)', async () => {
    const asked: unknown[] = [];
    const t = await oidcApp({
      accountClaims: async (_ctx: unknown, accountId: string, names: string[], options: unknown) => {
        asked.push({ accountId, names, options });
        return { email: 'alice@example.com', email_verified: true, name: 'Alice', nonce: 'forged', sub: 'mallory' };
      },
    });
    const plain = await verifyIdToken(t, (await codeFlow(t)).body.id_token);
    expect(plain).not.toHaveProperty('email');
    expect(plain).not.toHaveProperty('name');
    expect(asked).toEqual([]);
    const res = await codeFlow(t, { claims: JSON.stringify({ id_token: { email: { essential: true }, nonce: null } }), claims_locales: 'de en' });
    const claims = await verifyIdToken(t, res.body.id_token);
    // The host cannot set protocol claims: sub and nonce stay ours.
    expect(claims).toMatchObject({ email: 'alice@example.com', sub: 'alice', nonce: 'n-0S6_WzA2Mj' });
    expect(claims).not.toHaveProperty('name');
    expect(asked).toEqual([{ accountId: 'alice', names: ['email'], options: { locales: ['de', 'en'], target: 'id_token', clientId: t.client.clientId } }]);
  });

  it('a refresh returns a new ID token with the same sub and auth_time, the new at_hash and no nonce (Core §12.2)', async () => {
    const loggedInAt = new Date(Date.now() - 60_000);
    const t = await oidcApp({ accountAuthenticatedAt: () => loggedInAt });
    const first = await codeFlow(t);
    const refreshed = await tokenRequest(t, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token });
    expect(refreshed.status).toBe(200);
    const before = await verifyIdToken(t, first.body.id_token);
    const after = await verifyIdToken(t, refreshed.body.id_token);
    expect(after.sub).toBe(before.sub);
    expect(after.auth_time).toBe(before.auth_time);
    expect(after.at_hash).toBe(leftHalf('sha256', refreshed.body.access_token));
    expect(after).not.toHaveProperty('nonce');
    // Down-scoping without openid: no ID token.
    const narrowed = await tokenRequest(t, { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token, scope: 'profile' });
    expect(narrowed.status).toBe(200);
    expect(narrowed.body).not.toHaveProperty('id_token');
  });

  it('takes sub from accountSubject', async () => {
    const t = await oidcApp({ accountSubject: async (_ctx: unknown, id: string) => `user-${id}` });
    expect((await verifyIdToken(t, (await codeFlow(t)).body.id_token)).sub).toBe('user-alice');
  });

  it('pairwise: one sub per sector identifier (the redirect URIs’ host), the same for clients of one sector (Core §8.1)', async () => {
    const salt = 'pairwise-salt-of-at-least-32-characters!';
    const t = await oidcApp({ oidcPairwiseSalt: salt }, { subjectType: 'pairwise' });
    const sameSector = await t.createClient({ scopes: ['openid'], redirectUri: ['https://client.example/other-cb'], subjectType: 'pairwise' });
    const otherSector = await t.createClient({ scopes: ['openid'], redirectUri: ['https://other.example/cb'], subjectType: 'pairwise' });
    const publicClient = await t.createClient({ scopes: ['openid'], redirectUri: ['https://other.example/cb'] });
    const subOf = async (client: { clientId: string; clientSecret: string }, redirectUri: string) => {
      const code = await obtainCode(t, { response_type: 'code', client_id: client.clientId, redirect_uri: redirectUri, scope: 'openid', state: 's' });
      const res = await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(client.clientId, client.clientSecret)).send({ grant_type: 'authorization_code', code, redirect_uri: redirectUri });
      return decodeJwt(res.body.id_token).sub;
    };
    const a = await subOf(t.client, REDIRECT_URI);
    expect(a).toBe(createHmac('sha256', salt).update('client.example\0alice').digest('base64url'));
    expect(await subOf(sameSector, 'https://client.example/other-cb')).toBe(a);
    const b = await subOf(otherSector, 'https://other.example/cb');
    expect(b).not.toBe(a);
    expect(b).not.toBe('alice');
    expect(await subOf(publicClient, 'https://other.example/cb')).toBe('alice');
  });

  it('refuses pairwise clients without a salt, or with redirect URIs on several hosts', async () => {
    const t = await oidcApp();
    await expect(t.createClient({ subjectType: 'pairwise' })).rejects.toThrow("subjectType 'pairwise' needs the oidcPairwiseSalt option");
    const s = await oidcApp({ oidcPairwiseSalt: 'x'.repeat(32) });
    await expect(s.createClient({ subjectType: 'pairwise', redirectUri: ['https://a.example/cb', 'https://b.example/cb'] })).rejects.toThrow('must all be on one host');
    await expect(s.createClient({ subjectType: 'sometimes' as never })).rejects.toThrow("subjectType must be 'public' or 'pairwise'");
  });

  it('signs with an EdDSA (Ed25519) key, with at_hash from SHA-512', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const t = await oidcApp({ oauthJwtKeys: [{ key: await exportJWK(privateKey), alg: 'EdDSA', kid: 'ed' }] });
    const res = await codeFlow(t);
    expect(decodeProtectedHeader(res.body.id_token)).toEqual({ alg: 'EdDSA', kid: 'ed', typ: 'JWT' });
    expect(decodeJwt(res.body.id_token).at_hash).toBe(leftHalf('sha512', res.body.access_token));
    const metadata = await t.agent.get(t.path('/.well-known/openid-configuration'));
    expect(metadata.body.id_token_signing_alg_values_supported).toEqual(['EdDSA']);
  });

  it('idTokenClaims may add claims before signing', async () => {
    const t = await oidcApp({ idTokenClaims: async (_ctx: unknown, claims: Record<string, unknown>) => ({ ...claims, tenant: 't1' }) });
    expect((await verifyIdToken(t, (await codeFlow(t)).body.id_token)).tenant).toBe('t1');
  });

  it('a replayed code gets invalid_grant and no ID token', async () => {
    const t = await oidcApp();
    const code = await obtainCode(t, authParams(t));
    expect((await tokenRequest(t, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI })).status).toBe(200);
    const again = await tokenRequest(t, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
    expect(again.status).toBe(400);
    expect(again.body).toEqual({ error: 'invalid_grant', error_description: 'Invalid grant' });
  });
});
