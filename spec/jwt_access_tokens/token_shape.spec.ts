import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { closeAll, type TestApp } from '../support/build_app';
import { storeOf } from '../support/grants';
import { obtainCode, pkcePair, testLogin } from '../authorization_code_grant/flow';
import { clientCredentials, decode, ISSUER, jwtApp, KID, tokenRequest, type Client } from './support';

afterAll(closeAll);

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

describe('jwt_access_tokens › token shape (RFC 9068 §2)', () => {
  let t: TestApp;
  let client: Client;
  beforeAll(async () => {
    t = await jwtApp({ enable: ['authorization_code_grant', 'pkce', 'refresh'] }, { setup: testLogin });
    client = await t.createClient();
  });

  it('issues a client_credentials token as an at+jwt JWT with every claim, sub being the client (§2.1, §2.2)', async () => {
    const res = await tokenRequest(t, client, { grant_type: 'client_credentials', scope: 'books.read' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.stringMatching(JWT), token_type: 'Bearer', expires_in: 3600, scope: 'books.read' });
    const { header, claims } = decode(res.body.access_token);
    expect(header).toEqual({ alg: 'ES256', kid: KID, typ: 'at+jwt' });
    const iat = claims.iat as number;
    expect(Math.abs(iat - Date.now() / 1000)).toBeLessThan(30);
    const grant = await storeOf(t).grants.findByTokenHash(sha256(res.body.access_token));
    expect(claims).toEqual({
      iss: ISSUER,
      sub: client.clientId,
      aud: ISSUER,
      exp: iat + 3600,
      iat,
      jti: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      client_id: client.clientId,
      scope: 'books.read',
      gid: grant!.id,
      aid: client.id,
      gty: 'client_credentials',
    });
    // The grant row holds the token's SHA-256 hash, and the token's own expiry.
    expect(grant).toMatchObject({ tokenHash: sha256(res.body.access_token), expiresIn: new Date((iat + 3600) * 1000), accountId: null, type: 'client_credentials' });
  });

  it('gives every token its own jti', async () => {
    const a = decode(await clientCredentials(t, client)).claims;
    const b = decode(await clientCredentials(t, client)).claims;
    expect(a.jti).not.toBe(b.jti);
    expect(a.gid).not.toBe(b.gid);
  });

  it('issues a JWT for a code exchange, sub being the account and no gty, and a new one on refresh with the narrowed scope (RFC 6749 §6)', async () => {
    const { verifier, challenge } = pkcePair();
    const code = await obtainCode(t, { response_type: 'code', client_id: client.clientId, redirect_uri: 'https://client.example/cb', scope: 'books.read books.write', code_challenge: challenge, code_challenge_method: 'S256' }, { user: 'alice' });
    const res = await tokenRequest(t, client, { grant_type: 'authorization_code', code, redirect_uri: 'https://client.example/cb', code_verifier: verifier });
    expect(res.status).toBe(200);
    const { claims } = decode(res.body.access_token);
    const grant = await storeOf(t).grants.findByTokenHash(sha256(res.body.access_token));
    expect(claims).toEqual({
      iss: ISSUER, sub: 'alice', aud: ISSUER, exp: (claims.iat as number) + 3600, iat: claims.iat, jti: expect.any(String),
      client_id: client.clientId, scope: 'books.read books.write', gid: grant!.id, aid: client.id,
    });
    expect(res.body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const refreshed = await tokenRequest(t, client, { grant_type: 'refresh_token', refresh_token: res.body.refresh_token, scope: 'books.read' });
    expect(refreshed.status).toBe(200);
    const again = decode(refreshed.body.access_token).claims;
    expect(again).toMatchObject({ sub: 'alice', scope: 'books.read', gid: grant!.id, aid: client.id });
    expect(again.jti).not.toBe(claims.jti);
    // The row now holds the new token's hash: the old one is no longer the grant's.
    expect((await storeOf(t).grants.findById(grant!.id))!.tokenHash).toBe(sha256(refreshed.body.access_token));
  });
});

describe('jwt_access_tokens › audience and claims overrides', () => {
  it('uses oauthJwtAudience as aud when set', async () => {
    const t = await jwtApp({ oauthJwtAudience: 'https://api.example.com' });
    const client = await t.createClient();
    expect(decode(await clientCredentials(t, client)).claims.aud).toBe('https://api.example.com');
  });

  it('lets jwtAccessTokenClaims add and change claims, seeing the grant as ctx.grant', async () => {
    const t = await jwtApp({
      jwtAccessTokenClaims: async (ctx: { grant?: { type: string } }, claims: Record<string, unknown>) => ({ ...claims, tenant: 'acme', grant_type_seen: ctx.grant?.type, exp: (claims.exp as number) - 600 }),
    });
    const client = await t.createClient();
    const token = await clientCredentials(t, client);
    const { claims } = decode(token);
    expect(claims).toMatchObject({ tenant: 'acme', grant_type_seen: 'client_credentials', exp: (claims.iat as number) + 3000 });
    // The grant row's expiry follows the token's own exp.
    expect((await storeOf(t).grants.findByTokenHash(sha256(token)))!.expiresIn).toEqual(new Date((claims.exp as number) * 1000));
  });
});
