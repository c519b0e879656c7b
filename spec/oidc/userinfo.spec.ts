import { afterAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import { closeAll } from '../support/build_app';
import { codeFlow, oidcApp, tokenRequest, type OidcApp } from './support';

afterAll(closeAll);

const CLAIMS = {
  name: 'Alice Example',
  given_name: 'Alice',
  email: 'alice@example.com',
  email_verified: true,
  phone_number: '+1 555 0100',
  address: { country: 'FR' },
  birthdate: null,
  secret_note: 'not asked for',
};

function claimsApp(options: Record<string, unknown> = {}, clientInput: Record<string, unknown> = {}): Promise<OidcApp> {
  return oidcApp({ accountClaims: async () => CLAIMS, ...options }, clientInput);
}

const userinfo = (t: OidcApp, token?: string) => {
  const req = t.agent.get(t.path('/userinfo'));
  return token === undefined ? req : req.set('Authorization', `Bearer ${token}`);
};

describe('oidc › userinfo', () => {
  it('GET answers sub and the claims of the granted scopes (Core §5.3.2, §5.4), no-store; null values omitted', async () => {
    const t = await claimsApp();
    const { access_token } = (await codeFlow(t, { scope: 'openid profile email' })).body;
    const res = await userinfo(t, access_token);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ sub: 'alice', name: 'Alice Example', given_name: 'Alice', email: 'alice@example.com', email_verified: true });
  });

  it('POST answers the same (Core §5.3.1)', async () => {
    const t = await claimsApp();
    const { access_token } = (await codeFlow(t, { scope: 'openid phone address' })).body;
    const res = await t.agent.post(t.path('/userinfo')).set('Authorization', `Bearer ${access_token}`).type('form').send({});
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ sub: 'alice', phone_number: '+1 555 0100', address: { country: 'FR' } });
  });

  it('asks accountClaims for exactly the scope claims and the approved supported claims of the claims parameter’s userinfo member (an unsupported one is ignored, Core §5.5)', async () => {
    const asked: string[][] = [];
    const t = await oidcApp({ accountClaims: async (_ctx: unknown, _id: string, names: string[]) => (asked.push(names), CLAIMS) });
    const { access_token } = (await codeFlow(t, { scope: 'openid email', claims: JSON.stringify({ userinfo: { secret_note: null, phone_number: null, sub: null } }) })).body;
    const res = await userinfo(t, access_token);
    expect(res.body).toEqual({ sub: 'alice', email: 'alice@example.com', email_verified: true, phone_number: '+1 555 0100' });
    expect(asked).toEqual([['email', 'email_verified', 'phone_number']]);
  });

  it('answers only sub for openid alone', async () => {
    const t = await claimsApp();
    const { access_token } = (await codeFlow(t, { scope: 'openid' })).body;
    expect((await userinfo(t, access_token)).body).toEqual({ sub: 'alice' });
  });

  it('answers the same pairwise sub as the ID token', async () => {
    const t = await claimsApp({ oidcPairwiseSalt: 'a-pairwise-salt-of-32-characters!!' }, { subjectType: 'pairwise' });
    const body = (await codeFlow(t, { scope: 'openid' })).body;
    const sub = (await userinfo(t, body.access_token)).body.sub;
    expect(sub).not.toBe('alice');
    expect(decodeJwt(body.id_token).sub).toBe(sub);
  });

  it('without a token: 401 and a Bearer challenge without an error code (RFC 6750 §3.1)', async () => {
    const t = await claimsApp();
    const res = await userinfo(t);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth"');
  });

  it('with an unknown token: 401 invalid_token', async () => {
    const t = await claimsApp();
    const res = await userinfo(t, 'not-a-token');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="invalid_token", error_description="Invalid access token"');
    expect(res.body).toEqual({ error: 'invalid_token', error_description: 'Invalid access token' });
  });

  it('with a token lacking openid: 403 insufficient_scope naming openid', async () => {
    const t = await claimsApp();
    const { access_token } = (await codeFlow(t, { scope: 'books.read' })).body;
    const res = await userinfo(t, access_token);
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="insufficient_scope", error_description="Insufficient scope", scope="openid"');
    expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'Insufficient scope' });
  });

  it('with the token of a revoked grant: 401 invalid_token', async () => {
    const t = await claimsApp({ enable: ['token_revocation'] });
    const { access_token } = (await codeFlow(t)).body;
    const revoked = await t.agent.post(t.path('/revoke')).type('form').auth(t.client.clientId, t.client.clientSecret).send({ token: access_token });
    expect(revoked.status).toBe(200);
    const res = await userinfo(t, access_token);
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'invalid_token', error_description: 'Invalid access token' });
  });

  it('with a JWT access token replaced by a refresh: 401 (its grant no longer holds it)', async () => {
    const t = await claimsApp({ enable: ['jwt_access_tokens'] });
    const first = (await codeFlow(t)).body;
    expect((await userinfo(t, first.access_token)).status).toBe(200);
    const refreshed = await tokenRequest(t, { grant_type: 'refresh_token', refresh_token: first.refresh_token });
    expect(refreshed.status).toBe(200);
    expect((await userinfo(t, first.access_token)).status).toBe(401);
    expect((await userinfo(t, refreshed.body.access_token)).body).toEqual({ sub: 'alice', name: 'Alice Example', given_name: 'Alice', email: 'alice@example.com', email_verified: true });
  });

  it('a method other than GET and POST: 405 with Allow', async () => {
    const t = await claimsApp();
    const res = await t.agent.put(t.path('/userinfo'));
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD, POST');
  });
});
