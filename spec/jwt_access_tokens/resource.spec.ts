import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import express from 'express';
import request from 'supertest';
import { oauth, type OAuthRouter } from '../../lib';
import { basic, closeAll, RecordingLogger } from '../support/build_app';
import { createTestDb } from '../support/db';
import { storeOf } from '../support/grants';
import { testClock } from '../refresh/helpers';
import { bearer, clientCredentials, countQueries, decode, es256, expectInvalidToken, jwtApp, tokenRequest } from './support';
import { obtainCode, pkcePair, testLogin } from '../authorization_code_grant/flow';

afterAll(closeAll);

let queries: ReturnType<typeof countQueries> | undefined;
afterEach(() => queries?.restore());

describe('jwt_access_tokens › requireOauthAuthorization (RFC 9068 §4)', () => {
  it('accepts a JWT access token with no query at all and sets the same req.oauth as for an opaque token', async () => {
    const t = await jwtApp();
    const client = await t.createClient();
    const token = await clientCredentials(t, client, 'books.read');
    const { claims } = decode(token);
    queries = countQueries();
    const res = await bearer(t, token);
    expect(queries.count()).toBe(0);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ accountId: null, clientId: client.clientId, applicationId: client.id, scopes: ['books.read'], grantId: claims.gid, expiresAt: new Date((claims.exp as number) * 1000).toISOString(), token });
    // The grant row says the same.
    const grant = await storeOf(t).grants.findById(claims.gid as number);
    expect(res.body.expiresAt).toBe(grant!.expiresIn.toISOString());
  });

  it('still looks an opaque token up (one query) when the feature is on', async () => {
    const t = await jwtApp({ oauthAccessTokenFormat: 'opaque' });
    const client = await t.createClient();
    const token = await clientCredentials(t, client);
    queries = countQueries();
    expect((await bearer(t, token)).status).toBe(200);
    expect(queries.count()).toBe(1);
  });

  it('sets accountId to the account of a code grant token', async () => {
    const t = await jwtApp({ enable: ['authorization_code_grant', 'pkce'] }, { setup: testLogin });
    const client = await t.createClient();
    const { verifier, challenge } = pkcePair();
    const code = await obtainCode(t, { response_type: 'code', client_id: client.clientId, redirect_uri: 'https://client.example/cb', scope: 'books.read', code_challenge: challenge, code_challenge_method: 'S256' }, { user: 'alice' });
    const tok = await tokenRequest(t, client, { grant_type: 'authorization_code', code, redirect_uri: 'https://client.example/cb', code_verifier: verifier });
    const res = await bearer(t, tok.body.access_token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accountId: 'alice', clientId: client.clientId, applicationId: client.id, scopes: ['books.read'] });
  });

  it('answers 403 insufficient_scope with the required scopes when the JWT lacks one (RFC 6750 §3.1)', async () => {
    const t = await jwtApp();
    const client = await t.createClient();
    const token = await clientCredentials(t, client, 'books.write');
    const res = await bearer(t, token, '/api/books');
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="insufficient_scope", error_description="Insufficient scope", scope="books.read"');
    expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'Insufficient scope' });
  });

  it('without the revocation check (default), a revoked JWT works until its exp: the documented trade-off', async () => {
    const t = await jwtApp();
    const client = await t.createClient();
    const token = await clientCredentials(t, client);
    await storeOf(t).grants.revoke(decode(token).claims.gid as number, new Date());
    expect((await bearer(t, token)).status).toBe(200);
  });

  it('with oauthJwtAccessTokenCheckRevocation, looks the grant up (one query) and refuses a revoked JWT at once', async () => {
    const t = await jwtApp({ oauthJwtAccessTokenCheckRevocation: true });
    const client = await t.createClient();
    const token = await clientCredentials(t, client);
    queries = countQueries();
    expect((await bearer(t, token)).status).toBe(200);
    expect(queries.count()).toBe(1);
    queries.restore();
    await storeOf(t).grants.revoke(decode(token).claims.gid as number, new Date());
    expectInvalidToken(await bearer(t, token));
  });

  it('with the revocation check, a JWT replaced by a refresh fails; without it, it works until exp', async () => {
    for (const check of [true, false]) {
      const t = await jwtApp({ enable: ['authorization_code_grant', 'pkce', 'refresh'], oauthJwtAccessTokenCheckRevocation: check }, { setup: testLogin });
      const client = await t.createClient();
      const { verifier, challenge } = pkcePair();
      const code = await obtainCode(t, { response_type: 'code', client_id: client.clientId, redirect_uri: 'https://client.example/cb', scope: 'books.read', code_challenge: challenge, code_challenge_method: 'S256' });
      const first = await tokenRequest(t, client, { grant_type: 'authorization_code', code, redirect_uri: 'https://client.example/cb', code_verifier: verifier });
      const second = await tokenRequest(t, client, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token });
      expect((await bearer(t, second.body.access_token)).status).toBe(200);
      const old = await bearer(t, first.body.access_token);
      if (check) expectInvalidToken(old);
      else expect(old.status).toBe(200);
    }
  });

  it('refuses an expired JWT beyond the leeway and accepts one within it (exp, oauthJwtAccessTokenLeeway)', async () => {
    const clock = testClock();
    const t = await jwtApp({ now: clock.now, oauthJwtAccessTokenLeeway: 10 });
    const client = await t.createClient();
    const token = await clientCredentials(t, client);
    clock.advance(3600 + 5);
    expect((await bearer(t, token)).status).toBe(200);
    clock.advance(10);
    expectInvalidToken(await bearer(t, token));
  });
});

describe('jwt_access_tokens › a derived issuer (development, no issuer option)', () => {
  it("accepts at a host route outside the OAuth router's mount a token whose iss is the request's origin and mount, and refuses one of another origin", async () => {
    const keys = (await es256()).option;
    const db = await createTestDb();
    try {
      const auth = oauth({ db: db.db, enable: ['jwt_access_tokens', 'client_credentials_grant'], oauthJwtKeys: keys, oauthClientSecretHashCost: 4, logger: new RecordingLogger() } as never) as OAuthRouter;
      await auth.migrate();
      const app = express();
      app.use('/oauth', auth);
      app.get('/api/me', auth.requireOauthAuthorization('books.read'), (req, res) => void res.json(req.oauth));
      const c = await auth.createApplication({ name: 'C', grantTypes: ['client_credentials'], scopes: ['books.read'] });
      const tok = await request(app).post('/oauth/token').set('Host', 'auth.test').type('form').set('Authorization', basic(c.clientId, c.clientSecret!)).send({ grant_type: 'client_credentials' });
      const token = tok.body.access_token as string;
      expect(decode(token).claims).toMatchObject({ iss: 'http://auth.test/oauth', aud: 'http://auth.test/oauth' });
      expect((await request(app).get('/api/me').set('Host', 'auth.test').set('Authorization', `Bearer ${token}`)).status).toBe(200);
      expectInvalidToken(await request(app).get('/api/me').set('Host', 'other.test').set('Authorization', `Bearer ${token}`));
    } finally {
      await db.destroy();
    }
  });
});
