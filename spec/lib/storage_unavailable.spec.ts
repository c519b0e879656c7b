/**
 * Issue 10 item 4: a storage failure that may pass (a full disk, too many connections, a lock)
 * answers 503 temporarily_unavailable with Retry-After on every channel, never a 500.
 */
import { afterAll, afterEach, describe, expect, it, jest } from '@jest/globals';
import express from 'express';
import knex, { type Knex } from 'knex';
import request from 'supertest';
import { oauth } from '../../lib';
import { ApplicationStore } from '../../lib/store/applications';
import { GrantStore } from '../../lib/store/grants';
import { basic, buildApp, closeAll, RecordingLogger } from '../support/build_app';
import { countGrants, tokenRequest } from '../oauth_base/helpers';
import { consent, errorPage, locationParams, query, testLogin } from '../authorization_code_grant/flow';

afterAll(closeAll);
afterEach(() => void jest.restoreAllMocks());

const UNAVAILABLE = { error: 'temporarily_unavailable', error_description: 'The service is temporarily unavailable' };
const HASH = 'q2V0aGlzSXNBSGFzaE9mQVRva2VuMDEyMzQ1Njc4OTA';

/** A driver error as knex hands it on: the driver's code, the SQL and its bindings prefixed to the message. */
function driverError(code: string, driverMessage: string): Error {
  return Object.assign(new Error(`insert into "oauth_grants" ("token", "oauth_application_id") values ('${HASH}', 1) returning "id" - ${driverMessage}`), { code });
}
const SQLITE_FULL = () => driverError('SQLITE_FULL', 'database or disk is full');
const TOO_MANY_CONNECTIONS = () => Object.assign(driverError('53300', 'sorry, too many clients already'), { severity: 'FATAL', routine: 'InitProcessPhase2' });

describe('lib › storage failures answer 503 temporarily_unavailable with Retry-After', () => {
  it.each([
    ['a full disk (SQLITE_FULL)', SQLITE_FULL],
    ['too many connections (PostgreSQL 53300)', TOO_MANY_CONNECTIONS],
  ])('token endpoint (JSON): %s while writing the grant', async (_what, failure) => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const c = await t.createClient();
    jest.spyOn(GrantStore.prototype, 'insert').mockRejectedValue(failure());
    const res = await tokenRequest(t, c);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('2');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['pragma']).toBe('no-cache');
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(res.body).toEqual(UNAVAILABLE);
    expect(await countGrants(t)).toBe(0);
    expect(t.logger.lines.join('\n')).not.toContain(HASH);
  });

  it('token endpoint: a real full SQLite database (max_page_count reached) gives 503, then serves again once there is room', async () => {
    // Its own SQLite file-less database whatever DATABASE_URL says: the full disk is SQLite's.
    const db: Knex = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
    try {
      const logger = new RecordingLogger();
      const auth = oauth({ db, logger, enable: ['client_credentials_grant'], oauthClientSecretHashCost: 4 } as never);
      await auth.migrate();
      const app = express().use(auth);
      const created = await auth.createApplication({ name: 'c', scopes: ['books.read'], grantTypes: ['client_credentials'] } as never);
      const [{ page_count: pages }] = (await db.raw('PRAGMA page_count')) as { page_count: number }[];
      await db.raw(`PRAGMA max_page_count = ${pages}`);
      const send = () => request(app).post('/token').type('form').set('Authorization', basic(created.clientId, created.clientSecret!)).send({ grant_type: 'client_credentials' });
      let res = await send();
      for (let i = 0; i < 1000 && res.status === 200; i++) res = await send();
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('2');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toEqual(UNAVAILABLE);
      expect(logger.lines.filter((l) => l.startsWith('error'))).toEqual([expect.stringContaining('"code":"SQLITE_FULL"')]);
      await db.raw(`PRAGMA max_page_count = ${pages * 4}`);
      expect((await send()).status).toBe(200);
    } finally {
      await db.destroy();
    }
  });

  it('protected resource (Bearer): the token lookup failing with 53300 gets 503, Retry-After and no challenge', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    jest.spyOn(GrantStore.prototype, 'findAccessByTokenHash').mockRejectedValue(TOO_MANY_CONNECTIONS());
    const res = await t.agent.get('/api/me').set('Authorization', 'Bearer some-token-value');
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('2');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(res.body).toEqual(UNAVAILABLE);
  });

  describe('/authorize', () => {
    const REDIRECT = 'https://client.example/cb';
    const setup = async () => {
      const t = await buildApp({ enable: ['authorization_code_grant'], issuer: 'https://auth.example.com' }, { setup: testLogin });
      const { clientId } = await t.createClient({ redirectUri: [REDIRECT] });
      return { t, params: { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: 'st' } };
    };

    it('HTML error page: the client lookup failing (SQLITE_BUSY) gets a 503 page with Retry-After', async () => {
      const { t, params } = await setup();
      jest.spyOn(ApplicationStore.prototype, 'findByClientId').mockRejectedValue(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }));
      const res = await t.agent.get(`${t.path('/authorize')}?${query(params)}`).set('X-Test-User', 'alice');
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('2');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(errorPage(res.text)).toEqual({ error: 'temporarily_unavailable', description: 'The service is temporarily unavailable' });
    });

    it('redirect: writing the code failing (53300) sends temporarily_unavailable back to the client, without a Retry-After on the 302', async () => {
      const { t, params } = await setup();
      const page = await t.agent.get(`${t.path('/authorize')}?${query(params)}`).set('X-Test-User', 'alice');
      expect(page.status).toBe(200);
      jest.spyOn(GrantStore.prototype, 'insert').mockRejectedValue(TOO_MANY_CONNECTIONS());
      const res = await consent(t, params);
      expect(res.status).toBe(302);
      // RFC 9110 §10.2.3: on a redirect, Retry-After would delay the browser following it.
      expect(res.headers['retry-after']).toBeUndefined();
      expect(locationParams(res.headers.location)).toEqual({ ...UNAVAILABLE, state: 'st', iss: 'https://auth.example.com' });
    });
  });
});
