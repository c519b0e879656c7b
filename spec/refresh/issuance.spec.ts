import { afterAll, describe, expect, it } from '@jest/globals';
import { sha256 } from '../../lib/crypto';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { obtainCode, testLogin } from '../authorization_code_grant/flow';
import { REFRESH_TOKEN_REUSED, me, refresh, testClock } from './helpers';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';

/** RFC 6749 §4.1.3: the code exchange, with HTTP Basic client authentication. */
function exchange(t: TestApp, client: { clientId: string; clientSecret: string }, code: string) {
  return t.agent.post(t.path('/token')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
}

describe('refresh › issuance', () => {
  it('issues a hashed refresh token with an authorization code exchange, and it refreshes (RFC 6749 §4.1.4, §6)', async () => {
    const clock = testClock();
    const t = await buildApp({ enable: ['authorization_code_grant', 'refresh'], now: clock.now, oauthRefreshTokenExpiresIn: 600 }, { setup: testLogin });
    const client = await t.createClient({ redirectUri: [REDIRECT] });
    const code = await obtainCode(t, { client_id: client.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read books.write', state: 's' });
    const exchanged = await exchange(t, client, code);
    expect(exchanged.status).toBe(200);
    expect(exchanged.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, refresh_token: expect.any(String), scope: 'books.read books.write' });
    const [row] = await t.db('oauth_grants').select('refresh_token', 'refresh_token_expires_in');
    expect((row as { refresh_token: string }).refresh_token).toBe(sha256(exchanged.body.refresh_token));

    const refreshed = await refresh(t, client, exchanged.body.refresh_token, { scope: 'books.read' });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, refresh_token: expect.any(String), scope: 'books.read' });
    expect((await me(t, refreshed.body.access_token)).body).toEqual(expect.objectContaining({ accountId: 'alice', scopes: ['books.read'] }));
    expect((await refresh(t, client, exchanged.body.refresh_token)).body).toEqual(REFRESH_TOKEN_REUSED);
    t.logger.assertNoSecrets([code, exchanged.body.refresh_token, refreshed.body.refresh_token, client.clientSecret]);
  });

  it('issues no refresh token to a client not registered for the refresh_token grant (design.md §4.11)', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant', 'refresh'] }, { setup: testLogin });
    const client = await t.createClient({ redirectUri: [REDIRECT], grantTypes: ['authorization_code'] });
    const code = await obtainCode(t, { client_id: client.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: 's' });
    const exchanged = await exchange(t, client, code);
    expect(exchanged.status).toBe(200);
    expect(exchanged.headers['cache-control']).toBe('no-store');
    expect(exchanged.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read' });
    const [row] = await t.db('oauth_grants').select('refresh_token');
    expect((row as { refresh_token: string | null }).refresh_token).toBeNull();
  });

  it('gives the code exchange’s refresh token the oauthRefreshTokenExpiresIn lifetime', async () => {
    const clock = testClock();
    const t = await buildApp({ enable: ['authorization_code_grant', 'refresh'], now: clock.now, oauthRefreshTokenExpiresIn: 600 }, { setup: testLogin });
    const client = await t.createClient({ redirectUri: [REDIRECT] });
    const code = await obtainCode(t, { client_id: client.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: 's' });
    const exchanged = await exchange(t, client, code);
    clock.advance(601);
    const late = await refresh(t, client, exchanged.body.refresh_token);
    expect(late.status).toBe(400);
    expect(late.body).toEqual({ error: 'invalid_grant', error_description: 'Invalid refresh token' });
  });

  it('never issues a refresh token with client credentials (RFC 6749 §4.4.3)', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant', 'refresh'] });
    const client = await t.createClient();
    const res = await t.agent
      .post(t.path('/token'))
      .set('Authorization', basic(client.clientId, client.clientSecret))
      .type('form')
      .send({ grant_type: 'client_credentials' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read books.write' });
    const [row] = await t.db('oauth_grants').select('refresh_token');
    expect((row as { refresh_token: string | null }).refresh_token).toBeNull();
  });
});
